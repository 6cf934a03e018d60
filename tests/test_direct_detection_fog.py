"""The neutrino fog (issue 14): neutrino sources through the rate engine, the Asimov profile likelihood, the fog index
and the floor against O'Hare's published xenon floor (arXiv:2109.03116)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cevns import constants as C
from cevns.directdetection import fog
from cevns.sources.halo import YEAR_S, StandardHaloModel
from cevns.sources.solar import COMPONENTS, NaturalNeutrinoSource, component_spectrum

#: the halo of O'Hare's published floors (his MeanInverseSpeed_SHM defaults)
OHARE_HALO = StandardHaloModel(0.3, 167.0 * math.sqrt(2.0), 533.0, 245.6)


@pytest.fixture(scope="module")
def xe_rates():
    return fog.neutrino_binned_rates("Xe")


def test_fluxes_and_uncertainties_are_ohare_table_1():
    """O'Hare 2021 (arXiv:2109.03116) Table 1, typed here from the data folder's SOURCE.md."""
    table = {"pp": (5.98e10, 0.006), "pep": (1.44e8, 0.01), "hep": (7.98e3, 0.30), "7Be1": (4.93e8, 0.06),
             "7Be2": (4.50e9, 0.06), "8B": (5.16e6, 0.02), "13N": (2.78e8, 0.15), "15O": (2.05e8, 0.17),
             "17F": (5.29e6, 0.20), "DSNB": (85.7, 0.50), "Atm": (10.7, 0.25), "GeoU": (4.34e6, 0.20),
             "GeoTh": (4.23e6, 0.257), "GeoK": (20.54e6, 0.168), "Reactor": (3.06e6, 0.08)}
    assert {n: (c.flux_cm2_s, c.rel_uncertainty) for n, c in COMPONENTS.items()} == table
    src = NaturalNeutrinoSource(["8B"], exposure_time_s=2.0, fluxes={"8B": 5.25e6})
    assert src.fluence_per_cm2("8B") == 1.05e7 and src.species_info("8B").name == "nue"


def test_component_spectra_are_normalised():
    for name in COMPONENTS:
        sp = component_spectrum(name)
        assert sp.fold(lambda E: np.ones_like(E)) == pytest.approx(1.0, abs=2e-3), name
    with pytest.raises(Exception, match="component"):
        NaturalNeutrinoSource(["8B", "9Li"])


def test_8b_rate_equals_a_brute_force_integral(xe_rates):
    """Total ⁸B CEvNS events per tonne-year on Xe132, engine vs a 2-D trapezoid of the tree-level-like formula written
    here with the package's one-loop ν_e couplings and Helm form factor (independent quadrature and kernel)."""
    from cevns.interactions.cevns import nucleon_couplings
    from cevns.targets import isotope
    from cevns.targets.form_factors import helm, helm_rms_radius_default_fm, q_fm_from_recoil
    from importlib import resources

    iso = isotope("Xe132")
    arr = np.loadtxt(str(resources.files("cevns") / "data/neutrino_fog/neutrinos/8B.txt"), delimiter=",")
    Enu, phi = arr[:, 0], arr[:, 1] / np.trapezoid(arr[:, 1], arr[:, 0])
    gp, gn = nucleon_couplings("nue")
    M = iso.mass_MeV
    T = np.geomspace(1e-7, 2 * Enu[-1] ** 2 / M, 3000)
    F = helm(q_fm_from_recoil(T, M), helm_rms_radius_default_fm(iso.A))
    Q2 = (iso.Z * gp * F + iso.N * gn * F) ** 2
    kin = np.clip(1 - T[:, None] / Enu[None, :] - M * T[:, None] / (2 * Enu[None, :] ** 2), 0, None)
    dsig = C.G_FERMI_MeV2**2 * M / math.pi * kin * C.HBARC2_MeV2_cm2 * Q2[:, None]
    sigma_avg = np.trapezoid(np.trapezoid(dsig * phi[None, :], Enu, axis=1), T)
    nuclei = 1e6 / iso.atomic_mass_u * C.AVOGADRO
    ref = sigma_avg * COMPONENTS["8B"].flux_cm2_s * YEAR_S * nuclei
    from cevns.targets.materials import material

    got = fog.neutrino_binned_rates(material("Xe132"), np.geomspace(1e-7, 10.0, 41), ["8B"]).B.sum()
    assert got == pytest.approx(ref, rel=3e-3)
    j = xe_rates.components.index("8B")
    assert 800 < xe_rates.B[j].sum() < 1000  # ≈ 916 /(t·yr) on natural xenon above 1e-4 keV


def test_asimov_q0_limits():
    S = np.array([5.0, 3.0, 1.0, 0.0])
    B = np.array([[2.0, 2.0, 2.0, 2.0]])
    # a background known exactly (δ → 0): the closed form 2 Σ [(s+b) ln(1 + s/b) − s]
    q_fixed = fog.asimov_q0(1.0, 1.0, S, B, [1e-9])
    s, b = S, B[0]
    assert q_fixed[0] == pytest.approx(2 * np.sum((s + b) * np.log1p(s / b) - s), rel=1e-6)
    # profiling a free-floating background can only lower q0; a signal shaped like the background is then invisible
    assert fog.asimov_q0(1.0, 1.0, S, B, [0.3])[0] < q_fixed[0]
    assert fog.asimov_q0(1.0, 1.0, B[0], B, [1e6])[0] == pytest.approx(0.0, abs=1e-6)
    # huge counts: the stable r − ln(1 + r) keeps q0 ∝ exposure in the Poisson regime
    q1, q2 = fog.asimov_q0([1.0, 1.0], [1e10, 2e10], 1e-6 * S, B, [1e-9])
    assert q2 / q1 == pytest.approx(2.0, rel=1e-6)


def test_fog_index_limits_and_xenon_floor(xe_rates):
    """Floor within 20 % of O'Hare's at 10 and 100 GeV (with his halo), n → 2 at very large exposure, n < 2 at small."""
    pm, ps = fog.published_floor("Xe")
    res = fog.neutrino_floor([10.0, 100.0], "Xe", halo=OHARE_HALO, rates=xe_rates)
    for k, m in enumerate((10.0, 100.0)):
        pub = float(np.exp(np.interp(np.log(m), np.log(pm), np.log(ps))))
        assert res.floor_cm2[k] == pytest.approx(pub, rel=0.20), (m, res.floor_cm2[k] / pub)
        n = fog.fog_index(res.exposures_t_yr, res.curves_cm2[k])
        assert n[-1] == pytest.approx(2.0, abs=0.02)
        assert np.all(n[:5] < 2.0) and n.max() > 2.2
    assert res.floor_cm2[0] / 4.329e-48 == pytest.approx(0.907, abs=0.03)  # measured: −9 % at 10 GeV
    assert res.floor_cm2[1] / 6.286e-49 == pytest.approx(1.028, abs=0.03)  # measured: +3 % at 100 GeV


def test_discovery_limit_background_free_is_half_an_event():
    S = np.array([1.0, 1.0])
    B = np.array([[1e-12, 1e-12]])
    X = np.array([1.0, 10.0])
    sig = fog.discovery_limit(S, B, [0.1], X)
    assert np.allclose(sig / 1e-45 * X * S.sum(), 0.5, rtol=1e-9)  # the ≥ 0.5-event cut binds, σ ∝ 1/MT
