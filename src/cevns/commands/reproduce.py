"""``cevns reproduce NAME [--json FILE] [--plots DIR]``: reproduce a published result from its shipped release."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from cevns.reproductions import get_reproduction, list_reproductions


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="reproduce a published result from the shipped data release",
                       description="Reproduce a published result. Available: " + ", ".join(list_reproductions()))
    p.add_argument("name", help="one of: " + ", ".join(list_reproductions()))
    p.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots into DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fn = get_reproduction(args.name)
    from cevns.io import check_cli_outputs

    check_cli_outputs(args)
    t0 = time.perf_counter()
    rep = fn(progress=not args.no_progress)
    print(rep.table())
    print(f"\n({time.perf_counter() - t0:.2f} s)")
    if args.json:
        rep.write_json(args.json)
        print(f"wrote {args.json}")
    if args.plots and rep.plot is not None:
        args.plots.mkdir(parents=True, exist_ok=True)
        for path in rep.plot(args.plots):
            print(f"wrote {path}")
    return 0
