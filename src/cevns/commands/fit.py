"""``cevns fit``: fit registered experiments (or spec files) with any physics parameter fixed or free.

Examples::

    cevns fit --experiment coherent-csi-2021 --signal counts
    cevns fit --experiment coherent-csi-2021 --experiment coherent-ar-2020 --free sin2_theta_w
    cevns fit --experiment coherent-csi-2021 --param g_zprime=1e-4 --param m_zprime_MeV=20 --free g_zprime
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from cevns.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser("fit", help="maximum-likelihood fit of one or more experiments",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", action="append", default=[], metavar="NAME",
                   help="registered experiment or spec file (repeat to combine; shared parameters by name)")
    p.add_argument("--signal", default=None, choices=["counts", "xsec_scale", "physics", "flavour"],
                   help="signal mode (default: 'physics' when physics parameters are given, else 'counts')")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="physics parameter value (held fixed unless also --free, then the start value)")
    p.add_argument("--free", action="append", default=[], metavar="NAME", help="physics parameter left free")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the fit result as JSON")
    p.set_defaults(func=run)


def _parse_values(items) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in items:
        if "=" not in t:
            raise ConfigError(f"--param {t!r}: expected NAME=VALUE")
        k, v = (a.strip() for a in t.split("=", 1))
        if k in out:
            raise ConfigError(f"--param {k} given twice")
        try:
            out[k] = float(v)
        except ValueError:
            raise ConfigError(f"--param {t!r}: VALUE must be a number") from None
    return out


def run(args) -> int:
    from cevns.experiments import load_experiment
    from cevns.inference import fit
    from cevns.inference.likelihood import CombinedLikelihood
    from cevns.interactions.parameters import validate_params

    if not args.experiment:
        raise ConfigError("give at least one --experiment (e.g. coherent-csi-2021)")
    if len(set(args.experiment)) != len(args.experiment):
        raise ConfigError("an experiment is given twice: its data would count twice")
    from cevns.io import check_cli_outputs

    check_cli_outputs(args)
    values = _parse_values(args.param)
    if len(set(args.free)) != len(args.free):
        raise ConfigError("a parameter is given twice in --free")
    validate_params({**values, **{k: values.get(k, 0.0) for k in args.free if k not in values}})
    physics = tuple(sorted(set(values) | set(args.free)))
    signal = args.signal or ("physics" if physics else "counts")
    if physics and signal != "physics":
        raise ConfigError(f"physics parameters {list(physics)} need --signal physics")
    liks = []
    for name in args.experiment:
        exp = load_experiment(name)
        fixed_phys = {k: v for k, v in values.items() if k not in args.free}
        liks.append(exp.likelihood(signal, physics, fixed_physics=fixed_phys))
    lik = liks[0] if len(liks) == 1 else CombinedLikelihood(liks)
    start = {k: v for k, v in values.items() if k in args.free}
    res = fit(lik, start=start)
    nbins = sum(part.observed.size for part in (liks if len(liks) > 1 else [lik]))
    print(f"fit of {lik.name} (signal mode '{signal}'" + (f", fixed {values}" if values else "") + ")")
    w = max(len(n) for n in res.values)
    for n, v in res.values.items():
        print(f"  {n:<{w}}  {v:12.6g} ± {res.errors[n]:.3g}")
    print(f"χ²_min = {res.chi2:.3f} for {nbins} bins and {len(lik.parameters)} parameters")
    for w in res.warnings:
        print(f"warning: {w}")
    if args.json:
        from cevns.io import write_text_atomic

        write_text_atomic(args.json, json.dumps({"experiments": args.experiment, "signal": signal, "fixed": values,
                                                 "free_physics": args.free, **res.to_dict(), "n_bins": nbins},
                                                indent=1))
        print(f"wrote {args.json}")
    return 0
