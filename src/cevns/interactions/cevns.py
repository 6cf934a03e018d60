"""Standard-Model coherent elastic neutrino-nucleus scattering (CEvNS).

dσ/dT = G_F² M / π · [Z g_V^p F_p(q) + N g_V^n F_n(q)]² · (1 − T/E − M T / 2E²),   0 ≤ T ≤ T_max
(Freedman PRD 9, 1389 (1974); in this normalisation, e.g. Barranco, Miranda & Rashba hep-ph/0508299 Eq. (1) and
COHERENT arXiv:1708.01294 Eq. (1) with Q_W = 2[Z g_V^p + N g_V^n]).

The cross section factorises into a weak charge that depends on T only (through q) and a kinematic kernel that
depends on (T, E): every model of this package that changes only the charge (sin²θ_W, radii, NSI, Z′) reuses
flux-integrated kernels. Energies in MeV, cross sections in cm² (differential: cm²/MeV).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.interactions.kinematics import e_min, t_max
from cevns.targets.form_factors import form_factor, helm_rms_radius_default_fm, q_fm_from_recoil
from cevns.targets.isotopes import Isotope, isotope as lookup_isotope

__all__ = ["FLAVOURS", "t_max", "e_nu_min", "kinematic_kernel", "nucleon_couplings", "weak_charge", "dsigma_dT",
           "total_cross_section", "check_flavour", "nucleon_form_factors", "COUPLING_SCHEMES", "DEFAULT_SCHEME",
           "sin2_slope"]

FLAVOURS = ("nue", "numu", "nutau", "nuebar", "numubar", "nutaubar")


def check_flavour(flavour: str) -> str:
    if flavour not in FLAVOURS:
        raise UnknownNameError("neutrino flavour", flavour, FLAVOURS)
    return flavour


def _check_positive(name: str, x, allow_zero: bool = False) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(a)):
        raise PhysicsDomainError(f"{name} must be finite, got non-finite values")
    if np.any(a < 0) or (not allow_zero and np.any(a == 0)):
        raise PhysicsDomainError(f"{name} must be {'>= 0' if allow_zero else '> 0'} [MeV], got min {a.min()!r}")
    return a


def e_nu_min(T_MeV, M_MeV):
    """Minimum neutrino energy [MeV] that can give a recoil T on mass M: E_min = (T + √(T² + 2MT))/2
    (:func:`cevns.interactions.kinematics.e_min` with m = 0)."""
    return e_min(T_MeV, M_MeV)


def kinematic_kernel(T_MeV, E_MeV, M_MeV):
    """G_F² M/π (1 − T/E − MT/2E²) (ħc)² [cm²/MeV], zero where T > T_max(E). Multiply by the weak charge squared
    (Z g_V^p F_p + N g_V^n F_n)² for dσ/dT (arXiv:1708.01294 Eq. (1))."""
    T = np.asarray(T_MeV, dtype=float)
    E = np.asarray(E_MeV, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        kin = 1.0 - T / E - M_MeV * T / (2.0 * E * E)
    kin = np.where((kin > 0) & (E > 0), kin, 0.0)
    return C.G_FERMI_MeV2**2 * M_MeV / math.pi * kin * C.HBARC2_MeV2_cm2


#: coupling schemes of :func:`nucleon_couplings`
COUPLING_SCHEMES = ("one_loop", "tree", "charge_radius")
DEFAULT_SCHEME = "one_loop"


@lru_cache(maxsize=None)
def _one_loop(family: str) -> tuple[float, float]:
    """(g_V^p, g_V^n) at ŝ²(0) = SIN2_THETA_W_0 for a neutrino of lepton ``family``: PDG 2024 §10 Eqs. (10.32)-(10.33)
    for ν_μ (κ̂_νN contains the ν_μ charge radius), shifted by the charge-radius difference to family ℓ,
    g_V^p(ν_ℓ) = g_V^p(ν_μ) − x(⟨r²_νℓ⟩ − ⟨r²_νμ⟩) (Vogel & Engel PRD 39, 3378; arXiv:1810.05606 Sec. 2)."""
    from cevns.interactions.electromagnetic import SM_CHARGE_RADII_1E32_CM2, charge_radius_shift

    gu = C.RHO_NU_N * (0.5 - 4.0 / 3.0 * C.KAPPA_NU_N * C.SIN2_THETA_W_MZ) + C.LAMBDA_UL + C.LAMBDA_UR
    gd = C.RHO_NU_N * (-0.5 + 2.0 / 3.0 * C.KAPPA_NU_N * C.SIN2_THETA_W_MZ) + C.LAMBDA_DL + C.LAMBDA_DR
    gp_mu, gn = 2.0 * gu + gd, gu + 2.0 * gd
    r2 = SM_CHARGE_RADII_1E32_CM2
    return float(gp_mu - charge_radius_shift(r2[family] - r2["mu"])), float(gn)


def nucleon_couplings(flavour: str = "numu", sin2_theta_w: float | None = None,
                      scheme: str = DEFAULT_SCHEME) -> tuple[float, float]:
    """Vector couplings (g_V^p, g_V^n) of a neutrino of ``flavour`` to protons and neutrons.

    scheme 'one_loop' (default): radiatively corrected and flavour dependent through the SM neutrino charge radii,
    PDG 2024 §10 Eqs. (10.32)-(10.33) (Erler & Su, arXiv:1303.5522): g_V^p = 0.0388 (ν_e), 0.0305 (ν_μ), 0.0262 (ν_τ),
    g_V^n = −0.5120; antineutrinos as their neutrinos (the charge radius and the vector amplitude flip together).
    A different low-energy weak mixing angle shifts g_V^p by −2ρ_νN (s² − s²₀).
    scheme 'tree': g_V^p = 1/2 − 2 s², g_V^n = −1/2 (arXiv:1708.01294 Eq. (1); the COHERENT papers' convention).
    scheme 'charge_radius': the ν_e, ν_μ values of Cadeddu et al. (arXiv:2005.01645 Sec. II), g_V^p shifted by −2Δs².
    """
    check_flavour(flavour)
    s2 = C.SIN2_THETA_W_0 if sin2_theta_w is None else float(sin2_theta_w)
    if not (math.isfinite(s2) and 0.0 <= s2 <= 1.0):
        raise PhysicsDomainError(f"sin2_theta_w must be in [0, 1], got {sin2_theta_w!r}")
    base = flavour.removesuffix("bar")
    if scheme == "one_loop":
        gp, gn = _one_loop(base.removeprefix("nu"))
        return gp - 2.0 * C.RHO_NU_N * (s2 - C.SIN2_THETA_W_0), gn
    if scheme == "tree":
        return 0.5 - 2.0 * s2, -0.5
    if scheme == "charge_radius":
        if base not in C.G_V_PROTON_CR:
            raise UnknownNameError("flavour for the charge_radius scheme", flavour, ["nue", "numu", "nuebar", "numubar"])
        return C.G_V_PROTON_CR[base] - 2.0 * (s2 - C.SIN2_THETA_W_0), C.G_V_NEUTRON_CR
    raise UnknownNameError("coupling scheme", scheme, COUPLING_SCHEMES)


def sin2_slope(scheme: str = DEFAULT_SCHEME) -> float:
    """dg_V^p/d sin²θ_W of a coupling scheme (−2ρ_νN at one loop, −2 otherwise); g_V^n does not depend on it."""
    if scheme not in COUPLING_SCHEMES:
        raise UnknownNameError("coupling scheme", scheme, COUPLING_SCHEMES)
    return -2.0 * C.RHO_NU_N if scheme == "one_loop" else -2.0


def nucleon_form_factors(T_MeV, iso: Isotope | str, form_factor_model: str = "helm", r_p_fm: float | None = None,
                         r_n_fm: float | None = None):
    """(F_p(q), F_n(q)) at recoil T [MeV]; radii default to the Lewin–Smith Helm rms radius of the nucleus."""
    iso = lookup_isotope(iso)
    q = q_fm_from_recoil(T_MeV, iso.mass_MeV)
    r_default = helm_rms_radius_default_fm(iso.A)
    rp = r_default if r_p_fm is None else r_p_fm
    rn = r_default if r_n_fm is None else r_n_fm
    Fp = form_factor(form_factor_model, q, rp, iso.name)
    Fn = Fp if rn == rp else form_factor(form_factor_model, q, rn, iso.name)
    return Fp, Fn


def weak_charge(T_MeV, iso: Isotope | str, flavour: str = "numu", *, sin2_theta_w: float | None = None,
                form_factor_model: str = "helm", r_p_fm: float | None = None, r_n_fm: float | None = None,
                scheme: str = DEFAULT_SCHEME):
    """Z g_V^p F_p(q) + N g_V^n F_n(q) at recoil T [MeV] (dimensionless; ≈ −N/2 at q → 0).

    Proton and neutron rms radii default to the Lewin–Smith Helm radius of the nucleus (arXiv: Lewin & Smith 1996);
    the 'tabulated' model uses one weak form factor for both.
    """
    iso = lookup_isotope(iso)
    gp, gn = nucleon_couplings(flavour, sin2_theta_w, scheme)
    Fp, Fn = nucleon_form_factors(T_MeV, iso, form_factor_model, r_p_fm, r_n_fm)
    return iso.Z * gp * Fp + iso.N * gn * Fn


def dsigma_dT(T_MeV, E_MeV, iso: Isotope | str, flavour: str = "numu", **kwargs):
    """SM CEvNS dσ/dT [cm²/MeV] at recoil T [MeV] and neutrino energy E [MeV]; broadcasts T against E.
    Keyword arguments go to :func:`weak_charge` (sin2_theta_w, form_factor_model, r_p_fm, r_n_fm, scheme).
    arXiv:1708.01294 Eq. (1)."""
    iso = lookup_isotope(iso)
    T = _check_positive("recoil energy T", T_MeV, allow_zero=True)
    E = _check_positive("neutrino energy E", E_MeV)
    qw = weak_charge(T, iso, flavour, **kwargs)
    return kinematic_kernel(T, E, iso.mass_MeV) * qw**2


def total_cross_section(E_MeV, iso: Isotope | str, flavour: str = "numu", n_nodes: int = 96, **kwargs):
    """σ(E) = ∫_0^{T_max} dσ/dT dT [cm²], Gauss–Legendre in T (smooth integrand on [0, T_max])."""
    iso = lookup_isotope(iso)
    E = _check_positive("neutrino energy E", E_MeV)
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    tm = t_max(E, iso.mass_MeV)[..., None]
    T = 0.5 * tm * (x + 1.0)
    vals = dsigma_dT(T, E[..., None], iso, flavour, **kwargs)
    return np.sum(vals * w, axis=-1) * 0.5 * tm[..., 0]
