"""The one place that combines interaction processes (cevns.interactions.terms): SM pass-through, kernel guard, the
registry of processes and parameters."""
import numpy as np
import pytest

from cevns.errors import UnknownNameError
from cevns.interactions.cevns import weak_charge
from cevns.interactions.terms import rate_terms
from cevns.targets import isotope

CS = isotope("Cs133")
T = np.linspace(1e-4, 0.04, 20)


def test_sm_path_matches_weak_charge_and_radius_changes_it():
    w = rate_terms({"sin2_theta_w": np.array([0.23857, 0.25])}, CS, "numu", T)["sm"]
    assert np.allclose(w[0], weak_charge(T, CS, "numu") ** 2)
    assert np.allclose(w[1], weak_charge(T, CS, "numu", sin2_theta_w=0.25) ** 2)
    r = rate_terms({"rn_CsI": np.array([4.5, 5.5])}, CS, "numu", T)["sm"]
    assert np.all(r[1, 1:] < r[0, 1:])  # a larger neutron radius suppresses the rate at q > 0


def test_bsm_path_and_kernel_check():
    t = rate_terms({"mu_nu_mu": np.array([10.0])}, CS, "numu", T, kernels=("sm", "magnetic"))
    assert set(t) == {"sm", "magnetic"} and np.allclose(t["sm"][0], weak_charge(T, CS, "numu") ** 2)
    with pytest.raises(UnknownNameError):
        rate_terms({"mu_nu_e": np.array([1.0])}, CS, "nue", T, kernels=("sm",))  # the magnetic kernel was not prepared
    # oscillation parameters pass through (they act on the flux: flux_terms)
    t = rate_terms({"dm2_41_eV2": np.array([1.0]), "Ue4_sq": np.array([0.1])}, CS, "nue", T)
    assert np.allclose(t["sm"][0], weak_charge(T, CS, "nue") ** 2)


def test_every_parameter_belongs_to_one_process():
    from cevns.interactions.parameters import PARAMETERS
    from cevns.interactions.terms import PROCESSES, process_of

    owners = [n for p in PROCESSES for n in p.parameters]
    assert sorted(owners) == sorted(PARAMETERS) and len(owners) == len(set(owners))
    assert process_of("eps_emu_uV").name == "nsi" and process_of("dm2_41_eV2").name == "sterile_oscillation"
