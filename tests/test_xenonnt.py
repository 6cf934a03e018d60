"""XENONnT solar ⁸B CEvNS from the data release (issue 14): specs on the shared model, the efficiency-template signal,
the released backgrounds, the fit against PRL 133, 191002 (2024), and the SR2 light-DM spec."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from cevns.errors import ConfigError, DataError
from cevns.experiments.registry import load_experiment, load_spec
from cevns.experiments.releases import data_path

RUNS = ("sr0", "sr1", "sr2")
EXPOSURE = {"sr0": 1.174398, "sr1": 2.342593, "sr2": 3.249665}


@pytest.fixture(scope="module")
def exps():
    return {r: load_experiment(f"xenonnt-b8-{r}") for r in RUNS}


def test_specs_match_the_release(exps):
    yaml = pytest.importorskip("yaml")
    for r, e in exps.items():
        y = yaml.safe_load(data_path("xenonnt_cevns_2024", f"binning/{r}.yaml").read_text())
        for ax, (k, edges) in zip(e.binning.axes, y.items()):
            assert np.array_equal(ax["edges"], np.asarray(edges, float)), (r, k)
    assert [exps[r].observed.sum() for r in RUNS] == [9, 28, 25]
    z = np.load(data_path("xenonnt_cevns_2024", "templates_sr1.npz"))
    m = exps["sr1"].model("counts")
    comps = m.components(m.prepare({}), m.defaults()[None, :])
    assert comps["ac"].sum() == pytest.approx(z["ac"].sum() * EXPOSURE["sr1"], rel=1e-12)
    assert comps["neutron"].sum() == pytest.approx(z["rg_tly"][3].sum() * EXPOSURE["sr1"], rel=1e-12)
    bkg = sum(float(v.sum()) for r in ("sr0", "sr1") for k, v in
              exps[r].model("counts").components(exps[r].model("counts").prepare({}),
                                                 exps[r].model("counts").defaults()[None, :]).items() if k != "cevns")
    assert bkg == pytest.approx(26.4, abs=0.2)  # PRL: 26.4 (+1.4, −1.3) background events in SR0+SR1


def test_signal_is_the_engine_spectrum_folded_with_the_efficiencies(exps):
    """Independent path: dR/dT of ⁸B CEvNS on a fine grid (the fog module's binned rates), × the efficiency templates
    interpolated here, trapezoid in T, × exposure."""
    from cevns.directdetection.fog import neutrino_binned_rates

    e = exps["sr0"]
    z = np.load(data_path("xenonnt_cevns_2024", "templates_sr0.npz"))
    E, eff = z["mono_E_keV"], z["mono_tly"][3].reshape(46, -1)
    edges = np.linspace(0.5, 5.0, 901)
    fr = neutrino_binned_rates("Xe", edges, ["8B"])
    c = 0.5 * (edges[:-1] + edges[1:])
    eff_c = np.stack([np.interp(c, E, eff[:, k]) for k in range(eff.shape[1])], axis=1)
    ref = (fr.B[0][:, None] * eff_c).sum(axis=0) * EXPOSURE["sr0"]
    m = e.model("physics")
    got = m.components(m.prepare({}), m.defaults()[None, :])["cevns"][0]
    assert np.allclose(got, ref, rtol=2e-3, atol=1e-7)
    # a yield variant on the grid is exactly the release's slice
    k = m.index("xenonnt_tly")
    nu = m.defaults()[None, :].copy()
    nu[0, k] = 1.0
    eff1 = z["mono_tly"][4].reshape(46, -1)
    eff1_c = np.stack([np.interp(c, E, eff1[:, j]) for j in range(eff1.shape[1])], axis=1)
    ref1 = (fr.B[0][:, None] * eff1_c).sum(axis=0) * EXPOSURE["sr0"]
    assert np.allclose(m.components(m.prepare({}), nu)["cevns"][0], ref1, rtol=2e-3, atol=1e-7)


def test_fit_likelihood_equals_batched_model(exps):
    from cevns.inference.batch import batch_poisson_chi2

    rng = np.random.default_rng(3)
    for mode in ("counts", "xsec_scale", "physics"):
        m = exps["sr1"].model(mode)
        lik = exps["sr1"].likelihood(mode)
        X = m.defaults()[None, :] * (1 + 0.2 * rng.standard_normal((20, len(m.nuisances))))
        X[:, m.index("xenonnt_tly")] = rng.uniform(-2.5, 2.5, 20)
        X[:, m.index("xenonnt_tqy")] = rng.uniform(-2.5, 2.5, 20)
        X = np.maximum(X, 0.0) if mode != "physics" else X
        mu = m.expected(m.prepare({}), X)
        for p in range(20):
            assert lik.data_chi2(X[p]) == pytest.approx(float(batch_poisson_chi2(mu[p:p + 1], m.observed)[0]), rel=1e-9)


def test_jacobian_equals_central_differences(exps):
    m = exps["sr0"].model("xsec_scale")
    st = m.prepare({})
    x = m.defaults()[None, :].copy()
    x[0, m.index("xenonnt_tly")] = 0.37
    x[0, m.index("xenonnt_tqy")] = -1.41
    x[0, m.index("xsec_scale")] = 1.3
    _, J = m.value_and_jacobian(st, x, dtype=np.float64)
    for k in range(len(m.nuisances)):
        h = 1e-6
        xp, xm = x.copy(), x.copy()
        xp[0, k] += h
        xm[0, k] -= h
        num = (m.expected(st, xp) - m.expected(st, xm)) / (2 * h)
        assert np.allclose(J[0, k], num[0], rtol=1e-5, atol=1e-9), m.nuisances[k].name


@pytest.fixture(scope="module")
def sr01_fit(exps):
    from cevns.reproductions.xenonnt_b8 import flux_fit

    return flux_fit([exps["sr0"], exps["sr1"]])


def test_b8_flux_and_significance_sr0_sr1(exps, sr01_fit):
    f, pub = sr01_fit, exps["sr0"].published
    assert f["significance"] == pytest.approx(pub["significance_sigma"], abs=0.15)  # measured 2.76 σ vs 2.73 σ
    lo, hi = f["flux"] - f["flux_down"], f["flux"] + f["flux_up"]
    assert lo < pub["b8_flux_cm2_s"] < hi  # the published value inside our ±1σ interval
    # relative interval widths like the PRL's (+77 % −49 %): ours +69 % −45 %
    assert f["flux_up"] / f["flux"] == pytest.approx(pub["b8_flux_err_up_cm2_s"] / pub["b8_flux_cm2_s"], abs=0.15)
    assert f["flux_down"] / f["flux"] == pytest.approx(pub["b8_flux_err_down_cm2_s"] / pub["b8_flux_cm2_s"], abs=0.1)
    assert f["flux"] == pytest.approx(6.07e6, rel=0.02)  # our measured value (regression)
    assert f["expected_b8"] == pytest.approx(9.13, rel=0.01)


@pytest.mark.xfail(strict=True, reason="⁸B flux central value 6.07e6 vs published 4.7e6 /cm²/s (+29 %): our expected "
                   "⁸B count per unit flux with the released (2026) templates is ~23 % below what the PRL implies, "
                   "while our flux-averaged SM cross section (1.23e-39 cm²) is what the PRL's σ and flux imply if its "
                   "flux was normalised to SNO's 5.25e6; unexplained (the release's SR0/SR1 templates may postdate "
                   "the PRL's yield model)")
def test_b8_flux_central_value_matches_published(exps, sr01_fit):
    assert sr01_fit["flux"] == pytest.approx(exps["sr0"].published["b8_flux_cm2_s"], rel=0.10)


def test_light_dm_spec_and_sr2_limit():
    from cevns.directdetection.spectra import elastic_spectrum
    from cevns.reproductions.xenonnt_b8 import dm_upper_limit, released_si_limits
    from cevns.sources.halo import StandardHaloModel

    e = load_experiment("xenonnt-lightdm-sr2")
    name = "dm_sigma_si_1e45_cm2"
    m = e.model("physics", (name,))
    st = m.prepare({name: np.array([1.0, 2.0])})
    w = m.components(st, np.repeat(m.defaults()[None, :], 2, axis=0))["wimp"]
    assert np.allclose(w[1], 2 * w[0])  # linear in σ_n
    # independent path: the dd-rate spectrum × interpolated efficiency
    z = np.load(data_path("xenonnt_cevns_2024", "templates_sr2.npz"))
    E, eff = z["mono_E_keV"], z["mono_tly"][3].reshape(46, -1).sum(axis=1)
    T = np.linspace(0.5, 5.0, 4001)
    h = StandardHaloModel(0.3, 238.0, 544.0, 252.1)
    ref = np.trapezoid(elastic_spectrum(T, 6.0, 1e-45, "Xe", h) * np.interp(T, E, eff), T) * EXPOSURE["sr2"]
    assert w[0].sum() == pytest.approx(ref, rel=1e-3)
    lim = dm_upper_limit(6.0, ("sr2",))
    mr, ul, _ = released_si_limits()
    rel = ul[np.flatnonzero(mr == 6.0)[0]]
    assert lim["limit_cm2"] == pytest.approx(2.14e-45, rel=0.05)  # ours (asymptotic): regression
    assert 0.5 < lim["limit_cm2"] / rel < 1.5  # released 2.50e-45 (Neyman construction)


def test_spec_errors():
    base = load_spec("xenonnt-b8-sr0")
    s = copy.deepcopy(base)
    s["binning"]["axes"][0]["edges"] = [90.0, 170.0, 250.0, 500.0]
    with pytest.raises(ConfigError, match="bin edges"):
        load_experiment(s)
    s = copy.deepcopy(base)
    s["binning"]["axes"][0]["edges"] = [150.0, 170.161773681641, 249.889739990234, 500.0]
    with pytest.raises(DataError, match="outside the binning"):
        load_experiment(s)
    s = copy.deepcopy(base)
    s["nuisances"]["xenonnt_tly"]["grid"] = [-1, 0, 1]
    with pytest.raises(ConfigError, match="grid"):
        load_experiment(s)
    s = copy.deepcopy(base)
    s["source"]["components"] = ["9Li"]
    with pytest.raises(ConfigError, match="components"):
        load_experiment(s)
    s = copy.deepcopy(base)
    s["detector"] = {"model": "released_templates", "quenching": {"model": "constant", "qf": 0.2}}
    with pytest.raises(ConfigError, match="detector"):
        load_experiment(s)
