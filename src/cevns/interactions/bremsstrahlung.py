"""Bremsstrahlung: a photon emitted by the recoiling atom in dark matter–nucleus scattering.

The double-differential cross section for a photon of energy ω and a recoil T (Kouvaris & Pradler,
arXiv:1607.01789, Eq. (8), as implemented in wimprates' ``bremsstrahlung.py``):

    d²σ/dω dT = (4α / 3πω) · (T/M) · |f(ω)|² · dσ/dT,    |f(ω)|² = f₁(ω)² + f₂(ω)²,

with dσ/dT the spin-independent elastic cross section (:mod:`cevns.interactions.dark_matter`) and f₁, f₂ the atomic
scattering factors of the target (``cevns/data/bremsstrahlung_xe``: xenon only; provenance in its SOURCE.md). The
kinematics (photon energy ω taken from the recoil) are those of the Migdal effect: the spectrum in ω is
:func:`cevns.interactions.dark_matter.em_emission_spectrum` with :func:`bremsstrahlung_probability`.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from cevns import constants as C
from cevns.errors import DataError, UnknownNameError

__all__ = ["BREMS_ELEMENTS", "atomic_form_factor_sq", "bremsstrahlung_probability"]

BREMS_ELEMENTS = ("Xe",)


@lru_cache(maxsize=None)
def _table(name: str) -> tuple[np.ndarray, np.ndarray]:
    path = resources.files("cevns") / "data" / "bremsstrahlung_xe" / name
    try:
        arr = np.loadtxt(str(path), delimiter=",", ndmin=2)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read atomic scattering factors {path}: {exc}") from exc
    if arr.shape[1] != 2 or arr.shape[0] < 50 or np.any(np.diff(arr[:, 0]) <= 0) or not np.all(np.isfinite(arr)):
        raise DataError(f"{path}: expected >= 50 rows of increasing photon energy [keV] and a scattering factor")
    return arr[:, 0], arr[:, 1]


def _interp_extrapolate(x, xp, fp):
    """Linear interpolation with linear extrapolation beyond both ends (scipy's fill_value='extrapolate')."""
    x = np.asarray(x, float)
    y = np.interp(x, xp, fp)
    lo, hi = x < xp[0], x > xp[-1]
    y = np.where(lo, fp[0] + (x - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0]), y)
    return np.where(hi, fp[-1] + (x - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2]), y)


def atomic_form_factor_sq(omega_keV, element: str = "Xe") -> np.ndarray:
    """|f(ω)|² = f₁² + f₂² of the atom at photon energy ω [keV] (tables of ``cevns/data/bremsstrahlung_xe``)."""
    if element not in BREMS_ELEMENTS:
        raise UnknownNameError("Bremsstrahlung target element (atomic scattering factors shipped)", element,
                               BREMS_ELEMENTS)
    f1 = _interp_extrapolate(omega_keV, *_table("atomic_form_1"))
    f2 = _interp_extrapolate(omega_keV, *_table("atomic_form_2"))
    return f1 * f1 + f2 * f2


def bremsstrahlung_probability(T_MeV, omega_MeV, iso) -> np.ndarray:
    """dP/dω [1/MeV] = 4α |f(ω)|² T / (3π ω M) (Kouvaris & Pradler, arXiv:1607.01789, Eq. (8)); arrays broadcast."""
    w = np.asarray(omega_MeV, float)
    T = np.asarray(T_MeV, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 4.0 * C.ALPHA_EM / (3.0 * np.pi * w) * T / iso.mass_MeV * atomic_form_factor_sq(w / C.keV, iso.symbol)
    return np.where(w > 0, p, 0.0)
