"""``cevns scan`` and ``cevns limit``: profile-likelihood scans and 90 % CL limits over physics parameters.

Examples::

    cevns scan --experiment coherent-csi-2021 --experiment coherent-ar-2020 \\
        --param eps_ee_uV=-0.5:0.7:121 --param eps_ee_dV=-0.5:0.7:121 --json nsi.json --plot nsi.png
    cevns limit --experiment coherent-csi-2021 --param mu_nu_e=0:100:101 --json mu.json
    cevns limit --experiment coherent-csi-2021 --param m_zprime_MeV=log:1:10000:50 --param g_zprime=log:1e-6:1e-2:80
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cevns.errors import ConfigError


def _common(p):
    p.add_argument("--experiment", action="append", required=False, default=[], metavar="NAME",
                   help="experiment to include (repeat to combine; shared nuisances by name)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=LO:HI:N",
                   help="scan axis: N points from LO to HI inclusive (NAME=log:LO:HI:N for log spacing)")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="hold a physics parameter at a non-SM value")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON")
    p.add_argument("--plot", type=Path, metavar="FILE", help="write a plot (PNG or PDF)")
    p.add_argument("--scheduler", default="serial",
                   help="'serial' (in process, default), 'local' (a Dask LocalCluster) or a Dask scheduler address")
    p.add_argument("--no-progress", action="store_true")


def register(sub) -> None:
    p = sub.add_parser("scan", help="profile-likelihood scan over physics parameters",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    p.add_argument("--list-params", action="store_true", help="list the physics parameter names and exit")
    p.set_defaults(func=run_scan)
    q = sub.add_parser("limit", help="90 %% CL upper limits (per mass for mediator scans)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(q)
    q.add_argument("--cl", type=float, default=0.90, help="confidence level (default 0.90; 1 dof Wilks)")
    q.set_defaults(func=run_limit)


def _parse(args):
    from cevns.inference.scan import ModelRecipe, parse_axis
    from cevns.interactions.parameters import validate_params

    if not args.experiment:
        raise ConfigError("give at least one --experiment (e.g. coherent-csi-2021)")
    if not args.param:
        raise ConfigError("give at least one --param NAME=LO:HI:N")
    axes = dict(parse_axis(t) for t in args.param)
    if len(axes) != len(args.param):
        raise ConfigError("a parameter appears twice in --param")
    fixed = {}
    for t in args.fix:
        if "=" not in t:
            raise ConfigError(f"--fix {t!r}: expected NAME=VALUE")
        k, v = t.split("=", 1)
        try:
            fixed[k.strip()] = float(v)
        except ValueError:
            raise ConfigError(f"--fix {t!r}: VALUE must be a number") from None
    validate_params({**{k: float(v[0]) for k, v in axes.items()}, **{k: float(v[-1]) for k, v in axes.items()}, **fixed})
    recipe = ModelRecipe(tuple(args.experiment), tuple(sorted(set(axes) | set(fixed))))
    return recipe, axes, fixed


def run_scan(args) -> int:
    if args.list_params:
        from cevns.interactions.parameters import describe_params

        print(describe_params())
        return 0
    from cevns.inference.scan import scan

    recipe, axes, fixed = _parse(args)
    if len(axes) > 2 and args.plot:
        raise ConfigError("--plot handles 1-D and 2-D scans")
    res = scan(recipe, axes, fixed, progress=not args.no_progress, scheduler=args.scheduler)
    print(f"experiments: {', '.join(recipe.experiments)}")
    print("best fit: " + ", ".join(f"{k} = {v:.5g}" for k, v in res.best_fit.items()) + f"  (χ²_min = {res.chi2_min:.2f})")
    if len(axes) == 1:
        from cevns.inference.intervals import confidence_set

        name = res.parameters[0]
        for lvl, lab in ((1.0, "68.3 %"), (2.706, "90 %")):
            cs = confidence_set(res.axes[name], res.delta_chi2, lvl)
            note = "" if cs.is_closed else "  (reaches the end of the scanned range: widen it)"
            print(f"{lab} CL set of {name}: {cs}{note}")
    if args.json:
        res.save_json(args.json)
        print(f"wrote {args.json}")
    if args.plot:
        from cevns.plotting import plot_scan

        print(f"wrote {plot_scan(res, args.plot)}")
    return 0


def run_limit(args) -> int:
    from cevns.inference.scan import WILKS, exclusion_per_mass, scan, upper_limit

    recipe, axes, fixed = _parse(args)
    thr = WILKS[1].get(round(args.cl, 4))
    if thr is None:
        from scipy import stats

        thr = float(stats.chi2.ppf(args.cl, 1))
    res = scan(recipe, axes, fixed, progress=not args.no_progress, scheduler=args.scheduler)
    out = {"experiments": list(recipe.experiments), "cl": args.cl, "delta_chi2_threshold": thr, "fixed": fixed}
    names = res.parameters
    if len(names) == 1:
        lim = upper_limit(res.axes[names[0]], res.delta_chi2, thr)
        print(f"{100 * args.cl:.0f} % CL upper limit: {names[0]} < {lim:.5g}  ({' + '.join(recipe.experiments)})")
        out.update({"parameter": names[0], "upper_limit": lim, "best_fit": res.best_fit})
        if args.plot:
            from cevns.plotting import plot_scan

            plot_scan(res, args.plot)
    elif len(names) == 2:
        mass = next((n for n in names if n.startswith("m_")), None)
        if mass is None:
            raise ConfigError("a 2-D limit needs a mass axis (m_zprime_MeV or m_scalar_MeV) and a coupling axis")
        coup = names[1 - names.index(mass)]
        m, g = exclusion_per_mass(res, mass, coup, thr)
        for mi, gi in zip(m, g):
            print(f"{mass} = {mi:10.4g}   {coup} < {gi:.4g}")
        out.update({"mass_parameter": mass, "coupling_parameter": coup, "masses": m.tolist(),
                    "upper_limits": [float(x) if np.isfinite(x) else None for x in g]})
        if args.plot:
            from cevns.plotting import plot_exclusion

            plot_exclusion({" + ".join(recipe.experiments): (m, g)}, args.plot, mass, f"{coup} ({100 * args.cl:.0f} % CL)",
                           "exclusion")
    else:
        raise ConfigError("limit takes one parameter, or a mass and a coupling")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    return 0
