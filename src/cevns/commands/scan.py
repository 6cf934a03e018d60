"""``cevns scan`` and ``cevns limit``: profile-likelihood scans and upper limits over physics parameters.

Every input is checked before any work: experiment names (and duplicates), parameter names, ranges and roles,
the confidence level, output paths and plot formats, the scheduler, the size of the grid (an estimate of time and
memory is printed for large grids; above the limits, --force is needed), and that each parameter changes the
prediction of the chosen experiments.

Examples::

    cevns scan --experiment coherent-csi-2021 --experiment coherent-ar-2020 \\
        --param eps_ee_uV=-0.5:0.7:121 --param eps_ee_dV=-0.5:0.7:121 --json nsi.json --plot nsi.png
    cevns limit --experiment coherent-csi-2021 --param mu_nu_e=0:100:101 --json mu.json --plot mu.png
    cevns limit --experiment coherent-csi-2021 --param m_zprime_MeV=log:1:10000:50 --param g_zprime=log:1e-6:1e-2:80
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from cevns.errors import ConfigError

#: a scan whose estimate exceeds these needs --force
MAX_SECONDS = 600.0
MAX_BYTES = 4 * 1024**3


def _common(p):
    p.add_argument("--experiment", action="append", default=[], metavar="NAME",
                   help="experiment to include (registered name or spec file; repeat to combine them, with "
                        "shared parameters such as sns_flux_norm merged by name)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=LO:HI:N",
                   help="scan axis: N points from LO to HI inclusive (NAME=log:LO:HI:N for log spacing); "
                        "see --list-params for the names")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="hold another physics parameter at a non-default value")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON (checked before the scan)")
    p.add_argument("--plot", type=Path, metavar="FILE",
                   help="write a plot; the extension sets the format (png, pdf, svg, ...)")
    p.add_argument("--scheduler", default="serial", metavar="WHERE",
                   help="'serial' (in this process, default), 'local' (a Dask cluster of one worker per core) or "
                        "a Dask scheduler address tcp://HOST:PORT (needs the 'dask' extra)")
    p.add_argument("--refine", action="store_true",
                   help="adaptive refinement: profile every 4th grid point, then only the cells near the "
                        "confidence contours and the minimum; the rest is interpolated")
    p.add_argument("--force", action="store_true", help="run a grid above the time or memory limits anyway")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(sub) -> None:
    p = sub.add_parser("scan", help="profile-likelihood scan over physics parameters",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    p.add_argument("--list-params", action="store_true", help="list the physics parameter names and exit")
    p.set_defaults(func=run_scan)
    q = sub.add_parser("limit", help="upper limits at a confidence level (per mass for mediator scans)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(q)
    q.add_argument("--cl", default="0.90", metavar="CL",
                   help="confidence level: a fraction (0.9) or a percentage (90); 1 dof Wilks threshold")
    q.set_defaults(func=run_limit)


def parse_cl(text) -> tuple[float, str]:
    """(CL as a fraction, how it was read) from '0.9', '90' or '90%'."""
    t = str(text).strip().rstrip("%").strip()
    try:
        v = float(t)
    except ValueError:
        raise ConfigError(f"--cl {text!r}: give a number, a fraction in (0, 1) or a percentage in (1, 100)") from None
    if not math.isfinite(v) or v <= 0 or v >= 100:
        raise ConfigError(f"--cl {text!r}: must be a fraction in (0, 1) or a percentage in (1, 100)")
    if v < 1:
        return v, f"read --cl {text} as a fraction: {100 * v:.4g} % CL"
    if v == 1:
        raise ConfigError("--cl 1 is ambiguous (100 % or 1 %): give 0.01 or a percentage such as 90")
    return v / 100.0, f"read --cl {text} as a percentage: {v:.4g} % CL"


def _parse(args):
    from cevns.experiments.registry import list_experiments, load_spec
    from cevns.inference.scan import ModelRecipe, parse_axis
    from cevns.interactions.parameters import validate_params

    if not args.experiment:
        raise ConfigError("give at least one --experiment (e.g. coherent-csi-2021)")
    dup = sorted({e for e in args.experiment if args.experiment.count(e) > 1})
    if dup:
        raise ConfigError(f"--experiment {dup[0]} is given more than once: its data would be counted twice")
    for e in args.experiment:
        if e not in list_experiments():
            load_spec(e)  # a spec file path, or an unknown name (UnknownNameError lists the registered ones)
    if not args.param:
        raise ConfigError("give at least one --param NAME=LO:HI:N")
    axes = {}
    for t in args.param:
        name, values = parse_axis(t)
        if name in axes:
            raise ConfigError(f"parameter {name} appears twice in --param")
        axes[name] = values
    fixed = {}
    for t in args.fix:
        if "=" not in t:
            raise ConfigError(f"--fix {t!r}: expected NAME=VALUE")
        k, v = (a.strip() for a in t.split("=", 1))
        try:
            val = float(v)
        except ValueError:
            raise ConfigError(f"--fix {t!r}: VALUE must be a number") from None
        if k in fixed:
            raise ConfigError(f"--fix {k} is given twice")
        fixed[k] = val
    both = sorted(set(axes) & set(fixed))
    if both:
        raise ConfigError(f"{both[0]} is both scanned (--param) and fixed (--fix): give it one role")
    validate_params({**{k: v[0] for k, v in axes.items()}, **fixed})
    validate_params({**{k: v[-1] for k, v in axes.items()}, **fixed})
    if args.plot and len(axes) > 2:
        raise ConfigError("--plot handles 1-D and 2-D scans")
    from cevns.io import check_cli_outputs

    check_cli_outputs(args)
    if args.scheduler not in ("serial", None):
        from cevns.inference.scan import dask_client

        dask_client(args.scheduler)  # reachable, and dask installed
    recipe = ModelRecipe(tuple(args.experiment), tuple(sorted(set(axes) | set(fixed))))
    return recipe, axes, fixed


def _preflight(recipe, axes, fixed, args) -> None:
    """Build the model, refuse parameters that change nothing, and estimate the cost of the grid."""
    from cevns.inference.scan import check_parameters_matter, estimate_scan

    model = recipe.build()
    check_parameters_matter(model, axes, fixed)
    n = int(np.prod([len(v) for v in axes.values()]))
    if n >= 5000 or args.force:
        est = estimate_scan(model, n, axes=axes, fixed=fixed)
        print(f"grid of {n} points: about {est['seconds']:.3g} s and {est['bytes'] / 1e6:.3g} MB")
        if not args.force and (est["seconds"] > MAX_SECONDS or est["bytes"] > MAX_BYTES):
            raise ConfigError(f"the grid of {n} points would take about {est['seconds']:.3g} s and "
                              f"{est['bytes'] / 2**30:.3g} GiB (limits {MAX_SECONDS:g} s, {MAX_BYTES / 2**30:g} GiB): use "
                              "fewer points, --refine, or --force")


def _print_warnings(res) -> None:
    for w in res.warnings:
        print(f"warning: {w}")


def run_scan(args) -> int:
    if args.list_params:
        from cevns.interactions.parameters import describe_params

        print(describe_params())
        return 0
    from cevns.inference.scan import scan

    recipe, axes, fixed = _parse(args)
    _preflight(recipe, axes, fixed, args)
    res = scan(recipe, axes, fixed, progress=not args.no_progress, scheduler=args.scheduler, refine=args.refine)
    print(f"experiments: {', '.join(recipe.experiments)}")
    print("best fit: " + ", ".join(f"{k} = {v:.5g}" for k, v in res.best_fit.items()) + f"  (χ²_min = {res.chi2_min:.2f})")
    out = res.to_dict()
    if len(axes) == 1:
        from cevns.inference.intervals import confidence_set

        name = res.parameters[0]
        sets = {}
        for lvl, lab in ((1.0, "68.3 %"), (2.706, "90 %")):
            cs = confidence_set(res.axes[name], res.delta_chi2, lvl)
            note = "" if cs.is_closed else "  (reaches the end of the scanned range: widen it)"
            print(f"{lab} CL set of {name}: {cs}{note}")
            sets[lab] = cs.to_dict()
        out["confidence_sets"] = sets
    _print_warnings(res)
    if args.json:
        from cevns.io import write_text_atomic

        write_text_atomic(args.json, json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    if args.plot:
        from cevns.plotting import plot_scan

        print(f"wrote {plot_scan(res, args.plot)}")
    return 0


def run_limit(args) -> int:
    from scipy import stats

    from cevns.inference.scan import NoLimitInRange, exclusion_per_mass, scan, upper_limit

    cl, how = parse_cl(args.cl)
    recipe, axes, fixed = _parse(args)
    names = list(axes)
    if len(names) == 2 and not any(n.startswith("m_") for n in names):
        raise ConfigError("a 2-D limit needs a mass axis (m_zprime_MeV or m_scalar_MeV) and a coupling axis")
    if len(names) > 2:
        raise ConfigError("limit takes one parameter, or a mass and a coupling")
    print(how)
    thr = float(stats.chi2.ppf(cl, 1))
    _preflight(recipe, axes, fixed, args)
    res = scan(recipe, axes, fixed, progress=not args.no_progress, scheduler=args.scheduler, refine=args.refine)
    out = {"experiments": list(recipe.experiments), "cl": cl, "delta_chi2_threshold": thr, "fixed": fixed}
    _print_warnings(res)
    out["warnings"] = list(res.warnings)
    if len(names) == 1:
        try:
            lim = upper_limit(res.axes[names[0]], res.delta_chi2, thr)
        except NoLimitInRange as exc:  # keep the scan: the JSON says so, the exit status is 1
            out.update({"parameter": names[0], "upper_limit": None, "best_fit": res.best_fit})
            out["warnings"].append(str(exc))
            if args.json:
                from cevns.io import write_text_atomic

                write_text_atomic(args.json, json.dumps(out, indent=1))
                print(f"wrote {args.json} (no upper limit)")
            print(f"cevns: error: {exc}", file=sys.stderr)
            return 1
        print(f"{100 * cl:.4g} % CL upper limit: {names[0]} < {lim:.5g}  ({' + '.join(recipe.experiments)})")
        out.update({"parameter": names[0], "upper_limit": lim, "best_fit": res.best_fit})
        if args.plot:
            from cevns.plotting import plot_limit_1d

            print(f"wrote {plot_limit_1d(res, lim, cl, args.plot)}")
    else:
        mass = next(n for n in names if n.startswith("m_"))
        coup = names[1 - names.index(mass)]
        m, g = exclusion_per_mass(res, mass, coup, thr)
        for mi, gi in zip(m, g):
            print(f"{mass} = {mi:10.4g}   {coup} < {gi:.4g}")
        out.update({"mass_parameter": mass, "coupling_parameter": coup, "masses": m.tolist(),
                    "upper_limits": [float(x) if np.isfinite(x) else None for x in g]})
        if args.plot:
            from cevns.plotting import param_label, plot_exclusion

            plot_exclusion({" + ".join(recipe.experiments): (m, g)}, args.plot, param_label(mass),
                           f"{param_label(coup)}, {100 * cl:.4g} % CL upper limit",
                           f"{coup} vs {mass}: excluded above the curve")
            print(f"wrote {args.plot}")
    if args.json:
        from cevns.io import write_text_atomic

        write_text_atomic(args.json, json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    return 0
