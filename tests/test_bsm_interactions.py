"""BSM interaction layer: SM limits, NSI band positions, magnetic-moment shape, mediators, ν–e, oscillations, registry."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cevns import constants as C
from cevns.errors import ConfigError, PhysicsDomainError, UnknownNameError
from cevns.interactions.cevns import FLAVOURS, kinematic_kernel, weak_charge
from cevns.interactions.electromagnetic import (MAGNETIC_PREFACTOR_CM2, SM_CHARGE_RADII_1E32_CM2, charge_radius_shift,
                                                electron_magnetic_kernel, magnetic_kernel)
from cevns.interactions.electron import (ATOMIC_SHELLS_eV, dsigma_dT_electron, electron_couplings,
                                         electrons_available, total_cross_section_electron)
from cevns.interactions.mediators import (VectorCharges, contact_nsi, scalar_kernel, scalar_weight, vector_epsilon,
                                          zprime_charge_shift)
from cevns.interactions.nsi import nsi_coefficients, nsi_qw2, quark_coefficients
from cevns.interactions.oscillation import (OSC_PHASE_CONST, active_probability, amplitude, mean_sin2, sin2_average,
                                            sin2_kernel, sterile_amplitude, survival_probability)
from cevns.interactions.parameters import PARAMETERS, describe_params, physics_defaults, validate_params
from cevns.interactions.terms import KERNELS, electron_rate_terms, flux_terms, rate_terms, required_kernels
from cevns.targets.isotopes import isotope

CS, I, AR = isotope("Cs133"), isotope("I127"), isotope("Ar40")
T_NODES = np.geomspace(1e-4, 5e-2, 40)  # 0.1-50 keV nuclear recoils [MeV]
T_TINY = np.array([1e-12])  # F(q) = 1 to 1e-9


# ---------------------------------------------------------------- SM limits
@pytest.mark.parametrize("iso", [CS, I, AR])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_model_reduces_to_sm_at_zero_coupling(iso, flavour):
    zero = {n: 0.0 for n, p in PARAMETERS.items() if p.default == 0.0}
    terms = rate_terms(zero, iso, flavour, T_NODES)
    qw = weak_charge(T_NODES, iso, flavour)
    assert set(terms) == {"sm", "magnetic", "scalar"}
    np.testing.assert_allclose(terms["sm"][0], qw**2, rtol=1e-12)
    assert np.all(terms["magnetic"] == 0) and np.all(terms["scalar"] == 0)
    # defaults (mass parameters at their default values too) and the lead's interface agree
    np.testing.assert_allclose(rate_terms(physics_defaults(), iso, flavour, T_NODES)["sm"][0], qw**2, rtol=1e-12)
    np.testing.assert_allclose(rate_terms({"eps_ee_uV": 0.0}, iso, flavour, T_NODES)["sm"][0], qw**2, rtol=1e-12)


def test_sm_parameters_pass_through_bsm_path():
    """sin²θ_W and the neutron radius act the same way with or without BSM names present."""
    phys = {"sin2_theta_w": [0.23, 0.24], "rn_Cs": [5.0, 5.5]}
    a = rate_terms(phys, CS, "numu", T_NODES)["sm"]
    b = rate_terms({**phys, "eps_ee_uV": 0.0, "g_zprime": 0.0}, CS, "numu", T_NODES)["sm"]
    np.testing.assert_allclose(a, b, rtol=1e-12)
    q = weak_charge(T_NODES, CS, "numu", sin2_theta_w=0.24, r_n_fm=5.5)
    np.testing.assert_allclose(b[1], q**2, rtol=1e-12)


def test_electron_terms_reduce_to_sm_couplings():
    T = np.array([2e-3, 0.5])
    for f in FLAVOURS:
        terms = electron_rate_terms({"g_zprime": 0.0, "mu_nu_e": 0.0, "g_scalar": 0.0}, "Ar", f, T)
        gL, gR = electron_couplings(f)
        z = electrons_available("Ar", T)
        np.testing.assert_allclose(terms["e_L"][0], z * gL**2)
        np.testing.assert_allclose(terms["e_R"][0], z * gR**2)
        np.testing.assert_allclose(terms["e_LR"][0], z * gL * gR)
        assert np.all(terms["e_magnetic"] == 0) and np.all(terms["e_scalar"] == 0)


# ---------------------------------------------------------------- NSI
@pytest.mark.parametrize("iso", [CS, I])
def test_nsi_band_positions_csi(iso):
    """Q_eff = ±Q_SM on the analytic lines (2Z+N) ε_u + (Z+2N) ε_d = 0 (SM-like band) and = −2 Q_SM (sign-flipped band),
    arXiv:hep-ph/0508299 Sec. 2, at q → 0 for each CsI nucleus."""
    Z, N = iso.Z, iso.N
    q_sm = float(weak_charge(T_TINY, iso, "nue")[0])
    eu = np.linspace(-0.5, 0.7, 13)
    d_sm = -(2 * Z + N) * eu / (Z + 2 * N)
    d_flip = (-2.0 * q_sm - (2 * Z + N) * eu) / (Z + 2 * N)
    for ed, sign in ((d_sm, 1.0), (d_flip, -1.0)):
        t = rate_terms({"eps_ee_uV": eu, "eps_ee_dV": ed}, iso, "nue", T_TINY)["sm"][:, 0]
        np.testing.assert_allclose(t, q_sm**2, rtol=1e-8)
        q = nsi_coefficients(T_TINY, iso, "nue")
        amp = q.q_sm[0] + q.c_u[0] * eu + q.c_d[0] * ed
        np.testing.assert_allclose(amp, sign * q_sm, rtol=1e-8)
    # the flipped band crosses ε_d = 0 at ε_u = −2 Q_SM/(2Z + N) ≈ 0.41 (Cs and I)
    e0 = -2.0 * q_sm / (2 * Z + N)
    assert 0.38 < e0 < 0.44
    # ν_μ does not see ε_ee
    q_mu = float(weak_charge(T_TINY, iso, "numu")[0])
    np.testing.assert_allclose(rate_terms({"eps_ee_uV": 0.3}, iso, "numu", T_TINY)["sm"][0, 0], q_mu**2, rtol=1e-12)


def test_nsi_bands_hold_node_by_node_with_form_factors():
    """With F_p ≠ F_n the band condition is c_u ε_u + c_d ε_d = −2 q_SM node by node."""
    co = nsi_coefficients(T_NODES, CS, "nue", r_n_fm=5.3)
    eu = 0.2
    ed = (-2 * co.q_sm - co.c_u * eu) / co.c_d
    q2 = co.charge_squared(np.full(1, eu), np.zeros(1), extra_diag=(co.c_d * ed)[None, :])
    np.testing.assert_allclose(q2[0], co.q_sm**2, rtol=1e-10)


def test_flavour_changing_nsi_adds_in_quadrature_and_is_symmetric():
    eps = {"eps_emu_uV": 0.2, "eps_emu_dV": -0.1}
    cu, cd = quark_coefficients(CS.Z, CS.N, 1.0, 1.0)
    for f in ("nue", "nuebar", "numu", "numubar"):
        q_sm = float(weak_charge(T_TINY, CS, f)[0])  # one-loop couplings: flavour dependent
        expect = q_sm**2 + (cu * 0.2 - cd * 0.1) ** 2
        assert rate_terms(eps, CS, f, T_TINY)["sm"][0, 0] == pytest.approx(expect, rel=1e-8)
        assert nsi_qw2(T_TINY, CS, f, eps)[0, 0] == pytest.approx(expect, rel=1e-8)
    q_tau = float(weak_charge(T_TINY, CS, "nutau")[0])
    assert rate_terms(eps, CS, "nutau", T_TINY)["sm"][0, 0] == pytest.approx(q_tau**2, rel=1e-10)


def test_batch_equals_single_points():
    pts = {"eps_ee_uV": np.array([-0.3, 0.0, 0.4]), "eps_ee_dV": np.array([0.1, 0.2, -0.2]),
           "g_zprime": np.array([1e-5, 0.0, 3e-5]), "m_zprime_MeV": np.array([10.0, 20.0, 50.0]),
           "mu_nu_e": np.array([0.0, 5.0, 50.0]), "g_scalar": np.array([0.0, 1e-5, 2e-5]),
           "rn_Cs": np.array([4.8, 5.2, 5.2])}
    batch = rate_terms(pts, CS, "nue", T_NODES)
    for k in range(3):
        one = rate_terms({n: v[k] for n, v in pts.items()}, CS, "nue", T_NODES)
        for name in batch:
            np.testing.assert_allclose(batch[name][k], one[name][0], rtol=1e-12)


# ---------------------------------------------------------------- magnetic moment
def test_magnetic_prefactor_published():
    """π α²/m_e² = 2.495 × 10⁻²⁵ cm² (Vogel & Engel PRD 39, 3378 (1989): 'πα²/m_e² ≈ 2.5 × 10⁻²⁵ cm²')."""
    assert MAGNETIC_PREFACTOR_CM2 == pytest.approx(2.495e-25, rel=2e-3)


def test_magnetic_rate_has_one_over_T_shape():
    M, E = CS.mass_MeV, 30.0
    T = np.geomspace(1e-6, 1e-4, 5)  # ≪ T_max(30 MeV) ≈ 14 keV
    k = magnetic_kernel(T, E, M)
    np.testing.assert_allclose(k * T, MAGNETIC_PREFACTOR_CM2 * 1e-20, rtol=1e-4)  # ∝ 1/T
    # folded with an SNS flux, the per-node event density still rises as ~1/T at small T, unlike the flat SM kernel
    from cevns.rates import flux_kernels
    from cevns.sources.stopped_pion import StoppedPionSource

    src = StoppedPionSource(1e23, 0.08, 19.3)
    fk = flux_kernels(src, [(CS, 1e25)])
    nd = fk.nodes["Cs133"]
    mag = fk.get("magnetic", magnetic_kernel, "numu", "Cs133") / nd.weights_MeV
    sm = fk.get("sm", kinematic_kernel, "numu", "Cs133") / nd.weights_MeV
    sel = nd.T_MeV < 3e-4
    x = nd.T_MeV[sel]
    slope = np.polyfit(np.log(x), np.log(mag[sel]), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.05)
    assert abs(np.polyfit(np.log(x), np.log(sm[sel]), 1)[0]) < 0.05
    # zero above the kinematic end point
    assert magnetic_kernel(np.array([1.0]), 30.0, M)[0] == 0.0


def test_magnetic_weight_per_flavour():
    terms_e = rate_terms({"mu_nu_e": 10.0}, CS, "nuebar", T_NODES)
    terms_mu = rate_terms({"mu_nu_e": 10.0}, CS, "numu", T_NODES)
    from cevns.interactions.cevns import nucleon_form_factors

    Fp, _ = nucleon_form_factors(T_NODES, CS)
    np.testing.assert_allclose(terms_e["magnetic"][0], 100.0 * (CS.Z * Fp) ** 2)
    assert np.all(terms_mu["magnetic"] == 0)
    # electron magnetic kernel: Vogel-Engel 1/T − 1/E per (1e-10 μ_B)²
    assert electron_magnetic_kernel(1e-3, 30.0) == pytest.approx(MAGNETIC_PREFACTOR_CM2 * 1e-20 * (1e3 - 1 / 30.0))


def test_charge_radius_reproduces_published_couplings():
    """x(⟨r²_νe⟩) − x(⟨r²_νμ⟩) = g_V^p(ν_e) − g_V^p(ν_μ) = 0.0401 − 0.0318 (arXiv:2005.01645 Sec. II)."""
    d = charge_radius_shift(SM_CHARGE_RADII_1E32_CM2["mu"]) - charge_radius_shift(SM_CHARGE_RADII_1E32_CM2["e"])
    assert d == pytest.approx(C.G_V_PROTON_CR["nue"] - C.G_V_PROTON_CR["numu"], rel=0.02)
    # in the rate terms it shifts the proton coupling: Q → Q − x Z F_p
    t = rate_terms({"chr_nu_e": -1.0}, CS, "nue", T_TINY)["sm"][0, 0]
    q = float(weak_charge(T_TINY, CS, "nue")[0]) + charge_radius_shift(1.0) * CS.Z
    assert t == pytest.approx(q**2, rel=1e-10)


# ---------------------------------------------------------------- mediators
@pytest.mark.parametrize("model,gname", [("universal", "g_zprime"), ("B-L", "g_zprime_BL")])
def test_heavy_vector_mediator_is_contact_nsi(model, gname):
    """m_Z′² ≫ 2MT: the Z′ equals contact NSI ε^q = g² Q_ν Q_q/(√2 G_F m²) (arXiv:1708.04255 Sec. 2)."""
    g, m = 0.05, 1e5
    eps = contact_nsi(g, m, model)
    expect_u = g * g * (1.0 if model == "universal" else -1.0 / 3.0) / (math.sqrt(2) * C.G_FERMI_MeV2 * m * m)
    assert eps["u"][0] == pytest.approx(expect_u, rel=1e-12) and eps["d"][0] == pytest.approx(expect_u, rel=1e-12)
    a = rate_terms({gname: g, "m_zprime_MeV": m}, CS, "numu", T_NODES)["sm"]
    b = rate_terms({"eps_mumu_uV": eps["u"][0], "eps_mumu_dV": eps["d"][0]}, CS, "numu", T_NODES)["sm"]
    np.testing.assert_allclose(a, b, rtol=1e-5)  # (2MT/m²) ≤ 3e-6 here


def test_universal_zprime_interferes_destructively_and_bl_constructively():
    base = weak_charge(T_NODES, CS, "numu") ** 2
    # g = 5e-6, m = 10 MeV: ΔQ ≈ +6 (universal) and −2 (B−L) against Q_SM ≈ −38.6
    uni = rate_terms({"g_zprime": 5e-6, "m_zprime_MeV": 10.0}, CS, "numu", T_NODES)["sm"][0]
    bl = rate_terms({"g_zprime_BL": 5e-6, "m_zprime_MeV": 10.0}, CS, "numu", T_NODES)["sm"][0]
    assert np.all(uni < base) and np.all(bl > base)
    # universal at F = 1: ΔQ = 3 A g²/(√2 G_F (2MT + m²)) (arXiv:1708.04255 Sec. 2)
    g, m, T = 3e-5, 10.0, 1e-12
    dq = 3 * CS.A * g * g / (math.sqrt(2) * C.G_FERMI_MeV2 * (2 * CS.mass_MeV * T + m * m))
    t = rate_terms({"g_zprime": g, "m_zprime_MeV": m}, CS, "numu", np.array([T]))["sm"][0, 0]
    assert t == pytest.approx((float(weak_charge(np.array([T]), CS, "numu")[0]) + dq) ** 2, rel=1e-8)


def test_d_quark_coupling_is_built_from_g_d():
    """A Z′ coupling only to d quarks shifts the charge by ε (Z + 2N); only to u quarks by ε (2Z + N). Code that built
    the d coupling from the u one (pyCEvNS's bug) would give zero for the first and 3εA for the second."""
    g, m = 1e-4, 100.0
    T = np.array([1e-12])
    d_only = zprime_charge_shift(g, m, T, CS.mass_MeV, CS.Z, CS.N, 1.0, 1.0, VectorCharges(nu=1, u=0, d=1, e=0))[0, 0]
    u_only = zprime_charge_shift(g, m, T, CS.mass_MeV, CS.Z, CS.N, 1.0, 1.0, VectorCharges(nu=1, u=1, d=0, e=0))[0, 0]
    eps = g * g / (math.sqrt(2) * C.G_FERMI_MeV2 * m * m)
    assert d_only == pytest.approx(eps * (CS.Z + 2 * CS.N), rel=1e-8)
    assert u_only == pytest.approx(eps * (2 * CS.Z + CS.N), rel=1e-8)
    both = zprime_charge_shift(g, m, T, CS.mass_MeV, CS.Z, CS.N, 1.0, 1.0, "universal")[0, 0]
    assert both == pytest.approx(d_only + u_only, rel=1e-12)
    ev = vector_epsilon(g, m, np.zeros(1), VectorCharges(nu=1, u=2.0, d=-1.0, e=0.5))
    assert ev["d"][0, 0] == pytest.approx(-eps) and ev["u"][0, 0] == pytest.approx(2 * eps)


def test_scalar_mediator_matches_cerdeno_formula():
    """weight × kernel = g⁴ Q_S² F² M² T/(4π E² (2MT + m²)²), Q_S = 14A + 1.1Z (arXiv:1604.01025 Sec. 2, Table IV)."""
    g, m, E, T = 2e-5, 5.0, 30.0, 1e-9
    t = rate_terms({"g_scalar": g, "m_scalar_MeV": m}, CS, "numu", np.array([T]))
    M = CS.mass_MeV
    got = t["scalar"][0, 0] * scalar_kernel(T, E, M)
    qs = 14 * CS.A + 1.1 * CS.Z
    expect = g**4 * qs**2 * M * M * T / (4 * math.pi * E * E * (2 * M * T + m * m) ** 2) * C.HBARC2_MeV2_cm2
    assert got == pytest.approx(expect, rel=1e-6)
    assert rate_terms({"g_scalar": 0.0}, CS, "numu", T_NODES)["scalar"].max() == 0.0
    assert scalar_kernel(np.array([1.0]), 30.0, M)[0] == 0.0  # above T_max
    with pytest.raises(PhysicsDomainError):
        scalar_weight(1e-5, 0.0, T_NODES, M, 1.0)


# ---------------------------------------------------------------- neutrino-electron scattering
def test_nu_e_electron_cross_section_vs_lsnd():
    """LSND (Auerbach et al., PRD 63, 112001 (2001), hep-ex/0101039): σ(ν_e e) = (10.1 ± 1.1 ± 1.0) × 10⁻⁴⁵ E[MeV] cm²
    for Michel ν_e; tree-level SM ≈ 9.7."""
    E = np.array([20.0, 40.0])
    s = total_cross_section_electron(E, "nue") / E / 1e-45
    assert np.all(np.abs(s - 10.1) < 1.5)
    assert np.all(np.abs(s - 9.7) < 0.15)


def test_electron_cross_section_high_energy_limits():
    """E ≫ m_e: σ/E → (G_F² m_e/2π)[1 − 4s² + 16/3 s⁴] for ν_μ and (G_F² m_e/2π)[1/3 − 4/3 s² + 16/3 s⁴] for ν̄_μ
    ('t Hooft PLB 37, 195 (1971); e.g. Formaggio & Zeller RMP 84, 1307 (2012) Sec. II)."""
    s2 = C.SIN2_THETA_W_0
    pref = C.G_FERMI_MeV2**2 * C.M_ELECTRON / (2 * math.pi) * C.HBARC2_MeV2_cm2
    E = 1e4
    assert total_cross_section_electron(E, "numu") / E == pytest.approx(pref * (1 - 4 * s2 + 16 / 3 * s2**2), rel=1e-3)
    assert total_cross_section_electron(E, "numubar") / E == pytest.approx(pref * (1 / 3 - 4 / 3 * s2 + 16 / 3 * s2**2),
                                                                            rel=1e-3)
    assert total_cross_section_electron(E, "nutau") == pytest.approx(total_cross_section_electron(E, "numu"))


def test_electron_terms_reproduce_direct_cross_section():
    T = np.array([1e-3, 5e-3, 2e-2])
    E = 30.0
    phys = {"mu_nu_mu": 20.0, "g_zprime": 1e-5, "m_zprime_MeV": 10.0, "g_scalar": 1e-5, "m_scalar_MeV": 2.0}
    for f in ("numu", "nuebar"):
        terms = electron_rate_terms(phys, "Ge", f, T)
        tot = sum(w[0] * KERNELS[k](T, E, C.M_ELECTRON) for k, w in terms.items())
        mu = 20.0 if f == "numu" else 0.0
        direct = dsigma_dT_electron(T, E, f, mu_nu_1e10=mu, g_zprime=1e-5, m_zprime_MeV=10.0, g_scalar=1e-5,
                                    m_scalar_MeV=2.0) * electrons_available("Ge", T)
        np.testing.assert_allclose(tot, direct, rtol=1e-12)
        sm = dsigma_dT_electron(T, E, f) * electrons_available("Ge", T)
        assert np.all(np.abs(direct / sm - 1) > 1e-3)


def test_atomic_step_function():
    for el, shells in ATOMIC_SHELLS_eV.items():
        Z = isotope({"Na": "Na23", "Ar": "Ar40", "Ge": "Ge72", "I": "I127", "Xe": "Xe132", "Cs": "Cs133"}[el]).Z
        assert sum(n for n, _ in shells) == Z
        assert electrons_available(el, 1.0) == Z and electrons_available(el, 1e-7) == 0
        b = [x for _, x in shells]
        assert b[0] == max(b) and min(b) > 0  # K shell most bound
    # CsI at 1 keV: K, L and the 3s/3p M shells of Cs are closed (55 − 18 = 37); at 6 keV only K (53)
    assert electrons_available("Cs", 1e-3) == 37 and electrons_available("Cs", 6e-3) == 53
    with pytest.raises(UnknownNameError):
        electrons_available("Unobtainium", 1e-3)


# ---------------------------------------------------------------- oscillations
def test_oscillation_limits():
    E = np.linspace(10, 50, 9)
    for f, ue, um, u in (("nue", 0.1, 0.0, 0.1), ("numu", 0.0, 0.05, 0.05), ("numubar", 0.0, 0.05, 0.05)):
        np.testing.assert_allclose(survival_probability(f, E, 19.3, 0.0, ue, um, 1.0), 1.0)
        fast = survival_probability(f, E, 19.3, 5e3, ue, um, 1.0)
        np.testing.assert_allclose(fast, 1 - 2 * u * (1 - u), atol=2e-3)
        # one mixing element only: neutral-current (active) probability equals survival
        np.testing.assert_allclose(active_probability(f, E, 19.3, 1.7, ue, um, 1.0),
                                   survival_probability(f, E, 19.3, 1.7, ue, um, 1.0), rtol=1e-12)
    # both non-zero: NC loss uses |U_s4|² = 1 − |U_e4|² − |U_μ4|²
    assert amplitude("nue", 0.1, 0.05, "nc") == pytest.approx(4 * 0.1 * 0.85)
    assert amplitude("nue", 0.1, 0.05, "survival") == pytest.approx(4 * 0.1 * 0.9)
    assert amplitude("nutau", 0.1, 0.05) == 0.0
    # the batched models' names: same physics
    assert sterile_amplitude("numubar", 0.1, 0.05) == amplitude("numubar", 0.1, 0.05, "nc")
    np.testing.assert_allclose(mean_sin2(2.0, 19.3, E, 1.0), sin2_average(2.0, E, 19.3, 1.0))


def test_baseline_average_matches_numerical_average():
    E = np.array([12.0, 29.8, 45.0])
    x = np.linspace(19.3 - 0.5, 19.3 + 0.5, 20001)
    for dm2 in (0.3, 2.0, 15.0):
        num = np.mean(np.sin(1.26693 * dm2 * x[:, None] / E[None, :]) ** 2, axis=0)
        np.testing.assert_allclose(sin2_average(dm2, E, 19.3, 1.0), num, atol=1e-4)
    np.testing.assert_allclose(sin2_average(2.0, E, 19.3, 0.0), np.sin(OSC_PHASE_CONST * 2.0 * 19.3 / E) ** 2, rtol=1e-12)
    k = sin2_kernel(kinematic_kernel, 2.0, 19.3, 1.0)
    np.testing.assert_allclose(k(1e-3, E, CS.mass_MeV), kinematic_kernel(1e-3, E, CS.mass_MeV) * sin2_average(2.0, E, 19.3, 1.0))


def test_oscillation_parameters_are_routed_to_the_flux():
    (A, dm2), = flux_terms(validate_params({"Ue4_sq": [0.0, 0.1], "dm2_41_eV2": 1.0}), "nue")
    np.testing.assert_allclose(A, [0.0, 0.36])
    np.testing.assert_allclose(dm2, [1.0, 1.0])
    with pytest.raises(ConfigError, match="flux"):
        rate_terms({"Ue4_sq": 0.1}, CS, "nue", T_NODES, oscillation="raise")
    ok = rate_terms({"Ue4_sq": 0.1, "dm2_41_eV2": 1.0}, CS, "nue", T_NODES, oscillation="ignore")
    np.testing.assert_allclose(ok["sm"][0], weak_charge(T_NODES, CS, "nue") ** 2)


# ---------------------------------------------------------------- registry and errors
def test_registry_names_from_issue():
    issue = [f"eps_{p}_{q}V" for p in ("ee", "mumu", "tautau", "emu", "etau", "mutau") for q in "ud"] + [
        "mu_nu_e", "mu_nu_mu", "sin2_theta_w", "rn_Cs", "rn_I", "rn_Ar", "g_zprime", "m_zprime_MeV", "g_scalar",
        "m_scalar_MeV", "dm2_41_eV2", "Ue4_sq", "Umu4_sq"]
    for n in issue:
        assert n in PARAMETERS and n in describe_params()
        p = PARAMETERS[n]
        assert p.limits[0] < p.limits[1] and p.unit and p.doc
    assert PARAMETERS["sin2_theta_w"].default == C.SIN2_THETA_W_0


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(UnknownNameError, match="eps_ee_u"):
        validate_params({"eps_ee_u": 0.1})
    with pytest.raises(UnknownNameError):
        rate_terms({"g_zprim": 1e-5}, CS, "numu", T_NODES)
    with pytest.raises(PhysicsDomainError, match=r"allowed range \[0, 1\]"):
        validate_params({"sin2_theta_w": 1.5})
    with pytest.raises(PhysicsDomainError, match="m_zprime_MeV"):
        validate_params({"m_zprime_MeV": [10.0, -1.0]})
    with pytest.raises(PhysicsDomainError, match="finite"):
        validate_params({"eps_ee_dV": float("nan")})
    with pytest.raises(PhysicsDomainError, match="unitarity"):
        validate_params({"Ue4_sq": 0.7, "Umu4_sq": 0.6})
    with pytest.raises(ConfigError):
        validate_params({"g_scalar": "big"})
    with pytest.raises(ConfigError, match="lengths"):
        validate_params({"eps_ee_uV": [0.0, 0.1], "eps_ee_dV": [0.0, 0.1, 0.2]})
    with pytest.raises(UnknownNameError):
        rate_terms({}, CS, "nu_e", T_NODES)
    with pytest.raises(PhysicsDomainError):
        rate_terms({"eps_ee_uV": 0.1}, CS, "nue", np.array([-1e-3]))
    with pytest.raises(UnknownNameError):
        required_kernels(["mu_nu_tau"])


def test_required_kernels_match_returned_terms():
    for names in ([], ["eps_ee_uV"], ["mu_nu_e"], ["g_scalar", "m_scalar_MeV"], ["mu_nu_mu", "m_scalar_MeV", "g_zprime"]):
        phys = {n: PARAMETERS[n].default for n in names}
        assert tuple(rate_terms(phys, AR, "nue", T_NODES)) == required_kernels(names)
        assert tuple(electron_rate_terms(phys, "Ar", "nue", T_NODES)) == required_kernels(names, "electron")
    for k in required_kernels(["mu_nu_e", "g_scalar"]) + required_kernels(["mu_nu_e", "g_scalar"], "electron"):
        assert k in KERNELS


def test_common_csi_radius_and_kernel_guard():
    a = rate_terms({"rn_CsI": 5.1, "eps_ee_uV": 0.0}, I, "nue", T_NODES)["sm"][0]
    np.testing.assert_allclose(a, weak_charge(T_NODES, I, "nue", r_n_fm=5.1) ** 2, rtol=1e-12)
    with pytest.raises(UnknownNameError, match="magnetic"):
        rate_terms({"mu_nu_e": 1.0}, CS, "nue", T_NODES, kernels=("sm",))
