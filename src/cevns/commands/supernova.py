"""``cevns supernova rates ...`` and ``cevns supernova fit ...``: supernova-neutrino counts in every detector and the
HALO-1kT + Super-K + JUNO flux fit (docs/supernova.md)."""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from cevns.errors import ConfigError
from cevns.io import check_cli_outputs, write_text_atomic

GROUP_PARAMS = ("energy_erg", "mean_MeV", "alpha")


def register(sub) -> None:
    p = sub.add_parser("supernova", help="supernova neutrinos: rates in every detector, the HALO-1kT flux fit",
                       description="Supernova neutrinos: expected counts per detector and channel, light curves, "
                                   "SNEWS p-values, and the Asimov flux fit of arXiv:2012.12579.")
    ss = p.add_subparsers(dest="supernova_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    r = ss.add_parser("rates", help="expected events per detector and channel")
    r.add_argument("--model", default="pinched", choices=["pinched", "exponential-cooling", "snewpy"],
                   help="pinched: time-integrated alpha-fit spectra (fiducial of arXiv:2012.12579 unless --param); "
                        "exponential-cooling: the same spread over a toy light curve; snewpy: a snewpy PinchedModel "
                        "read from a LOCAL file (--snewpy-class, --snewpy-file)")
    r.add_argument("--param", action="append", default=[], metavar="GROUP.NAME=VALUE",
                   help="override a pinched parameter, e.g. nue.mean_MeV=10 (groups nue, nuebar, nux; names "
                        "energy_erg, mean_MeV, alpha)")
    r.add_argument("--snewpy-class", default="Analytic3Species", help="snewpy.models.ccsn class (with --model snewpy)")
    r.add_argument("--snewpy-file", type=Path, help="local model file for the snewpy class (nothing is downloaded)")
    r.add_argument("--distance-kpc", type=float, default=10.0, help="distance of the supernova [kpc] (default 10)")
    r.add_argument("--detector", action="append", default=[], metavar="NAME",
                   help="repeatable; default: every registered detector")
    r.add_argument("--transformation", default="none", help="none, msw_normal or msw_inverted")
    r.add_argument("--time-bins", metavar="EDGES", help="comma-separated time-bin edges [s]: also a light curve "
                                                         "(time-dependent models)")
    r.add_argument("--cevns-threshold-kev", type=float, help="override the CEvNS detectors' recoil threshold [keV]")
    r.add_argument("--background-rate", action="append", default=[], metavar="DET=HZ",
                   help="background rate of a detector [Hz]: adds its expected SNEWS p_val")
    r.add_argument("--window-s", type=float, default=10.0, help="trigger window for the p-values [s]")
    r.add_argument("--json", type=Path, metavar="FILE", help="write the rates (and p-values) as JSON")
    r.set_defaults(func=run_rates)

    f = ss.add_parser("fit", help="Asimov flux fit (9 pinched parameters) for detector combinations")
    f.add_argument("--detectors", default="halo-1kt,super-k,juno",
                   help="comma-separated SNOwGLoBES-table detectors (HALO-1kT alone, the others, all)")
    f.add_argument("--distance-kpc", type=float, default=10.0, help="distance of the supernova [kpc] (default 10)")
    f.add_argument("--transformation", default="none", help="none (parameters of the fluxes at Earth), msw_normal, "
                                                             "msw_inverted")
    f.add_argument("--with-cc-nucleus", action="store_true",
                   help="also use ν_e/ν̄_e CC on ¹⁶O and ¹²C (other ν_e-sensitive channels)")
    f.add_argument("--profile", default="nue", choices=["nue", "all"], help="profile the ν_e parameters or all 9")
    f.add_argument("--json", type=Path, metavar="FILE", help="write the fit results as JSON")
    f.add_argument("--plot", type=Path, metavar="FILE", help="corner plot (PNG) of the ν_e parameters")
    f.set_defaults(func=run_fit)


def _pairs(items, what):
    out = {}
    for it in items:
        if "=" not in it:
            raise ConfigError(f"{what} {it!r}: write NAME=VALUE")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise ConfigError(f"{what} {it!r}: {v!r} is not a number") from None
    return out


def _model(args):
    from cevns.sources.supernova import (GROUPS, PinchedModel, PinchedParameters, TimeDependentPinched,
                                         fiducial_model, from_snewpy)

    if args.model == "snewpy":
        if args.param:
            raise ConfigError("--param applies to the pinched models, not to --model snewpy")
        if args.snewpy_file is None or not args.snewpy_file.is_file():
            raise ConfigError(f"--model snewpy needs --snewpy-file PATH of an existing local file, got {args.snewpy_file}")
        try:
            from snewpy.models import ccsn
        except ImportError:
            raise ConfigError("--model snewpy needs the optional package snewpy (pip install snewpy)") from None
        cls = getattr(ccsn, args.snewpy_class, None)
        if cls is None:
            raise ConfigError(f"unknown snewpy.models.ccsn class {args.snewpy_class!r}")
        return from_snewpy(cls(str(args.snewpy_file)), args.snewpy_class)
    params = {g: dict(fiducial_model().params[g].as_dict()) for g in GROUPS}
    for key, v in _pairs(args.param, "--param").items():
        g, _, name = key.partition(".")
        if g not in GROUPS or name not in GROUP_PARAMS:
            raise ConfigError(f"--param {key!r}: use GROUP.NAME with GROUP in {GROUPS} and NAME in {GROUP_PARAMS}")
        params[g][name] = v
    model = PinchedModel({g: PinchedParameters(**params[g]) for g in GROUPS})
    if args.model == "exponential-cooling":
        return TimeDependentPinched.exponential_cooling(model)
    return model


def _check_common(args: argparse.Namespace) -> float:
    """The inputs ``rates`` and ``fit`` share, checked before any work: output paths, the distance (returned, kpc)
    and the flavour transformation."""
    from cevns.errors import UnknownNameError
    from cevns.sources.supernova import TRANSFORMATIONS, check_distance_kpc

    check_cli_outputs(args)
    d = check_distance_kpc(args.distance_kpc)
    if args.transformation not in TRANSFORMATIONS:
        raise UnknownNameError("flavour transformation", args.transformation, TRANSFORMATIONS)
    return d


def run_rates(args: argparse.Namespace) -> int:
    from cevns.sources.supernova import TimeDependentPinched
    from cevns.supernova.detectors import detector, detector_names
    from cevns.supernova.rates import expected_counts, light_curve, model_summary, observables

    d = _check_common(args)  # every input is checked before any work
    dets = args.detector or detector_names()
    for name in dets:
        detector(name)
    bkg = _pairs(args.background_rate, "--background-rate")
    for name in bkg:
        detector(name)
    edges = None
    if args.time_bins:
        try:
            edges = [float(x) for x in args.time_bins.split(",")]
        except ValueError:
            raise ConfigError(f"--time-bins {args.time_bins!r}: comma-separated numbers") from None
    model = _model(args)
    if edges is not None and not isinstance(model, TimeDependentPinched):
        raise ConfigError("--time-bins needs a time-dependent model (--model exponential-cooling or snewpy)")
    t0 = time.perf_counter()
    counts = expected_counts(model, dets, d, args.transformation, cevns_threshold_keV=args.cevns_threshold_kev)
    obs = observables(counts)
    out = {"model": model_summary(model), "distance_kpc": d, "transformation": args.transformation,
           "counts": counts, "observables": obs,
           "totals": {k: float(sum(v.values())) for k, v in counts.items()},
           "detectors": {n: detector(n).note for n in dets}}
    if edges is not None:
        lc = light_curve(model, dets, edges, d, args.transformation, cevns_threshold_keV=args.cevns_threshold_kev)
        out["light_curve"] = {"t_edges_s": edges,
                              "counts": {k: {c: [float(x) for x in v] for c, v in ch.items()} for k, ch in lc.items()}}
    if bkg:
        from cevns.supernova.snews import expected_p_values

        out["snews"] = {"window_s": args.window_s,
                        "p_values": expected_p_values(model, list(bkg), d, bkg, args.window_s, args.transformation)}
    dt = time.perf_counter() - t0
    print(f"supernova at {d:g} kpc, model {out['model']['type']}, transformation {args.transformation}")
    print(f"{'detector':<14} {'observable':<18} {'events':>12}")
    for name, groups in obs.items():
        for g, v in groups.items():
            print(f"{name:<14} {g:<18} {v:>12.4g}")
    if bkg:
        for name, r in out["snews"]["p_values"].items():
            print(f"{name}: expected p_val {r['p_val']:.3g} ({r['sigma']:.3g} σ) for b = {r['background']:.3g}")
    print(f"({dt:.2f} s)")
    if args.json:
        write_text_atomic(args.json, json.dumps(_finite(out), indent=2))
        print(f"wrote {args.json}")
    return 0


def _finite(x):
    """JSON-safe: inf/nan → None."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def run_fit(args: argparse.Namespace) -> int:
    from cevns.supernova.detectors import detector
    from cevns.supernova.fit import PARAM_NAMES, analyse, combinations

    d = _check_common(args)
    names = [x.strip() for x in args.detectors.split(",") if x.strip()]
    if not names:
        raise ConfigError("--detectors is empty")
    for n in names:
        detector(n)
    combinations(names)
    classes = None
    if args.with_cc_nucleus:
        classes = {m: ("ibd", "electron_elastic", "nc_nucleus", "cc_nucleus") for m in ("water", "scint")}
    prof = PARAM_NAMES if args.profile == "all" else PARAM_NAMES[:3]
    t0 = time.perf_counter()
    res = analyse(names, d, args.transformation, classes=classes, profile_params=prof)
    res["channel_classes"] = classes or "default (no ν_e CC on nuclei)"
    res["wall_s"] = time.perf_counter() - t0
    print(f"1σ relative accuracy (profile likelihood; Fisher in brackets), {d:g} kpc, {args.transformation}")
    print(f"{'combination':<28} " + " ".join(f"{p:>20}" for p in prof))
    for label in res["combinations"]:
        cells = []
        for p in prof:
            a = res["relative_accuracy"][label].get(p)
            fa = res["fisher_relative_accuracy"][label].get(p)
            cells.append(f"{'open' if a is None else f'{a:.3f}':>8} [{'inf' if fa is None else f'{fa:.3f}':>8}]")
        print(f"{label:<28} " + " ".join(f"{c:>20}" for c in cells))
    if "improvement_from_halo" in res:
        print("improvement from adding HALO-1kT: " + ", ".join(
            f"{p} {'n/a' if v is None else f'{100 * v:.0f} %'}" for p, v in res["improvement_from_halo"].items()))
    print(f"({res['wall_s']:.2f} s)")
    if args.json:
        write_text_atomic(args.json, json.dumps(_finite(res), indent=2))
        print(f"wrote {args.json}")
    if args.plot:
        from cevns.supernova.plots import corner_plot

        print(f"wrote {corner_plot(res, args.plot)}")
    return 0
