"""Soak (issue 10, item 2): 3 runs x 20,000 messages paced at 500 msg/s through Tansu (loopback) and the server.

``python benchmarks/bench_alerts_soak.py [--runs 3] [--n 20000] [--rate 500]`` prints one row per run: messages
the broker acknowledged, archived, lost (acknowledged but never archived), duplicates, alert latency p50/p99.
Exit status 1 if any acknowledged message was lost or processed twice.  About 45 s per run; not part of
``run.py`` (no BENCHMARKS entries) and not of the test suite (which runs a 2,500-message version).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_alerts import _broker, _keys  # noqa: E402

BENCHMARKS: list = []


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=500.0)
    a = ap.parse_args(argv)
    from helpers import paced_run

    print(f"{'run':>3} {'sent':>7} {'acked':>7} {'archived':>8} {'lost':>5} {'dupl':>5} {'alerts':>7} "
          f"{'p50 s':>7} {'p99 s':>7} {'total s':>8}", flush=True)
    bad = 0
    for k in range(a.runs):
        b = _broker()
        try:
            with tempfile.TemporaryDirectory() as d:
                r = paced_run(b.url, _keys(), Path(d) / "soak.sqlite", a.n, a.rate)
        finally:
            b.stop()
        bad += r["lost"] + r["duplicates"] + r["failed"] + (not r["rows_unique"])
        print(f"{k + 1:>3} {r['n']:>7} {r['acked']:>7} {r['archived']:>8} {r['lost']:>5} {r['duplicates']:>5} "
              f"{r['alerts']:>7} {r['latency_p50_s']:>7.3f} {r['latency_p99_s']:>7.3f} {r['t_all_s']:>8.1f}",
              flush=True)
    print("result:", "no acknowledged message lost or duplicated" if not bad else f"{bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
