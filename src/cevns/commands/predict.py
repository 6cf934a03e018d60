"""``cevns predict`` and ``cevns sensitivity``: expected spectra of a spec, and Asimov sensitivities.

Examples::

    cevns predict --experiment dresden-ii --qf lindhard --json d2.json --plot d2.png
    cevns predict --experiment dresden-ii --qf lindhard,ybe --plot qf.png          # one plot, both models
    cevns predict --experiment dresden-ii --qf fef --qf-table fef_qf.txt            # a user's table (T_keVnr, QF)
    cevns sensitivity --experiment dresden-ii --param mu_nu_e=0:40:81 --json mu.json
    cevns sensitivity --experiment dresden-ii --experiment coherent-csi-2021 --experiment coherent-ar-2020 \\
        --param mu_nu_e=0:40:81 --data observed          # COHERENT's data + the Dresden-II Asimov set
    cevns sensitivity --experiment dresden-ii --significance 0.25,0.5,1,2,4

Everything goes through the experiment's forward model (spec → Experiment → ForwardModel): the CEvNS and ν–e
rates of the package's rate engine, the detector response of the spec (with the chosen quenching model), and the
scan tools of :mod:`cevns.inference.scan` (so that projections combine with COHERENT by parameter name).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
from pathlib import Path

import numpy as np

from cevns.errors import ConfigError
from cevns.io import check_cli_outputs

__all__ = ["spec_with_quenching", "spec_with_residual", "experiment_with_residual", "predict", "significance",
           "sensitivity", "register"]

_UNITS = {"pe": "PE", "keVee": "keVee", "eV": "eV"}


# -- spec variants ----------------------------------------------------------------------------------------------
def _spec(name_or_spec) -> dict:
    from cevns.experiments.registry import load_spec, validate_spec

    return copy.deepcopy(validate_spec(name_or_spec) if isinstance(name_or_spec, dict) else load_spec(name_or_spec))


def spec_with_quenching(name_or_spec, qf: str | dict, table=None, k: float | None = None) -> dict:
    """The spec with its detector quenching replaced: a named germanium model ('lindhard', 'ybe', 'fef' or 'tabulated'
    with ``table``, 'none'; :data:`cevns.detectors.quenching.GERMANIUM_QF_PRESETS`) or a quenching section dict.
    ``k`` sets the Lindhard k. A quenching response nuisance of the old model that the new one does not use is
    dropped (a declared but unused nuisance is an error)."""
    from cevns.detectors.quenching import germanium_qf_preset

    spec = _spec(name_or_spec)
    old = spec["detector"]["quenching"]
    new = dict(qf) if isinstance(qf, dict) else germanium_qf_preset(qf, table)
    if not isinstance(qf, dict) and new.get("model") == "lindhard" and spec["target"]["material"] != "Ge":
        raise ConfigError(f"quenching preset {qf!r} is for germanium; the target of {spec['name']} is "
                          f"{spec['target']['material']}: give a quenching section (e.g. lindhard with its Z)")
    if k is not None:
        if new.get("model") != "lindhard":
            raise ConfigError(f"--k applies to the Lindhard model, not to {new.get('model')!r}")
        new["k"] = float(k)
    if old.get("parameter") and new.get("model") == old.get("model") == "lindhard" and "adiabatic_xi_keV" not in new:
        new["parameter"] = old["parameter"]  # plain Lindhard keeps its k nuisance (nominal: the new k)
    if old.get("parameter") and new.get("parameter") != old["parameter"]:
        spec.get("nuisances", {}).pop(old["parameter"], None)
    spec["detector"]["quenching"] = new
    return spec


def spec_with_residual(name_or_spec, path) -> dict:
    """The spec fitted to a user's residual spectrum (file: energy-bin centre, residual counts, 1σ per bin; data
    format ``residual_spectrum``): observed = the residual, the backgrounds replaced by its fixed offset (the
    residual is background-subtracted), background-only nuisances dropped."""
    spec = _spec(name_or_spec)
    dropped = set()
    for b in spec.get("backgrounds", {}).values():
        dropped |= {m for m in b.get("modifiers", []) if isinstance(m, str)}
    spec["data"] = {"observed": {"file": str(Path(path).resolve()), "format": "residual_spectrum"}}
    spec["backgrounds"] = {"residual_offset": {"type": "residual_offset", "data": "observed",
                                               "label": "residual offset (sigma^2 - r)"}}
    for n in dropped:
        spec.get("nuisances", {}).pop(n, None)
    return spec


def experiment_with_residual(name_or_spec, path, qf=None, table=None):
    """An :class:`~cevns.experiments.experiment.Experiment` whose data are a user's residual spectrum (see
    :func:`spec_with_residual`), optionally with another quenching model: fit it with
    ``cevns.inference.fit(exp.likelihood('counts'))`` or scan it like any experiment."""
    from cevns.experiments.registry import load_experiment

    spec = spec_with_residual(name_or_spec, path)
    if qf is not None:
        spec = spec_with_quenching(spec, qf, table)
    return load_experiment(spec)


# -- predictions ------------------------------------------------------------------------------------------------
def _source_numbers(exp) -> dict:
    src = exp.source.source
    if hasattr(src, "flux_cm2_s"):
        return {"flux_cm2_s": src.flux_cm2_s, "nu_per_second": src.nu_per_second, "source": src.summary()}
    fl = {s: src.fluence_per_cm2(s) for s in src.species}
    return {"flux_cm2_s": None, "nu_per_second": None,
            "source": {"type": exp.spec["source"]["type"], "fluence_per_cm2": fl,
                       "note": "a pulsed source: the fluence over the exposure is given, not a flux per second"}}


def predict(exp, electron_split: bool = True) -> dict:
    """Expected counts of an experiment per energy bin (summed over the other axes) and in total: the signal
    (CEvNS + ν–e when the spec has electron recoils), its ν–e part, and each background, at the nominal model."""
    comps = exp.components_at({})
    ie = exp.binning.axis_index("energy")
    edges = exp.binning.edges("energy")

    def proj(a):
        return exp.projection(a, ie)

    signal_name = exp.signal.name if hasattr(exp.signal, "name") else "cevns"
    sig = proj(comps[signal_name])
    bkg = {k: proj(v) for k, v in comps.items() if k != signal_name}
    elec = np.zeros_like(sig)
    if electron_split and exp.spec["signal"].get("electron_recoils"):
        from cevns.experiments.experiment import Experiment

        spec = copy.deepcopy(exp.spec)
        spec["signal"]["electron_recoils"] = False
        nuc = proj(Experiment(spec, exp.data_root).components_at({})[signal_name])
        elec = sig - nuc
    unit = _UNITS.get(exp.detector.axis, exp.detector.axis)
    bins = [{"lo": float(lo), "hi": float(hi), "unit": unit, "counts": float(c), "cevns_nuclear": float(c - e),
             "electron": float(e), "background": float(sum(b[i] for b in bkg.values()))}
            for i, (lo, hi, c, e) in enumerate(zip(edges[:-1], edges[1:], sig, elec))]
    q = exp.spec["detector"]["quenching"]
    out = {"experiment": exp.name, "title": exp.title, "quenching": q,
           **_source_numbers(exp),
           "target": {"material": exp.target.material, "mass_kg": exp.target.mass_kg},
           "total_counts": float(sig.sum()), "cevns_nuclear_counts": float((sig - elec).sum()),
           "electron_counts": float(elec.sum()), "background_counts": {k: float(v.sum()) for k, v in bkg.items()},
           "unit": unit, "bins": bins}
    return out


def _plot_predictions(preds: dict, path) -> None:
    from cevns.plotting import plt, save

    fig, ax = plt.subplots(figsize=(6.6, 4.4))
    first = next(iter(preds.values()))
    for label, p in preds.items():
        e = np.array([b["lo"] for b in p["bins"]] + [p["bins"][-1]["hi"]])
        c = np.array([b["cevns_nuclear"] for b in p["bins"]])
        ax.stairs(c, e, label=f"CEvNS, {label} ({p['cevns_nuclear_counts']:.4g})", lw=1.6)
    p = first
    e = np.array([b["lo"] for b in p["bins"]] + [p["bins"][-1]["hi"]])
    el = np.array([b["electron"] for b in p["bins"]])
    if el.sum() > 0:
        ax.stairs(el, e, label=f"ν–e ({el.sum():.3g})", ls=":", color="k")
    bk = np.array([b["background"] for b in p["bins"]])
    if bk.sum() > 0:
        ax.stairs(bk, e, label=f"background, assumed ({bk.sum():.4g})", ls="--", color="grey")
    ax.set_yscale("log")
    top = max(max(b["counts"] for b in v["bins"]) for v in preds.values())
    ax.set_ylim(1e-4 * top, 3.0 * max(top, bk.max() if bk.size else 0.0))
    ax.set_xlabel(f"energy ({p['unit']})")
    ax.set_ylabel("expected counts / bin")
    ax.set_title(f"{p['title'][:70]}", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, Path(path))


# -- sensitivities ----------------------------------------------------------------------------------------------
def significance(exp, exposure_scales=(1.0,), qf_fixed: bool = False) -> list[dict]:
    """Median (Asimov) significance of the CEvNS signal against exposure: for each scale f, data f·μ(SM), model
    f·μ(σ/σ_SM, ν) ('xsec_scale' mode, every nuisance profiled), Z = √(χ²(σ = 0) − χ²_min)."""
    from cevns.inference import fit
    from cevns.inference.likelihood import BinnedPoissonLikelihood

    m = exp.model("xsec_scale")
    st = m.prepare({})
    mu0 = m.expected(st, m.defaults()[None, :])[0]
    out = []
    for f in exposure_scales:
        if not (math.isfinite(f) and f > 0):
            raise ConfigError(f"exposure scales must be > 0, got {f!r}")
        lik = BinnedPoissonLikelihood(f"{exp.name} x{f:g}", m.nuisances,
                                      lambda x, f=f: f * m.expected1(st, x), f * mu0)
        fixed = {p.name: p.value for p in m.nuisances if qf_fixed and p.name.endswith("_k")}
        free = fit(lik, fixed=fixed or None, hesse=False)
        null = fit(lik, fixed={**fixed, "xsec_scale": 0.0}, hesse=False)
        out.append({"exposure_scale": float(f), "delta_chi2": float(null.chi2 - free.chi2),
                    "significance_sigma": float(math.sqrt(max(null.chi2 - free.chi2, 0.0)))})
    return out


def sensitivity(experiments, axes: dict, truth: dict | None = None, exposure_scale: float = 1.0,
                data: str = "asimov", progress: bool = False) -> dict:
    """Δχ² over ``axes`` for the experiments combined by parameter name. ``data='asimov'``: every experiment's data
    replaced by μ(truth) × exposure (:func:`cevns.inference.scan.asimov_scan`); ``'observed'``: each experiment's own
    data (COHERENT's release, the projections' Asimov sets) with :func:`cevns.inference.scan.scan`. 1-D scans also
    give the 90 % CL upper limit (Wilks, 1 dof) and the 90 % CL interval."""
    from cevns.inference.scan import ModelRecipe, WILKS_90_1DOF, asimov_scan, scan, upper_limit
    from cevns.interactions.parameters import PARAMETERS

    truth = dict(truth or {})
    for n in axes:
        if n not in truth:
            d = PARAMETERS[n].default
            truth[n] = float(d if d is not None else PARAMETERS[n].start_value())
    recipe = ModelRecipe(tuple(experiments), tuple(sorted(set(axes) | set(truth))))
    if data == "asimov":
        res = asimov_scan(recipe, axes, truth, exposure_scale=exposure_scale, progress=progress)
    elif data == "observed":
        if exposure_scale != 1.0:
            raise ConfigError("--exposure-scale needs --data asimov (the observed data are what they are)")
        res = scan(recipe, axes, {k: v for k, v in truth.items() if k not in axes}, progress=progress)
    else:
        raise ConfigError(f"data {data!r}; allowed: asimov, observed")
    out = {"experiments": list(experiments), "data": data, "exposure_scale": exposure_scale, "truth": truth,
           "scan": res.to_dict()}
    if len(axes) == 1:
        (name, vals), = axes.items()
        vals = np.asarray(vals, float)
        d = res.delta_chi2
        ok = d <= WILKS_90_1DOF
        # allowed ranges (grid points with Δχ² ≤ 2.706), and the one that holds the truth (NSI has a second island)
        runs, start = [], None
        for i, flag in enumerate(ok):
            if flag and start is None:
                start = i
            if start is not None and (not flag or i == len(ok) - 1):
                stop = i if flag else i - 1
                runs.append([float(vals[start]), float(vals[stop])])
                start = None
        out["allowed_90"] = runs
        t = truth[name]
        hold = [r for r in runs if r[0] <= t <= r[1]]
        out["interval_90"] = hold[0] if hold else None
        try:
            out["upper_limit_90"] = upper_limit(vals, d, WILKS_90_1DOF)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            out["upper_limit_90"] = None
            out["upper_limit_note"] = str(exc)
    return out, res


# -- command line -----------------------------------------------------------------------------------------------
def register(sub) -> None:
    p = sub.add_parser("predict", help="expected counts per bin and in total (reactor and other specs)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", required=True, metavar="NAME", help="registered experiment or spec file")
    p.add_argument("--qf", default=None, metavar="MODEL[,MODEL...]",
                   help="quenching model(s): lindhard, ybe, fef (needs --qf-table), tabulated (needs --qf-table), "
                        "none; several (comma-separated) are overlaid in --plot (default: the spec's)")
    p.add_argument("--qf-table", type=Path, metavar="FILE", help="two-column table T [keVnr], QF")
    p.add_argument("--k", type=float, help="Lindhard k (with --qf lindhard)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write counts per bin and in total as JSON")
    p.add_argument("--plot", type=Path, metavar="FILE", help="plot the predicted spectrum (format from the extension)")
    p.set_defaults(func=run_predict)
    q = sub.add_parser("sensitivity", help="Asimov sensitivities (combinable with COHERENT by parameter name)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--experiment", action="append", default=[], metavar="NAME", help="repeat to combine")
    q.add_argument("--param", action="append", default=[], metavar="NAME=LO:HI:N", help="scan axis (1-D or 2-D)")
    q.add_argument("--truth", action="append", default=[], metavar="NAME=VALUE",
                   help="the physics point of the Asimov data (default: the Standard Model)")
    q.add_argument("--exposure-scale", type=float, default=1.0, help="scale every expectation (longer run, bigger mass)")
    q.add_argument("--data", choices=["asimov", "observed"], default="asimov",
                   help="asimov: all data replaced by the expectation; observed: each spec's own data")
    q.add_argument("--significance", metavar="F1,F2,...",
                   help="CEvNS significance at these exposure scales (one experiment)")
    q.add_argument("--json", type=Path, metavar="FILE", help="write the sensitivity scan (or significances) as JSON")
    q.add_argument("--plot", type=Path, metavar="FILE", help="plot the Asimov Δχ² profile (format from the extension)")
    q.set_defaults(func=run_sensitivity)


def run_predict(args) -> int:
    from cevns.experiments.registry import load_experiment

    check_cli_outputs(args)
    models = [m.strip() for m in args.qf.split(",")] if args.qf else [None]
    if args.qf and any(not m for m in models):
        raise ConfigError(f"--qf {args.qf!r}: empty model name")
    preds = {}
    for m in models:
        spec = _spec(args.experiment) if m is None else spec_with_quenching(args.experiment, m, args.qf_table, args.k)
        label = m or spec["detector"]["quenching"]["model"]
        preds[label] = predict(load_experiment(spec))
    first = next(iter(preds.values()))
    out = dict(first)
    if len(preds) > 1:
        out["models"] = {k: {"quenching": v["quenching"], "total_counts": v["total_counts"],
                             "cevns_nuclear_counts": v["cevns_nuclear_counts"],
                             "counts": [b["counts"] for b in v["bins"]]} for k, v in preds.items()}
    for k, v in preds.items():
        flux = "" if v["flux_cm2_s"] is None else f", flux {v['flux_cm2_s']:.4g} /cm²/s"
        print(f"{v['experiment']} [{k}]: signal {v['total_counts']:.5g} (CEvNS {v['cevns_nuclear_counts']:.5g}, "
              f"ν–e {v['electron_counts']:.4g}) in {len(v['bins'])} bins{flux}")
    if args.json:
        from cevns.io import write_text_atomic

        write_text_atomic(args.json, json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    if args.plot:
        _plot_predictions(preds, args.plot)
        print(f"wrote {args.plot}")
    return 0


def run_sensitivity(args) -> int:
    from cevns.inference.scan import parse_axis

    check_cli_outputs(args)
    if not args.experiment:
        raise ConfigError("give at least one --experiment (e.g. dresden-ii)")
    if len(set(args.experiment)) != len(args.experiment):
        raise ConfigError("an experiment is given twice: its data would count twice")
    out = {}
    if args.significance:
        if len(args.experiment) != 1:
            raise ConfigError("--significance takes one experiment")
        from cevns.experiments.registry import load_experiment

        try:
            scales = [float(x) for x in args.significance.split(",")]
        except ValueError:
            raise ConfigError(f"--significance {args.significance!r}: give numbers like 0.5,1,2") from None
        out["significance"] = significance(load_experiment(args.experiment[0]), scales)
        for r in out["significance"]:
            print(f"exposure ×{r['exposure_scale']:g}: CEvNS significance {r['significance_sigma']:.3g} σ")
    if args.param:
        axes = dict(parse_axis(t) for t in args.param)
        if len(axes) != len(args.param):
            raise ConfigError("a parameter appears twice in --param")
        truth = {}
        for t in args.truth:
            if "=" not in t:
                raise ConfigError(f"--truth {t!r}: expected NAME=VALUE")
            k, v = (a.strip() for a in t.split("=", 1))
            try:
                truth[k] = float(v)
            except ValueError:
                raise ConfigError(f"--truth {t!r}: VALUE must be a number") from None
        res_d, res = sensitivity(args.experiment, axes, truth, args.exposure_scale, args.data, progress=False)
        out.update(res_d)
        if "upper_limit_90" in res_d:
            (name,) = axes
            print(f"{' + '.join(args.experiment)} ({args.data}): 90 % CL interval of {name}: {res_d['interval_90']}, "
                  f"upper limit {res_d['upper_limit_90']}")
        if args.plot:
            from cevns.plotting import plot_scan

            plot_scan(res, args.plot, title=f"{' + '.join(args.experiment)} ({args.data})")
    if not out:
        raise ConfigError("give --param NAME=LO:HI:N and/or --significance F1,F2,...")
    if args.json:
        from cevns.io import write_text_atomic

        write_text_atomic(args.json, json.dumps(out, indent=1, default=float))
        print(f"wrote {args.json}")
    return 0
