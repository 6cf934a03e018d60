"""New-physics weights: SM limits, NSI band positions, magnetic 1/T shape, heavy mediator = contact NSI, errors."""
import numpy as np
import pytest

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.interactions.bsm import (bsm_rate_terms, magnetic_kernel, nsi_weak_charge_sq, validate_params,
                                    zprime_delta_g)
from cevns.interactions.cevns import weak_charge
from cevns.interactions.terms import rate_terms
from cevns.targets import isotope

CS = isotope("Cs133")
T = np.linspace(1e-4, 0.04, 30)


@pytest.mark.parametrize("params", [{"eps_ee_uV": 0.0, "eps_ee_dV": 0.0}, {"g_zprime": 0.0, "m_zprime_MeV": 10.0},
                                    {"mu_nu_e": 0.0}, {"g_scalar": 0.0, "m_scalar_MeV": 5.0}, {"eps_emu_uV": 0.0}])
def test_every_model_reduces_to_sm_at_zero_coupling(params):
    sm = weak_charge(T, CS, "nue") ** 2
    terms = bsm_rate_terms({k: np.array([v]) for k, v in params.items()}, CS, "nue", T)
    assert np.allclose(terms["sm"][0], sm, rtol=1e-12)
    for k, w in terms.items():
        if k != "sm":
            assert np.all(w == 0)


def test_nsi_band_positions_match_analytic():
    """Q_e(ε) = ±Q_SM: (2Z+N)ε_u + (Z+2N)ε_d = 0 (SM band) or = −2 Q_SM (sign-flipped band), at F → 1."""
    Tlow = np.array([1e-9])
    q_sm = weak_charge(Tlow, CS, "nue")[0]
    a, b = 2 * CS.Z + CS.N, CS.Z + 2 * CS.N
    eu = np.array([-0.3, 0.0, 0.4])
    for band_rhs in (0.0, -2 * q_sm):
        ed = (band_rhs - a * eu) / b
        q2 = nsi_weak_charge_sq({"eps_ee_uV": eu, "eps_ee_dV": ed}, CS, "nue", Tlow)[:, 0]
        assert np.allclose(q2, q_sm**2, rtol=1e-6)
    assert -2 * q_sm / b == pytest.approx(0.35, abs=0.02)  # flipped band crosses ε_u = 0 at ε_d ≈ +0.35 for Cs


def test_nsi_only_acts_on_its_flavour_and_fc_adds_in_quadrature():
    p = {"eps_ee_uV": np.array([0.2])}
    assert np.allclose(nsi_weak_charge_sq(p, CS, "numu", T)[0], weak_charge(T, CS, "numu") ** 2)
    fc = nsi_weak_charge_sq({"eps_emu_uV": np.array([0.1])}, CS, "nue", T)[0]
    extra = (CS.Z * 2 * 0.1 + CS.N * 0.1) ** 2
    assert fc[0] == pytest.approx(weak_charge(T[:1], CS, "nue")[0] ** 2 + extra, rel=2e-3)


def test_magnetic_kernel_has_1_over_T_shape():
    M = CS.mass_MeV
    t = np.array([1e-5, 2e-5, 4e-5])
    k = magnetic_kernel(t, 30.0, M)
    assert k[0] / k[1] == pytest.approx(2.0, rel=1e-3) and k[1] / k[2] == pytest.approx(2.0, rel=1e-3)
    assert magnetic_kernel(np.array([1.0]), 30.0, M)[0] == 0.0  # above T_max


def test_heavy_vector_mediator_is_contact_nsi():
    g, m = 1e-3, 1e5  # MeV
    eps = g * g / (np.sqrt(2) * C.G_FERMI_MeV2 * m * m)
    med = bsm_rate_terms({"g_zprime": np.array([g]), "m_zprime_MeV": np.array([m])}, CS, "numu", T)["sm"][0]
    nsi = bsm_rate_terms({"eps_mumu_uV": np.array([eps]), "eps_mumu_dV": np.array([eps])}, CS, "numu", T)["sm"][0]
    assert np.allclose(med, nsi, rtol=1e-5)
    # light mediator: the propagator suppresses the shift as q² grows
    dg = zprime_delta_g(np.array([g]), np.array([1.0]), T, CS.mass_MeV)[0]
    assert np.all(np.diff(dg) < 0)


def test_d_quark_coupling_built_from_d_not_u():
    """pyCEvNS's known bug built the d coupling from u: ε_d alone must change the charge by N·2ε_d + Z·ε_d."""
    Tlow = np.array([1e-9])
    q0 = weak_charge(Tlow, CS, "nue")[0]
    q = np.sqrt(nsi_weak_charge_sq({"eps_ee_dV": np.array([0.01])}, CS, "nue", Tlow)[0, 0])
    assert abs(q - abs(q0 + 0.01 * (CS.Z + 2 * CS.N))) < 1e-6
    q_u = np.sqrt(nsi_weak_charge_sq({"eps_ee_uV": np.array([0.01])}, CS, "nue", Tlow)[0, 0])
    assert abs(q_u - abs(q0 + 0.01 * (2 * CS.Z + CS.N))) < 1e-6


def test_bad_parameters():
    with pytest.raises(UnknownNameError, match="eps_ee_uV"):
        validate_params({"eps_ee_xV": 0.1})
    with pytest.raises(PhysicsDomainError, match="mu_nu_e"):
        validate_params({"mu_nu_e": -1.0})
    with pytest.raises(PhysicsDomainError):
        validate_params({"g_zprime": float("nan")})
    with pytest.raises(UnknownNameError):
        rate_terms({"mu_nu_e": np.array([1.0])}, CS, "nue", T)  # magnetic kernel not prepared for this model
