"""The rate engine against a slow, fine-grid reference computed here (issue: accurate to < 0.5 %)."""
import numpy as np
import pytest

from cevns import constants as C
from cevns.detectors.efficiency import coherent2017_efficiency
from cevns.detectors.quenching import ConstantQuenching
from cevns.detectors.response import PEResponse
from cevns.interactions.cevns import dsigma_dT, t_max
from cevns.rates import flux_kernels
from cevns.sources import StoppedPionSource, michel_nue_pdf, michel_numubar_pdf
from cevns.targets import material
from cevns.detectors.smearing import poisson_pe_matrix


def reference_dndt(iso, n_nuclei, src, T):
    """Brute force: dN/dT on a T array with a 6,000-point trapezoid in E for each Michel flavour plus the line."""
    out = 0.0
    E = np.linspace(1e-3, C.M_MUON / 2, 6001)
    for f, pdf in (("nue", michel_nue_pdf), ("numubar", michel_numubar_pdf)):
        integrand = dsigma_dT(T[:, None], E[None, :], iso, f, scheme="tree") * pdf(E)[None, :]
        out = out + src.fluence_per_cm2(f) * n_nuclei * np.trapezoid(integrand, E, axis=1)
    out = out + src.fluence_per_cm2("numu") * n_nuclei * dsigma_dT(T, C.E_NU_PROMPT, iso, "numu", scheme="tree")
    return out


@pytest.fixture(scope="module")
def setup():
    src = StoppedPionSource(1.7e23, 0.08, 19.3)
    comps = [(iso, n * 14.6) for iso, n in material("CsI").components]
    return src, comps, flux_kernels(src, comps)


def test_total_and_pe_binned_counts_match_reference(setup):
    src, comps, fk = setup
    edges = np.arange(0, 51, 2.0)
    resp = PEResponse(ConstantQuenching(0.0878), 13.348, edges, "poisson", coherent2017_efficiency)
    engine_total, engine_pe, ref_total, ref_pe = 0.0, 0.0, 0.0, 0.0
    for iso, n in comps:
        nd = fk.nodes[iso.name]
        from cevns.interactions.cevns import weak_charge

        for f in src.flavours:
            qw = weak_charge(nd.T_MeV, iso, f, scheme="tree")
            ev = fk.events(f, iso.name, qw * qw)
            engine_total += ev.sum()
            engine_pe = engine_pe + resp.matrix(nd.T_keV) @ ev
        # fine uniform T grid, split at the prompt-line end point so the step is resolved
        tm_line = t_max(C.E_NU_PROMPT, iso.mass_MeV)
        tm_all = t_max(C.M_MUON / 2, iso.mass_MeV)
        T = np.unique(np.concatenate([np.linspace(0, tm_line, 2501), np.linspace(tm_line, tm_all, 1501)]))
        T = np.unique(np.concatenate([T, [tm_line * (1 - 1e-12)]]))
        dndt = reference_dndt(iso, n, src, T)
        ref_total += np.trapezoid(dndt, T)
        P = poisson_pe_matrix(13.348 * 0.0878 * T / C.keV, 50) * coherent2017_efficiency(np.arange(50) + 0.5)[:, None]
        ref_fine = np.trapezoid(P * dndt[None, :], T, axis=1)
        ref_pe = ref_pe + ref_fine.reshape(25, 2).sum(axis=1)
    assert engine_total == pytest.approx(ref_total, rel=5e-3)
    assert engine_pe.sum() == pytest.approx(ref_pe.sum(), rel=5e-3)
    big = ref_pe > 1.0
    assert np.allclose(engine_pe[big], ref_pe[big], rtol=5e-3)
