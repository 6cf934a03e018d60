"""Shared timing helper of the benchmark modules (not a benchmark itself: no BENCHMARKS list)."""
from __future__ import annotations

import time

from cevns.threads import limit_blas_threads

limit_blas_threads()  # as the cevns command does: one BLAS thread (small matrices; see cevns/threads.py)


def best_of(fn, repeat: int = 5, number: int = 20) -> float:
    """Best mean time per call [s] over ``repeat`` rounds of ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def experiment(name: str):
    from cevns.experiments import load_experiment

    return load_experiment(name)
