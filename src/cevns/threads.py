"""BLAS threads: cevns's arrays are many small matrices (batched folds, Fisher steps, response products), for which
a multi-threaded BLAS is slower than one thread, and much slower when another process shares the cores (measured:
small products 8× slower, a loaded 101 × 101 scan 2–4× slower). Parallelism comes from Dask worker processes instead.

``single_blas_thread()`` is a context manager for hot loops (scans); ``limit_blas_threads()`` sets the limit for the
whole process (the ``cevns`` command calls it; ``CEVNS_BLAS_THREADS=N`` chooses another number, 0 leaves BLAS alone).
"""
from __future__ import annotations

import contextlib
import os

__all__ = ["single_blas_thread", "limit_blas_threads"]


def single_blas_thread():
    """A context in which BLAS/OpenMP pools use one thread (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a base dependency
        return contextlib.nullcontext()
    return threadpool_limits(1)


def limit_blas_threads() -> int | None:
    """Limit BLAS pools of this process to ``CEVNS_BLAS_THREADS`` threads (default 1; 0: unchanged). Returns the
    limit applied, or None."""
    raw = os.environ.get("CEVNS_BLAS_THREADS", "1").strip()
    try:
        n = int(raw)
    except ValueError:
        from cevns.errors import ConfigError

        raise ConfigError(f"CEVNS_BLAS_THREADS={raw!r}: give a whole number of threads (0 leaves BLAS alone)") from None
    if n < 0:
        from cevns.errors import ConfigError

        raise ConfigError(f"CEVNS_BLAS_THREADS={raw!r}: must be >= 0")
    if n == 0:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return None
    threadpool_limits(n)
    return n
