"""Quenching: electron-equivalent energy E_ee [keVee] from nuclear recoil energy T [keVnr].

Each model is a callable ``eee_keV(T_keV)``. Constant QF (COHERENT CsI 2017: 0.0878, arXiv:1804.09459),
polynomial E_ee(T) (COHERENT CsI 2021, arXiv:2110.07730), linear QF(T) (CENNS-10: QF = 0.246 + 0.00078 T,
arXiv:2003.10630), or a table of QF(T) interpolated linearly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cevns.errors import ConfigError, PhysicsDomainError

__all__ = ["ConstantQuenching", "PolynomialEee", "LinearQF", "TabulatedQF", "quenching_from_spec",
           "quenching_from_release_coeffs", "variant_coefficients"]


def _finite(name, v):
    if not (isinstance(v, (int, float)) and math.isfinite(v)):
        raise PhysicsDomainError(f"{name} must be a finite number, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class ConstantQuenching:
    """E_ee = qf · T."""

    qf: float

    def __post_init__(self):
        if not (0 < _finite("quenching factor", self.qf) <= 1):
            raise PhysicsDomainError(f"quenching factor must be in (0, 1], got {self.qf}")

    def eee_keV(self, T_keV):
        return self.qf * np.asarray(T_keV, dtype=float)


@dataclass(frozen=True)
class PolynomialEee:
    """E_ee [keVee] = Σ_k c_k T^k with T in keVnr (``coeffs`` lowest order first)."""

    coeffs: tuple[float, ...]

    def eee_keV(self, T_keV):
        T = np.asarray(T_keV, dtype=float)
        return np.polynomial.polynomial.polyval(T, np.asarray(self.coeffs, dtype=float))


@dataclass(frozen=True)
class LinearQF:
    """QF(T) = a + b·T (T in keVnr), E_ee = QF(T)·T (arXiv:2003.10630 for argon)."""

    a: float
    b: float

    def eee_keV(self, T_keV):
        T = np.asarray(T_keV, dtype=float)
        return (self.a + self.b * T) * T


@dataclass(frozen=True)
class TabulatedQF:
    """QF(T) from a table (T_keV increasing), linear interpolation, constant beyond the ends."""

    T_keV: tuple[float, ...]
    qf: tuple[float, ...]

    def __post_init__(self):
        t = np.asarray(self.T_keV, dtype=float)
        if len(t) < 2 or len(t) != len(self.qf) or np.any(np.diff(t) <= 0):
            raise ConfigError("tabulated quenching needs >= 2 increasing T_keV values and as many qf values")

    def eee_keV(self, T_keV):
        T = np.asarray(T_keV, dtype=float)
        return np.interp(T, self.T_keV, self.qf) * T


def quenching_from_spec(spec: dict):
    """Build a quenching model from a spec dict {'model': 'constant'|'polynomial_eee'|'linear_qf'|'tabulated', ...}."""
    model = spec.get("model")
    if model == "constant":
        return ConstantQuenching(spec["qf"])
    if model == "polynomial_eee":
        return PolynomialEee(tuple(spec["coeffs"]))
    if model == "linear_qf":
        return LinearQF(spec["a"], spec["b"])
    if model == "tabulated":
        return TabulatedQF(tuple(spec["T_keV"]), tuple(spec["qf"]))
    raise ConfigError(f"unknown quenching model {model!r}; allowed: constant, polynomial_eee, linear_qf, tabulated")


def quenching_from_release_coeffs(coeffs_MeV) -> PolynomialEee:
    """E_ee [keVee] from E_nr [keVnr] for E_ee[MeVee] = Σ_k c_k x^k, x = E_nr [MeVnr] (k = 1..4, the convention of the
    COHERENT CsI 2021 release's ``scintRespCoefficients.txt``, arXiv:2110.07730): c_k in keV units is c_k·10³·10^{−3k}."""
    c = np.asarray(coeffs_MeV, dtype=float)
    return PolynomialEee(tuple([0.0] + [float(c[k - 1]) * 1e3 * 1e-3**k for k in range(1, len(c) + 1)]))


def variant_coefficients(nominal, plus, minus, z: float) -> np.ndarray:
    """Coefficients at z standard deviations of a released ±1σ pair: nominal + z (plus − nominal) for z ≥ 0,
    nominal + |z| (minus − nominal) for z < 0 (linear in the coefficients, as the release's variants are)."""
    nominal, plus, minus = (np.asarray(a, float) for a in (nominal, plus, minus))
    return nominal + (z * (plus - nominal) if z >= 0 else -z * (minus - nominal))
