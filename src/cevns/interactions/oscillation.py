"""Sterile-neutrino (3+1) disappearance at short baselines, averaged over the source and detector extent.

Active-to-sterile conversion removes neutrinos from the (flavour-blind) neutral-current CEvNS rate:
    P(ν_α → ν_s) = 4 |U_α4|² |U_s4|² sin²(1.267 Δm²₄₁[eV²] L[m] / E[MeV]),  |U_s4|² = 1 − |U_e4|² − |U_μ4|² − |U_τ4|²
(arXiv:2203.07323, Sec. 2 (short-baseline approximation); Giunti & Lasserre arXiv:1901.08330 Eq. (9)); ν_α → ν_β
among active flavours leaves CEvNS unchanged (flavour-universal SM charge). |U_τ4| = 0 here.
The average of sin²(kL) over a uniform baseline spread [L − ΔL/2, L + ΔL/2] is
    ⟨sin²⟩ = 1/2 − [sin(2k(L + ΔL/2)) − sin(2k(L − ΔL/2))]/(4kΔL).
"""
from __future__ import annotations

import numpy as np

from cevns.errors import PhysicsDomainError

__all__ = ["mean_sin2", "sterile_amplitude", "K_OSC"]

K_OSC = 1.267  # sin²(1.267 Δm²[eV²] L[m] / E[MeV]) (ħ, c and unit conversions, e.g. PDG 2024 Eq. (14.42))


def mean_sin2(dm2_eV2, L_m: float, E_MeV, dL_m: float = 1.0):
    """⟨sin²(1.267 Δm² L/E)⟩ over a uniform baseline spread ΔL [m] (ΔL = 0: no averaging); broadcasts Δm² and E."""
    if not (L_m > 0 and dL_m >= 0):
        raise PhysicsDomainError(f"baseline must be > 0 and its spread >= 0, got L = {L_m}, ΔL = {dL_m}")
    k = K_OSC * np.asarray(dm2_eV2, float) / np.asarray(E_MeV, float)
    if dL_m == 0:
        return np.sin(k * L_m) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        avg = 0.5 - (np.sin(2 * k * (L_m + dL_m / 2)) - np.sin(2 * k * (L_m - dL_m / 2))) / (4 * k * dL_m)
    return np.where(np.abs(k * dL_m) < 1e-8, np.sin(k * L_m) ** 2, avg)


def sterile_amplitude(flavour: str, Ue4_sq, Umu4_sq):
    """4|U_α4|²(1 − |U_e4|² − |U_μ4|²): the amplitude of ν_α → ν_s for α = e (ν_e, ν̄_e) or μ (ν_μ, ν̄_μ); 0 for τ."""
    ue, um = np.asarray(Ue4_sq, float), np.asarray(Umu4_sq, float)
    if np.any(ue < 0) or np.any(um < 0) or np.any(ue + um > 1):
        raise PhysicsDomainError("need |U_e4|², |U_μ4|² >= 0 with |U_e4|² + |U_μ4|² <= 1")
    us = 1.0 - ue - um
    base = flavour.removesuffix("bar")
    if base == "nue":
        return 4 * ue * us
    if base == "numu":
        return 4 * um * us
    return np.zeros(np.broadcast(ue, um).shape)
