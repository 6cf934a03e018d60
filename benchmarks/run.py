"""Benchmarks: ``python benchmarks/run.py [--json FILE] [--only PREFIX]`` prints a table of timings.

Each ``benchmarks/bench_*.py`` module defines ``BENCHMARKS``: a list of (key, goal_seconds, function) where the
function returns the measured time in seconds (it times what the key names, with setup excluded), or for a key
that does not end in ``_s`` a ratio of times (smaller is better, like a time). Goals are for the 2-core reference
machine; nothing here is a test.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def collect():
    items = []
    for path in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        items += list(getattr(mod, "BENCHMARKS", []))
    return items


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", default="", help="run only keys starting with this prefix")
    args = ap.parse_args(argv)
    results = {}
    print(f"{'benchmark':<28} {'measured':>12} {'goal':>10}  status")
    for key, goal, fn in collect():
        if not key.startswith(args.only):
            continue
        t = float(fn())
        results[key] = t
        status = "ok" if t <= goal else "SLOW"
        unit = "s" if key.endswith("_s") or "_s_per_" in key else " "  # the others are ratios
        print(f"{key:<28} {t:>11.3g}{unit} {goal:>9.3g}{unit}  {status}", flush=True)
    if args.json:
        payload = dict(results, machine=platform.platform(), python=sys.version.split()[0])
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
