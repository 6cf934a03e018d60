"""Confidence sets from a profile: {x : Δχ²(x) ≤ level} read off a scanned grid, as a union of intervals.

A profile with several minima (e.g. the two NSI bands, or ε_ee^uV in CsI 2017) has a confidence set made of several
disjoint intervals; reporting the first crossings on either side of the global minimum would hide the others. Here
every grid segment whose ends straddle the level is cut by linear interpolation, and every run of grid points below
the level becomes one interval. An interval that reaches an end of the scan is flagged open on that side (the true
set may extend beyond the range). Wilks thresholds (Δχ² for 1 dof): 68.27 % → 1, 90 % → 2.706, 95 % → 3.841.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cevns.errors import CevnsError, ConfigError

__all__ = ["ConfidenceSet", "confidence_set", "interval_from_profile"]


@dataclass
class ConfidenceSet:
    """Disjoint intervals [(lo, hi), ...] in increasing order; ``open_low``/``open_high``: the set reaches the
    lower/upper end of the scanned range."""

    level: float
    intervals: list[tuple[float, float]] = field(default_factory=list)
    open_low: bool = False
    open_high: bool = False

    @property
    def is_empty(self) -> bool:
        return not self.intervals

    @property
    def is_connected(self) -> bool:
        return len(self.intervals) == 1

    @property
    def is_closed(self) -> bool:
        return not (self.open_low or self.open_high)

    @property
    def hull(self) -> tuple[float, float]:
        if not self.intervals:
            raise CevnsError("empty confidence set")
        return self.intervals[0][0], self.intervals[-1][1]

    def contains(self, x: float) -> bool:
        return any(lo <= x <= hi for lo, hi in self.intervals)

    def to_dict(self) -> dict:
        return {"level": self.level, "intervals": [list(i) for i in self.intervals], "open_low": self.open_low,
                "open_high": self.open_high}

    def __str__(self) -> str:
        if not self.intervals:
            return "∅"
        parts = []
        for k, (lo, hi) in enumerate(self.intervals):
            left = "(≤" if (k == 0 and self.open_low) else "["
            right = "≥)" if (k == len(self.intervals) - 1 and self.open_high) else "]"
            parts.append(f"{left}{lo:.5g}, {hi:.5g}{right}")
        return " ∪ ".join(parts)


def confidence_set(x, dchi2, level: float = 1.0) -> ConfidenceSet:
    """The set {x: Δχ²(x) ≤ level} of a profile on a grid (Δχ² taken from its minimum), with linear interpolation
    at each crossing; see the module docstring."""
    x = np.asarray(x, float)
    d = np.asarray(dchi2, float)
    if x.ndim != 1 or x.shape != d.shape or x.size < 2:
        raise ConfigError("confidence_set needs 1-D arrays x and Δχ² of the same length >= 2")
    if not np.all(np.diff(x) > 0):
        raise ConfigError("the scanned values must increase")
    if not (np.isfinite(level) and level > 0):
        raise ConfigError(f"the Δχ² level must be > 0, got {level!r}")
    finite = np.isfinite(d)
    if not finite.any():
        raise CevnsError("the profile has no finite value")
    d = np.where(finite, d - np.min(d[finite]), np.inf)
    inside = d <= level
    out = ConfidenceSet(float(level), [], bool(inside[0]), bool(inside[-1]))
    i, n = 0, x.size
    while i < n:
        if not inside[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and inside[j + 1]:
            j += 1
        lo = x[i] if i == 0 else _cross(x[i - 1], x[i], d[i - 1], d[i], level)
        hi = x[j] if j == n - 1 else _cross(x[j], x[j + 1], d[j], d[j + 1], level)
        out.intervals.append((float(lo), float(hi)))
        i = j + 1
    return out


def _cross(x0, x1, d0, d1, level):
    if not np.isfinite(d0):
        return x1
    if not np.isfinite(d1):
        return x0
    return x0 + (level - d0) * (x1 - x0) / (d1 - d0)


def interval_from_profile(x, dchi2, level: float = 1.0) -> tuple[float, float]:
    """(lo, hi) of a connected confidence set closed inside the scan; raises CevnsError (naming the set) when the set
    is disjoint or reaches the scan's ends, rather than returning a misleading interval."""
    cs = confidence_set(x, dchi2, level)
    if not cs.is_connected:
        raise CevnsError(f"the Δχ² ≤ {level:g} set is not one interval: {cs}")
    if not cs.is_closed:
        raise CevnsError(f"the Δχ² ≤ {level:g} set {cs} reaches the end of the scanned range "
                         f"[{float(np.min(x)):g}, {float(np.max(x)):g}]; widen the range")
    return cs.hull
