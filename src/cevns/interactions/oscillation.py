"""Sterile-neutrino (3+1) short-baseline oscillations of ν_e, ν_μ (and antineutrinos), averaged over the baseline.

Effective two-flavour formulas of the 3+1 scheme (Acero et al., light sterile neutrino white paper, arXiv:2203.07323,
Sec. 2 (short-baseline approximation); Giunti & Lasserre, arXiv:1901.08330, Sec. 2):

    P_αα = 1 − 4 |U_α4|² (1 − |U_α4|²) sin²(Δ),      Δ = 1.267 Δm²₄₁[eV²] L[m] / E[MeV]
    P_αs = 4 |U_α4|² |U_s4|² sin²(Δ),   |U_s4|² = 1 − |U_e4|² − |U_μ4|² − |U_τ4|²  (here |U_τ4|² = 0)

P_αα is the survival (charged-current disappearance) probability; a neutral-current process such as CEvNS sees every
active flavour (flavour-universal SM charge) and loses only P_αs (mode 'nc', used by the rate terms). The two coincide
when only |U_α4|² is non-zero. (For ν–e scattering the ν_μ → ν_e appearance, 4|U_e4|²|U_μ4|² sin²Δ, would change the
cross section through the charged current; it is second order in the mixing and not modelled.) Both are
1 − A(U) ⟨sin²Δ⟩ with an amplitude A linear in each |U|² and an E-dependent factor, so a rate is R_SM − A(U) R_osc(Δm²):
:func:`sin2_kernel` wraps a kinematic kernel with ⟨sin²Δ⟩ for the flux fold (one fold per Δm²), and :func:`amplitude`
(or :func:`sterile_amplitude`) gives A for a batch of mixing points.

⟨sin²Δ⟩ is averaged over a baseline uniform in [L − ΔL/2, L + ΔL/2] (source and detector extent), analytically:
⟨sin²(kx)⟩ = 1/2 − [sin(2k(L + ΔL/2)) − sin(2k(L − ΔL/2))]/(4kΔL) = 1/2 − cos(2kL) sin(kΔL)/(2kΔL).
Fast oscillations average to 1/2.
"""
from __future__ import annotations

import numpy as np

from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.interactions.cevns import check_flavour
from cevns.interactions.process import Process

__all__ = ["OSC_PHASE_CONST", "K_OSC", "MODES", "sin2_average", "mean_sin2", "amplitude", "sterile_amplitude",
           "survival_probability", "active_probability", "sin2_kernel", "flux_weight", "STERILE_PROCESS"]

#: Δ = OSC_PHASE_CONST · Δm²[eV²] · L[m] / E[MeV] = Δm² L/(4E) in natural units: 1/(4 ħc) with ħc = 0.1973269804 eV µm
#: (the "1.267" of PDG 2024 §14)
OSC_PHASE_CONST = 1.0 / (4.0 * 0.1973269804)
K_OSC = OSC_PHASE_CONST  # name used by the batched models
MODES = ("nc", "survival")


def _nonneg(name, x):
    a = np.asarray(x, float)
    if not (np.all(np.isfinite(a)) and np.all(a >= 0)):
        raise PhysicsDomainError(f"{name} must be finite and >= 0")
    return a


def sin2_average(dm2_eV2, E_MeV, L_m: float, dL_m: float = 0.0):
    """⟨sin²(1.267 Δm² x/E)⟩ for x uniform in [L − ΔL/2, L + ΔL/2] (phase: arXiv:2203.07323 Sec. 2); broadcasts Δm²
    [eV²] against E [MeV]. dL_m = 0 gives the point-baseline sin²."""
    dm2 = _nonneg("dm2_41_eV2", dm2_eV2)
    E = np.asarray(E_MeV, float)
    if not (np.all(np.isfinite(E)) and np.all(E > 0)):
        raise PhysicsDomainError("neutrino energy E must be finite and > 0 [MeV]")
    if not (np.isfinite(L_m) and L_m > 0 and np.isfinite(dL_m) and 0 <= dL_m <= 2 * L_m):
        raise PhysicsDomainError(f"baseline must satisfy L_m > 0 and 0 <= dL_m <= 2 L_m, got L = {L_m!r}, ΔL = {dL_m!r}")
    k = OSC_PHASE_CONST * dm2 / E  # rad per m
    # sin(kΔL)/(kΔL) = np.sinc(kΔL/π): smooth at kΔL → 0 (no cancellation)
    return 0.5 - 0.5 * np.cos(2.0 * k * L_m) * np.sinc(k * dL_m / np.pi)


def mean_sin2(dm2_eV2, L_m: float, E_MeV, dL_m: float = 1.0):
    """⟨sin²(1.267 Δm² L/E)⟩ over a uniform baseline spread ΔL [m] (argument order of the batched models);
    same as :func:`sin2_average`."""
    return sin2_average(dm2_eV2, E_MeV, L_m, dL_m)


def amplitude(flavour: str, Ue4_sq=0.0, Umu4_sq=0.0, mode: str = "nc") -> np.ndarray:
    """A in P = 1 − A ⟨sin²Δ⟩ for ``flavour`` (arXiv:2203.07323 Sec. 2): mode 'survival' A = 4|U_α4|²(1 − |U_α4|²),
    mode 'nc' A = 4|U_α4|²(1 − |U_e4|² − |U_μ4|²) (active → sterile, |U_τ4|² = 0). ν_τ: A = 0 (no |U_τ4|²)."""
    check_flavour(flavour)
    if mode not in MODES:
        raise UnknownNameError("oscillation mode", mode, MODES)
    ue = _nonneg("Ue4_sq", Ue4_sq)
    um = _nonneg("Umu4_sq", Umu4_sq)
    if np.any(ue + um > 1.0):
        raise PhysicsDomainError("unitarity: need |U_e4|² + |U_μ4|² <= 1 (Ue4_sq + Umu4_sq)")
    fam = flavour.removeprefix("nu").removesuffix("bar")
    u = {"e": ue, "mu": um, "tau": np.zeros(np.broadcast(ue, um).shape)}[fam]
    us = 1.0 - ue - um if mode == "nc" else 1.0 - u
    return 4.0 * u * us


def sterile_amplitude(flavour: str, Ue4_sq, Umu4_sq):
    """4|U_α4|²(1 − |U_e4|² − |U_μ4|²): the amplitude of ν_α → ν_s (what CEvNS loses); 0 for ν_τ."""
    return amplitude(flavour, Ue4_sq, Umu4_sq, "nc")


def survival_probability(flavour: str, E_MeV, L_m: float, dm2_eV2, Ue4_sq=0.0, Umu4_sq=0.0, dL_m: float = 0.0):
    """P_αα = 1 − 4|U_α4|²(1 − |U_α4|²)⟨sin²(1.267 Δm² L/E)⟩ (arXiv:2203.07323 Sec. 2); broadcasts."""
    return 1.0 - amplitude(flavour, Ue4_sq, Umu4_sq, "survival") * sin2_average(dm2_eV2, E_MeV, L_m, dL_m)


def active_probability(flavour: str, E_MeV, L_m: float, dm2_eV2, Ue4_sq=0.0, Umu4_sq=0.0, dL_m: float = 0.0):
    """1 − P_αs: probability that ν_α is still an active neutrino (what a neutral-current rate sees)."""
    return 1.0 - amplitude(flavour, Ue4_sq, Umu4_sq, "nc") * sin2_average(dm2_eV2, E_MeV, L_m, dL_m)


def sin2_kernel(base_kernel, dm2_eV2: float, L_m: float, dL_m: float = 0.0):
    """Kinematic kernel (T, E, M) → base_kernel(T, E, M) · ⟨sin²Δ⟩(Δm², E): fold it with the flux once per Δm² to get
    R_osc; the oscillated rate is R_SM − A(U) R_osc with the weights of the same kernel."""
    dm2 = float(dm2_eV2)

    def kernel(T_MeV, E_MeV, M_MeV):
        return base_kernel(T_MeV, E_MeV, M_MeV) * sin2_average(dm2, E_MeV, L_m, dL_m)

    return kernel


def flux_weight(dm2_eV2: float, Ue4_sq: float, Umu4_sq: float, L_m: float, dL_m: float = 0.0, mode: str = "nc"):
    """Callable (flavour, E) → probability factor 1 − A(U)⟨sin²Δ⟩ for :func:`cevns.rates.fold_kernel` (one parameter
    point; mode 'nc' for CEvNS, 'survival' for P_αα)."""
    def weight(flavour, E_MeV):
        return 1.0 - amplitude(flavour, Ue4_sq, Umu4_sq, mode) * sin2_average(dm2_eV2, E_MeV, L_m, dL_m)

    return weight


# ---- the process (see cevns.interactions.process) ------------------------------------------------------------
def _sterile_flux(phys: dict, species, P: int):
    """(A (P,), Δm² (P,)): ν_α → ν_s removes A⟨sin²Δ⟩ of the flux seen by a neutral-current process (mode 'nc')."""
    from cevns.interactions.parameters import value

    A = amplitude(species.name, value(phys, "Ue4_sq", P), value(phys, "Umu4_sq", P), "nc")
    return np.broadcast_to(A, (P,)), value(phys, "dm2_41_eV2", P)


#: 3+1 sterile oscillation: a flux modifier, R = R_SM − A(U) R_osc(Δm²)
STERILE_PROCESS = Process("sterile_oscillation", ("dm2_41_eV2", "Ue4_sq", "Umu4_sq"),
                          "3+1 sterile-neutrino oscillation between source and detector (acts on the flux)",
                          flux=_sterile_flux)
