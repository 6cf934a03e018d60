"""Neutrino electromagnetic properties in CEvNS and in neutrino–electron scattering.

Magnetic moment μ_ν (parameters in units of 10⁻¹⁰ μ_B). The helicity-flipping magnetic amplitude does not interfere
with the weak one, so its cross section adds incoherently:

* nucleus (coherent on the Z protons):
  dσ/dT = (π α² μ_ν²/m_e²) Z² F_p²(q) (1/T − 1/E + T/(4E²))   (μ_ν in units of μ_B)
  (Vogel & Engel, PRD 39, 3378 (1989) for the structure; nuclear form as used by Kosmas et al. arXiv:1505.03202
  Sec. II, Cadeddu et al. arXiv:2005.01645 Sec. III, and Coloma et al. arXiv:2202.10829 Sec. 2);
* free electron: dσ/dT_e = (π α² μ_ν²/m_e²)(1/T_e − 1/E) (Vogel & Engel PRD 39, 3378 (1989), the magnetic term
  of their ν–e cross section); atomic binding is handled in :mod:`cevns.interactions.electron`.

π α²/m_e² · (ħc)² = 2.495 × 10⁻²⁵ cm², so (10⁻¹⁰ μ_B)² gives 2.495 × 10⁻⁴⁵ cm² per unit of the bracket [MeV⁻¹].
The E dependence differs from the SM kernel, so the kinematic kernels :func:`magnetic_kernel` (nucleus) and
:func:`electron_magnetic_kernel` (electron) are folded with the flux separately, each per unit
(μ_ν / 10⁻¹⁰ μ_B)² × (Z F_p)² resp. per electron.

Charge radius ⟨r²_ν⟩ (parameters in units of 10⁻³² cm²): a shift of the vector couplings,
g_V^p → g_V^p − x, g_V^e → g_V^e + x with x = (√2 π α/(3 G_F)) ⟨r²_ν⟩ = (2/3) m_W² s²_W ⟨r²_ν⟩ (tree-level relation)
(Vogel & Engel PRD 39, 3378 (1989); Cadeddu et al. arXiv:1810.05606 Sec. 2 and arXiv:2005.01645 Sec. II). With this
coefficient the SM radii ⟨r²_νe⟩ = −0.83, ⟨r²_νμ⟩ = −0.48 (10⁻³² cm²) reproduce the published difference
g_V^p(ν_e) − g_V^p(ν_μ) = 0.0401 − 0.0318 of arXiv:2005.01645 (tested). The same shift is used for the antineutrino
of a family (⟨r²_ν̄⟩ = −⟨r²_ν⟩ while the weak vector amplitude also flips sign, arXiv:1810.05606 Sec. 2).
"""
from __future__ import annotations

import math

import numpy as np

from cevns import constants as C
from cevns.errors import PhysicsDomainError
from cevns.interactions.cevns import nucleon_form_factors, t_max
from cevns.interactions.process import Process
from cevns.targets.isotopes import Isotope, isotope as lookup_isotope

__all__ = ["MU_NU_UNIT_MUB", "CHARGE_RADIUS_UNIT_CM2", "MAGNETIC_PREFACTOR_CM2", "CHARGE_RADIUS_COEFF",
           "magnetic_kernel", "electron_magnetic_kernel", "magnetic_weight", "dsigma_dT_magnetic",
           "dsigma_dT_magnetic_electron", "charge_radius_shift", "SM_CHARGE_RADII_1E32_CM2", "MAGNETIC_PARAMS",
           "CHARGE_RADIUS_PARAMS", "CHARGE_RADIUS_PROCESS", "MAGNETIC_PROCESS"]

#: unit of the magnetic-moment parameters mu_nu_e, mu_nu_mu: 10⁻¹⁰ Bohr magnetons
MU_NU_UNIT_MUB = 1e-10
#: unit of the charge-radius parameters: 10⁻³² cm²
CHARGE_RADIUS_UNIT_CM2 = 1e-32
#: π α² / m_e² (ħc)² [cm²] (Vogel & Engel PRD 39, 3378): 2.495e-25 cm² per μ_B²
MAGNETIC_PREFACTOR_CM2 = math.pi * C.ALPHA_EM**2 / C.M_ELECTRON**2 * C.HBARC2_MeV2_cm2
#: x per unit ⟨r²⟩ = 10⁻³² cm²: √2 π α/(3 G_F) ⟨r²⟩/(ħc)² (dimensionless, ≈ 0.0238)
CHARGE_RADIUS_COEFF = math.sqrt(2.0) * math.pi * C.ALPHA_EM / (3.0 * C.G_FERMI_MeV2) / C.HBARC2_MeV2_cm2 \
    * CHARGE_RADIUS_UNIT_CM2
#: SM neutrino charge radii [10⁻³² cm²] (Bernabéu et al.; as quoted in arXiv:1810.05606 Eq. (5)), for reference/tests
SM_CHARGE_RADII_1E32_CM2 = {"e": -0.83, "mu": -0.48, "tau": -0.30}


def _kinematic_mask(T, E, M):
    return (T > 0) & (E > 0) & (T <= t_max(np.where(E > 0, E, 0.0), M))


def magnetic_kernel(T_MeV, E_MeV, M_MeV):
    """Nuclear magnetic-moment kernel [cm²/MeV] per unit (μ_ν/10⁻¹⁰ μ_B)² (Z F_p)²:
    (π α²/m_e²)(1/T − 1/E + T/(4E²)) (ħc)² × 10⁻²⁰, zero outside 0 < T ≤ T_max(E, M) (arXiv:1505.03202 Sec. II;
    arXiv:2005.01645 Sec. III). Broadcasts T against E like :func:`cevns.interactions.cevns.kinematic_kernel`."""
    T = np.asarray(T_MeV, float)
    E = np.asarray(E_MeV, float)
    ok = _kinematic_mask(T, E, M_MeV)
    with np.errstate(divide="ignore", invalid="ignore"):
        val = 1.0 / T - 1.0 / E + T / (4.0 * E * E)
    return np.where(ok, MAGNETIC_PREFACTOR_CM2 * MU_NU_UNIT_MUB**2 * val, 0.0)


def electron_magnetic_kernel(T_MeV, E_MeV, M_MeV=C.M_ELECTRON):
    """Free-electron magnetic-moment kernel [cm²/MeV] per unit (μ_ν/10⁻¹⁰ μ_B)²: (π α²/m_e²)(1/T − 1/E)(ħc)² × 10⁻²⁰,
    zero outside 0 < T ≤ T_max(E, m_e) (Vogel & Engel PRD 39, 3378 (1989)). ``M_MeV`` is accepted for the common
    kernel signature and ignored: the target is always an electron."""
    T = np.asarray(T_MeV, float)
    E = np.asarray(E_MeV, float)
    ok = _kinematic_mask(T, E, C.M_ELECTRON)
    with np.errstate(divide="ignore", invalid="ignore"):
        val = 1.0 / T - 1.0 / E
    return np.where(ok, MAGNETIC_PREFACTOR_CM2 * MU_NU_UNIT_MUB**2 * val, 0.0)


def _mu(mu_nu_1e10) -> np.ndarray:
    mu = np.asarray(mu_nu_1e10, float)
    if not np.all(np.isfinite(mu)):
        raise PhysicsDomainError("neutrino magnetic moment must be finite [10^-10 mu_B]")
    return mu


def magnetic_weight(mu_nu_1e10, Z: int, F_p) -> np.ndarray:
    """Weight of :func:`magnetic_kernel` on recoil nodes: (μ_ν/10⁻¹⁰ μ_B)² Z² F_p² (coherent on the protons).
    ``mu_nu_1e10`` shape (P,) or scalar, ``F_p`` shape (nodes,) → (P, nodes)."""
    mu = np.atleast_1d(_mu(mu_nu_1e10))[:, None]
    return (mu * mu) * (Z * np.asarray(F_p, float))[None, :] ** 2


def dsigma_dT_magnetic(T_MeV, E_MeV, iso: Isotope | str, mu_nu_1e10: float, form_factor_model: str = "helm",
                       r_p_fm: float | None = None):
    """Magnetic-moment CEvNS dσ/dT [cm²/MeV] on a nucleus at recoil T and neutrino energy E [MeV] for μ_ν in units of
    10⁻¹⁰ μ_B (arXiv:1505.03202 Sec. II): (π α² μ_ν²/m_e²) Z² F_p² (1/T − 1/E + T/4E²)."""
    iso = lookup_isotope(iso)
    T = np.asarray(T_MeV, float)
    Fp, _ = nucleon_form_factors(T, iso, form_factor_model, r_p_fm)
    mu = float(_mu(mu_nu_1e10))
    return magnetic_kernel(T, E_MeV, iso.mass_MeV) * mu * mu * (iso.Z * Fp) ** 2


def dsigma_dT_magnetic_electron(T_MeV, E_MeV, mu_nu_1e10: float):
    """Magnetic-moment ν–e dσ/dT_e [cm²/MeV] per free electron (Vogel & Engel PRD 39, 3378 (1989)):
    (π α² μ_ν²/m_e²)(1/T − 1/E), μ_ν in units of 10⁻¹⁰ μ_B."""
    mu = float(_mu(mu_nu_1e10))
    return electron_magnetic_kernel(T_MeV, E_MeV) * mu * mu


def charge_radius_shift(r2_1e32_cm2) -> np.ndarray:
    """x = (√2 π α/(3 G_F)) ⟨r²_ν⟩ (dimensionless) for ⟨r²_ν⟩ in 10⁻³² cm²: g_V^p → g_V^p − x and g_V^e → g_V^e + x
    (Vogel & Engel PRD 39, 3378; arXiv:1810.05606 Sec. 2). ≈ 0.0238 per 10⁻³² cm²."""
    r2 = np.asarray(r2_1e32_cm2, float)
    if not np.all(np.isfinite(r2)):
        raise PhysicsDomainError("neutrino charge radius must be finite [10^-32 cm^2]")
    return CHARGE_RADIUS_COEFF * r2


# ---- the processes (see cevns.interactions.process) ----------------------------------------------------------
#: parameter names of the magnetic moment and charge radius per lepton family (no ν_τ parameters)
MAGNETIC_PARAMS = {"e": "mu_nu_e", "mu": "mu_nu_mu"}
CHARGE_RADIUS_PARAMS = {"e": "chr_nu_e", "mu": "chr_nu_mu"}


def _family_value(phys: dict, table: dict, family: str, P: int) -> np.ndarray:
    from cevns.interactions.parameters import value

    return value(phys, table[family], P) if family in table else np.zeros(P)


def _charge_radius_amplitude(st, phys: dict, P: int):
    """−x(⟨r²⟩) Z F_p: the charge radius shifts g_V^p by −x (arXiv:1810.05606 Sec. 2)."""
    name = CHARGE_RADIUS_PARAMS.get(st.ctx.species.family)
    if name is None or name not in phys:
        return None
    return -charge_radius_shift(_family_value(phys, CHARGE_RADIUS_PARAMS, st.ctx.species.family, P))[:, None] * st.ctx.ZFp


def _charge_radius_electron(ec, phys: dict, P: int):
    """+x(⟨r²⟩): the charge radius shifts g_V^e by +x (Vogel & Engel PRD 39, 3378)."""
    name = CHARGE_RADIUS_PARAMS.get(ec.species.family)
    if name is None or name not in phys:
        return None
    return charge_radius_shift(_family_value(phys, CHARGE_RADIUS_PARAMS, ec.species.family, P))[:, None]


def _magnetic_nuclear(st, phys: dict, P: int):
    """{'magnetic': (μ_ν/10⁻¹⁰ μ_B)² Z² F_p²} (arXiv:1505.03202 Sec. II); zero for ν_τ (no parameter)."""
    mu = _family_value(phys, MAGNETIC_PARAMS, st.ctx.species.family, P)
    return {"magnetic": (mu * mu)[:, None] * (st.ctx.ZFp * st.ctx.ZFp)[None, :]}


def _magnetic_electron(ec, phys: dict, P: int):
    """{'e_magnetic': (μ_ν/10⁻¹⁰ μ_B)² Z_eff(T)} per atom (Vogel & Engel PRD 39, 3378)."""
    mu = _family_value(phys, MAGNETIC_PARAMS, ec.species.family, P)
    return {"e_magnetic": (mu * mu)[:, None] * ec.zeff[None, :]}


#: neutrino charge radius on top of the SM one: shifts g_V^p (−x) and g_V^e (+x)
CHARGE_RADIUS_PROCESS = Process("charge_radius", tuple(CHARGE_RADIUS_PARAMS.values()),
                                "neutrino charge radius (shift of the vector couplings)",
                                amplitude=_charge_radius_amplitude, electron_shift=_charge_radius_electron)
#: neutrino magnetic moment: incoherent 1/T terms on nuclei and electrons
MAGNETIC_PROCESS = Process("magnetic_moment", tuple(MAGNETIC_PARAMS.values()), "neutrino magnetic moment",
                           incoherent=_magnetic_nuclear, incoherent_kernels=("magnetic",),
                           kernels={"magnetic": magnetic_kernel},
                           electron_incoherent=_magnetic_electron, electron_incoherent_kernels=("e_magnetic",),
                           electron_kernels={"e_magnetic": electron_magnetic_kernel})
