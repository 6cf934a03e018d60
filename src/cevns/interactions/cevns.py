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

import numpy as np

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.targets.form_factors import form_factor, helm_rms_radius_default_fm, q_fm_from_recoil
from cevns.targets.isotopes import Isotope, isotope as lookup_isotope

__all__ = ["FLAVOURS", "t_max", "e_nu_min", "kinematic_kernel", "nucleon_couplings", "weak_charge", "dsigma_dT",
           "total_cross_section", "check_flavour", "nucleon_form_factors"]

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


def t_max(E_MeV, M_MeV):
    """Maximum recoil energy [MeV] for neutrino energy E on a nucleus of mass M: T_max = 2E²/(M + 2E)
    (elastic two-body kinematics, e.g. arXiv:1708.01294 supplement)."""
    E = np.asarray(E_MeV, dtype=float)
    return 2.0 * E * E / (M_MeV + 2.0 * E)


def e_nu_min(T_MeV, M_MeV):
    """Minimum neutrino energy [MeV] that can give a recoil T on mass M: E_min = (T + √(T² + 2MT))/2 (inverse of t_max)."""
    T = np.asarray(T_MeV, dtype=float)
    return 0.5 * (T + np.sqrt(T * T + 2.0 * M_MeV * T))


def kinematic_kernel(T_MeV, E_MeV, M_MeV):
    """G_F² M/π (1 − T/E − MT/2E²) (ħc)² [cm²/MeV], zero where T > T_max(E). Multiply by the weak charge squared
    (Z g_V^p F_p + N g_V^n F_n)² for dσ/dT (arXiv:1708.01294 Eq. (1))."""
    T = np.asarray(T_MeV, dtype=float)
    E = np.asarray(E_MeV, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        kin = 1.0 - T / E - M_MeV * T / (2.0 * E * E)
    kin = np.where((kin > 0) & (E > 0), kin, 0.0)
    return C.G_FERMI_MeV2**2 * M_MeV / math.pi * kin * C.HBARC2_MeV2_cm2


def nucleon_couplings(flavour: str = "numu", sin2_theta_w: float | None = None, scheme: str = "pdg") -> tuple[float, float]:
    """Vector couplings (g_V^p, g_V^n) of a neutrino of ``flavour`` to protons and neutrons.

    scheme 'pdg': PDG 2024 §10 values with radiative corrections, g_V^p = 0.0229, g_V^n = −0.5117 (Erler & Su,
    arXiv:1303.5522), flavour independent. A different sin²θ_W shifts g_V^p by its tree-level derivative,
    g_V^p(s²) = g_V^p(s²₀) − 2 (s² − s²₀) (tree level g_V^p = 1/2 − 2 s², arXiv:1708.01294 Eq. (1)); g_V^n is fixed.
    scheme 'charge_radius': flavour-dependent g_V^p including the ν charge radius (arXiv:2005.01645 Sec. II), ν_e, ν_μ only.
    scheme 'tree': g_V^p = 1/2 − 2 s², g_V^n = −1/2.
    """
    check_flavour(flavour)
    s2 = C.SIN2_THETA_W_0 if sin2_theta_w is None else float(sin2_theta_w)
    if not (math.isfinite(s2) and 0.0 <= s2 <= 1.0):
        raise PhysicsDomainError(f"sin2_theta_w must be in [0, 1], got {sin2_theta_w!r}")
    base = flavour.removesuffix("bar")
    if scheme == "pdg":
        return C.G_V_PROTON_PDG - 2.0 * (s2 - C.SIN2_THETA_W_0), C.G_V_NEUTRON_PDG
    if scheme == "charge_radius":
        if base not in C.G_V_PROTON_CR:
            raise UnknownNameError("flavour for the charge_radius scheme", flavour, ["nue", "numu", "nuebar", "numubar"])
        return C.G_V_PROTON_CR[base] - 2.0 * (s2 - C.SIN2_THETA_W_0), C.G_V_NEUTRON_CR
    if scheme == "tree":
        return 0.5 - 2.0 * s2, -0.5
    raise UnknownNameError("coupling scheme", scheme, ["pdg", "charge_radius", "tree"])


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
                scheme: str = "pdg"):
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
