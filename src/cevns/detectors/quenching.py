"""Quenching: electron-equivalent energy E_ee [keVee] from nuclear recoil energy T [keVnr].

Each model is a callable ``eee_keV(T_keV)``. Constant QF (COHERENT CsI 2017: 0.0878, arXiv:1804.09459),
polynomial E_ee(T) (COHERENT CsI 2021, arXiv:2110.07730), linear QF(T) (CENNS-10: QF = 0.246 + 0.00078 T,
arXiv:2003.10630), a table of QF(T) interpolated linearly (given inline or as a user's two-column file), Lindhard's
model with a free k and an optional adiabatic correction (germanium; :class:`Lindhard`), or no quenching at all
(calorimeters that measure the full recoil energy; :class:`NoQuenching`). Named germanium models for the command
line: :data:`GERMANIUM_QF_PRESETS` ('lindhard' k = 0.157; 'ybe': the ⁸⁸Y/Be photoneutron characterisation of
arXiv:1608.03588; 'fef': the iron-filter characterisation of arXiv:2102.10089, whose parameterisation is not shipped
here: it needs a user table).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cevns.errors import ConfigError, PhysicsDomainError

__all__ = ["ConstantQuenching", "PolynomialEee", "LinearQF", "TabulatedQF", "Lindhard", "NoQuenching",
           "lindhard_epsilon", "lindhard_g", "quenching_from_spec", "quenching_from_release_coeffs",
           "variant_coefficients", "GERMANIUM_QF_PRESETS", "germanium_qf_preset"]


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
        q = np.asarray(self.qf, dtype=float)
        if not (np.all(np.isfinite(q)) and np.all(q >= 0) and np.all(q <= 1)):
            raise ConfigError("tabulated quenching factors must lie in [0, 1]")

    def eee_keV(self, T_keV):
        T = np.asarray(T_keV, dtype=float)
        return np.interp(T, self.T_keV, self.qf) * T


def lindhard_epsilon(T_keV, Z: int):
    """Lindhard's reduced energy ε = 11.5 Z^(−7/3) T[keV] (Lindhard et al., Mat. Fys. Medd. Dan. Vid. Selsk. 33, 10
    (1963); the form used by arXiv:1608.03588 and arXiv:2011.00210, equation numbers not re-checked here)."""
    return 11.5 * float(Z) ** (-7.0 / 3.0) * np.asarray(T_keV, dtype=float)


def lindhard_g(eps):
    """g(ε) = 3 ε^0.15 + 0.7 ε^0.6 + ε, the standard fit to Lindhard's electronic/nuclear stopping ratio (same refs)."""
    e = np.maximum(np.asarray(eps, dtype=float), 0.0)
    return 3.0 * e**0.15 + 0.7 * e**0.6 + e


@dataclass(frozen=True)
class Lindhard:
    """QF(T) = k g(ε)/(1 + k g(ε)) (Lindhard 1963) × (1 − exp(−T/ξ)) when ``adiabatic_xi_keV`` = ξ > 0 (the adiabatic
    correction used with ⁸⁸Y/Be data in arXiv:1608.03588: k = 0.179, ξ = 0.16 keVnr give QF = 13.7 % at 0.3 keVnr
    and 25.3 % at 8.5 keVnr, its abstract); E_ee = QF · T, T in keVnr, ``Z`` the target's atomic number."""

    k: float
    Z: int = 32
    adiabatic_xi_keV: float = 0.0

    def __post_init__(self):
        if not (0 < _finite("Lindhard k", self.k) <= 10):
            raise PhysicsDomainError(f"Lindhard k must be in (0, 10], got {self.k}")
        if not (isinstance(self.Z, (int, float)) and 1 <= self.Z <= 120):
            raise PhysicsDomainError(f"Lindhard model: atomic number Z must be in [1, 120], got {self.Z!r}")
        if not (_finite("adiabatic xi [keV]", self.adiabatic_xi_keV) >= 0):
            raise PhysicsDomainError(f"adiabatic xi must be >= 0 keV, got {self.adiabatic_xi_keV}")

    def qf(self, T_keV):
        T = np.maximum(np.asarray(T_keV, dtype=float), 0.0)
        kg = self.k * lindhard_g(lindhard_epsilon(T, self.Z))
        q = kg / (1.0 + kg)
        if self.adiabatic_xi_keV > 0:
            q = q * (1.0 - np.exp(-T / self.adiabatic_xi_keV))
        return q

    def eee_keV(self, T_keV):
        T = np.asarray(T_keV, dtype=float)
        return self.qf(T) * np.maximum(T, 0.0)


@dataclass(frozen=True)
class NoQuenching:
    """E = T: the full recoil energy is seen (calorimeters whose observable is the recoil energy itself)."""

    def eee_keV(self, T_keV):
        return np.asarray(T_keV, dtype=float).copy()


#: named germanium quenching models (``cevns predict --qf NAME``): spec dicts of the detector's quenching section
GERMANIUM_QF_PRESETS = {
    "lindhard": {"model": "lindhard", "k": 0.157, "Z": 32,
                 "note": "Lindhard k = 0.157 (the Dresden-II reference value, arXiv:2202.09672)"},
    "ybe": {"model": "lindhard", "k": 0.179, "Z": 32, "adiabatic_xi_keV": 0.16,
            "note": "88Y/Be photoneutron characterisation: Lindhard k = 0.179 with the adiabatic correction xi = 0.16 "
                    "keVnr (Scholz et al., arXiv:1608.03588); NOT the newer YBe analysis of arXiv:2102.10089"},
    "fef": None,  # the iron-filter model of arXiv:2102.10089: no public parameterisation shipped, needs a table
    "none": {"model": "none", "note": "no quenching (calorimeter)"},
}


def germanium_qf_preset(name: str, table=None) -> dict:
    """The quenching section of a named germanium model (:data:`GERMANIUM_QF_PRESETS`); ``table`` = path of a
    user's two-column file (T [keVnr], QF) for 'fef' or 'tabulated'."""
    if name not in GERMANIUM_QF_PRESETS and name != "tabulated":
        from cevns.errors import UnknownNameError

        raise UnknownNameError("quenching model", name, list(GERMANIUM_QF_PRESETS) + ["tabulated"])
    if name in ("fef", "tabulated"):
        if table is None:
            raise ConfigError(f"quenching model {name!r} needs a table: give a two-column file of T [keVnr] and QF "
                              "(--qf-table FILE); the iron-filter (Fef) parameterisation of arXiv:2102.10089 is not "
                              "shipped with cevns")
        return {"model": "tabulated", "file": str(table), "note": f"user table for {name!r}"}
    return dict(GERMANIUM_QF_PRESETS[name])


def quenching_from_spec(spec: dict):
    """Build a quenching model from a spec dict {'model': 'constant'|'polynomial_eee'|'linear_qf'|'tabulated'|
    'lindhard'|'none', ...}."""
    model = spec.get("model")
    if model == "lindhard":
        return Lindhard(spec["k"], spec.get("Z", 32), spec.get("adiabatic_xi_keV", 0.0))
    if model == "none":
        return NoQuenching()
    if model == "constant":
        return ConstantQuenching(spec["qf"])
    if model == "polynomial_eee":
        return PolynomialEee(tuple(spec["coeffs"]))
    if model == "linear_qf":
        return LinearQF(spec["a"], spec["b"])
    if model == "tabulated":
        return TabulatedQF(tuple(spec["T_keV"]), tuple(spec["qf"]))
    raise ConfigError(f"unknown quenching model {model!r}; allowed: constant, polynomial_eee, linear_qf, tabulated, "
                      "lindhard, none")


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
