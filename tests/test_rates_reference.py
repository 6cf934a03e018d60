"""The rate engine against a slow, fine-grid reference computed here (issue: accurate to < 0.5 %)."""
import numpy as np
import pytest

from cevns import constants as C
from cevns.detectors.efficiency import coherent2017_efficiency
from cevns.detectors.response import DetectorResponse
from cevns.interactions.cevns import dsigma_dT, kinematic_kernel, t_max
from cevns.interactions.kinematics import e_min, t_max as t_max_m
from cevns.interactions.process import NuclearContext
from cevns.interactions.terms import nuclear_weights
from cevns.rates import flux_kernels, source_species
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
    det = DetectorResponse({"observable": {"unit": "pe", "light_yield_pe_per_keVee": 13.348},
                            "quenching": {"model": "constant", "qf": 0.0878}, "smearing": {"model": "poisson"},
                            "efficiency": {"model": "coherent2017", "a": 0.6655, "k": 0.4942, "x0": 10.8507}},
                           edges, None, "test")
    engine_total, engine_pe, ref_total, ref_pe = 0.0, 0.0, 0.0, 0.0
    for iso, n in comps:
        nd = fk.nodes[iso.name]
        for f in src.flavours:
            w = nuclear_weights({}, NuclearContext(iso, source_species(src, f), nd.T_MeV, "helm", "tree"))["sm"][0]
            ev = fk.get("sm", kinematic_kernel, f, iso.name) * w
            engine_total += ev.sum()
            engine_pe = engine_pe + det.matrix(nd.T_keV) @ ev
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


def test_massive_projectile_kinematics():
    """T_max = 2M(E² − m²)/(m² + M² + 2ME) and E_min(T) are inverse; m → 0 gives the neutrino formulas; T_max of a
    projectile at rest (E = m) is zero; a heavy projectile on a light target gives T_max → 2M v²γ²-like limits."""
    M, m = 123_000.0, 50.0
    E = np.array([60.0, 100.0, 500.0])
    assert np.allclose(e_min(t_max_m(E, M, m), M, m), E, rtol=1e-12)
    assert t_max_m(m, M, m) == 0.0
    assert np.allclose(t_max_m(E, M, 1e-9), t_max(E, M), rtol=1e-12)
    # non-relativistic, m ≪ M: T_max ≈ 2 p²/M (full backscatter), p² = E² − m²
    E_nr = m * (1 + 1e-6)
    assert t_max_m(E_nr, M, m) == pytest.approx(2 * (E_nr**2 - m**2) * M / (m + M) ** 2, rel=1e-6)


def test_rate_engine_uses_the_species_mass():
    """A source of a massive species: the recoil nodes end at T_max(E_max; M, m) and no node is fed by energies
    below E_min(T; M, m)."""
    from cevns.sources.spectrum import Spectrum
    from cevns.sources.species import Species
    from cevns.targets import isotope

    class DMSource:
        species = ("chi",)

        def species_info(self, name):
            return Species("chi", 30.0, "dark_matter")

        def spectrum(self, name):
            return Spectrum(lambda E: np.full_like(E, 1.0 / 40.0), 40.0, 80.0)

        def fluence_per_cm2(self, name):
            return 1.0

    cs = isotope("Cs133")
    fk = flux_kernels(DMSource(), [(cs, 1.0)])
    T = fk.nodes["Cs133"].T_MeV
    tm = t_max_m(80.0, cs.mass_MeV, 30.0)
    assert 0.995 * tm < T.max() < tm  # the last Gauss–Legendre node of the panel that ends at T_max
    assert T.max() < t_max(80.0, cs.mass_MeV)  # a massless projectile of the same energy reaches further
    one = lambda T, E, M: np.ones_like(T * E)  # noqa: E731
    k = fk.get("one", one, "chi", "Cs133") / fk.nodes["Cs133"].weights_MeV
    want = (80.0 - np.clip(e_min(T, cs.mass_MeV, 30.0), 40.0, 80.0)) / 40.0  # ∫ pdf over E > E_min
    assert np.allclose(k, want, rtol=1e-10)
