"""``cevns dm-limit``: 90 % CL upper limits on Y = ε² α_D (m_χ/m_V)⁴ for dark matter made at the SNS.

Example::

    cevns dm-limit --experiment coherent-csi-2021 --mchi 1:220:40 --alpha-d 0.5 --json dm.json --plot dm.png

For each χ mass the experiment's ``accelerator_dm`` extra signal (``coherent-csi-2021`` → its dark-matter spec
``coherent-csi-2021-dm``) is rebuilt at (m_χ, m_V = ratio · m_χ, α_D); the forward model of the 'physics' mode with
the physics parameter ``dp_epsilon`` (the CEvNS signal with its flux and form-factor nuisances, the backgrounds, the
detector and pulse nuisances and the dark-matter flux normalisation all profiled) is scanned in ε with
:func:`cevns.inference.scan.scan` on a grid uniform in ε⁴ (∝ the dark-matter counts), the 90 % CL limit is where
Δχ² = 2.706 (1 dof; :func:`cevns.inference.scan.upper_limit`), refined by one secant step of
:func:`cevns.inference.batch.profile_batch`, and converted to Y. The relic line is
:func:`cevns.interactions.dark_photon.y_relic`. Masses at which no χ is produced (2 m_χ above the π⁰ and the
π⁻ p → n V thresholds; η production is not modelled) have no limit (null in the JSON).

``--mchi LO:HI:N``: N masses log-spaced from LO to HI MeV (or a comma-separated list).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from cevns.errors import ConfigError, PhysicsDomainError

__all__ = ["register", "run", "parse_masses", "dm_experiment", "upper_limit_at_mass", "limit_curve",
           "relic_crossings"]

WILKS_90 = 2.706


def parse_masses(text: str) -> np.ndarray:
    """'LO:HI:N' (N log-spaced masses, LO and HI included) or 'a,b,c' [MeV]."""
    try:
        if ":" in text:
            lo, hi, n = text.split(":")
            lo, hi, n = float(lo), float(hi), int(n)
            if not (0 < lo < hi and math.isfinite(hi) and 1 <= n <= 1000):
                raise ValueError
            return np.geomspace(lo, hi, n) if n > 1 else np.array([lo])
        vals = np.array([float(t) for t in text.split(",") if t.strip()])
        if vals.size == 0 or np.any(~np.isfinite(vals)) or np.any(vals <= 0):
            raise ValueError
        return vals
    except ValueError:
        raise ConfigError(f"--mchi {text!r}: expected LO:HI:N (0 < LO < HI, N >= 1, log-spaced) or a comma-separated "
                          "list of masses > 0 MeV") from None


def dm_experiment(name: str, pe_max: float | None = None):
    """(experiment, its accelerator_dm extra signal): the spec itself when it has one, else the registered
    '<name>-dm' spec. ``pe_max``: end the energy axis there instead (10-unit bins above the spec's last edge below
    it; e.g. 250 PE, the end of the CsI 2021 event lists)."""
    from cevns.experiments.registry import list_experiments, load_experiment, load_spec

    def has_dm(spec):
        return any(v.get("type") == "accelerator_dm" for v in spec.get("extra_signals", {}).values())

    spec = load_spec(name)
    if not has_dm(spec):
        alt = f"{name}-dm"
        if alt not in list_experiments():
            raise ConfigError(f"experiment {name} has no accelerator_dm extra signal and no '{alt}' spec is registered")
        spec = load_spec(alt)
    if pe_max is not None:
        ax = next(a for a in spec["binning"]["axes"] if a.get("role") == "energy")
        from cevns.experiments.sections.common import edges_from_spec

        e = edges_from_spec(ax["edges"])
        keep = [float(v) for v in e if v < pe_max - 1e-9]
        top = keep[-1]
        if not (pe_max > top and float(pe_max - top).is_integer()):
            raise ConfigError(f"--pe-max {pe_max:g}: must lie above {top:g} by a whole number of units")
        step = 10.0
        extra = list(np.arange(top + step, pe_max + 1e-9, step)) or [float(pe_max)]
        if extra[-1] < pe_max - 1e-9:
            extra.append(float(pe_max))
        ax["edges"] = keep + [float(v) for v in extra]
    exp = load_experiment(spec)
    x = next(v for v in exp.extra_signals.values() if type(v).__name__ == "AcceleratorDMSignal")
    return exp, x


def _ncounts_grid(n_max: float, n: int) -> np.ndarray:
    return np.linspace(0.0, n_max, n)


def upper_limit_at_mass(exp, x, m_chi_MeV: float, ratio: float = 3.0, alpha_d: float = 0.5,
                        threshold: float = WILKS_90, n_grid: int = 33, n_max0: float = 120.0, **source) -> dict:
    """The 90 % CL limit at one mass (module docstring): {'m_chi_MeV', 'y_upper_limit', 'epsilon_upper_limit',
    'n_dm_upper_limit' (counts in the model's bins), 'n_dm_ref', 'epsilon_ref', 'delta_chi2_at_zero' ...}; limits
    are None where no χ is produced."""
    from cevns.inference.batch import profile_batch
    from cevns.inference.scan import NoLimitInRange, scan, upper_limit
    from cevns.interactions.dark_photon import y_parameter

    out = {"m_chi_MeV": float(m_chi_MeV), "m_v_MeV": ratio * float(m_chi_MeV), "alpha_d": float(alpha_d)}
    try:
        x.set_point(m_chi_MeV=float(m_chi_MeV), m_v_over_m_chi=float(ratio), alpha_d=float(alpha_d), **source)
    except PhysicsDomainError as exc:
        if "no dark matter reaches" not in str(exc):
            raise
        return {**out, "y_upper_limit": None, "epsilon_upper_limit": None, "n_dm_upper_limit": None,
                "n_dm_ref": 0.0, "note": "no chi produced (kinematically closed for pi0 and pi- capture)"}
    eps_ref = x.point["epsilon_ref"]
    n_ref = x.expected_counts(eps_ref)
    model = exp.model("physics", physics=("dp_epsilon",))
    eps_of = lambda n_dm: eps_ref * (np.asarray(n_dm, float) / n_ref) ** 0.25  # noqa: E731  (counts ∝ ε⁴)
    n_max = n_max0
    for _ in range(6):
        ngrid = _ncounts_grid(n_max, n_grid)
        res = scan(model, {"dp_epsilon": eps_of(ngrid)}, progress=False, polish=False)
        d = res.chi2 - res.chi2.min()
        try:
            n90 = upper_limit(ngrid, d, threshold)
            break
        except NoLimitInRange:
            n_max *= 4.0
    else:  # pragma: no cover - would need > 1e5 events
        raise ConfigError(f"no 90 % CL limit found up to {n_max:g} dark-matter events at m_chi = {m_chi_MeV} MeV")
    # one secant step on the profiled Δχ² (the grid is linear in the counts, Δχ² nearly quadratic in them)
    i = int(np.searchsorted(ngrid, n90))
    lo, hi = ngrid[max(i - 1, 0)], ngrid[min(i, len(ngrid) - 1)]
    chi_min = float(res.chi2.min())
    c_mid = float(profile_batch(model, {"dp_epsilon": eps_of(np.array([n90]))})[0][0]) - chi_min
    d_lo, d_hi = float(np.interp(lo, ngrid, d)), float(np.interp(hi, ngrid, d))
    if c_mid > threshold and c_mid != d_lo:
        n90 = lo + (threshold - d_lo) * (n90 - lo) / (c_mid - d_lo)
    elif c_mid < threshold and d_hi != c_mid:
        n90 = n90 + (threshold - c_mid) * (hi - n90) / (d_hi - c_mid)
    e90 = float(eps_of(n90))
    n_best = float(ngrid[int(np.argmin(res.chi2))])
    return {**out, "epsilon_ref": eps_ref, "n_dm_ref": n_ref, "n_dm_upper_limit": float(n90),
            "epsilon_upper_limit": e90, "y_upper_limit": float(y_parameter(e90, alpha_d, m_chi_MeV, ratio * m_chi_MeV)),
            "n_dm_best_fit_on_grid": n_best, "delta_chi2_at_zero": float(d[0]), "chi2_min": chi_min}


def limit_curve(experiment: str, masses, ratio: float = 3.0, alpha_d: float = 0.5, statistics: str | None = None,
                threshold: float = WILKS_90, progress: bool = False, dm=None, **source) -> dict:
    """The limit at every mass plus the relic line: the JSON payload of ``cevns dm-limit``. ``dm``: an already
    built (experiment, extra signal) pair of :func:`dm_experiment`."""
    from cevns.interactions.dark_photon import y_relic

    exp, x = dm if dm is not None else dm_experiment(experiment)
    if statistics is not None:
        source["statistics"] = statistics
    rows = []
    t0 = time.perf_counter()
    for m in masses:
        r = upper_limit_at_mass(exp, x, float(m), ratio, alpha_d, threshold, **source)
        rows.append(r)
        if progress:
            yl = r["y_upper_limit"]
            print(f"m_chi = {m:8.3g} MeV: Y < {yl:.3g}" if yl is not None else f"m_chi = {m:8.3g} MeV: no chi produced",
                  flush=True)
    stat = x.point["statistics"]
    y_rel = [y_relic(float(m), ratio, alpha_d, stat) for m in masses]
    m_arr = [float(m) for m in masses]
    y_lim = [r["y_upper_limit"] for r in rows]
    return {"experiment": exp.name, "requested_experiment": experiment, "cl": 0.90, "delta_chi2_threshold": threshold,
            "alpha_d": float(alpha_d), "m_v_over_m_chi": float(ratio), "statistics": stat,
            "m_chi_MeV": m_arr, "y_upper_limit": y_lim, "y_relic": y_rel,
            "epsilon_upper_limit": [r["epsilon_upper_limit"] for r in rows],
            "n_dm_upper_limit": [r["n_dm_upper_limit"] for r in rows], "n_dm_ref": [r["n_dm_ref"] for r in rows],
            "epsilon_ref": x.point["epsilon_ref"],
            "relic_excluded_ranges_MeV": relic_crossings(m_arr, y_lim, y_rel),
            "seconds": time.perf_counter() - t0,
            "notes": ["profile likelihood in dp_epsilon, 'physics' mode: CEvNS, backgrounds and every nuisance "
                      "profiled; Δχ² = 2.706 (two-sided 90 % / one-sided 95 % Wilks threshold of the package)",
                      "counts ∝ ε⁴ α_D at fixed m_chi, m_V/m_chi, α_D (production ε², scattering ε² α_D): "
                      "Y_limit ∝ sqrt(α_D) for on-shell V",
                      "null: no chi produced (eta and heavier mesons not modelled)"]}


def relic_crossings(masses, y_limit, y_relic) -> list[list[float]]:
    """Mass intervals [MeV] where the limit is below the relic line (log-interpolated crossing points)."""
    m = np.asarray(masses, float)
    r = np.array([np.log(a / b) if a is not None and b else np.inf for a, b in zip(y_limit, y_relic)])
    out, start = [], None
    for i in range(len(m)):
        below = np.isfinite(r[i]) and r[i] < 0
        if below and start is None:
            start = float(m[0]) if i == 0 else _cross(m, r, i - 1, i)
        if not below and start is not None:
            out.append([start, _cross(m, r, i - 1, i)])
            start = None
    if start is not None:
        out.append([start, float(m[-1])])
    return out


def _cross(m, r, i, j) -> float:
    if not (np.isfinite(r[i]) and np.isfinite(r[j])):
        return float(m[i] if np.isfinite(r[i]) else m[j])
    t = r[i] / (r[i] - r[j])
    return float(np.exp(np.log(m[i]) + t * (np.log(m[j]) - np.log(m[i]))))


def plot_limit(payload: dict, path, extra: list[dict] | None = None):
    """Y limit and relic line vs m_χ (log–log); ``extra``: more payloads (e.g. other α_D) drawn dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    m = np.asarray(payload["m_chi_MeV"])
    rel = np.asarray(payload["y_relic"], float)
    for p, ls in [(payload, "-")] + [(q, "--") for q in (extra or [])]:
        y = np.array([np.nan if v is None else v for v in p["y_upper_limit"]], float)
        ax.plot(p["m_chi_MeV"], y, ls, color="tab:blue" if ls == "-" else "tab:purple",
                label=f"{p['experiment']} 90 % CL, α_D = {p['alpha_d']:g}")
    ax.plot(m, rel, color="k", lw=1.2, label=f"thermal relic ({payload['statistics'].replace('_', ' ')})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("m_χ [MeV]")
    ax.set_ylabel("Y = ε² α_D (m_χ/m_V)⁴")
    ax.set_title(f"m_V = {payload['m_v_over_m_chi']:g} m_χ", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return Path(path)


def register(sub) -> None:
    p = sub.add_parser("dm-limit", help="90 %% CL limit on Y for dark matter made at the SNS (vector portal)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default="coherent-csi-2021", metavar="NAME",
                   help="experiment (its '-dm' spec is used if it has no accelerator_dm extra signal)")
    p.add_argument("--mchi", default="1:220:40", metavar="LO:HI:N", help="dark-matter masses [MeV] (log-spaced)")
    p.add_argument("--alpha-d", type=float, default=0.5, help="dark coupling α_D (default 0.5)")
    p.add_argument("--ratio", type=float, default=3.0, help="m_V/m_χ (default 3)")
    p.add_argument("--statistics", choices=["complex_scalar", "dirac"], default=None,
                   help="χ spin (default: the spec's, complex scalar)")
    p.add_argument("--n-mesons", type=int, default=None, help="Monte Carlo mesons per channel (default: the spec's)")
    p.add_argument("--pe-max", type=float, default=None,
                   help="end of the energy axis [PE] (default: the spec's, 120; the CsI event lists reach 250, but the "
                        "released quenching polynomial is extrapolated above ~80 keVnr)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON")
    p.add_argument("--plot", type=Path, metavar="FILE", help="write a plot (PNG or PDF)")
    p.add_argument("--no-progress", action="store_true", help="do not print one line per mass")
    p.set_defaults(func=run)


def run(args) -> int:
    from cevns.interactions.dark_photon import check_masses

    masses = parse_masses(args.mchi)
    if not (math.isfinite(args.alpha_d) and args.alpha_d > 0):
        raise PhysicsDomainError(f"--alpha-d must be > 0, got {args.alpha_d!r}")
    if not (math.isfinite(args.ratio) and args.ratio > 2):
        raise PhysicsDomainError(f"--ratio m_V/m_chi must be > 2 (V -> chi chi* open), got {args.ratio!r}")
    check_masses(float(masses[0]), args.ratio * float(masses[0]), alpha_d=args.alpha_d)
    from cevns.io import check_cli_outputs

    check_cli_outputs(args)
    src = {} if args.n_mesons is None else {"n_mesons": int(args.n_mesons)}
    dm = dm_experiment(args.experiment, args.pe_max)
    out = limit_curve(args.experiment, masses, args.ratio, args.alpha_d, args.statistics,
                      progress=not args.no_progress, dm=dm, **src)
    rng = out["relic_excluded_ranges_MeV"]
    print(f"{out['experiment']}: alpha_D = {out['alpha_d']:g}, m_V = {out['m_v_over_m_chi']:g} m_chi; relic line "
          + ("excluded for m_chi in " + ", ".join(f"[{a:.3g}, {b:.3g}] MeV" for a, b in rng) if rng
             else "not reached"))
    if args.json:
        from cevns.io import write_text_atomic

        write_text_atomic(args.json, json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    if args.plot:
        print(f"wrote {plot_limit(out, args.plot)}")
    return 0
