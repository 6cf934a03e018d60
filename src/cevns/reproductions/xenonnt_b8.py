"""XENONnT solar ⁸B CEvNS (PRL 133, 191002 (2024), arXiv:2408.02877) from the public data release, and the SR2
light-dark-matter limits of the same release.

Everything goes through the package's one model: the specs ``xenonnt-b8-sr0``, ``-sr1``, ``-sr2`` (signal: our ⁸B
CEvNS spectrum on natural xenon folded with the released mono-energetic efficiency templates; backgrounds: the
released AC, ER and neutron templates × exposure; light and charge yield as shared response nuisances) →
:class:`~cevns.model.forward.ForwardModel` → :func:`cevns.inference.fit`. Likelihoods of the science runs add and
share ``xsec_scale`` and the yield nuisances by name.

Definitions:
* ⁸B flux: Φ = (σ·Φ/prediction)̂ × Φ_ref, the POI ``xsec_scale`` times the reference flux of the specs' source
  (O'Hare 2021: 5.16 × 10⁶ cm⁻² s⁻¹), i.e. the SM cross section assumed; interval Δχ² = 1 of its profile;
* significance: √Δχ² between the best fit and xsec_scale = 0 (background only), all nuisances profiled;
* flux-weighted cross section: xsec_scale × ⟨σ⟩_SM (⁸B on natural Xe, per nucleus, our engine) with the flux held at
  Φ_ref — the PRL holds it at a measured solar flux, so this row is indicative;
* SR2 light-DM limits: spec ``xenonnt-lightdm-sr2`` at each mass (and the same for SR0, SR1 combined) (SI WIMP signal through the same templates, ⁸B CEvNS
  as a background with a 2 % flux prior), the asymptotic one-sided 90 % CL profile-likelihood upper limit
  (Δχ² = 1.642 above the best fit at σ ≥ 0; Cowan, Cranmer, Gross & Vitells, arXiv:1007.1727, Sec. 3.6) — the
  collaboration's limits use a Neyman construction, so agreement within tens of per cent is what to expect.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from cevns.errors import CevnsError, FitError
from cevns.experiments.registry import load_experiment, load_spec
from cevns.inference import fit, interval_from_profile, profile_scan, significance_from_delta_chi2
from cevns.reproductions import Reproduction, Row

__all__ = ["reproduce", "combined_likelihood", "flux_fit", "dm_upper_limit", "b8_flux_averaged_xsec_cm2",
           "released_si_limits", "ONE_SIDED_90"]

RUNS = ("sr0", "sr1", "sr2")
ONE_SIDED_90 = 1.2815515655446004**2  # Φ⁻¹(0.90)²: asymptotic one-sided 90 % CL


def combined_likelihood(exps, mode: str = "xsec_scale", physics=()):
    lik = None
    for e in exps:
        part = e.likelihood(mode, physics=physics)
        lik = part if lik is None else lik + part
    return lik


def _fit(lik, **kw):
    """:func:`cevns.inference.fit`, restarted once from its own end point when MIGRAD stops short (the yield
    morphing is piecewise linear: its kinks can stall the first descent)."""
    r = fit(lik, require_valid=False, **kw)
    if not r.valid:
        kw2 = dict(kw)
        kw2["start"] = {**(kw.get("start") or {}), **{k: v for k, v in r.values.items() if k not in (kw.get("fixed") or {})}}
        r = fit(lik, **kw2)
    return r


def flux_fit(exps, progress: bool = False) -> dict:
    """Best fit, background-only fit, significance and the Δχ² = 1 interval of ``xsec_scale`` for science runs."""
    lik = combined_likelihood(exps)
    best = _fit(lik)
    null = _fit(lik, start=best.values, fixed={"xsec_scale": 0.0})
    z = significance_from_delta_chi2(null.chi2 - best.chi2)
    r = best.values["xsec_scale"]
    grid = np.linspace(0.0, r + 4.5 * max(best.errors["xsec_scale"], 0.1), 91)
    chi = profile_scan(lik, "xsec_scale", grid, start=best.values, progress=progress)
    d = chi - min(chi.min(), best.chi2)
    lo, hi = interval_from_profile(grid, d)
    phi_ref = exps[0].source.info["fluxes_cm2_s"]["8B"]
    sig = sum(e.sm_prediction() for e in exps)
    bkg = sum(float(s.evaluate(None, e.model("xsec_scale").defaults()[None, :]).sum())
              for e in exps for s in e.model("xsec_scale").samples[1:])
    return {"best": best, "null": null, "significance": z, "scale": r, "scale_interval": (lo, hi), "grid": grid,
            "dchi2": d, "flux": r * phi_ref, "flux_up": (hi - r) * phi_ref, "flux_down": (r - lo) * phi_ref,
            "phi_ref": phi_ref, "expected_b8": sig, "expected_background": bkg,
            "observed": float(sum(e.observed.sum() for e in exps))}


def b8_flux_averaged_xsec_cm2(target: str = "Xe") -> float:
    """⟨σ⟩ of SM ⁸B CEvNS per nucleus [cm²] (all recoil energies), from the engine's binned rates."""
    from cevns.directdetection.fog import neutrino_binned_rates
    from cevns.directdetection.spectra import target_components
    from cevns.sources.halo import YEAR_S
    from cevns.sources.solar import COMPONENTS

    fr = neutrino_binned_rates(target, np.geomspace(1e-5, 50.0, 61), ["8B"])
    nuclei = sum(n for _, n in target_components(target))
    return float(fr.B.sum() / (nuclei * COMPONENTS["8B"].flux_cm2_s * YEAR_S))


def released_si_limits():
    """(masses [GeV], released 90 % CL upper limits [cm²], median sensitivity [cm²]) of the SR2 release."""
    from cevns.experiments.releases import data_path, read_table

    arr = read_table(data_path("xenonnt_cevns_2024", "limits/xenonnt_2026_wimp_si.csv"), ncols=8)
    return arr[:, 1], arr[:, 7], arr[:, 4]


def lightdm_spec(run: str, mass_GeV: float) -> dict:
    """The light-DM spec of one science run at one mass: the registered ``xenonnt-lightdm-sr2`` (halo, SI WIMP signal,
    ⁸B CEvNS background) with the run's binning, data, templates, livetime and background nuisances taken from
    ``xenonnt-b8-<run>``."""
    dm = copy.deepcopy(load_spec("xenonnt-lightdm-sr2"))
    b8 = load_spec(f"xenonnt-b8-{run}")
    dm["name"] = f"xenonnt-lightdm-{run}"
    dm["source"]["mass_GeV"] = float(mass_GeV)
    dm["source"]["livetime_yr"] = b8["source"]["livetime_yr"]
    for k in ("binning", "data"):
        dm[k] = copy.deepcopy(b8[k])
    dm["signal"]["file"] = b8["signal"]["file"]
    bkg = copy.deepcopy(b8["backgrounds"])
    bkg["b8"] = dict(dm["backgrounds"]["b8"], file=b8["signal"]["file"])
    dm["backgrounds"] = bkg
    nu = {k: v for k, v in b8["nuisances"].items()}
    nu["xenonnt_b8_flux_norm"] = dm["nuisances"]["xenonnt_b8_flux_norm"]
    dm["nuisances"] = nu
    return dm


def dm_upper_limit(mass_GeV: float, runs=("sr2",), progress: bool = False) -> dict:
    """Asymptotic one-sided 90 % CL upper limit on σ_n [cm²] at one dark-matter mass (see the module docstring) from
    the light-DM specs of ``runs`` (:func:`lightdm_spec`), their likelihoods added (yields, ⁸B flux and σ shared)."""
    from cevns.inference.scan import upper_limit

    name = "dm_sigma_si_1e45_cm2"
    exps = [load_experiment(lightdm_spec(r, mass_GeV)) for r in runs]
    lik = combined_likelihood(exps, "physics", (name,))
    s1 = 0.0
    for e in exps:  # signal events at σ = 1e-45 cm², nominal yields
        A0 = e.model("physics", (name,)).prepare({name: np.array([1.0])})[0][0]
        s1 += float(A0[0].sum())
    scale = 20.0 / max(s1, 1e-12)  # σ (in 1e-45 cm²) giving 20 signal events: the first scan range
    best = _fit(lik, start={name: 0.1 * scale})
    for _ in range(4):  # widen the scan until the profile crosses the threshold (the yields can hide a signal)
        grid = np.linspace(0.0, scale, 61)
        chi = profile_scan(lik, name, grid, start=best.values, progress=progress)
        ref = min(chi.min(), best.chi2)
        if np.max(chi - ref) > ONE_SIDED_90:
            break
        scale *= 10.0
    lim = upper_limit(grid, np.maximum(chi - ref, 0.0), ONE_SIDED_90)
    return {"mass_GeV": float(mass_GeV), "runs": list(runs), "limit_cm2": lim * 1e-45, "events_per_1e45": s1,
            "best": best}


def reproduce(progress: bool = False, experiments=None, dm_masses=(4.0, 6.0, 8.0, 10.0, 12.0)) -> Reproduction:
    exps = list(experiments) if experiments else [load_experiment(f"xenonnt-b8-{r}") for r in RUNS]
    pub = exps[0].published
    f01 = flux_fit(exps[:2], progress)
    f012 = flux_fit(exps, progress)
    xs_sm = b8_flux_averaged_xsec_cm2()
    xs, xs_lo, xs_hi = (f01["scale"] * xs_sm, f01["scale_interval"][0] * xs_sm, f01["scale_interval"][1] * xs_sm)
    lims, lims_all = [], []
    for m in dm_masses:
        for runs, out in ((("sr2",), lims), (RUNS, lims_all)):
            try:
                out.append(dm_upper_limit(m, runs, progress=progress))
            except (FitError, CevnsError) as exc:  # pragma: no cover - reported, not hidden
                out.append({"mass_GeV": m, "runs": list(runs), "limit_cm2": float("nan"), "error": str(exc)})
    mr, ul, sens = released_si_limits()
    rel = {float(m): float(u) for m, u in zip(mr, ul)}
    e6 = 1e6
    rows = [
        Row("observed events (SR0+SR1)", f"{f01['observed']:.0f}", f"{pub['observed_events']:.0f}", "release event lists"),
        Row("background (SR0+SR1)", f"{f01['expected_background']:.1f}",
            f"{pub['background_events']} +{pub['background_err_up']} −{pub['background_err_down']}",
            "released templates × exposure"),
        Row("expected ⁸B CEvNS (SR0+SR1)", f"{f01['expected_b8']:.2f}", "", f"ours at Φ_ref = {f01['phi_ref'] / e6:.2f}e6 /cm²/s"),
        Row("⁸B flux [1e6 /cm²/s] (SR0+SR1)", f"{f01['flux'] / e6:.2f} +{f01['flux_up'] / e6:.2f} −{f01['flux_down'] / e6:.2f}",
            f"{pub['b8_flux_cm2_s'] / e6:.1f} +{pub['b8_flux_err_up_cm2_s'] / e6:.1f} −{pub['b8_flux_err_down_cm2_s'] / e6:.1f}",
            "Δχ² = 1"),
        Row("significance vs background only (SR0+SR1)", f"{f01['significance']:.2f} σ", f"{pub['significance_sigma']} σ",
            "√Δχ²"),
        Row("flux-weighted σ [1e-39 cm²] (SR0+SR1)", f"{xs / 1e-39:.2f} +{(xs_hi - xs) / 1e-39:.2f} −{(xs - xs_lo) / 1e-39:.2f}",
            f"{pub['xsec_cm2'] / 1e-39:.1f} +{pub['xsec_err_up_cm2'] / 1e-39:.1f} −{pub['xsec_err_down_cm2'] / 1e-39:.1f}",
            f"SM ⟨σ⟩ = {xs_sm / 1e-39:.3f}e-39 (ours), flux at Φ_ref"),
        Row("⁸B flux [1e6 /cm²/s] (SR0+SR1+SR2)", f"{f012['flux'] / e6:.2f} +{f012['flux_up'] / e6:.2f} −{f012['flux_down'] / e6:.2f}",
            "", f"{f012['significance']:.2f} σ; arXiv:2604.06002 numbers not available to us"),
    ]
    for L, La in zip(lims, lims_all):
        m = L["mass_GeV"]
        rows.append(Row(f"SI limit at {m:g} GeV [cm²] SR2 | SR0–2", f"{L['limit_cm2']:.2e} | {La['limit_cm2']:.2e}",
                        f"{rel[m]:.2e}" if m in rel else "", "asymptotic one-sided 90 % vs released 'sr2' file"))
    results = {
        "b8_flux_cm2_s": f01["flux"], "b8_flux_err_up_cm2_s": f01["flux_up"], "b8_flux_err_down_cm2_s": f01["flux_down"],
        "significance_sigma": f01["significance"],
        "published": {k: pub[k] for k in ("b8_flux_cm2_s", "b8_flux_err_up_cm2_s", "b8_flux_err_down_cm2_s",
                                          "significance_sigma")},
        "expected_b8_events": f01["expected_b8"], "expected_background_events": f01["expected_background"],
        "observed_events": f01["observed"], "xsec_scale": f01["scale"], "xsec_scale_interval": list(f01["scale_interval"]),
        "xsec_cm2": xs, "xsec_err_up_cm2": xs_hi - xs, "xsec_err_down_cm2": xs - xs_lo, "xsec_sm_cm2": xs_sm,
        "sr012": {"b8_flux_cm2_s": f012["flux"], "b8_flux_err_up_cm2_s": f012["flux_up"],
                  "b8_flux_err_down_cm2_s": f012["flux_down"], "significance_sigma": f012["significance"]},
        "best_fit": f01["best"].values,
        "sr2_si_limits": [{"mass_GeV": L["mass_GeV"], "ours_sr2_cm2": L["limit_cm2"], "ours_sr012_cm2": La["limit_cm2"],
                           "released_cm2": rel.get(L["mass_GeV"])} for L, La in zip(lims, lims_all)],
    }
    notes = ["shared by name across science runs: xsec_scale and the light/charge-yield nuisances; background priors "
             "(AC 5 %, ER 20 %, neutrons 50 %) are ours: the release does not give them",
             "the ⁸B flux central value is ~30 % above the PRL's with a similar significance: our expected ⁸B count per "
             "unit flux, folded with the released (2026) templates, is ~23 % below what the PRL's result implies "
             "(unexplained; the 2026 templates may carry updated yields)",
             "all five released SR2 limit files are byte-identical; the comparison treats the file as the SI limit; "
             "whether it uses SR2 alone or SR0–SR2 is not stated in the release, so both of ours are shown",
             "the released efficiency templates stop at 5 keV_nr: recoils above are dropped, which weakens our limits "
             "at the highest masses (T_max ≈ 14 keV at 12 GeV)"]

    def plot(outdir: Path) -> list[Path]:
        from cevns.plotting import plt, save

        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        for f, lab, c in ((f01, "SR0+SR1", "k"), (f012, "SR0+SR1+SR2", "tab:blue")):
            ax.plot(f["grid"] * f["phi_ref"] / e6, f["dchi2"], color=c, label=lab)
        ax.axvspan((pub["b8_flux_cm2_s"] - pub["b8_flux_err_down_cm2_s"]) / e6,
                   (pub["b8_flux_cm2_s"] + pub["b8_flux_err_up_cm2_s"]) / e6, color="tab:orange", alpha=0.2,
                   label="PRL 133, 191002 (±1σ)")
        ax.axhline(1.0, color="grey", ls=":")
        ax.set_xlabel("⁸B flux (10⁶ cm⁻² s⁻¹)")
        ax.set_ylabel("Δχ²")
        ax.set_ylim(0, 12)
        ax.legend(frameon=False, fontsize=8)
        paths = [save(fig, Path(outdir) / "xenonnt_b8_flux_profile.png")]
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        ax.plot(mr, ul, "s-", color="tab:orange", label="XENONnT SR2 (released)")
        ax.plot([L["mass_GeV"] for L in lims], [L["limit_cm2"] for L in lims], "o-", color="k",
                label="ours, SR2 (asymptotic, released templates)")
        ax.plot([L["mass_GeV"] for L in lims_all], [L["limit_cm2"] for L in lims_all], "o--", color="grey",
                label="ours, SR0+SR1+SR2")
        ax.set_yscale("log")
        ax.set_xlabel("WIMP mass (GeV)")
        ax.set_ylabel("σ_SI (cm²), 90 % CL")
        ax.legend(frameon=False, fontsize=8)
        paths.append(save(fig, Path(outdir) / "xenonnt_sr2_si_limits.png"))
        return paths

    return Reproduction("xenonnt-b8", "XENONnT solar ⁸B CEvNS (SR0+SR1, PRL 133, 191002) and SR2 light DM — ours",
                        rows, results, plot, notes, details={"sr01": f01, "sr012": f012, "dm_limits": lims, "dm_limits_all": lims_all})
