"""Dark matter χ coupled to a dark photon V that mixes kinetically with the photon (the vector portal).

L ⊃ −(ε/2) F'_μν F^μν + g_D V_μ J_χ^μ, α_D = g_D²/4π; V couples to the electromagnetic current with strength εe
(Holdom, Phys. Lett. B 166, 196 (1986); the parametrisation of arXiv:1505.07107, Izaguirre, Krnjaic, Schuster &
Toro, whose Y = ε² α_D (m_χ/m_V)⁴ COHERENT uses in arXiv:2110.11453). χ is a complex scalar (the COHERENT benchmark)
or, as an option, a Dirac fermion. Units: MeV (c = 1), widths MeV, cross sections cm², recoils T in MeV.

This module holds the model: V widths and branching ratios, the χ–nucleus elastic cross sections (a registered
:class:`~cevns.interactions.process.Process` of species kind 'dark_matter', so the rate engine folds it like any
other interaction), and the annihilation χχ* → ff̄ with the thermal-relic value of Y. The meson source that makes V
at the SNS is :mod:`cevns.sources.accelerator_dm`.

χ–nucleus scattering by t-channel V exchange with the nuclear charge Z e F_p(q) (q² = 2MT; neutrons carry no charge),
exact elastic kinematics for a projectile of mass m and total energy E (p² = E² − m²) on a nucleus M at rest,
dσ/dT = |M̄|²/(32π M p²):

* complex scalar χ (spin-0 nucleus; its spin changes |M̄|² by < 10⁻⁶ here, see the tests):
  |M̄|² = (4πα_D)(4πα) ε² Z²F² · 4M²(2E − T)² / (2MT + m_V²)²  →
  dσ/dT = 2π α α_D ε² Z² F_p² M (2E − T)² / [p² (2MT + m_V²)²]
* Dirac χ: (2E − T)² → 4E² − 4ET − 2MT (the spin trace; the CEvNS-like factor 1 − T/E − MT/2E² times 4E²).

Both are derived here from the Feynman rules (scalar vertex g_D(p + p')^μ, fermion vertex g_D γ^μ); the tests check
them against the amplitudes evaluated on explicit four-vectors. They are written as weight × kinematic kernel like
every process of the engine: weight w = ε² α_D (Z F_p)² / (2MT + m_V²)² [MeV⁻⁴] (parameters ``dp_epsilon``,
``dp_alpha_d``, ``dp_m_v_MeV``), kernel K = 2π α (ħc)² M (2E − T)²/p² [cm² MeV] (or the Dirac one), zero above
T_max(E; M, m) (:mod:`cevns.interactions.kinematics`).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import integrate, special

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.interactions.kinematics import t_max
from cevns.interactions.process import Process

__all__ = ["STATISTICS", "PARAMETER_NAMES", "DARK_PHOTON_PROCESS", "check_masses", "y_parameter",
           "epsilon_from_y", "width_chichi_MeV", "width_leptons_MeV", "r_hadrons", "width_hadrons_MeV",
           "total_width_MeV", "br_chichi", "kernel_dp_scalar", "kernel_dp_dirac", "dsigma_dT_cm2_per_MeV",
           "sigma_annihilation_cm2", "sigma_v_thermal_cm3_s", "g_star", "relic_omega_h2", "y_relic",
           "M_RHO_MeV", "GAMMA_RHO_MeV"]

#: spin statistics of χ and the kernel of each
STATISTICS = {"complex_scalar": "dp_scalar", "dirac": "dp_dirac"}
PARAMETER_NAMES = ("dp_epsilon", "dp_alpha_d", "dp_m_v_MeV")

M_RHO_MeV = 775.26  # ρ(770)⁰ mass, PDG 2024
GAMMA_RHO_MeV = 149.1  # ρ(770)⁰ width, PDG 2024
M_PLANCK_GeV = 1.220890e19  # Planck mass, PDG 2024
S0_PER_CM3 = 2891.2  # entropy density today s₀/k, PDG 2024 (Astrophysical constants, T₀ = 2.7255 K)
RHO_CRIT_GeV_CM3_H2 = 1.05371e-5  # ρ_c/h² [GeV cm⁻³], PDG 2024
OMEGA_DM_H2 = 0.120  # Ω_c h², Planck 2018 (arXiv:1807.06209, Table 2, TT,TE,EE+lowE+lensing)
CM3_PER_S_PER_MeV2 = C.HBARC2_MeV2_cm2 * 2.99792458e10  # σv: MeV⁻² → cm³/s


def _stat(statistics: str) -> str:
    if statistics not in STATISTICS:
        raise UnknownNameError("dark-matter statistics", statistics, STATISTICS)
    return statistics


def check_masses(m_chi_MeV: float, m_v_MeV: float, *, alpha_d: float | None = None, epsilon: float | None = None):
    """Validate (m_χ, m_V[, α_D, ε]): finite, positive masses with m_χ < m_V/2 (V → χχ* open), α_D > 0, ε ≥ 0.
    Raises :class:`PhysicsDomainError` with a one-line message."""
    for name, v in (("m_chi", m_chi_MeV), ("m_V", m_v_MeV)):
        if not (isinstance(v, (int, float, np.floating)) and math.isfinite(v) and v > 0):
            raise PhysicsDomainError(f"{name} must be a finite mass > 0 MeV, got {v!r}")
    if not m_chi_MeV < 0.5 * m_v_MeV:
        raise PhysicsDomainError(f"m_chi = {m_chi_MeV:g} MeV >= m_V/2 = {0.5 * m_v_MeV:g} MeV: V -> chi chi* is "
                                 "closed (this model needs m_V > 2 m_chi)")
    if alpha_d is not None and not (math.isfinite(alpha_d) and alpha_d > 0):
        raise PhysicsDomainError(f"alpha_D must be finite and > 0, got {alpha_d!r}")
    if epsilon is not None and not (math.isfinite(epsilon) and epsilon >= 0):
        raise PhysicsDomainError(f"epsilon (kinetic mixing) must be finite and >= 0, got {epsilon!r}")


def y_parameter(epsilon, alpha_d, m_chi_MeV, m_v_MeV):
    """Y = ε² α_D (m_χ/m_V)⁴ (the variable of arXiv:1505.07107 that arXiv:2110.11453 limits; eq. number not checked)."""
    return np.asarray(epsilon, float) ** 2 * alpha_d * (m_chi_MeV / m_v_MeV) ** 4


def epsilon_from_y(y, alpha_d, m_chi_MeV, m_v_MeV):
    """ε from Y = ε² α_D (m_χ/m_V)⁴."""
    return np.sqrt(np.asarray(y, float) / (alpha_d * (m_chi_MeV / m_v_MeV) ** 4))


# ---- widths -------------------------------------------------------------------------------------------------------
def width_chichi_MeV(m_v_MeV, m_chi_MeV: float, alpha_d: float, statistics: str = "complex_scalar"):
    """Γ(V → χχ*) [MeV] at V mass m_V (array: also an off-shell V* of mass √s). Complex scalar: α_D m_V/12 β³; Dirac:
    α_D m_V/3 (1 + 2m_χ²/m_V²) β, β = √(1 − 4m_χ²/m_V²) (two-body width of a vector to a scalar or fermion pair; the
    scalar one is the m_V ≫ m_χ form α_D m_V/12 of arXiv:2110.11453 with its threshold factor; derived and checked
    against an explicit phase-space integral in the tests). Zero below threshold."""
    m = np.asarray(m_v_MeV, float)
    r = np.where(m > 0, (m_chi_MeV / np.where(m > 0, m, 1.0)) ** 2, np.inf)
    b2 = np.clip(1.0 - 4.0 * r, 0.0, None)
    if _stat(statistics) == "complex_scalar":
        return alpha_d * m / 12.0 * b2 ** 1.5
    return alpha_d * m / 3.0 * (1.0 + 2.0 * np.where(b2 > 0, r, 0.0)) * np.sqrt(b2)


def width_leptons_MeV(m_v_MeV, epsilon: float, m_lepton_MeV: float):
    """Γ(V → l⁺l⁻) = (α ε² m_V/3)(1 + 2m_l²/m_V²)√(1 − 4m_l²/m_V²) [MeV] (the vector-to-fermion-pair width with
    coupling εe; e.g. arXiv:0906.5614, Batell, Pospelov & Ritz, Sec. 2 (eq. number not checked here))."""
    return width_chichi_MeV(m_v_MeV, m_lepton_MeV, C.ALPHA_EM * epsilon**2, "dirac")


def _pion_form_factor_sq(s_MeV2):
    """|F_π(s)|² from a ρ Breit–Wigner with the P-wave energy-dependent width Γ(s) = Γ_ρ (m_ρ/√s)(k(s)/k(m_ρ²))³
    (the ρ term of Kühn & Santamaria, Z. Phys. C 48, 445 (1990), without ρ′, ρ″ and ρ–ω mixing: adequate below
    ~600 MeV, where the π⁺π⁻ channel only enters the V width at large m_V and the relic line above m_χ = m_π)."""
    s = np.asarray(s_MeV2, float)
    mpi2 = C.M_PION_CHARGED**2
    k = np.sqrt(np.clip(s / 4.0 - mpi2, 0.0, None))
    k0 = math.sqrt(M_RHO_MeV**2 / 4.0 - mpi2)
    rs = np.sqrt(np.maximum(s, 1e-30))
    gam = GAMMA_RHO_MeV * (M_RHO_MeV / rs) * (k / k0) ** 3
    den = (M_RHO_MeV**2 - s) ** 2 + (rs * gam) ** 2
    return M_RHO_MeV**4 / den


def r_hadrons(sqrt_s_MeV):
    """R(√s) = σ(e⁺e⁻ → hadrons)/σ(e⁺e⁻ → μ⁺μ⁻)|_{m_μ→0} from π⁺π⁻ only: (1/4) β_π³ |F_π(s)|² (the P-wave pion-pair
    cross section in units of the point-like one; zero below 2m_π). Valid below the ω and 3π region (√s ≲ 700 MeV)."""
    rs = np.asarray(sqrt_s_MeV, float)
    s = rs * rs
    b2 = np.clip(1.0 - 4.0 * C.M_PION_CHARGED**2 / np.maximum(s, 1e-30), 0.0, None)
    return 0.25 * b2**1.5 * _pion_form_factor_sq(s)


def width_hadrons_MeV(m_v_MeV, epsilon: float):
    """Γ(V → hadrons) = (α ε² m_V/3) R(m_V) [MeV] (the dark photon inherits the photon's hadronic coupling; e.g.
    arXiv:1505.07107 and the PDG convention; R from :func:`r_hadrons`)."""
    m = np.asarray(m_v_MeV, float)
    return C.ALPHA_EM * epsilon**2 * m / 3.0 * r_hadrons(m)


def total_width_MeV(m_v_MeV, m_chi_MeV: float, epsilon: float, alpha_d: float, statistics: str = "complex_scalar"):
    """Γ_V = Γ(χχ*) + Γ(e⁺e⁻) + Γ(μ⁺μ⁻) + Γ(hadrons) [MeV]."""
    return (width_chichi_MeV(m_v_MeV, m_chi_MeV, alpha_d, statistics)
            + width_leptons_MeV(m_v_MeV, epsilon, C.M_ELECTRON) + width_leptons_MeV(m_v_MeV, epsilon, C.M_MUON)
            + width_hadrons_MeV(m_v_MeV, epsilon))


def br_chichi(m_v_MeV, m_chi_MeV: float, epsilon: float, alpha_d: float, statistics: str = "complex_scalar"):
    """BR(V → χχ*) = Γ_χχ/Γ_V (≈ 1 − 4αε²/α_D for m_V ≫ m_χ, m_e)."""
    g = width_chichi_MeV(m_v_MeV, m_chi_MeV, alpha_d, statistics)
    return g / total_width_MeV(m_v_MeV, m_chi_MeV, epsilon, alpha_d, statistics)


# ---- χ–nucleus scattering -------------------------------------------------------------------------------------------
def _momentum2(E, m_MeV):
    return E * E - m_MeV * m_MeV


def kernel_dp_scalar(T_MeV, E_MeV, M_MeV, m_MeV):
    """K = 2π α (ħc)² M (2E − T)²/p² [cm² MeV] for a complex scalar χ of mass m, total energy E on mass M; zero above
    T_max(E). Times the weight ε² α_D (Z F_p)²/(2MT + m_V²)² it is dσ/dT [cm²/MeV] (module docstring; |M̄|²/(32π M p²)
    with the amplitude of the scalar vertex g_D(p + p')^μ)."""
    T = np.asarray(T_MeV, float)
    E = np.asarray(E_MeV, float)
    p2 = _momentum2(E, m_MeV)
    ok = (p2 > 0) & (T <= t_max(E, M_MeV, m_MeV))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = 2.0 * math.pi * C.ALPHA_EM * C.HBARC2_MeV2_cm2 * M_MeV * (2.0 * E - T) ** 2 / p2
    return np.where(ok, k, 0.0)


def kernel_dp_dirac(T_MeV, E_MeV, M_MeV, m_MeV):
    """K = 2π α (ħc)² M (4E² − 4ET − 2MT)/p² [cm² MeV] for a Dirac χ (spin-averaged trace of the γ^μ vertex; module
    docstring); zero above T_max(E)."""
    T = np.asarray(T_MeV, float)
    E = np.asarray(E_MeV, float)
    p2 = _momentum2(E, m_MeV)
    ok = (p2 > 0) & (T <= t_max(E, M_MeV, m_MeV))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = 2.0 * math.pi * C.ALPHA_EM * C.HBARC2_MeV2_cm2 * M_MeV * (4.0 * E * E - 4.0 * E * T - 2.0 * M_MeV * T) / p2
    return np.where(ok, np.maximum(k, 0.0), 0.0)


kernel_dp_scalar.needs_projectile_mass = True
kernel_dp_dirac.needs_projectile_mass = True


def dp_weights(ZFp, q2_MeV2, epsilon, alpha_d, m_v_MeV) -> np.ndarray:
    """w = ε² α_D (Z F_p)² / (q² + m_V²)² [MeV⁻⁴] on recoil nodes (ZFp, q² = 2MT: (nodes,)), (P, nodes) for (P,)
    parameter arrays."""
    e = np.asarray(epsilon, float).reshape(-1, 1)
    a = np.asarray(alpha_d, float).reshape(-1, 1)
    mv = np.asarray(m_v_MeV, float).reshape(-1, 1)
    return e * e * a * (np.asarray(ZFp, float) ** 2)[None, :] / (np.asarray(q2_MeV2, float)[None, :] + mv * mv) ** 2


def _incoherent(ctx, phys: dict, P: int) -> dict:
    """Weights of the species' kernel; none unless ``dp_epsilon`` is given (ε defaults to 0: no dark photon)."""
    from cevns.interactions.parameters import value

    if "dp_epsilon" not in phys:
        return {}
    stat = getattr(ctx.species, "family", None) or "complex_scalar"
    kernel = STATISTICS[_stat(stat)]
    w = dp_weights(ctx.ZFp, ctx.q2, value(phys, "dp_epsilon", P), value(phys, "dp_alpha_d", P),
                   value(phys, "dp_m_v_MeV", P))
    return {kernel: w}


#: the process: χ–nucleus elastic scattering through the dark photon, for projectiles of kind 'dark_matter'
DARK_PHOTON_PROCESS = Process("dark_photon", PARAMETER_NAMES,
                              "dark-matter–nucleus coherent scattering through a kinetically mixed dark photon "
                              "(complex scalar or Dirac χ; Helm proton form factor)",
                              species_kind="dark_matter", incoherent=_incoherent,
                              incoherent_kernels=("dp_scalar", "dp_dirac"),
                              kernels={"dp_scalar": kernel_dp_scalar, "dp_dirac": kernel_dp_dirac})


def dsigma_dT_cm2_per_MeV(T_MeV, E_MeV, iso, m_chi_MeV: float, epsilon: float, alpha_d: float, m_v_MeV: float,
                          statistics: str = "complex_scalar", form_factor_model: str = "helm"):
    """dσ/dT [cm²/MeV] of χ (mass m_χ, total energy E) on isotope ``iso`` at recoil T (broadcast T against E): the
    weight of :func:`dp_weights` × the kernel of the statistics (module docstring)."""
    from cevns.interactions.cevns import nucleon_form_factors
    from cevns.targets.isotopes import isotope as lookup_isotope

    check_masses(m_chi_MeV, m_v_MeV, alpha_d=alpha_d, epsilon=epsilon)
    iso = lookup_isotope(iso)
    T = np.asarray(T_MeV, float)
    Fp, _ = nucleon_form_factors(np.ravel(T), iso, form_factor_model)
    w = dp_weights(iso.Z * Fp, 2.0 * iso.mass_MeV * np.ravel(T), epsilon, alpha_d, m_v_MeV)[0].reshape(T.shape)
    kern = kernel_dp_scalar if _stat(statistics) == "complex_scalar" else kernel_dp_dirac
    return w * kern(T, E_MeV, iso.mass_MeV, m_chi_MeV)


# ---- annihilation and the thermal relic -----------------------------------------------------------------------------
_FINAL_STATES = (("e", C.M_ELECTRON), ("mu", C.M_MUON))


def sigma_annihilation_cm2(s_MeV2, m_chi_MeV: float, m_v_MeV: float, epsilon: float, alpha_d: float,
                           statistics: str = "complex_scalar", heavy_mediator: bool = False):
    """σ(χχ* → V* → e⁺e⁻, μ⁺μ⁻, hadrons) [cm²] at CM energy² s: the s-channel resonance formula with running widths
    σ = (2J+1)/(2s_χ+1)² · (4π/p²) · s Γ_χχ(√s) Γ_SM(√s) / [(s − m_V²)² + m_V² Γ_V²] (the resonance formula of the
    PDG 2024 Kinematics review, eq. number not checked; J = 1), p the χ CM momentum, Γ(√s) the widths of a V* of
    mass √s. For a complex scalar and massless electrons it is (4π/3) α α_D ε² s β_χ/(s − m_V²)², which the tests check against the direct spin sum.
    ``heavy_mediator``: replace the propagator by 1/m_V⁴ (the m_V ≫ √s approximation behind the often quoted
    σv = (8π/3) α Y v²/m_χ²; at m_V = 3 m_χ it underestimates σv by (m_V² − 4m_χ²)²/m_V⁴ = 25/81)."""
    s = np.asarray(s_MeV2, float)
    rs = np.sqrt(s)
    p2 = np.clip(s / 4.0 - m_chi_MeV**2, 0.0, None)
    g_in = width_chichi_MeV(rs, m_chi_MeV, alpha_d, statistics)
    g_out = sum(width_leptons_MeV(rs, epsilon, mf) for _, mf in _FINAL_STATES) + width_hadrons_MeV(rs, epsilon)
    gv = total_width_MeV(m_v_MeV, m_chi_MeV, epsilon, alpha_d, statistics)
    spin = 1.0 if _stat(statistics) == "complex_scalar" else 4.0
    with np.errstate(divide="ignore", invalid="ignore"):
        den = m_v_MeV**4 if heavy_mediator else (s - m_v_MeV**2) ** 2 + (m_v_MeV * gv) ** 2
        sig = 3.0 / spin * 4.0 * math.pi / p2 * s * g_in * g_out / den
    return np.where(p2 > 0, sig, 0.0) * C.HBARC2_MeV2_cm2


def sigma_v_thermal_cm3_s(x, m_chi_MeV: float, m_v_MeV: float, epsilon: float, alpha_d: float,
                          statistics: str = "complex_scalar", n_nodes: int = 64, heavy_mediator: bool = False):
    """Thermally averaged ⟨σ v_Møl⟩ [cm³/s] at x = m_χ/T (Gondolo & Gelmini, Nucl. Phys. B 360, 145 (1991); eq. not
    checked):
    ⟨σv⟩ = ∫_{4m²}^∞ σ (s − 4m²) √s K₁(√s/T) ds / (8 m⁴ T K₂²(x)); integrated over the CM kinetic energy √s − 2m = T u
    with Gauss–Laguerre nodes (the Boltzmann factor e^{−u}) and exponentially scaled Bessel functions, vectorised
    over x."""
    xs = np.atleast_1d(np.asarray(x, float))
    u, w = np.polynomial.laguerre.laggauss(n_nodes)  # ∫_0^∞ e^{−u} f(u) du
    m = m_chi_MeV
    T = (m / xs)[:, None]
    rs = 2.0 * m + T * u[None, :]
    s = rs * rs
    sig = sigma_annihilation_cm2(s, m, m_v_MeV, epsilon, alpha_d, statistics, heavy_mediator)
    # K₁(√s/T) = k1e(√s/T) e^{−2x} e^{−u} and ds = 2√s T du; the e^{−2x} cancels against K₂(x)² = kve(2, x)² e^{−2x}
    f = sig * (s - 4 * m * m) * rs * special.k1e(rs / T) * 2.0 * rs * T
    out = (f @ w) / (8.0 * m**4 * T[:, 0] * special.kve(2, xs) ** 2) * 2.99792458e10
    return out if np.ndim(x) else float(out[0])


# relativistic degrees of freedom --------------------------------------------------------------------------------------
def _rho_s_massive(x: float, fermion: bool) -> tuple[float, float]:
    """(ρ, s) of one internal degree of freedom of mass m at temperature T in units of the massless boson's
    (π²/30 T⁴, 2π²/45 T³), x = m/T (no chemical potential)."""
    sgn = 1.0 if fermion else -1.0

    def dens(u, pw):
        e = math.sqrt(u * u + x * x)
        return u * u * (e if pw == "rho" else (e + u * u / (3 * e))) / (math.exp(e) + sgn) if e < 700 else 0.0

    rho = integrate.quad(dens, 0, np.inf, args=("rho",), limit=200)[0] / (math.pi**2 / 30.0) / (2 * math.pi**2) * 1
    s = integrate.quad(dens, 0, np.inf, args=("s",), limit=200)[0] / (2 * math.pi**2 / 45.0) / (2 * math.pi**2)
    return rho, s


@lru_cache(maxsize=1)
def _dof_table():
    """g*ρ(T), g*s(T) on a log grid of T [MeV] from 1 keV to 300 MeV: γ, three ν (instant decoupling at 2 MeV, then
    T_ν from entropy conservation of the γ + e± plasma), e±, μ±, π± and π⁰ with exact Fermi/Bose integrals.
    (QCD effects near 150 MeV are ignored: T_f ≲ 15 MeV for the masses of the COHERENT search.)"""
    T = np.geomspace(1e-3, 300.0, 240)
    parts = [(C.M_ELECTRON, 4, True), (C.M_MUON, 4, True), (C.M_PION_CHARGED, 2, False), (C.M_PION_NEUTRAL, 1, False)]
    rho_e = np.array([[_rho_s_massive(m / t, f) for t in T] for m, _, f in parts])  # (species, T, 2)
    g_rho_plasma = 2.0 + sum(g * rho_e[i, :, 0] for i, (_, g, _) in enumerate(parts))
    g_s_plasma = 2.0 + sum(g * rho_e[i, :, 1] for i, (_, g, _) in enumerate(parts))
    T_dec = 2.0
    gs_dec = float(np.interp(np.log(T_dec), np.log(T), g_s_plasma))
    ratio = np.where(T >= T_dec, 1.0, (g_s_plasma / gs_dec) ** (1.0 / 3.0))  # T_ν/T
    g_nu = 7.0 / 8.0 * 6.0
    g_rho = g_rho_plasma + g_nu * ratio**4
    g_s = g_s_plasma + g_nu * ratio**3
    return T, g_rho, g_s


def g_star(T_MeV):
    """(g*ρ, g*s) at photon temperature T [MeV] (interpolated from :func:`_dof_table`; 10.75 above a few MeV,
    3.36 and 3.91 at T ≪ m_e)."""
    T, gr, gs = _dof_table()
    lt = np.log(np.clip(np.asarray(T_MeV, float), T[0], T[-1]))
    return np.interp(lt, np.log(T), gr), np.interp(lt, np.log(T), gs)


_X_GRID = np.geomspace(1.0, 1e4, 260)


def _relic_pieces(m_chi_MeV, m_v_MeV, epsilon, alpha_d, statistics, heavy_mediator=False):
    """(x grid, λ(x)/⟨σv⟩-independent prefactor × ⟨σv⟩ [dimensionless λ], Y_eq(x)) for :func:`relic_omega_h2`."""
    g = 1.0 if _stat(statistics) == "complex_scalar" else 2.0
    x = _X_GRID
    gr, gs = g_star(m_chi_MeV / x)
    conv = 1.0 / (C.HBARC2_MeV2_cm2 * 2.99792458e10) * 1e6  # cm³/s → GeV⁻²
    sv = sigma_v_thermal_cm3_s(x, m_chi_MeV, m_v_MeV, epsilon, alpha_d, statistics, heavy_mediator=heavy_mediator)
    lam = math.sqrt(math.pi / 45.0) * gs / np.sqrt(gr) * (m_chi_MeV / 1e3) * M_PLANCK_GeV * sv * conv / x**2
    with np.errstate(under="ignore"):
        y_eq = 45.0 / (4.0 * math.pi**4) * g / gs * x * x * special.kve(2, x) * np.exp(-x)
    return x, lam, y_eq


def _omega_from_pieces(m_chi_MeV, x, lam, y_eq):
    """(Ω h², x_f): x_f where λ c(c+2) Y_eq = 1 (c = 1/2), Y_∞ = 1/∫_{x_f}^∞ λ dx, Ω h² = 2 m Y_∞ s₀/(ρ_c/h²)."""
    c = 0.5
    with np.errstate(divide="ignore"):
        f = np.log(lam * c * (c + 2.0)) + np.log(y_eq)
    if f[0] < 0:
        raise PhysicsDomainError(f"couplings too weak: chi never reaches equilibrium (m_chi = {m_chi_MeV} MeV)")
    k = int(np.argmax(f < 0))  # first grid point past freeze-out (f decreases with x)
    lx = np.log(x)
    t = f[k - 1] / (f[k - 1] - f[k])
    lxf = lx[k - 1] + t * (lx[k] - lx[k - 1])
    xf = math.exp(lxf)
    lam_f = math.exp(np.log(lam[k - 1]) + t * (np.log(lam[k]) - np.log(lam[k - 1])))
    J = integrate.trapezoid(np.r_[lam_f, lam[k:]], np.r_[xf, x[k:]])
    omega = 2.0 * (m_chi_MeV / 1e3) / J * S0_PER_CM3 / RHO_CRIT_GeV_CM3_H2
    return omega, xf


def _omega_boltzmann(m_chi_MeV, x, lam, y_eq, n_steps: int = 6000) -> float:
    """Ω h² from the Boltzmann equation dY/dx = −λ(x)(Y² − Y_eq²) (λ as in :func:`_omega_from_pieces`; the
    d ln g*s/d ln T term is neglected), integrated from x = 1 (Y = Y_eq) to 10⁴ with backward-Euler steps on a
    log grid: each step solves the quadratic h λ Y² + Y − (Y_n + h λ Y_eq²) = 0 exactly (unconditionally stable
    in the stiff early phase; the tests compare it with scipy's Radau)."""
    xs = np.geomspace(x[0], x[-1], n_steps)
    lx = np.log(x)
    la = np.exp(np.interp(np.log(xs), lx, np.log(lam)))
    with np.errstate(divide="ignore"):
        ye2 = np.exp(2.0 * np.interp(np.log(xs), lx, np.log(np.maximum(y_eq, 1e-300))))
    y = math.sqrt(ye2[0])
    a_all = np.diff(xs) * la[1:]
    for a, e2 in zip(a_all.tolist(), ye2[1:].tolist()):
        rhs = y + a * e2
        y = 2.0 * rhs / (1.0 + math.sqrt(1.0 + 4.0 * a * rhs))  # the positive root, written without cancellation
    return 2.0 * (m_chi_MeV / 1e3) * y * S0_PER_CM3 / RHO_CRIT_GeV_CM3_H2


def relic_omega_h2(m_chi_MeV: float, m_v_MeV: float, epsilon: float, alpha_d: float,
                   statistics: str = "complex_scalar", method: str = "boltzmann", return_xf: bool = False,
                   heavy_mediator: bool = False):
    """Ω h² of χ + χ* (equal abundances, each of g internal states: 1 for a complex scalar, 2 for a Dirac fermion;
    Ω h² = 2 m Y_∞ s₀/(ρ_c/h²)) with λ(x) = √(π/45) g*s/√g*ρ m M_Pl ⟨σv⟩(x)/x² (the freeze-out equations of Kolb &
    Turner, The Early Universe (1990), Sec. 5.2, with the full thermal average and g*(T)).
    ``method='boltzmann'`` integrates dY/dx = −λ(Y² − Y_eq²) (:func:`_omega_boltzmann`); ``'freeze_out'`` is the
    approximation x_f from λ c(c+2) Y_eq = 1 (c = 1/2), Y_∞ = 1/∫_{x_f}^∞ λ dx, 5–7 % high for these p-wave
    annihilations. ``return_xf``: also the approximate x_f."""
    check_masses(m_chi_MeV, m_v_MeV, alpha_d=alpha_d, epsilon=epsilon)
    pieces = _relic_pieces(m_chi_MeV, m_v_MeV, epsilon, alpha_d, statistics, heavy_mediator)
    omega, xf = _omega_from_pieces(m_chi_MeV, *pieces)
    if method == "boltzmann":
        omega = _omega_boltzmann(m_chi_MeV, *pieces)
    elif method != "freeze_out":
        raise UnknownNameError("relic method", method, ["boltzmann", "freeze_out"])
    return (omega, xf) if return_xf else omega


def y_relic(m_chi_MeV: float, ratio: float = 3.0, alpha_d: float = 0.5, statistics: str = "complex_scalar",
            omega_h2: float = OMEGA_DM_H2, heavy_mediator: bool = False) -> float:
    """The Y = ε² α_D (m_χ/m_V)⁴ that gives the observed Ω h² (thermal relic target) at m_V = ratio · m_χ. For
    χχ* → f f̄ through V* the annihilation depends on ε² α_D = Y (m_V/m_χ)⁴ only (up to the V width in the
    propagator), so the result does not depend on α_D (m_V > m_χ: no χχ* → VV). ⟨σv⟩ is tabulated once at a
    reference Y and scaled (∝ Y); Y is iterated as Y ← Y Ω/Ω_target with Ω from the Boltzmann equation
    (:func:`_omega_boltzmann`; Ω ∝ 1/Y up to logarithms), then the table is recomputed at the solution once.
    ``heavy_mediator``: the 1/m_V⁴ propagator approximation (see :func:`sigma_annihilation_cm2`), which raises the
    line by ≈ 4 at m_V = 3 m_χ (81/25 at v = 0, more with the thermal s)."""
    m_v = ratio * m_chi_MeV
    check_masses(m_chi_MeV, m_v, alpha_d=alpha_d)
    y = 1e-10 * (m_chi_MeV / 10.0) ** 2
    for _ in range(2):
        x, lam, y_eq = _relic_pieces(m_chi_MeV, m_v, float(epsilon_from_y(y, alpha_d, m_chi_MeV, m_v)), alpha_d,
                                     statistics, heavy_mediator)
        y0 = y
        for _ in range(60):
            om = _omega_boltzmann(m_chi_MeV, x, lam * (y / y0), y_eq)
            y_new = y * om / omega_h2
            if abs(y_new / y - 1.0) < 1e-7:
                y = y_new
                break
            y = y_new
    return float(y)
