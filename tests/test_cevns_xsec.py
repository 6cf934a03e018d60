import numpy as np
import pytest

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.interactions.cevns import (dsigma_dT, e_nu_min, kinematic_kernel, nucleon_couplings, t_max,
                                      total_cross_section, weak_charge)
from cevns.targets import isotope, natural_isotopes
from cevns.experiments.releases import read_table
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def test_tmax_and_emin_are_inverse():
    M = isotope("Cs133").mass_MeV
    E = np.array([5.0, 29.79, 52.8])
    assert np.allclose(e_nu_min(t_max(E, M), M), E)
    assert t_max(30.0, M) == pytest.approx(2 * 900 / (M + 60))


def test_kernel_vanishes_beyond_tmax():
    M = isotope("Ar40").mass_MeV
    E = 30.0
    tm = t_max(E, M)
    assert kinematic_kernel(tm * 1.0001, E, M) == 0.0
    assert kinematic_kernel(tm * 0.999, E, M) > 0.0
    # at T = T_max the factor (1 - T/E - MT/2E^2) is exactly zero
    assert 1 - tm / E - M * tm / (2 * E * E) == pytest.approx(0.0, abs=1e-12)


def test_low_energy_limit_closed_form():
    """σ → G_F² E² Q_W²/(4π) for E → 0 (F → 1), with Q_W = 2(Z g_p + N g_n)."""
    iso = isotope("Ar40")
    E = np.array([1.0])
    gp, gn = nucleon_couplings("numu")
    qw = 2 * (iso.Z * gp + iso.N * gn)
    expected = C.G_FERMI_MeV2**2 * E**2 * qw**2 / (4 * np.pi) * C.HBARC2_MeV2_cm2
    assert total_cross_section(E, iso)[0] == pytest.approx(expected[0], rel=2e-3)


def test_n_squared_scaling():
    """σ/N² is nearly universal at low energy; deviations are the proton term and the form factor."""
    E = np.array([10.0])
    vals = {}
    for name in ("Na23", "Ar40", "Ge74", "I127", "Cs133", "Xe132"):
        iso = isotope(name)
        gp, gn = nucleon_couplings("numu")
        qw0 = iso.Z * gp + iso.N * gn
        sigma = total_cross_section(E, iso)[0]
        sigma_ff1 = total_cross_section(E, iso, form_factor_model="none")[0]
        vals[name] = sigma_ff1 / qw0**2
        ratio_n2 = sigma / iso.N**2
        # the form factor suppression at 10 MeV stays within a few percent
        assert 0.93 < sigma / sigma_ff1 <= 1.0
        assert ratio_n2 > 0
    v = np.array(list(vals.values()))
    assert v.max() / v.min() == pytest.approx(1.0, abs=1e-3)  # σ/Q_W² universal once F = 1
    s_ar = total_cross_section(E, isotope("Ar40"))[0] / 22**2
    s_cs = total_cross_section(E, isotope("Cs133"))[0] / 78**2
    assert s_cs / s_ar == pytest.approx(1.0, abs=0.15)  # N² law within the proton term and form factor


def test_flavour_and_domain_errors():
    with pytest.raises(UnknownNameError, match="flavour"):
        dsigma_dT(0.01, 30.0, "Cs133", "nuX")
    with pytest.raises(PhysicsDomainError, match="neutrino energy"):
        dsigma_dT(0.01, -30.0, "Cs133")
    with pytest.raises(PhysicsDomainError, match="finite"):
        dsigma_dT(np.nan, 30.0, "Cs133")
    with pytest.raises(PhysicsDomainError, match="neutrino energy"):
        total_cross_section(np.array([0.0]), "Ar40")
    with pytest.raises(PhysicsDomainError, match="sin2_theta_w"):
        weak_charge(0.01, "Ar40", sin2_theta_w=1.5)


def test_sin2_dependence_is_the_scheme_slope():
    for scheme, slope in (("tree", -2.0), ("charge_radius", -2.0), ("one_loop", -2.0 * C.RHO_NU_N)):
        gp1, gn1 = nucleon_couplings("numu", 0.23857, scheme)
        gp2, gn2 = nucleon_couplings("numu", 0.25857, scheme)
        assert gp2 - gp1 == pytest.approx(0.02 * slope) and gn2 == gn1
    assert nucleon_couplings("numu", 0.25, "tree") == pytest.approx((0.0, -0.5))


def test_one_loop_couplings():
    """PDG 2024 §10 ν–nucleon couplings (ν_μ) and the flavour dependence through the SM charge radii."""
    gp_mu, gn = nucleon_couplings("numu")
    assert gn == pytest.approx(-0.5117, abs=5e-4)  # the PDG quotes g_V^νn = −0.5117
    assert gp_mu == pytest.approx(0.030, abs=1e-3)
    # g_V^p(ν_e) − g_V^p(ν_μ) = −√2 π α/(3 G_F) (⟨r²_νe⟩ − ⟨r²_νμ⟩) with ⟨r²⟩ = −0.83, −0.48 × 10⁻³² cm²
    # (arXiv:1810.05606): written out here in natural units (ħc converts cm² to MeV⁻²)
    x_per_cm2 = np.sqrt(2) * np.pi * C.ALPHA_EM / (3 * C.G_FERMI_MeV2) / (C.HBARC_MeV_fm * 1e-13) ** 2
    gp_e, gn_e = nucleon_couplings("nue")
    assert gp_e - gp_mu == pytest.approx(-x_per_cm2 * (-0.83e-32 + 0.48e-32), rel=1e-6)
    assert gp_e - gp_mu == pytest.approx(0.0401 - 0.0318, abs=3e-4)  # Cadeddu et al. arXiv:2005.01645
    assert nucleon_couplings("nutau")[0] < gp_mu < gp_e and gn_e == gn
    assert nucleon_couplings("nuebar") == nucleon_couplings("nue")
    with pytest.raises(UnknownNameError, match="coupling scheme"):
        nucleon_couplings("numu", scheme="pdg")


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared not present")
@pytest.mark.parametrize("el", ["Ar", "Ge", "Xe"])
def test_against_snowglobes_low_energy(el):
    """SNOwGLoBES CEvNS tables (Helm, natural abundance) agree with ours within 10 % at 7-12 MeV (tree couplings):
    we are 6 % above them there for Ar, Ge and Xe alike.

    Below ~5 MeV the Xe table falls further below ours (13 % at 3 MeV); above ~15 MeV the SNOwGLoBES tables flatten (σ saturates near 6e-40 cm² for Ar), far below the analytic
    Helm-suppressed result; we document that disagreement rather than tune to it (see docs/validation.md).
    """
    arr = read_table(SHARED / "snowglobes" / "xscns" / f"xs_coh_helm_numu_{el}.dat", ncols=7)
    E = 10 ** arr[:, 0] * 1e3
    sg = arr[:, 2] * E * 1e-3 * 1e-38
    sel = (E > 7) & (E < 12)
    ours = sum(i.abundance * total_cross_section(E[sel], i, scheme="tree") for i in natural_isotopes(el))
    ratio = ours / sg[sel]
    assert np.all(np.abs(ratio - 1) < 0.10), ratio


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared not present")
@pytest.mark.xfail(reason="the SNOwGLoBES CEvNS tables flatten above ~15 MeV (Ar saturates near 6e-40 cm²), a factor "
                          "2.6 below the analytic Helm result at 30 MeV: the tables look truncated", strict=True)
def test_against_snowglobes_above_15_MeV():
    arr = read_table(SHARED / "snowglobes" / "xscns" / "xs_coh_helm_numu_Ar.dat", ncols=7)
    E = 10 ** arr[:, 0] * 1e3
    sg = arr[:, 2] * E * 1e-3 * 1e-38
    sel = (E > 20) & (E < 40)
    ours = sum(i.abundance * total_cross_section(E[sel], i, scheme="tree") for i in natural_isotopes("Ar"))
    assert np.all(np.abs(ours / sg[sel] - 1) < 0.10)
