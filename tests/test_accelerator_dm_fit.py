"""The dark-matter search on the COHERENT CsI 2021 data: the extra signal inside the one forward model, the
profile-likelihood limit on Y (a 3-mass smoke test; the 40-mass curve is a benchmark), the α_D scaling, the CLI."""
import json
import math

import numpy as np
import pytest

from cevns.interactions import dark_photon as dp

DM_SPEC = "coherent-csi-2021-dm"


@pytest.fixture(scope="module")
def dm(experiments):
    exp = experiments(DM_SPEC)
    x = exp.extra_signals["dark_matter"]
    x.set_point(m_chi_MeV=10.0, m_v_over_m_chi=3.0, alpha_d=0.5)
    return exp, x


def test_cevns_part_is_the_csi2021_model(dm, experiments):
    """Same data, same CEvNS prediction: below 60 PE the dark-matter spec's CEvNS and observed counts are the
    CsI 2021 spec's."""
    exp, _ = dm
    base = experiments("coherent-csi-2021")
    e_edges = exp.binning.edges("energy")
    k = int(np.searchsorted(e_edges, 60.0))
    # (1e-5: the ν–e recoil quadrature runs up to the top of the longer energy axis)
    assert np.allclose(exp.engine_prediction()[:k], base.engine_prediction(), rtol=1e-5, atol=0)
    assert np.array_equal(exp.observed_full[:k], base.observed_full)
    assert exp.observed_full.sum() > base.observed_full.sum()  # 60–120 PE added


def test_dm_sample_follows_epsilon_to_the_fourth(dm):
    exp, x = dm
    m = exp.model("physics", physics=("dp_epsilon",))
    nu = m.defaults()[None, :]
    eps = np.array([0.0, 1e-4, 2e-4])
    comps = m.components(m.prepare({"dp_epsilon": eps}), np.repeat(nu, 3, axis=0))
    n = comps["dark_matter"].sum(axis=1)
    assert n[0] == 0.0
    assert n[2] / n[1] == pytest.approx(16.0, abs=0, rel=1e-7)
    assert n[1] == pytest.approx(x.expected_counts(1e-4), abs=0, rel=1e-9)
    # other samples do not move with ε
    assert np.allclose(comps["cevns"][1], comps["cevns"][2])
    # without dp_epsilon the dark matter is absent (plain fits of this spec are CEvNS fits)
    m0 = exp.model("physics")
    assert m0.components(m0.prepare({}), m0.defaults()[None, :])["dark_matter"].sum() == 0.0


def test_dm_arrives_with_the_pulse_and_recoils_end_at_tmax(dm):
    from cevns.interactions.kinematics import e_min, t_max
    from cevns.targets.isotopes import isotope

    exp, x = dm
    et = x.energy_time()
    t_c = 0.5 * (exp.binning.edges("time")[1:] + exp.binning.edges("time")[:-1])
    assert et[:, t_c < 1.0].sum() / et.sum() > 0.99  # prompt: pulse + time of flight, no π⁺ lifetime
    # the folded recoil rate ends at T_max of the most energetic χ of the spectrum
    spec, m = x.source.spectrum("chi"), x.point["m_chi_MeV"]
    M = isotope("Cs133").mass_MeV
    tm = float(t_max(spec.e_max, M, m))
    T = np.array([0.01, 0.5, 0.99, 1.01]) * tm
    K = spec.fold(lambda E: dp.kernel_dp_scalar(T[:, None], E, M, m), e_min(T, M, m))
    assert np.all(K[:3] > 0) and K[3] == 0.0
    for iso, (T_keV, rate) in x.recoil_spectrum().items():  # inside the window the rate falls with T
        assert np.all(rate > 0)
        assert rate[np.argmin(np.abs(T_keV - 10))] > 3 * rate[np.argmin(np.abs(T_keV - 30))]


def test_limit_profile_against_minuit(dm):
    """The limit's Δχ² from the batched profile (Fisher scoring) equals iminuit's fit with ε fixed."""
    from cevns.commands.dm_limit import upper_limit_at_mass
    from cevns.inference.fit import fit

    exp, x = dm
    r = upper_limit_at_mass(exp, x, 10.0)
    lik = exp.likelihood("physics", physics=("dp_epsilon",))
    free = fit(lik, fixed={"dp_epsilon": 0.0}, hesse=False)
    at = fit(lik, start=free.values, fixed={"dp_epsilon": r["epsilon_upper_limit"]}, hesse=False)
    assert at.chi2 - free.chi2 == pytest.approx(2.706, abs=0.05)
    y = dp.y_parameter(r["epsilon_upper_limit"], 0.5, 10.0, 30.0)
    assert r["y_upper_limit"] == pytest.approx(y, abs=0, rel=1e-12)
    assert 5 < r["n_dm_upper_limit"] < 80


def test_limit_smoke_three_masses_and_alpha_d(dm):
    from cevns.commands.dm_limit import relic_crossings, upper_limit_at_mass

    exp, x = dm
    rows = {m: upper_limit_at_mass(exp, x, m) for m in (5.0, 25.0, 80.0)}
    assert rows[80.0]["y_upper_limit"] is None  # 2 m_χ above the π⁰ and π⁻-capture reach
    assert 0 < rows[5.0]["y_upper_limit"] < rows[25.0]["y_upper_limit"] < 1e-8
    # on-shell V: counts ∝ ε⁴ α_D = Y²/α_D (m_V/m_χ)⁸ → Y_limit ∝ √α_D (BR(V→χχ*) ≈ 1; MC seed fixed)
    lo = upper_limit_at_mass(exp, x, 5.0, alpha_d=0.125)
    assert lo["y_upper_limit"] / rows[5.0]["y_upper_limit"] == pytest.approx(0.5, abs=0, rel=0.02)
    assert relic_crossings([1, 2, 3, 4], [1.0, 0.5, 0.5, 2.0], [0.8, 0.8, 1.0, 1.0]) == \
        [[pytest.approx(math.exp(math.log(1) + (math.log(1.25) / (math.log(1.25) + math.log(1.6))) * math.log(2))),
          pytest.approx(math.exp(math.log(3) + (math.log(2) / (math.log(2) + math.log(2))) * (math.log(4 / 3))))]]


def test_cli_dm_limit(dm, tmp_path, monkeypatch):
    from cevns import cli
    from cevns.commands import dm_limit

    monkeypatch.setattr(dm_limit, "dm_experiment", lambda name, pe_max=None: dm)
    out, png = tmp_path / "dm.json", tmp_path / "dm.png"
    rc = cli.main(["dm-limit", "--experiment", "coherent-csi-2021", "--mchi", "8,90", "--alpha-d", "0.5",
                   "--json", str(out), "--plot", str(png), "--no-progress"])
    assert rc == 0 and png.stat().st_size > 1000
    d = json.loads(out.read_text())
    for key in ("m_chi_MeV", "y_upper_limit", "y_relic", "alpha_d", "m_v_over_m_chi"):
        assert key in d
    assert d["m_chi_MeV"] == [8.0, 90.0] and d["y_upper_limit"][1] is None and d["y_upper_limit"][0] > 0
    assert d["y_relic"][0] == pytest.approx(dp.y_relic(8.0), abs=0, rel=1e-9)
    assert cli.main(["dm-limit", "--mchi", "10:1:3"]) == 2  # bad range: one-line error
    assert cli.main(["dm-limit", "--mchi", "10", "--ratio", "1.5"]) == 2  # m_χ ≥ m_V/2
