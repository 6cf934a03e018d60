"""Helpers shared by the section builders."""
from __future__ import annotations

import numpy as np

from cevns.errors import ConfigError

__all__ = ["edges_from_spec", "centres", "increasing"]


def edges_from_spec(b, what: str = "bin edges") -> np.ndarray:
    """Bin edges from a list or {'start', 'stop', 'step'}; they must be finite and strictly increasing."""
    if isinstance(b, dict):
        start, stop, step = (float(b[k]) for k in ("start", "stop", "step"))
        if not (np.isfinite([start, stop, step]).all() and step > 0 and stop > start):
            raise ConfigError(f"{what}: need finite start < stop and step > 0, got {b}")
        n = int(round((stop - start) / step))
        if n < 1 or not np.isclose(start + n * step, stop, rtol=0, atol=1e-9 * max(1.0, abs(stop))):
            raise ConfigError(f"{what}: (stop - start) must be a whole number of steps, got {b}")
        return start + step * np.arange(n + 1)
    return increasing(b, what)


def increasing(values, what: str) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim != 1 or a.size < 2 or not np.all(np.isfinite(a)) or np.any(np.diff(a) <= 0):
        raise ConfigError(f"{what} must be at least two finite, strictly increasing numbers, got {values!r}")
    return a


def centres(edges) -> np.ndarray:
    e = np.asarray(edges, float)
    return 0.5 * (e[:-1] + e[1:])
