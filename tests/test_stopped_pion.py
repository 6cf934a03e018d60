import numpy as np
import pytest
from scipy import integrate

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.sources import StoppedPionSource, michel_nue_pdf, michel_numubar_pdf, pot_from_beam_energy
from cevns.sources.stopped_pion import gaussian_pulse_time_cdf


def test_prompt_line_energy():
    assert C.E_NU_PROMPT == pytest.approx(29.79, abs=0.01)
    src = StoppedPionSource(1e23, 0.08, 20.0)
    assert src.spectrum("numu").lines == ((C.E_NU_PROMPT, 1.0),)


@pytest.mark.parametrize("pdf,mean_frac", [(michel_nue_pdf, 0.6), (michel_numubar_pdf, 0.7)])
def test_michel_spectra(pdf, mean_frac):
    emax = C.M_MUON / 2
    norm = integrate.quad(pdf, 0, emax)[0]
    assert norm == pytest.approx(1.0, rel=1e-10)
    assert pdf(np.array([emax * 1.0001]))[0] == 0.0  # ends at m_mu/2
    mean = integrate.quad(lambda e: e * pdf(e), 0, emax)[0]
    assert mean == pytest.approx(mean_frac * emax, rel=1e-10)  # <E> = 3/5, 7/10 of the end point
    assert michel_nue_pdf(np.array([emax]))[0] == pytest.approx(0.0, abs=1e-15)  # nu_e vanishes at the end point


def test_fold_matches_quad():
    src = StoppedPionSource(1e23, 0.08, 20.0)
    sp = src.spectrum("nue")
    got = sp.fold(lambda E: E**-1.0, np.array([10.0, 30.0]))
    ref = [integrate.quad(lambda e: michel_nue_pdf(e) / e, lo, C.M_MUON / 2)[0] for lo in (10.0, 30.0)]
    assert np.allclose(got, ref, rtol=1e-10)


def test_fluence_and_pot():
    pot = pot_from_beam_energy(13.99, 0.9829)
    assert pot == pytest.approx(3.198e23, rel=1e-3)  # CsI 2021 numbers of arXiv:2110.07730
    src = StoppedPionSource(pot, 0.0848, 19.3)
    assert src.fluence_per_cm2("nue") == pytest.approx(0.0848 * pot / (4 * np.pi * 1930.0**2))


def test_timing_pdfs():
    edges = np.linspace(-2, 30, 3201)
    for comp in ("prompt", "delayed"):
        cdf = gaussian_pulse_time_cdf(edges, comp, 0.3, 0.15)
        assert np.all(np.diff(cdf) >= -1e-12) and cdf[0] == pytest.approx(0, abs=1e-9) and cdf[-1] == pytest.approx(1, abs=1e-5)
    t = 0.5 * (edges[1:] + edges[:-1])
    mean_p = np.sum(t * np.diff(gaussian_pulse_time_cdf(edges, "prompt", 0.3, 0.15)))
    mean_d = np.sum(t * np.diff(gaussian_pulse_time_cdf(edges, "delayed", 0.3, 0.15)))
    assert mean_p == pytest.approx(0.3 + C.TAU_PION_CHARGED_us, abs=1e-3)
    assert mean_d == pytest.approx(0.3 + C.TAU_PION_CHARGED_us + C.TAU_MUON_us, abs=2e-3)


@pytest.mark.parametrize("kw", [dict(pot=-1.0), dict(pot=float("inf")), dict(distance_m=0.0), dict(nu_per_flavour_per_pot=float("nan"))])
def test_bad_source_inputs(kw):
    args = dict(pot=1e23, nu_per_flavour_per_pot=0.08, distance_m=20.0)
    args.update(kw)
    with pytest.raises(PhysicsDomainError):
        StoppedPionSource(**args)


def test_bad_flavour_and_exposure():
    src = StoppedPionSource(1e23, 0.08, 20.0)
    with pytest.raises(UnknownNameError, match="nue"):
        src.spectrum("nuebar")
    with pytest.raises(PhysicsDomainError, match="beam energy"):
        pot_from_beam_energy(-1.0, 1.0)
    with pytest.raises(PhysicsDomainError, match="sigma"):
        gaussian_pulse_time_cdf(np.array([0.0]), "prompt", 0.0, 0.0)
