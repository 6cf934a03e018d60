"""Neutrino–electron elastic scattering: SM, magnetic moment, charge radius and light mediators; atomic binding.

SM (tree level; 't Hooft, PLB 37, 195 (1971); Vogel & Engel, PRD 39, 3378 (1989); PDG 2024 §10 "Electroweak model",
ν–e scattering):

    dσ/dT_e = (2 G_F² m_e/π) [g_L² + g_R² (1 − T/E)² − g_L g_R m_e T/E²],   0 ≤ T_e ≤ 2E²/(m_e + 2E)

with g_L = −1/2 + s²_W, g_R = s²_W for ν_μ, ν_τ; the charged current adds 1 to g_L for ν_e; for antineutrinos
g_L ↔ g_R. A vector shift δ of g_V^e (= g_L + g_R) enters as g_{L,R} → g_{L,R} + δ/2 before the ν̄ swap: the charge
radius (δ = +x, :func:`cevns.interactions.electromagnetic.charge_radius_shift`) and a Z′ (δ = ε^{eV}(q² = 2 m_e T),
:func:`cevns.interactions.mediators.vector_epsilon`). The magnetic moment (Vogel & Engel) and a scalar (arXiv:1604.01025
Sec. 2) add incoherently. Radiative corrections (≈ 1–2 %, Bahcall, Kamionkowski & Sirlin, astro-ph/9502003) are
not included: s²_W is the low-energy MS-bar value of :mod:`cevns.constants` unless given.

The cross section is written as Σ_k w_k(T) K_k(T, E) with flavour-independent kinematic kernels
(``e_L``: 1, ``e_R``: (1 − T/E)², ``e_LR``: −m_e T/E², each × 2 G_F² m_e/π; ``e_magnetic``; ``e_scalar``) and
weights carrying every coupling, so the rate engine folds each kernel with the flux once.

Atomic binding: step approximation (the 'Z_eff(T_e)' of Coloma et al. arXiv:2202.10829 Sec. 2):
an electron with binding energy B contributes as a free electron for T_e > B and not at all below, so the cross section
per atom is Z_eff(T_e) × (free-electron cross section) with Z_eff(T_e) = Σ_shells n_i Θ(T_e − B_i). Binding energies:
X-Ray Data Booklet (LBNL, 2009) Table 1-1 (G. P. Williams, from Bearden & Burr RMP 39, 125 (1967), Cardona & Ley, Fuggle &
Mårtensson), per sub-shell, for the elements in their natural form. Shells the table does not list (Na 3s, Ge 4s/4p,
I 5s/5p, Cs 6s) are given the element's first ionisation energy (NIST ASD) — an approximation that only matters for
T_e below ~20 eV, far under any detector threshold here.
"""
from __future__ import annotations

import math

import numpy as np

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.interactions.cevns import check_flavour, t_max
from cevns.interactions.electromagnetic import charge_radius_shift, electron_magnetic_kernel
from cevns.interactions.mediators import electron_scalar_kernel, scalar_weight, vector_epsilon

__all__ = ["ELECTRON_PREFACTOR_CM2_PER_MeV", "kernel_e_L", "kernel_e_R", "kernel_e_LR", "ELECTRON_KERNELS",
           "electron_couplings", "dsigma_dT_electron", "total_cross_section_electron", "ATOMIC_SHELLS_eV",
           "electrons_available", "t_max_electron"]

#: 2 G_F² m_e/π (ħc)² [cm²/MeV]
ELECTRON_PREFACTOR_CM2_PER_MeV = 2.0 * C.G_FERMI_MeV2**2 * C.M_ELECTRON / math.pi * C.HBARC2_MeV2_cm2


def t_max_electron(E_MeV):
    """Maximum electron recoil [MeV]: 2E²/(m_e + 2E)."""
    return t_max(E_MeV, C.M_ELECTRON)


def _ok(T, E):
    return (T >= 0) & (E > 0) & (T <= t_max_electron(np.where(E > 0, E, 0.0)))


def kernel_e_L(T_MeV, E_MeV, M_MeV=C.M_ELECTRON):
    """ν–e kernel multiplying g_L²: 2 G_F² m_e/π (ħc)² [cm²/MeV] for 0 ≤ T ≤ T_max (PDG 2024 §10). M is ignored."""
    T, E = np.asarray(T_MeV, float), np.asarray(E_MeV, float)
    return np.where(_ok(T, E), ELECTRON_PREFACTOR_CM2_PER_MeV, 0.0)


def kernel_e_R(T_MeV, E_MeV, M_MeV=C.M_ELECTRON):
    """ν–e kernel multiplying g_R²: 2 G_F² m_e/π (1 − T/E)² (ħc)² [cm²/MeV] (PDG 2024 §10). M is ignored."""
    T, E = np.asarray(T_MeV, float), np.asarray(E_MeV, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = 1.0 - T / E
    return np.where(_ok(T, E), ELECTRON_PREFACTOR_CM2_PER_MeV * y * y, 0.0)


def kernel_e_LR(T_MeV, E_MeV, M_MeV=C.M_ELECTRON):
    """ν–e kernel multiplying g_L g_R: −2 G_F² m_e/π · m_e T/E² (ħc)² [cm²/MeV] (PDG 2024 §10). M is ignored."""
    T, E = np.asarray(T_MeV, float), np.asarray(E_MeV, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = C.M_ELECTRON * T / (E * E)
    return np.where(_ok(T, E), -ELECTRON_PREFACTOR_CM2_PER_MeV * r, 0.0)


#: kinematic kernels of ν–e scattering by name (signature (T, E, M); M ignored, the target is an electron)
ELECTRON_KERNELS = {"e_L": kernel_e_L, "e_R": kernel_e_R, "e_LR": kernel_e_LR, "e_magnetic": electron_magnetic_kernel,
                    "e_scalar": electron_scalar_kernel}


def electron_couplings(flavour: str, sin2_theta_w=None, delta_gV=0.0):
    """(g_L, g_R) of ν–e scattering for ``flavour`` (tree level, PDG 2024 §10): g_L = −1/2 + s² (+1 for ν_e, charged
    current), g_R = s²; a vector shift δ (charge radius, Z′) adds δ/2 to each; antineutrinos swap g_L ↔ g_R.
    Arrays broadcast (s² and δ may have shapes (P,) / (P, nodes))."""
    check_flavour(flavour)
    s2 = C.SIN2_THETA_W_0 if sin2_theta_w is None else np.asarray(sin2_theta_w, float)
    if not np.all((np.asarray(s2) >= 0) & (np.asarray(s2) <= 1)):
        raise PhysicsDomainError(f"sin2_theta_w must be in [0, 1], got {sin2_theta_w!r}")
    d = np.asarray(delta_gV, float)
    gL = -0.5 + s2 + 0.5 * d
    gR = s2 + 0.5 * d
    if flavour.removesuffix("bar") == "nue":
        gL = gL + 1.0
    if flavour.endswith("bar"):
        gL, gR = gR, gL
    return gL, gR


def dsigma_dT_electron(T_MeV, E_MeV, flavour: str = "numu", *, sin2_theta_w=None, mu_nu_1e10: float = 0.0,
                       r2_1e32_cm2: float = 0.0, g_zprime: float = 0.0, m_zprime_MeV: float = 1e3,
                       zprime_model="universal", g_scalar: float = 0.0, m_scalar_MeV: float = 1e3):
    """dσ/dT_e [cm²/MeV] per free electron at electron recoil T and neutrino energy E [MeV] (broadcast): SM
    (PDG 2024 §10) + charge radius + Z′ interference, plus the incoherent magnetic-moment (Vogel & Engel PRD 39, 3378)
    and scalar (arXiv:1604.01025 Sec. 2) terms. μ_ν in 10⁻¹⁰ μ_B, ⟨r²⟩ in 10⁻³² cm², masses in MeV."""
    T = np.asarray(T_MeV, float)
    E = np.asarray(E_MeV, float)
    if not (np.all(np.isfinite(T)) and np.all(T >= 0)):
        raise PhysicsDomainError("electron recoil energy T must be finite and >= 0 [MeV]")
    if not (np.all(np.isfinite(E)) and np.all(E > 0)):
        raise PhysicsDomainError("neutrino energy E must be finite and > 0 [MeV]")
    T, E = np.broadcast_arrays(T, E)
    delta = charge_radius_shift(r2_1e32_cm2)
    if g_zprime != 0.0:
        delta = delta + vector_epsilon(g_zprime, m_zprime_MeV, (2.0 * C.M_ELECTRON * T).ravel(),
                                       zprime_model)["e"][0].reshape(T.shape)
    gL, gR = electron_couplings(flavour, sin2_theta_w, delta)
    out = gL * gL * kernel_e_L(T, E) + gR * gR * kernel_e_R(T, E) + gL * gR * kernel_e_LR(T, E)
    if mu_nu_1e10 != 0.0:
        out = out + mu_nu_1e10**2 * electron_magnetic_kernel(T, E)
    if g_scalar != 0.0:
        w = scalar_weight(g_scalar, m_scalar_MeV, T.ravel(), C.M_ELECTRON, 1.0)[0].reshape(T.shape)
        out = out + w * electron_scalar_kernel(T, E)
    return out


def total_cross_section_electron(E_MeV, flavour: str = "numu", T_min_MeV: float = 0.0, n_nodes: int = 64, **kwargs):
    """σ(E) = ∫_{T_min}^{T_max} dσ/dT_e dT [cm²] per free electron (Gauss–Legendre; the SM integrand is a polynomial
    in T, so this is exact for it). ``kwargs`` go to :func:`dsigma_dT_electron`."""
    E = np.atleast_1d(np.asarray(E_MeV, float))
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    tm = t_max_electron(E)[:, None]
    lo = np.minimum(T_min_MeV, tm)
    T = lo + 0.5 * (tm - lo) * (x + 1.0)
    vals = dsigma_dT_electron(T, E[:, None], flavour, **kwargs)
    out = np.sum(vals * w, axis=-1) * 0.5 * (tm - lo)[:, 0]
    return out if np.ndim(E_MeV) else out[0]


# Sub-shell occupancies and binding energies [eV]: X-Ray Data Booklet Table 1-1 (natural forms); '*' = first ionisation
# energy (NIST ASD) for valence shells the table omits.
ATOMIC_SHELLS_eV: dict[str, tuple[tuple[int, float], ...]] = {
    "Na": ((2, 1070.8), (2, 63.5), (2, 30.4), (4, 30.5), (1, 5.14)),  # 3s*
    "Ar": ((2, 3205.9), (2, 326.3), (2, 250.6), (4, 248.4), (2, 29.3), (2, 15.9), (4, 15.7)),
    "Ge": ((2, 11103.1), (2, 1414.6), (2, 1248.1), (4, 1217.0), (2, 180.1), (2, 124.9), (4, 120.8), (4, 29.8),
           (6, 29.2), (4, 7.90)),  # 4s²4p²*
    "I": ((2, 33169.0), (2, 5188.0), (2, 4852.0), (4, 4557.0), (2, 1072.0), (2, 931.0), (4, 875.0), (4, 630.8),
          (6, 619.3), (2, 186.0), (2, 123.0), (4, 123.0), (4, 50.6), (6, 48.9), (7, 10.45)),  # 5s²5p⁵*
    "Xe": ((2, 34561.0), (2, 5453.0), (2, 5107.0), (4, 4786.0), (2, 1148.7), (2, 1002.1), (4, 940.6), (4, 689.0),
           (6, 676.4), (2, 213.2), (2, 146.7), (4, 145.5), (4, 69.5), (6, 67.5), (2, 23.3), (2, 13.4), (4, 12.1)),
    "Cs": ((2, 35985.0), (2, 5714.0), (2, 5359.0), (4, 5012.0), (2, 1211.0), (2, 1071.0), (4, 1003.0), (4, 740.5),
           (6, 726.6), (2, 232.3), (2, 172.4), (4, 161.3), (4, 79.8), (6, 77.5), (2, 22.7), (2, 14.2), (4, 12.1),
           (1, 3.89)),  # 6s*
}


def electrons_available(element: str, T_MeV) -> np.ndarray:
    """Z_eff(T_e): number of electrons of a neutral ``element`` atom with binding energy below T_e [MeV]
    (step approximation; X-Ray Data Booklet Table 1-1 binding energies)."""
    try:
        shells = ATOMIC_SHELLS_eV[element]
    except KeyError:
        raise UnknownNameError("element with tabulated atomic shells", element, ATOMIC_SHELLS_eV) from None
    T_eV = np.asarray(T_MeV, float) / C.eV
    out = np.zeros(T_eV.shape)
    for n, b in shells:
        out = out + n * (T_eV > b)
    return out
