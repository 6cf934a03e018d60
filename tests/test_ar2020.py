"""COHERENT CENNS-10 liquid argon, Analysis A (arXiv:2003.10630, release arXiv:2006.12659): closure of the release,
published fit numbers, our own argon prediction vs the released CEvNS PDF, template interpolation, error paths."""
import math
import shutil

import numpy as np
import pytest
import yaml

from cevns import constants as C
from cevns.errors import ConfigError, DataError, UnknownNameError
from cevns.experiments import load_experiment, load_spec
from cevns.experiments.releases import DATA_ROOT
from cevns.experiments.sections.data import read_grid_nd
from cevns.inference import fit
from cevns.interactions.cevns import total_cross_section
from cevns.reproductions import get_reproduction
from cevns.reproductions.coherent_ar_2020 import closure, released_best_fit, released_projections, shape_systematics
from cevns.sources.stopped_pion import michel_nue_pdf, michel_numubar_pdf

E39 = 1e-39


@pytest.fixture(scope="module")
def exp(experiments):
    return experiments("coherent-ar-2020")


@pytest.fixture(scope="module")
def rep(combined_reproduction):
    return combined_reproduction.parts["coherent-ar-2020"]


@pytest.fixture(scope="module")
def fits(rep):
    return rep.details["fits"]


@pytest.fixture(scope="module")
def cmp_(rep):
    return rep.details["engine_comparison"]


# ---- the release itself ----------------------------------------------------------------------------------------
def test_spec_numbers_match_release_yaml(exp):
    y = yaml.safe_load(open(DATA_ROOT / "coherent_cenns10_2020" / "Data" / "LArParametersAnlA.yaml"))
    sp = exp.spec
    cs = {n: b for n, b in sp["backgrounds"].items()}
    assert sp["signal"]["best_fit"] == y["cevnsBestfitNormalization"]["value"]
    assert sp["signal"]["best_fit_sigma"] == y["cevnsBestfitNormalization"]["uncertainty_stat"]
    assert cs["brn_prompt"]["best_fit"] == y["promptBeamRelatedNeutronBestfitNormalization"]["value"]
    assert cs["brn_delayed"]["prediction_sigma"] == y["delayedBeamRelatedNeutronPredictionNormalization"]["uncertainty"]
    assert cs["steady_state"]["best_fit"] == y["ssBackgroundBestfitNormalization"]["value"]
    assert sp["source"]["pot"] == pytest.approx(y["beamExposure"]["value"] * 1e22)
    assert sp["source"]["distance_m"] == y["distanceToTarget"]["value"]
    assert sp["target"]["mass_kg"] == y["fiducialMass"]["value"]
    qf = {p["name"]: p["value"] for p in y["larQF"]["parameters"]}
    assert (sp["detector"]["quenching"]["a"], sp["detector"]["quenching"]["b"]) == (qf["a"], qf["b"])
    assert sp["detector"]["smearing"]["a_sqrt_keV"] == y["energyResolution"]["parameters"][0]["value"]
    assert sp["source"]["timing"]["mean_us"] * 1e3 == pytest.approx(y["snsPOTTraceTiming"]["parameters"][0]["value"])


def test_closure_released_best_fit_reproduces_1d_projections(exp):
    # Σ_k (best-fit count_k / prediction_k) × PDF_k, projected, against OneDProjections/*. The YAML publishes the
    # best-fit counts as integers (truncated or rounded: the projections imply 159.50, 552.84, 10.69, 3131.75), so
    # each bin may differ by up to 1 event of each component's normalisation, spread like that component.
    c = closure(exp)
    bf = released_best_fit(exp)
    for axis, a in c["axes"].items():
        tol = {"cevns": exp.projection(bf["cevns"], axis) / 159.0,
               "brn": exp.projection(bf["brn_prompt"] / 553.0 + bf["brn_delayed"] / 10.0, axis),
               "data_ss_subtracted": exp.projection(bf["steady_state"], axis) / 3131.0}
        tol["cevns_plus_brn"] = tol["cevns"] + tol["brn"]
        for k, t in tol.items():
            assert np.all(np.abs(a["dev"][k]) <= t + 2e-3), (axis, k, a["dev"][k], t)
        # data statistical error of the release: √(N + SS/5) (oversampled off-beam window, companion Sec. 2.4)
        assert np.allclose(a["ours"]["data_stat_err"], a["released"]["data_stat_err"], rtol=2e-4, atol=1e-3)


def test_closure_projections_are_exact_linear_combinations(exp):
    # least squares of the 1-D files on the projected released PDFs: residuals at the 6-digit rounding of the files,
    # normalisations within 1 event of the published integers (delayed BRN: 10.69 vs 10)
    p = released_projections(exp)["time_us"]
    A = np.stack([exp.projection(exp.backgrounds[n].nominal, "time_us") for n in ("brn_prompt", "brn_delayed")], axis=1)
    coef, *_ = np.linalg.lstsq(A, p["brn"], rcond=None)
    assert np.abs(A @ coef - p["brn"]).max() < 1e-3
    assert coef[0] * 497 == pytest.approx(553, abs=1.0) and coef[1] * 33 == pytest.approx(10, abs=1.0)
    e = released_projections(exp)["energy_keVee"]
    cev = exp.projection(exp.signal.nominal, "energy_keVee")
    assert e["cevns"].sum() == pytest.approx(159, abs=1.0)
    assert np.allclose(e["cevns"], cev * e["cevns"].sum() / cev.sum(), atol=1e-3)


def test_template_files_are_normalised_to_the_predictions(exp):
    for n, b in exp.backgrounds.items():
        assert b.nominal.sum() == pytest.approx(b.sec["prediction"], rel=1e-6)
    assert exp.signal.nominal.sum() == pytest.approx(128, rel=1e-6)
    assert exp.observed.sum() == 3752


# ---- template interpolation ------------------------------------------------------------------------------------
def test_interpolation_hits_the_variant_files(exp):
    """At ±1σ each morphed template equals its released variant file (a one-sided one mirrored, clipped at 0)."""
    m = exp.model("xsec_scale")  # every normalisation is 1 at the defaults
    edges = [a["edges"] for a in exp.binning.axes]
    spec_mods = {d["name"]: d for sec in [exp.spec["signal"]] + list(exp.spec["backgrounds"].values())
                 for d in sec.get("modifiers", []) if isinstance(d, dict) and "plus" in d}
    st = m.prepare({})
    for s in shape_systematics(exp):
        sp = spec_mods[s["name"]]
        sample = next(x for x in m.samples if x.name == s["component"])
        nom = sample.nominal
        plus = read_grid_nd(exp.file(sp["plus"]), edges).ravel()
        if sp.get("normalisation", "as_released") == "shape_only":
            plus = plus * nom.sum() / plus.sum()
        at = lambda th: sample.evaluate(None, _nu(m, s["name"], th)[None, :])[0]  # noqa: E731
        assert np.allclose(at(1.0), plus, atol=1e-9)
        assert np.allclose(at(0.0), nom)
        if "minus" in sp:
            assert np.allclose(at(-1.0), read_grid_nd(exp.file(sp["minus"]), edges).ravel(), atol=1e-9)
        else:
            assert np.allclose(at(-1.0), np.maximum(2 * nom - plus, 0.0), atol=1e-9)


def _nu(m, name, th):
    nu = m.defaults()
    nu[m.index(name)] = th
    return nu


def test_signal_parameterisations_agree(exp):
    lc, lx, ls = (exp.likelihood(m) for m in ("counts", "xsec_scale", "sin2_theta_w"))
    nuis = {"ar20_brn_prompt_norm": 1.1, "ar20_cevns_f90": 0.4, "ar20_brn_time_width": -0.7}
    xs = {"xsec_scale": 1.2, "sns_flux_norm": 0.95, "ar20_cevns_norm": 1.05}
    x = lx.x_from(dict(nuis, **xs))
    chi_x = lx.data_chi2(x)
    n = float(lx.components(x)["cevns"].sum())  # the count mode's n_cevns: the signal events in the model's bins
    assert n == pytest.approx(128 * 1.2 * 0.95 * 1.05, rel=2e-3)  # the F90 variant changes the total slightly
    chi_c = lc.data_chi2(lc.x_from(dict(nuis, n_cevns=n)))
    assert chi_x == pytest.approx(chi_c, rel=1e-12)
    assert ls.data_chi2(ls.x_from(dict(nuis, sin2_theta_w=C.SIN2_THETA_W_0))) == pytest.approx(
        lx.data_chi2(lx.x_from(dict(nuis, xsec_scale=1.0))), rel=1e-12)
    # the flux nuisance is shared by name with the CsI 2021 likelihood: same name and constraint
    p = {q.name: q for q in lx.parameters}["sns_flux_norm"]
    assert p.constraint == (1.0, pytest.approx(0.10))


# ---- published numbers -----------------------------------------------------------------------------------------
def test_stat_only_fit_reproduces_published(exp, fits):
    # same PDFs and data as the paper's nominal fit: agreement is expected at the rounding level (published 159 ± 43;
    # BRN 553 ± 34, delayed 10 ± 11, SS 3131 ± 23); tolerances 3 events on counts (0.07 σ), 2 on errors
    b, poi = fits["stat"], "n_cevns"
    assert b.values[poi] == pytest.approx(159, abs=3) and b.errors[poi] == pytest.approx(43, abs=2)
    pr = {n: (b.values[f"ar20_{n}_norm"] * exp.backgrounds[n].sec["prediction"],
              b.errors[f"ar20_{n}_norm"] * exp.backgrounds[n].sec["prediction"]) for n in exp.backgrounds}
    assert pr["brn_prompt"][0] == pytest.approx(553, abs=3) and pr["brn_prompt"][1] == pytest.approx(34, abs=2)
    assert pr["brn_delayed"][0] == pytest.approx(10, abs=1.5) and pr["brn_delayed"][1] == pytest.approx(11, abs=1)
    assert pr["steady_state"][0] == pytest.approx(3131, abs=3) and pr["steady_state"][1] == pytest.approx(23, abs=2)


def test_profiled_fit_and_significance(exp, fits):
    # shape variants profiled: 162 ± 44 vs published 159 ± 43 (stat) ± 14 (syst) = ± 45. A shift of up to 0.25 σ_pub
    # and a total error between the stat-only error and 1.1 × the published total.
    b, poi = fits["best"], "n_cevns"
    assert b.values[poi] == pytest.approx(159, abs=11)
    assert fits["stat"].errors[poi] < b.errors[poi] < 1.1 * math.hypot(43, 14)
    lo, hi = fits["n_interval"]
    assert lo < b.values[poi] < hi and hi - lo == pytest.approx(2 * b.errors[poi], rel=0.1)
    # published 3.5 σ (≈ 159/√(43² + 14²), Gaussian); ours is the likelihood ratio (3.8 σ): within 0.5 σ
    assert fits["significance"] == pytest.approx(3.5, abs=0.5)
    assert fits["significance"] <= fits["significance_stat"] + 1e-6  # profiling more nuisances cannot raise Z


@pytest.mark.xfail(reason="systematic on the count: 10 with the shape variants profiled, 35 with the companion's "
                          "alternative-fit recipe, against the published 14 (not reproduced; docs/validation.md)", strict=True)
def test_systematic_on_the_count(rep):
    r = rep.results
    assert r["fitted_cevns_err_syst_profiled"] == pytest.approx(14, rel=0.2) or \
        r["fitted_cevns_err_syst_envelope"] == pytest.approx(14, rel=0.2)


def test_cross_section(exp, fits):
    # published (2.2 ± 0.7) × 10⁻³⁹ cm²; ours 2.31 +0.74 −0.66 (σ/σ_SM × our SM ⟨σ⟩): within 0.25e-39 (published
    # value rounded to 0.1; 0.35 σ) and errors within 0.2e-39 of 0.7e-39
    sig_sm = exp.flux_averaged_xsec()
    r = fits["best_xsec"].values["xsec_scale"]
    lo, hi = fits["xsec_scale_interval"]
    assert r * sig_sm == pytest.approx(2.2 * E39, abs=0.25 * E39)
    assert (hi - r) * sig_sm == pytest.approx(0.7 * E39, abs=0.2 * E39)
    assert (r - lo) * sig_sm == pytest.approx(0.7 * E39, abs=0.2 * E39)
    # xsec_scale = fitted / released prediction (flux and the rest profiled at their priors)
    assert r == pytest.approx(fits["best"].values["n_cevns"] / 128, rel=0.02)


def test_flux_averaged_xsec_matches_direct_average(exp):
    # ⟨σ⟩ = mean over the three equal-fluence flavours of ∫ σ(E) f(E) dE (prompt line at 29.79 MeV, Michel spectra)
    kw = dict(sin2_theta_w=C.SIN2_THETA_W_0, form_factor_model="helm", scheme="tree")
    E = np.linspace(0.05, C.E_NU_MICHEL_MAX, 4001)
    avg = lambda pdf, f: np.trapezoid(total_cross_section(E, "Ar40", f, **kw) * pdf(E), E)  # noqa: E731
    direct = (total_cross_section(np.array([C.E_NU_PROMPT]), "Ar40", "numu", **kw)[0]
              + avg(michel_nue_pdf, "nue") + avg(michel_numubar_pdf, "numubar")) / 3
    assert exp.flux_averaged_xsec() == pytest.approx(direct, rel=2e-3)
    assert 1.6 * E39 < direct < 2.0 * E39  # ≈ 1.8 × 10⁻³⁹ cm² (paper's SM value, quoted to one digit)


# ---- our argon prediction vs the released CEvNS PDF --------------------------------------------------------------
def test_prediction_total_and_energy(cmp_):
    # released PDF total 128 ± 17 (13 %). Ours 122 (−4.7 %) with the release's inputs: require 8 %, well inside the
    # release's uncertainty; per energy bin with > 5 events 15 % (ours is softer: +2 % in 0–10 keVee, −9/−12 % in
    # 10–30 keVee; see the report: the collaboration's response model is not fully released)
    assert cmp_["ours_total"] == pytest.approx(128, rel=0.08)
    o, r = cmp_["ours_energy"], cmp_["released_energy"]
    big = r > 5
    assert np.all(np.abs(o[big] / r[big] - 1) < 0.15)
    assert o[r == 0].sum() < 0.5  # above 50 keVee: both empty (ours 0.03 events)


def test_prediction_time_shape(cmp_, exp):
    # normalised time shape with the release's Gaussian POT trace (440 ns, 150 ns): within 2 % in every bin after the
    # first; the first bin (−0.1–0.4 µs, the rising edge of the pulse) within 12 %; the pulse that best fits the
    # released shape is within 20 ns of the release's mean and width
    o, r = cmp_["ours_time"], cmp_["released_time"]
    ratio = (o / o.sum()) / (r / r.sum())
    assert np.all(np.abs(ratio[1:] - 1) < 0.02) and abs(ratio[0] - 1) < 0.12
    m, s = cmp_["effective_pulse_us"]
    assert m == pytest.approx(0.44, abs=0.02) and s == pytest.approx(0.15, abs=0.02)


def test_sin2_ratio_and_shape(exp):
    """sin²θ_W changes our argon prediction by ((2 + 36 s²)/(2 + 36 s²₀))² at tree level (|Q_W| = Z(2s² − 1/2) + N/2
    = 2 + 36 s² for Ar-40 with F_p = F_n), and not its shape; the model's signal follows."""
    eng = exp.signal.engine
    tot = lambda s2: eng.energy_time({"sin2_theta_w": s2})[0].sum()  # noqa: E731
    want = ((2 + 36 * 0.30) / (2 + 36 * C.SIN2_THETA_W_0)) ** 2
    assert tot(0.30) / tot(C.SIN2_THETA_W_0) == pytest.approx(want, rel=1e-9)
    from cevns.reproductions.coherent_ar_2020 import shape_change

    assert shape_change(eng) < 1e-9
    m = exp.model("physics", ("sin2_theta_w",))
    sig = lambda s2: m.components(m.prepare({"sin2_theta_w": s2}), m.defaults()[None, :])["cevns"].sum()  # noqa: E731
    assert sig(0.30) / sig(C.SIN2_THETA_W_0) == pytest.approx(want, rel=1e-9)


# ---- error paths -----------------------------------------------------------------------------------------------
def _copy_release(tmp_path):
    dst = tmp_path / "rel"
    shutil.copytree(DATA_ROOT / "coherent_cenns10_2020", dst)
    return dst


def test_missing_release_file(tmp_path):
    root = _copy_release(tmp_path)
    (root / "Data" / "SystErrors" / "brnpdf+1sigEnergy.txt").unlink()
    with pytest.raises(DataError, match=r"brnpdf\+1sigEnergy\.txt"):
        load_experiment("coherent-ar-2020", data_root=str(root))


def test_truncated_release_file(tmp_path):
    root = _copy_release(tmp_path)
    p = root / "Data" / "cevnspdf.txt"
    p.write_text("".join(p.read_text().splitlines(keepends=True)[:700]))
    with pytest.raises(DataError, match="cevnspdf.txt"):
        load_experiment("coherent-ar-2020", data_root=str(root))


def test_scrambled_release_file(tmp_path):
    root = _copy_release(tmp_path)
    p = root / "Data" / "datanobkgsub.txt"
    lines = p.read_text().splitlines(keepends=True)
    lines[0], lines[1] = lines[1], lines[0]
    p.write_text("".join(lines))
    with pytest.raises(DataError, match="datanobkgsub.txt"):
        load_experiment("coherent-ar-2020", data_root=str(root))


def test_unknown_names():
    with pytest.raises(UnknownNameError, match="coherent-ar-2020"):
        load_experiment("coherent-ar-2021")
    with pytest.raises(UnknownNameError, match="coherent-ar-2020"):
        get_reproduction("coherent-argon")


def test_spec_typo_and_bad_mode(exp):
    spec = load_spec("coherent-ar-2020")
    spec["backgrounds"]["brn_prompt"]["predicton"] = 497
    with pytest.raises(ConfigError, match="predicton"):
        load_experiment(spec)
    with pytest.raises(UnknownNameError, match="xsec_scale"):
        exp.likelihood("sin2")
    with pytest.raises(ConfigError, match="predicted signal"):
        exp.likelihood("flavour")


def test_combines_with_csi2021_by_name(exp):
    # sin²θ_W and the SNS flux normalisation are shared by name with the CsI 2021 likelihood; every other nuisance is
    # prefixed (ar20_, csi21_)
    csi = load_experiment("coherent-csi-2021")
    comb = csi.likelihood("sin2_theta_w") + exp.likelihood("sin2_theta_w")
    names = comb.parameter_names
    assert names.count("sin2_theta_w") == 1 and names.count("sns_flux_norm") == 1
    b = fit(comb)
    assert b.valid and 0.15 < b.values["sin2_theta_w"] < 0.35
