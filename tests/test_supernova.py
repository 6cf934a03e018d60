"""Supernova neutrinos (issue 13): pinched spectra, flavour transformation, SNOwGLoBES-table channels against
brute-force references written out here and against snewpy, CEvNS in xenon through the rate engine against an
independent Freedman integral and the SNOwGLoBES CEvNS table, the Asimov flux fit, SNEWS p-values, CLI errors."""
import gzip
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special, stats

from cevns.errors import CevnsError, ConfigError, PhysicsDomainError, UnknownNameError
from cevns.sources.supernova import (ERG_IN_MeV, KPC_IN_cm, PinchedModel, PinchedParameters, SupernovaSource,
                                     TimeDependentPinched, earth_coefficients, fiducial_model, pinched_pdf)
from cevns.supernova.rates import expected_counts, light_curve, observables

FID = fiducial_model()
AREA_10 = 4 * math.pi * (10 * KPC_IN_cm) ** 2
DATA = Path(__file__).resolve().parents[1] / "src" / "cevns" / "data" / "snowglobes_sn"


# ---------------- spectra ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mean,alpha", [(9.5, 2.5), (15.6, 2.5), (12.0, 0.5), (12.0, 5.0)])
def test_pinched_spectrum_normalisation_mean_and_energy(mean, alpha):
    """∫f = 1, ∫E f = ⟨E⟩, ⟨E²⟩/⟨E⟩² = (2+α)/(1+α) (astro-ph/0208035 Eq. (3)); a source's energy integral is ℰ."""
    f = lambda E: float(pinched_pdf(E, mean, alpha))  # noqa: E731
    assert integrate.quad(f, 0, np.inf)[0] == pytest.approx(1.0, abs=1e-9)
    assert integrate.quad(lambda E: E * f(E), 0, np.inf)[0] == pytest.approx(mean, rel=1e-9)
    e2 = integrate.quad(lambda E: E * E * f(E), 0, np.inf)[0]
    assert e2 / mean**2 == pytest.approx((2 + alpha) / (1 + alpha), rel=1e-9)
    # Maxwell–Boltzmann limit α = 2: f = 27 E²/(2⟨E⟩³) e^{−3E/⟨E⟩} written out
    E = np.array([1.0, 7.0, 30.0])
    assert np.allclose(pinched_pdf(E, 12.0, 2.0), 27 * E**2 / (2 * 12.0**3) * np.exp(-3 * E / 12.0), rtol=1e-12)
    model = PinchedModel({g: PinchedParameters(4e52, mean, alpha) for g in ("nue", "nuebar", "nux")})
    src = SupernovaSource(model, 10.0)
    energy = integrate.quad(lambda E: E * float(src.dfluence_dE("nue", E)), 0, np.inf)[0] * src.area_cm2 / ERG_IN_MeV
    assert energy == pytest.approx(4e52, rel=1e-9)


def test_flavour_transformation_conserves_and_matches_dighe_smirnov():
    for tr in ("none", "msw_normal", "msw_inverted"):
        c = earth_coefficients(tr)
        tot_nu = sum(c[s].get("nue", 0) for s in ("nue", "numu", "nutau"))
        tot_x = sum(c[s].get("nux", 0) for s in ("nue", "numu", "nutau"))
        assert tot_nu == pytest.approx(1.0) and tot_x == pytest.approx(2.0)
    s12, s13 = 0.307, 0.0220
    assert earth_coefficients("msw_normal")["nue"]["nue"] == pytest.approx(s13)
    assert earth_coefficients("msw_normal")["nuebar"]["nuebar"] == pytest.approx((1 - s12) * (1 - s13))
    assert earth_coefficients("msw_inverted")["nue"]["nue"] == pytest.approx(s12 * (1 - s13))
    assert earth_coefficients("msw_inverted")["nuebar"]["nuebar"] == pytest.approx(s13)
    with pytest.raises(UnknownNameError):
        earth_coefficients("msw_sideways")


def test_time_dependent_model_integrates_to_the_pinched_one():
    td = TimeDependentPinched.exponential_cooling(FID, tau_s=2.0, t_end_s=15.0)
    ti = td.time_integrated()
    for g in ("nue", "nuebar", "nux"):
        # the table is interpolated linearly: its integral is the trapezoid of the samples (exactly), and ℰ to the
        # trapezoid rule's error for e^{−t/τ} on a 0.075 s grid (dt²/12τ² ≈ 1.2e-4)
        assert ti.params[g].energy_erg == pytest.approx(np.trapezoid(td.luminosity_erg_per_s[g], td.t_s), rel=1e-12)
        assert ti.params[g].energy_erg == pytest.approx(5e52, rel=2e-4)
        assert ti.params[g].mean_MeV == pytest.approx(FID.params[g].mean_MeV, rel=1e-9)
        assert ti.params[g].alpha == pytest.approx(2.5, rel=1e-6)
    # a mixture of two temperatures is less pinched than either (α from the moments)
    t = np.array([0.0, 1.0, 2.0])
    two = TimeDependentPinched(t, {g: np.array([1e52, 1e52, 1e52]) for g in ("nue", "nuebar", "nux")},
                               {g: np.array([8.0, 8.0, 16.0]) for g in ("nue", "nuebar", "nux")},
                               {g: np.full(3, 2.5) for g in ("nue", "nuebar", "nux")})
    assert two.time_integrated().params["nue"].alpha < 2.5


# ---------------- SNOwGLoBES-table channels ----------------------------------------------------------------------
def _read(rel):
    return gzip.decompress((DATA / (rel + ".gz")).read_bytes()).decode()


def _brute_force_channel(det_conf, material, channel, col, mass_kt, src, species):
    """N = N_t Σ_d ε_d Σ_t S_dt ∫_bin σ Φ dE, with a 41-point trapezoid in each true bin (independent of the code)."""
    conf = {ln.split()[0]: (float(ln.split()[1]), float(ln.split()[2])) for ln in _read("detector_configurations.dat").splitlines()
            if ln.split() and not ln.startswith("#")}
    weight = {ln.split()[0]: float(ln.split()[4]) for ln in _read(f"channels/channels_{material}.dat").splitlines() if ln.split()}
    n_t = mass_kt * 1e9 * 6.02214076e23 * conf[det_conf][1] * weight[channel]
    xs = np.array([[float(x) for x in ln.split()] for ln in _read(f"xscns/xs_{channel}.dat").splitlines()
                   if ln.split() and not ln.startswith("#")])
    rows = [ln for ln in _read(f"smear/{det_conf}/smear_{channel}_{det_conf}.dat").splitlines()
            if "{" in ln and not ln.startswith("energy")]
    S = np.zeros((200, 200))
    for i, ln in enumerate(rows):
        v = [float(x) for x in ln.split("{")[-1].split("}")[0].split(",")]
        S[i, int(v[0]):int(v[1]) + 1] = v[2:]
    eff_file = DATA / f"effic/{det_conf}/effic_{channel}_{det_conf}.dat.gz"
    eff = np.ones(200) if not eff_file.exists() else np.array(
        [float(x) for x in _read(f"effic/{det_conf}/effic_{channel}_{det_conf}.dat").split("{")[-1].split("}")[0].split(",")])
    true = np.zeros(200)
    for t in range(200):
        E = np.linspace(0.25 + 0.5 * t, 0.75 + 0.5 * t, 41)
        sigma = np.interp(np.log10(E / 1e3), xs[:, 0], xs[:, col], left=0, right=0) * E / 1e3 * 1e-38
        true[t] = np.trapezoid(sigma * src.dfluence_dE(species, E), E)
    return n_t * float(np.sum(eff * (S @ true)))


@pytest.mark.parametrize("det,conf,material,mass,channel,col,species", [
    ("super-k", "wc100kt30prct", "water", 32.5, "ibd", 4, "nuebar"),
    ("halo-1kt", "halo2", "lead", 1.0, "nue_Pb208_1n", 1, "nue"),
    ("halo-1kt", "halo2", "lead", 1.0, "nue_Pb208_2n", 1, "nue"),
    ("halo-1kt", "halo2", "lead", 1.0, "nc_numu_Pb208_2n", 2, "numu"),
    ("juno", "scint20kt", "scint", 20.0, "nc_nutau_C12", 3, "nutau"),
])
def test_table_channels_match_brute_force(det, conf, material, mass, channel, col, species):
    src = SupernovaSource(FID, 10.0, "msw_normal")
    got = expected_counts(FID, [det], 10.0, "msw_normal")[det][channel]
    # two quadratures of a table with kinks (log-linear interpolation, thresholds): agree to a few 1e-4
    assert got == pytest.approx(_brute_force_channel(conf, material, channel, col, mass, src, species), rel=5e-4)


def test_lead_counts_reference_fluence_and_distance_scaling():
    """HALO-1kT at 10 kpc for the fiducial fluence, no oscillation: 1n/2n counts (SNOwGLoBES halo2 tables, EMV 2003
    cross sections, 36 % efficiency). Values from snewpy 1.6's RateCalculator for the same fluence (a snewpy
    Analytic3Species file with these parameters, 2001-point energy grid), recorded: 20.82 / 1.445 CC ν_e and
    16.03 / 5.215 NC (sum of flavours); d⁻² scaling to 5 kpc."""
    c = expected_counts(FID, ["halo-1kt"], 10.0, "none")["halo-1kt"]
    assert c["nue_Pb208_1n"] == pytest.approx(20.82, rel=2e-3)
    assert c["nue_Pb208_2n"] == pytest.approx(1.445, rel=2e-3)
    nc1 = sum(v for k, v in c.items() if k.startswith("nc_") and k.endswith("_1n"))
    nc2 = sum(v for k, v in c.items() if k.startswith("nc_") and k.endswith("_2n"))
    assert nc1 == pytest.approx(0.9 + 1.577 + 2 * 3.686 + 2 * 3.091, rel=2e-3)
    assert nc2 == pytest.approx(0.067 + 0.274 + 2 * 1.339 + 2 * 1.098, rel=3e-3)
    obs = observables({"halo-1kt": c})["halo-1kt"]
    assert obs["1n"] == pytest.approx(c["nue_Pb208_1n"] + nc1)
    c5 = expected_counts(FID, ["halo-1kt"], 5.0, "none")["halo-1kt"]
    assert c5["nue_Pb208_1n"] == pytest.approx(4 * c["nue_Pb208_1n"], rel=1e-12)


def test_super_k_ibd_vs_snewpy():
    """Super-K (wc100kt30prct × 0.325) IBD at 10 kpc against snewpy's RateCalculator for the same fluence."""
    pytest.importorskip("snewpy")
    pytest.importorskip("snowglobes_data")
    import warnings
    from importlib.resources import files

    import astropy.units as u
    import snowglobes_data
    from astropy.table import Table
    from snewpy.flavor_transformation import NoTransformation
    from snewpy.models.ccsn import Analytic3Species
    from snewpy.rate_calculator import RateCalculator
    from snewpy.snowglobes_interface import SnowglobesData

    import tempfile
    times = np.linspace(0, 1, 11)
    tab = Table()
    tab["TIME"] = times
    for fl, g in (("NU_E", "nue"), ("NU_E_BAR", "nuebar"), ("NU_X", "nux")):
        p = FID.params[g]
        tab[f"L_{fl}"], tab[f"E_{fl}"], tab[f"ALPHA_{fl}"] = (np.full(11, p.energy_erg), np.full(11, p.mean_MeV),
                                                            np.full(11, p.alpha))  # erg/s for 1 s
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "analytic.dat"
        tab.write(path, format="ascii")
        model = Analytic3Species(str(path))
        rc = RateCalculator.__new__(RateCalculator)
        SnowglobesData.__init__(rc, base_dir=files(snowglobes_data), detectors="wc100kt30prct")
        E = np.linspace(0.25, 100.25, 2001) << u.MeV
        fl = model.get_flux(t=times << u.s, E=E, distance=10 << u.kpc, flavor_xform=NoTransformation()).integrate("time")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rates = rc.run(fl, "wc100kt30prct", detector_effects=True)
        ref = float(rates["ibd"].integrate_or_sum("energy").array.sum()) * 32.5 / 100.0
    got = expected_counts(FID, ["super-k"], 10.0, "none")["super-k"]["ibd"]
    assert got == pytest.approx(ref, rel=2e-3)
    assert 5700 < got < 5850  # 5775 events for this fluence


def test_shipped_tables_equal_snowglobes_data():
    """The gzipped tables are byte-for-byte the PyPI package's files (SHA-256 recorded in SHA256SUMS)."""
    for line in (DATA / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split()
        assert hashlib.sha256(gzip.decompress((DATA / (rel + ".gz")).read_bytes())).hexdigest() == digest, rel
    sgd = pytest.importorskip("snowglobes_data")
    base = Path(sgd.__file__).parent
    for rel in ("xscns/xs_ibd.dat", "smear/halo2/smear_nue_Pb208_1n_halo2.dat", "effic/wc100kt30prct/effic_ibd_wc100kt30prct.dat"):
        assert (base / rel).read_bytes() == gzip.decompress((DATA / (rel + ".gz")).read_bytes())


# ---------------- CEvNS through the engine -----------------------------------------------------------------------
def _freedman_reference(thr_keV, mass_kg, src):
    """Σ_iso N_iso ∫dE Φ(E) ∫_{thr}^{Tmax} dT G_F²M/(4π)(1 − MT/2E²) Q_W² F²(q) (Freedman 1974; tree level,
    Q_W = N − (1 − 4 s²) Z, Helm F with Lewin–Smith radii), all written out here with scipy only."""
    from cevns.targets import material

    GF, hc2, s2 = 1.1663788e-11, 0.197327e-10 ** 2, 0.23857
    total = 0.0
    for iso, n in material("Xe").components:
        M = iso.mass_MeV
        A = iso.Z + iso.N
        c = 1.23 * A ** (1 / 3) - 0.60
        R0 = math.sqrt(c * c + 7 / 3 * math.pi ** 2 * 0.52 ** 2 - 5 * 0.9 ** 2)
        qw = iso.N - (1 - 4 * s2) * iso.Z
        E = np.linspace(0.5, 100, 1500)
        T = np.linspace(thr_keV * 1e-3, 2 * 100.0 ** 2 / M, 3000)
        q = np.sqrt(2 * M * T + T * T) / 197.327
        x = q * R0
        F = 3 * (np.sin(x) - x * np.cos(x)) / x ** 3 * np.exp(-(q * 0.9) ** 2 / 2)
        kin = np.clip(1 - M * T[None, :] / (2 * E[:, None] ** 2), 0, None)
        dsdT = GF ** 2 * M / (4 * math.pi) * kin * qw ** 2 * (F ** 2)[None, :] * hc2
        phi = sum(src.dfluence_dE(s, E) for s in ("nue", "nuebar", "numu", "numubar", "nutau", "nutaubar"))
        total += n * mass_kg * np.trapezoid(phi * np.trapezoid(dsdT, T, axis=1), E)
    return total


def test_cevns_xenon_one_tonne_against_independent_integral_and_published():
    """1 t of xenon, fiducial model at 10 kpc, threshold 1 keV: the engine (one-loop couplings) against a tree-level
    Freedman integral written out here (Q_W² of the two schemes differ by ≈ 1.5 %, hence 3 %); the engine at zero
    threshold; and
    the order of magnitude of arXiv:1606.09243 (≈ 17.6 events per tonne for their 27 M⊙ model above their S2-only
    threshold: a different flux, so only 12–24 is asked)."""
    from cevns.supernova.detectors import CevnsDetector, cevns_counts

    src = SupernovaSource(FID, 10.0)
    det = CevnsDetector("xe", "Xe", 1000.0, 1.0, "test", scheme="tree")
    got = sum(cevns_counts(det, src)["per_species"].values())
    ref = _freedman_reference(1.0, 1000.0, src)
    assert got == pytest.approx(ref, rel=0.01)
    one_loop = sum(expected_counts(FID, ["xenon-1t"], 10.0)["xenon-1t"].values())
    assert one_loop == pytest.approx(got, rel=0.03)
    assert 12 < one_loop < 24


@pytest.mark.xfail(strict=True, reason="the SNOwGLoBES CEvNS table xs_coh_helm_*_Xe is 5-7 % below a Freedman/Helm "
                   "integral at 5-20 MeV and falls much faster above 30 MeV (0.70 at 40 MeV, 0.52 at 60 MeV): a different "
                   "form-factor or kinematic convention in populate_CEvNS_xs.py that we do not reproduce")
def test_cevns_xenon_zero_threshold_vs_snowglobes_cevns_table():
    from cevns.supernova.detectors import CevnsDetector, cevns_counts
    from cevns.targets import material

    shared = Path("/work/shared/data/snowglobes/xscns/xs_coh_helm_nue_Xe.dat")
    if not shared.exists():
        pytest.skip("SNOwGLoBES CEvNS table not available (../shared)")
    src = SupernovaSource(FID, 10.0)
    zero = sum(cevns_counts(CevnsDetector("xe", "Xe", 1000.0, 0.0, "t", scheme="tree"), src)["per_species"].values())
    xs = np.array([[float(v) for v in ln.split()] for ln in shared.read_text().splitlines()
                   if ln.split() and not ln.startswith("#")])
    n_nuclei = sum(n for _, n in material("Xe").components) * 1000.0
    E = np.linspace(0.5, 100, 4000)
    sigma = np.interp(np.log10(E / 1e3), xs[:, 0], xs[:, 1], left=0, right=0) * E / 1e3 * 1e-38
    phi = sum(src.dfluence_dE(s, E) for s in ("nue", "nuebar", "numu", "numubar", "nutau", "nutaubar"))
    assert zero == pytest.approx(n_nuclei * np.trapezoid(sigma * phi, E), rel=0.03)


# ---------------- light curve ------------------------------------------------------------------------------------
def test_light_curve_sums_to_time_integrated_counts():
    td = TimeDependentPinched.exponential_cooling(FID, tau_s=2.0, t_end_s=10.0, n=41)
    lc = light_curve(td, ["halo-1kt", "argon-1t"], [0, 0.5, 1, 2, 4, 10], 10.0)
    tot = expected_counts(td, ["halo-1kt", "argon-1t"], 10.0)
    for det in ("halo-1kt", "argon-1t"):
        for ch, arr in lc[det].items():
            assert arr.sum() == pytest.approx(tot[det][ch], rel=1e-9, abs=1e-12)
    first = lc["halo-1kt"]["nue_Pb208_1n"]
    assert first[0] / first[1] == pytest.approx((1 - math.exp(-0.25)) / (math.exp(-0.25) - math.exp(-0.5)), rel=1e-6)


# ---------------- fit --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def all_three():
    from cevns.supernova.fit import FluxFitModel

    return FluxFitModel(["halo-1kt", "super-k", "juno"], transformation="none")


def test_fit_jacobian_and_asimov_recovery(all_three):
    m = all_three
    r = np.array([1.05, 0.97, 1.1, 0.95, 1.02, 0.9, 1.08, 1.03, 1.12])
    mu, J = m.mu_jac(r)
    h = 1e-6
    Jn = np.stack([(m.mu(r + h * e) - m.mu(r - h * e)) / (2 * h) for e in np.eye(9)], axis=1)
    assert np.max(np.abs(J - Jn)) < 1e-6 * np.max(np.abs(J))
    rr, chi = m.minimise(m.asimov, r)
    assert chi < 1e-8
    assert np.allclose(rr, 1.0, atol=2e-4)


def test_fisher_is_the_curvature_of_the_poisson_deviance(all_three):
    """Δχ² ≈ δᵀ F δ for a small step along any direction (Asimov), an identity of the Poisson likelihood."""
    m = all_three
    F = m.fisher()
    rng = np.random.default_rng(3)
    for _ in range(3):
        d = rng.normal(size=9) * 1e-3
        assert m.deviance(m.mu(1 + d), m.asimov) == pytest.approx(d @ F @ d, rel=2e-2)


def test_profile_interval_and_halo_alone():
    from cevns.supernova.fit import FluxFitModel, fisher_accuracy, profile_interval

    m = FluxFitModel(["super-k", "juno"], transformation="none")
    fa = fisher_accuracy(m)
    iv = profile_interval(m, 4, guess=fa["nuebar.mean_MeV"])  # ν̄_e ⟨E⟩: IBD-dominated, nearly Gaussian
    assert iv["sigma_rel"] == pytest.approx(fa["nuebar.mean_MeV"], rel=0.1)
    assert 0.005 < iv["sigma_rel"] < 0.03
    halo = FluxFitModel(["halo-1kt"], transformation="none")
    assert halo.asimov.size == 2  # one-neutron and two-neutron events: no energy information
    assert all(v is None for v in fisher_accuracy(halo).values())


# ---------------- SNEWS p-values ---------------------------------------------------------------------------------
def test_p_value_is_the_poisson_tail():
    from cevns.supernova.snews import detection_p_value, log_p_value, significance_sigma

    b, n = 2.0, 7
    ref = 1 - sum(math.exp(-b) * b**k / math.factorial(k) for k in range(n))
    assert detection_p_value(0.0, 0.2, 10.0, observed=n) == pytest.approx(ref, rel=1e-10)
    assert detection_p_value(0.0, 0.2, 10.0, observed=0) == 1.0
    assert significance_sigma(math.log(stats.norm.sf(3.0))) == pytest.approx(3.0, rel=1e-9)
    # far tail: pmf(n) ≤ p ≤ pmf(n)/(1 − b/(n+1)) without underflow
    lp = log_p_value(300, 0.01)
    assert stats.poisson.logpmf(300, 0.01) <= lp <= stats.poisson.logpmf(300, 0.01) + 1e-4
    with pytest.raises(PhysicsDomainError):
        detection_p_value(-1.0, 0.1)


# ---------------- errors and CLI ---------------------------------------------------------------------------------
def test_bad_inputs_fail_before_work():
    with pytest.raises(PhysicsDomainError, match="distance"):
        expected_counts(FID, ["halo-1kt"], -1.0)
    with pytest.raises(UnknownNameError, match="supernova detector"):
        expected_counts(FID, ["halo-1kt", "hyper-halo"], 10.0)
    with pytest.raises(UnknownNameError, match="flavour transformation"):
        expected_counts(FID, ["halo-1kt"], 10.0, "msw_sideways")
    with pytest.raises(UnknownNameError, match="species"):
        SupernovaSource(FID, 10.0).spectrum("nusterile")
    with pytest.raises(PhysicsDomainError):
        PinchedParameters(5e52, -3.0, 2.5)
    with pytest.raises(ConfigError):
        from cevns.supernova.fit import FluxFitModel
        FluxFitModel(["xenonnt"])


def test_cli_rates_json_and_errors(tmp_path, capsys):
    from cevns.cli import main

    out = tmp_path / "r.json"
    assert main(["supernova", "rates", "--distance-kpc", "10", "--detector", "halo-1kt", "--detector", "xenon-1t",
                 "--param", "nue.mean_MeV=11", "--background-rate", "halo-1kt=0.001", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["counts"]) == {"halo-1kt", "xenon-1t"}
    assert res["model"]["groups"]["nue"]["mean_MeV"] == 11.0
    assert res["counts"]["halo-1kt"]["nue_Pb208_1n"] > 20.82  # hotter ν_e than the fiducial
    assert 0 <= res["snews"]["p_values"]["halo-1kt"]["p_val"] < 1e-6
    assert main(["supernova", "rates", "--distance-kpc", "-2", "--detector", "halo-1kt"]) == 2
    assert "distance" in capsys.readouterr().err
    assert main(["supernova", "rates", "--detector", "nope"]) == 2
    assert "unknown supernova detector 'nope'" in capsys.readouterr().err
    assert main(["supernova", "fit", "--detectors", "halo-1kt,nope"]) == 2
    assert main(["supernova", "rates", "--param", "nue.temperature=3"]) == 2
