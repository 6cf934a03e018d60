"""Spin-independent dark matter–nucleus elastic scattering, as a registered process of species kind 'dark_matter'.

dσ/dT = σ_n (μ_N/μ_n)² A² F²(q) / T_max(v) = σ_n M (Z F_p + N F_n)² / (2 μ_n² v²),   T < T_max = 2 μ_N² v²/M

(Lewin & Smith, Astropart. Phys. 6, 87 (1996), Secs. 3 and 7, with isospin-conserving couplings f_p = f_n;
Z F_p + N F_n = A F for equal proton and neutron radii). As everywhere in the engine it is a weight times a kinematic
kernel: the weight w = σ_n (Z F_p + N F_n)² carries the parameter ``dm_sigma_si_1e45_cm2`` (σ_n in 10⁻⁴⁵ cm²) and the
nuclear structure; the kernel M/(2 μ_n² v²) [MeV⁻¹] the kinematics, with v = √(1 − m²/E²) from the projectile's
total energy E and mass m (it is flagged ``needs_projectile_mass`` so :mod:`cevns.rates` passes m).

μ_n uses the atomic mass unit as the nucleon mass (:data:`M_NUCLEON_SI_MeV`), the convention of wimprates (and so of
the XENON limits) and of O'Hare's neutrino-fog code; with the proton mass instead, σ_n would change by ≈ 1.6 %.

The Migdal effect and Bremsstrahlung (:mod:`cevns.interactions.migdal`, :mod:`cevns.interactions.bremsstrahlung`)
reuse :func:`si_weights` and :func:`si_prefactor_per_MeV`: one spin-independent cross section in the package.
"""
from __future__ import annotations

import numpy as np

from cevns import constants as C
from cevns.interactions.kinematics import t_max
from cevns.interactions.process import Process

__all__ = ["SIGMA_PARAMETER", "SIGMA_UNIT_cm2", "M_NUCLEON_SI_MeV", "DM_SI_PROCESS", "kernel_dm_si",
           "si_prefactor_per_MeV", "si_weights", "reduced_mass_MeV", "v_min_kms"]

#: the physics parameter: σ_n of spin-independent DM–nucleon scattering in units of 1e-45 cm²
SIGMA_PARAMETER = "dm_sigma_si_1e45_cm2"
SIGMA_UNIT_cm2 = 1e-45
#: nucleon mass in μ_n = m m_n/(m + m_n): the atomic mass unit (wimprates, O'Hare's NeutrinoFog)
M_NUCLEON_SI_MeV = C.AMU_MeV
C_KMS = 299792.458


def reduced_mass_MeV(a_MeV, b_MeV):
    """a b/(a + b) [MeV]."""
    a = np.asarray(a_MeV, float)
    return a * b_MeV / (a + b_MeV)


def si_prefactor_per_MeV(M_MeV, m_MeV: float):
    """M/(2 μ_n²) [MeV⁻¹]: dσ/dT = w · M/(2 μ_n² v²) (Lewin & Smith 1996, Sec. 7, with σ_N/σ_n = (μ_N/μ_n)² A²)."""
    mu_n = reduced_mass_MeV(m_MeV, M_NUCLEON_SI_MeV)
    return np.asarray(M_MeV, float) / (2.0 * mu_n * mu_n)


def kernel_dm_si(T_MeV, E_MeV, M_MeV, m_MeV):
    """Kinematic kernel M/(2 μ_n² v²) [MeV⁻¹] of a projectile of mass m and total energy E on a nucleus of mass M,
    zero above T_max(E) (:mod:`cevns.interactions.kinematics`); times :func:`si_weights` it is dσ/dT [cm²/MeV]."""
    T = np.asarray(T_MeV, float)
    E = np.asarray(E_MeV, float)
    r = np.clip(m_MeV / np.maximum(E, m_MeV), 0.0, 1.0)
    v2 = np.maximum(1.0 - r * r, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(v2 > 0, si_prefactor_per_MeV(M_MeV, m_MeV) / v2, 0.0)
    return np.where(T <= t_max(E, M_MeV, m_MeV), k, 0.0)


kernel_dm_si.needs_projectile_mass = True


def si_weights(ctx, sigma_1e45_cm2) -> np.ndarray:
    """w = σ_n (Z F_p + N F_n)² [cm²] on the recoil nodes of a :class:`~cevns.interactions.process.NuclearContext`,
    (P, nodes) for σ_n (P,) in 1e-45 cm²."""
    s = np.asarray(sigma_1e45_cm2, float).reshape(-1, 1) * SIGMA_UNIT_cm2
    a = ctx.ZFp + ctx.NFn
    return s * (a * a)[None, :]


def _incoherent(ctx, phys: dict, P: int) -> dict:
    from cevns.interactions.parameters import value

    return {"dm_si": si_weights(ctx, value(phys, SIGMA_PARAMETER, P))}


def v_min_kms(T_MeV, M_MeV, m_MeV: float, E_em_MeV=0.0):
    """Smallest DM speed [km/s] that gives a nuclear recoil T and deposits E_em in the electron cloud (Migdal, photon):
    v_min = (M T + μ_N E_em)/(μ_N √(2 M T)) (Dolan, Kahlhoefer & McCabe, arXiv:1711.09906, the inelastic v_min of their rate formula); E_em = 0 is the
    elastic √(M T/2)/μ_N."""
    T = np.asarray(T_MeV, float)
    mu = reduced_mass_MeV(m_MeV, M_MeV)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (M_MeV * T + mu * np.asarray(E_em_MeV, float)) / (mu * np.sqrt(2.0 * M_MeV * T))
    return np.where(T > 0, v, np.inf) * C_KMS


#: the process: weights of kernel 'dm_si' for projectiles of kind 'dark_matter'
DM_SI_PROCESS = Process("dark_matter_si", (SIGMA_PARAMETER,),
                        "spin-independent dark matter–nucleus elastic scattering (Helm form factor, f_p = f_n)",
                        species_kind="dark_matter", incoherent=_incoherent, incoherent_kernels=("dm_si",),
                        kernels={"dm_si": kernel_dm_si})


def _gl(n: int):
    return np.polynomial.legendre.leggauss(n)


def recoil_window_MeV(E_em_MeV, M_MeV: float, m_MeV: float, v_kms):
    """The recoils T with v_min(T, E_em) ≤ v (:func:`v_min_kms`): T± = x±² with M x² − μ v √(2M) x + μ E_em = 0
    (v in units of c). Returns (T₋, T₊), NaN where E_em > μ v²/2 (no recoil reaches it)."""
    E = np.asarray(E_em_MeV, float)
    b = np.asarray(v_kms, float) / C_KMS
    mu = float(reduced_mass_MeV(m_MeV, M_MeV))
    disc = 2.0 * M_MeV * mu * mu * b * b - 4.0 * M_MeV * mu * E
    with np.errstate(invalid="ignore"):
        r = np.sqrt(disc)
    x_lo = (mu * b * np.sqrt(2.0 * M_MeV) - r) / (2.0 * M_MeV)
    x_hi = (mu * b * np.sqrt(2.0 * M_MeV) + r) / (2.0 * M_MeV)
    bad = disc < 0
    return np.where(bad, np.nan, x_lo * x_lo), np.where(bad, np.nan, x_hi * x_hi)


def em_emission_spectrum(E_em_MeV, source, components, probability, phys: dict | None = None,
                         form_factor_model: str = "helm", n_per_panel: int = 24) -> np.ndarray:
    """dR/dE_em [events per MeV] for nuclear recoils that put E_em into the electron cloud or a photon (Migdal
    ionisation, Bremsstrahlung), summed over ``components`` [(Isotope, nuclei)] and integrated over the recoil T:

        dR/dE_em = Σ_i N_i n_χ t ∫ dT w_i(T) M_i/(2 μ_n²) c² η(v_min(T, E_em)) P(T, E_em)

    (Dolan, Kahlhoefer & McCabe, arXiv:1711.09906, their Migdal rate; Ibe et al. arXiv:1707.07258 Sec. 5), with w the spin-independent weights of
    :func:`si_weights` (one cross section), η the mean inverse speed of the source's halo at the inelastic v_min of
    :func:`v_min_kms`, and ``probability(T_MeV, E_em_MeV, iso)`` the emission probability density P [1/MeV] (arrays of
    equal shape). ``source``: a :class:`cevns.sources.halo.HaloSource` (n_χ, t). The T integral runs over the window
    of :func:`recoil_window_MeV` for v_max, split where v_min crosses a kink of f(v), Gauss–Legendre in each panel."""
    from cevns.interactions.parameters import validate_params, value
    from cevns.interactions.process import NuclearContext
    from cevns.sources.halo import DM_SPECIES

    phys = validate_params(phys or {})
    E = np.atleast_1d(np.asarray(E_em_MeV, float))
    halo = source.halo
    m = source.mass_MeV
    sp = source.species_info(DM_SPECIES)
    x, wgl = _gl(n_per_panel)
    sigma = float(value(phys, SIGMA_PARAMETER, 1)[0])
    n_chi_t = halo.n_chi_per_cm3(source.mass_GeV) * source.exposure_time_s
    out = np.zeros(E.size)
    kinks = [k for k in halo.kinks_kms if 0 < k < halo.v_max_kms]
    for iso, n in components:
        M = iso.mass_MeV
        lo, hi = recoil_window_MeV(E, M, m, halo.v_max_kms)
        inner = []
        for k in kinks:  # T where v_min = kink: inside the window when defined
            a, b = recoil_window_MeV(E, M, m, k)
            inner += [a, b]
        ok = np.isfinite(lo)
        if not ok.any():
            continue
        cuts = np.sort(np.stack([np.where(np.isfinite(c), c, lo) for c in inner] + [lo, hi]), axis=0) if inner \
            else np.stack([lo, hi])
        cuts = np.where(ok[None, :], cuts, 0.0)
        a, b = cuts[:-1], cuts[1:]  # (panels, n_E)
        half = 0.5 * (b - a)
        T = a[..., None] + half[..., None] * (x + 1.0)  # (panels, n_E, n)
        W = half[..., None] * wgl
        Tf = np.maximum(T.ravel(), 1e-30)
        ctx = NuclearContext(iso, sp, Tf, form_factor_model)
        w = si_weights(ctx, sigma)[0].reshape(T.shape)
        Eb = np.broadcast_to(E[None, :, None], T.shape)
        eta = halo.eta(v_min_kms(T, M, m, Eb)) * C_KMS**2 * 1e5  # c² η [cm/s]
        P = probability(T, Eb, iso)
        integrand = w * si_prefactor_per_MeV(M, m) * eta * P
        out += n * n_chi_t * np.where(ok, np.sum(integrand * W, axis=(0, 2)), 0.0)
    return out
