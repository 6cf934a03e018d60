"""BLAS threads: cevns's arrays are many small matrices (batched folds, Fisher steps, response products), for which
a multi-threaded BLAS is slower than one thread, and much slower when another process shares the cores (measured:
small products 8× slower, a loaded 101 × 101 scan 2–4× slower). Parallelism comes from Dask worker processes instead.

``single_blas_thread()`` is a context manager for hot loops (scans); ``limit_blas_threads()`` sets the limit for the
whole process (the ``cevns`` command calls it; ``CEVNS_BLAS_THREADS=N`` chooses another number, 0 leaves BLAS alone).
"""
from __future__ import annotations

import contextlib
import os

__all__ = ["single_blas_thread", "limit_blas_threads", "keep_freed_memory"]


_CONTROLLER = None  # (number of imported modules when made, threadpoolctl.ThreadpoolController)


def single_blas_thread():
    """A context in which BLAS/OpenMP pools use one thread (a no-op without threadpoolctl). The pools are found once
    (a ThreadpoolController; ``threadpool_limits`` searches the loaded libraries afresh on every call, ~2 ms, 15 times
    per scan) and searched again only when modules have been imported since."""
    global _CONTROLLER
    import sys

    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a base dependency
        return contextlib.nullcontext()
    if _CONTROLLER is None or _CONTROLLER[0] != len(sys.modules):
        _CONTROLLER = (len(sys.modules), ThreadpoolController())
    return _CONTROLLER[1].limit(limits=1)


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


_MALLOC_TUNED = False


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 128 << 20, top_pad: int = 64 << 20) -> bool:
    """glibc only, once per process: arrays up to ``mmap_threshold`` bytes come from the heap, and up to
    ``trim_threshold`` bytes of freed heap are kept for reuse instead of being returned to the system. Profiling
    allocates and frees megabyte temporaries thousands of times; by default each is mapped and page-faulted afresh
    (measured: 216,000 page faults and ~20 % of a 101 × 101 NSI scan; the same reason Dask's MALLOC_TRIM_THRESHOLD_
    made scans slower). The top pad, kept free at the top of a heap, is as large as a thread arena's heap (64 MiB): a
    Dask worker profiles in a thread of its own, whose arena would otherwise unmap a heap whenever it empties, whatever
    the trim threshold (measured: 16,000–60,000 page faults per worker per 101 × 101 scan, ~150 with this; the top pad
    is address space, touched only when used). The process keeps up to ~200 MiB more resident memory. Returns True
    if applied."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    _MALLOC_TUNED = bool(mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
                         and mallopt(M_TRIM_THRESHOLD, int(trim_threshold)) == 1
                         and mallopt(M_TOP_PAD, int(top_pad)) == 1)
    return _MALLOC_TUNED
