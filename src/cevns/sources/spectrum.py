"""Normalised neutrino energy spectra: a continuous part on [e_min, e_max] plus delta lines.

The one operation the rate engine needs is :meth:`Spectrum.fold`: ∫ pdf(E) g(E) dE over E above a (per-recoil)
lower limit, done with Gauss–Legendre nodes on [max(E_low, e_min), e_max] so that the kinematic threshold
E_min(T) never sits inside a quadrature panel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from cevns.errors import PhysicsDomainError

__all__ = ["Spectrum"]

#: Gauss–Legendre nodes and weights, cached per order (numpy recomputes them with an eigenvalue problem on each call);
#: the returned arrays are shared: never modify them in place
_leggauss = lru_cache(maxsize=16)(np.polynomial.legendre.leggauss)


@dataclass(frozen=True)
class Spectrum:
    """pdf(E) [1/MeV] on [e_min, e_max] with total weight ``continuous_weight``, plus lines ((E [MeV], weight), ...).
    Weights sum to 1: the spectrum is a probability distribution in neutrino energy."""

    pdf: Callable[[np.ndarray], np.ndarray] | None
    e_min: float = 0.0
    e_max: float = 0.0
    continuous_weight: float = 1.0
    lines: tuple[tuple[float, float], ...] = field(default_factory=tuple)
    n_nodes: int = 48

    def __post_init__(self):
        total = self.continuous_weight * (self.pdf is not None) + sum(w for _, w in self.lines)
        if abs(total - 1.0) > 1e-9:
            raise PhysicsDomainError(f"spectrum weights sum to {total}, must sum to 1")
        if self.pdf is not None and not (0 <= self.e_min < self.e_max):
            raise PhysicsDomainError(f"spectrum support must satisfy 0 <= e_min < e_max, got [{self.e_min}, {self.e_max}]")

    @property
    def energy_max(self) -> float:
        return max([self.e_max if self.pdf is not None else 0.0] + [e for e, _ in self.lines])

    def fold(self, g: Callable[[np.ndarray], np.ndarray], e_low=0.0) -> np.ndarray:
        """∫_{E > e_low} pdf(E) g(E) dE + Σ_lines w g(E_line) Θ(E_line > e_low).

        ``e_low`` is an array (any shape S) of lower limits; ``g`` receives E of shape S + (n,) and must broadcast
        against it (e.g. g = lambda E: kernel(T[..., None], E)). Returns shape S.
        """
        e_low = np.asarray(e_low, dtype=float)
        out = np.zeros(e_low.shape)
        if self.pdf is not None:
            x, w = _leggauss(self.n_nodes)
            a = np.clip(e_low, self.e_min, self.e_max)[..., None]
            half = 0.5 * (self.e_max - a)
            E = a + half * (x + 1.0)
            out = out + self.continuous_weight * np.sum(self.pdf(E) * g(E) * w, axis=-1) * half[..., 0]
        for e_line, w_line in self.lines:
            E = np.full(e_low.shape + (1,), e_line)
            out = out + w_line * np.where(e_low < e_line, g(E)[..., 0], 0.0)
        return out

    def mean_energy(self) -> float:
        return float(self.fold(lambda E: E))
