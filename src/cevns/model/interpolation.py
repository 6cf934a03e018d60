"""The one interpolation code of the forward model: piecewise-linear morphing between variants on a grid.

A variant-generating nuisance ν_j has a grid of values g_0 < g_1 < … < g_{n−1} (one of them the nominal value) and
the template (or spectrum) at each grid value, V_k. Between grid values the template is interpolated linearly,
beyond the ends it is extrapolated linearly with the outermost segment:

    V(ν) = V_i + (ν − g_i)/(g_{i+1} − g_i) · (V_{i+1} − V_i),   i = clamp(segment of ν, 0, n − 2)

and several nuisances act additively, one at a time: T(ν) = T_0 + Σ_j [V_j(ν_j) − T_0]. With the grid {−1, 0, +1}
and the ±1σ variants this is HistFactory's interpolation code 0 (Cranmer et al., CERN-OPEN-2012-016, Eq. (8):
T₀ + θ(T₊ − T₀) for θ ≥ 0, T₀ + θ(T₀ − T₋) for θ < 0); finer grids (a quenching factor, a pulse time) use the same
code with more points. The derivative ∂V/∂ν is the slope of the current segment (exact for the piecewise-linear
model; at a grid point the right-hand segment is used).
"""
from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np

from cevns.errors import ConfigError

__all__ = ["VariantGrid"]


class VariantGrid:
    """Grid values of one nuisance (increasing, ≥ 2 points) and the index of the nominal value."""

    def __init__(self, values, nominal: float):
        v = np.asarray(values, dtype=float)
        if v.ndim != 1 or v.size < 2 or not np.all(np.isfinite(v)) or np.any(np.diff(v) <= 0):
            raise ConfigError(f"a variant grid needs >= 2 finite increasing values, got {values!r}")
        k = np.nonzero(np.isclose(v, nominal, rtol=0, atol=1e-12 * max(1.0, abs(nominal))))[0]
        if k.size != 1:
            raise ConfigError(f"the nominal value {nominal} must be one of the grid values {v.tolist()}")
        self.values = v
        self.nominal_index = int(k[0])
        self.nominal = float(v[self.nominal_index])
        self._uniform = bool(np.allclose(np.diff(v), v[1] - v[0], rtol=1e-9, atol=0))
        self._start, self._step = float(v[0]), float(v[1] - v[0])
        self._list = v.tolist()
        self._inv_step = 1.0 / self._step
        self._last = v.size - 2

    @property
    def n(self) -> int:
        return self.values.size

    def locate(self, x):
        """(segment index i (P,), fraction f (P,), 1/(g_{i+1} − g_i) (P,)) for values x (P,); f < 0 or > 1 outside
        the grid (linear extrapolation)."""
        x = np.asarray(x, dtype=float)
        if self._uniform:
            u = (x - self._start) * (1.0 / self._step)
            i = np.minimum(np.maximum(u.astype(np.intp), 0), self.n - 2)  # trunc = floor for u >= 0
            return i, u - i, np.full(x.shape, self._inv_step)
        i = np.minimum(np.maximum(np.searchsorted(self.values, x, side="right") - 1, 0), self.n - 2)
        g0, g1 = self.values[i], self.values[i + 1]
        inv = 1.0 / (g1 - g0)
        return i, (x - g0) * inv, inv

    def locate1(self, x: float):
        """(segment index, fraction) for one Python float: the fit's hot path."""
        if self._uniform:
            u = (x - self._start) * self._inv_step
            i = int(u) if u > 0.0 else 0
            if i > self._last:
                i = self._last
            return i, u - i
        i = bisect_right(self._list, x) - 1
        i = 0 if i < 0 else (self._last if i > self._last else i)
        return i, (x - self._list[i]) / (self._list[i + 1] - self._list[i])

    def locate_scalar(self, x: float):
        """:meth:`locate` for one Python float (the P = 1 fit path)."""
        if self._uniform:
            u = (x - self._start) / self._step
            i = min(max(math.floor(u), 0), self.n - 2)
            return i, u - i, 1.0 / self._step
        i = min(max(bisect_right(self._list, x) - 1, 0), self.n - 2)
        g0, g1 = self._list[i], self._list[i + 1]
        return i, (x - g0) / (g1 - g0), 1.0 / (g1 - g0)
