"""COHERENT CsI[Na] full dataset (arXiv:2110.07730) reproduction: published numbers, hot path vs slow path, the
physics-parameter interface, error paths."""
import json
import shutil

import numpy as np
import pytest

from cevns.cli import main
from cevns.errors import ConfigError, DataError, UnknownNameError
from cevns.experiments import load_experiment, load_spec, validate_spec
from cevns.experiments.csi2021 import FastBinnedPoissonLikelihood
from cevns.experiments.releases import DATA_ROOT
from cevns.experiments.repro_csi2021 import reproduce
from cevns.inference import BinnedPoissonLikelihood

E40 = 1e-40


@pytest.fixture(scope="module")
def exp():
    return load_experiment("coherent-csi-2021")


@pytest.fixture(scope="module")
def rep(exp):
    return reproduce(exp=exp)


# ---- published numbers ---------------------------------------------------------------------------------------
def test_sm_prediction_within_5_percent(rep):
    # published 341 ± 11 (th) ± 42 (exp). Ours 345 (+1.2 %) with the analytic π-DAR flux (the released 2-D flux is
    # missing) and tree-level couplings; 5 % is well inside the published 12 % experimental uncertainty.
    r = rep.results
    assert r["predicted_cevns"] == pytest.approx(341, rel=0.05)
    # our experimental budget is 14.7 % (the release's efficiency variants alone move the prediction by 10 %),
    # published 12.3 %: require the same size within a factor 1.5
    assert 42 / 1.5 < r["predicted_cevns_err_exp"] < 42 * 1.5


def test_fit_and_significance(rep):
    r = rep.results
    assert abs(r["fitted_cevns"] - 306) < 20  # within the published 1σ
    assert abs(r["significance_sigma"] - 11.6) < 1.0
    # ours 33 vs published 20: the released AC sample (same size as the C window) limits the fit; see the report.
    assert 20 <= r["fitted_cevns_err"] <= 40
    assert r["chi2_best"] / r["ndof"] < 1.3


def test_cross_section(rep):
    r = rep.results
    # SM flux-averaged σ per nucleus (mean of Cs and I): 187.3 vs 189 published
    assert r["xsec_sm_cm2"] == pytest.approx(189 * E40, rel=0.02)
    assert abs(r["xsec_cm2"] - 165 * E40) < 25 * E40  # inside the published (lower) 1σ
    assert 20 * E40 < r["xsec_err_up_cm2"] < 40 * E40  # published +30
    assert 15 * E40 < r["xsec_err_down_cm2"] < 35 * E40  # published −25
    assert r["xsec_err_up_cm2"] > r["xsec_err_down_cm2"]  # 1/flux asymmetry


def test_sin2_theta_w(rep):
    r = rep.results
    assert r["sin2_theta_w_low"] < 0.220 < r["sin2_theta_w_high"]  # published central value inside our 68 %
    assert r["sin2_theta_w_low"] < r["sin2_theta_w"] < r["sin2_theta_w_high"]
    assert (r["sin2_theta_w_high"] - r["sin2_theta_w_low"]) == pytest.approx(0.054, rel=0.3)  # published width


def test_flavour_fit_consistent_with_total(rep, exp):
    r = rep.results
    # the 2-scale fit must reproduce the 1-scale total: Σ_f N_f σ_f/σ_f,SM / N ≈ σ/σ_SM
    n = exp.cevns_expected(by_flavour=True)
    n_e, n_mu = n["nue"].sum(), n["numu"].sum() + n["numubar"].sum()
    comb = (n_e * r["xsec_nue_cm2"] / r["xsec_nue_sm_cm2"] + n_mu * r["xsec_numu_cm2"] / r["xsec_numu_sm_cm2"]) / (n_e + n_mu)
    assert comb == pytest.approx(r["xsec_cm2"] / r["xsec_sm_cm2"], rel=0.05)
    assert abs(r["xsec_numu_cm2"] / r["xsec_numu_sm_cm2"] - 1) < 2 * r["xsec_numu_err_cm2"] / r["xsec_numu_sm_cm2"]


def test_timing_calibration_from_nin(exp):
    cal = exp.timing_calibration
    assert 0.5 < cal["mean_us"] < 0.65 and 0.1 < cal["sigma_us"] < 0.2
    assert cal["rms_residual_rel"] < 0.1
    # BRN neutrons arrive after the neutrinos (time of flight): released BRN peak (≈0.66 µs) later than the pulse mean
    brn_t = exp.brn_expected().sum(axis=0)
    assert exp.t_edges[np.argmax(brn_t)] + 0.25 > cal["mean_us"]


def test_background_predictions(exp):
    # BRN and NIN expectations from the released t_rec sums × PE fraction below 60 PE (× time efficiency)
    assert exp.brn_expected().sum() == pytest.approx(27.632 / 1.4978, rel=0.03)
    assert 4.0 < exp.nin_expected().sum() < 5.7
    assert exp.ss_template.sum() == pytest.approx(1295)
    assert exp.observed.sum() == 1578


# ---- hot path vs slow path, physics interface ------------------------------------------------------------------
def test_hot_path_equals_slow_path_on_grid_nodes(exp):
    args = dict(z0=0.5, z1=-1.0, ze=1.5, mean_us=exp.mean_grid.values[27], sigma_us=exp.sigma_grid.values[9],
                sin2_theta_w=0.25)
    fast = exp.cevns_expected(**args)
    slow = exp.cevns_template(**args)
    assert np.allclose(fast, slow, rtol=1e-9, atol=1e-12)


def test_hot_path_off_grid_interpolation(exp):
    args = dict(z0=0.33, z1=-0.71, ze=0.2, mean_us=exp.pulse_mean0 + 0.0137, sigma_us=0.1613)
    fast, slow = exp.cevns_expected(**args), exp.cevns_template(**args)
    assert fast.sum() == pytest.approx(slow.sum(), rel=5e-3)
    assert np.abs(fast - slow).max() < 0.02 * slow.max()


@pytest.mark.parametrize("signal", ["counts", "xsec_scale", "sin2_theta_w", "flavour"])
def test_likelihood_expected_equals_components(exp, signal):
    lik = exp.likelihood(signal)
    x = lik.defaults()
    x[-9:] += [0.3, -0.4, 0.2, 0.013, 0.011, 0.2, 0.017, 0.1, 0.01]
    x[0] *= 0.9
    total = sum(exp.components_at(x, signal).values())
    assert np.allclose(lik.expected(x), total.ravel(), rtol=1e-12)
    ref = BinnedPoissonLikelihood("ref", lik.parameters, lik.expected, lik.observed)
    assert lik.chi2(x) == pytest.approx(ref.chi2(x), rel=1e-12)
    assert isinstance(lik, FastBinnedPoissonLikelihood)
    freed = lik.with_parameter("csi21_ss_norm", constraint=None)
    assert freed.chi2(x) == pytest.approx(ref.with_parameter("csi21_ss_norm", constraint=None).chi2(x), rel=1e-12)


def test_sin2_likelihood_at_sm_equals_xsec_scale_one(exp):
    ls, lx = exp.likelihood("sin2_theta_w"), exp.likelihood("xsec_scale")
    assert ls.chi2(ls.defaults()) == pytest.approx(lx.chi2(lx.defaults()), rel=1e-12)
    assert [p.name for p in ls.parameters][:2] == ["sin2_theta_w", "sns_flux_norm"]
    assert ls.parameters[1].constraint == (1.0, pytest.approx(0.10))


def test_template_from_qw2_matches_and_batches(exp):
    one = exp.cevns_template_from_qw2(exp.qw2_sm())
    assert np.allclose(one, exp.cevns_sm, rtol=1e-9)
    q1, q2 = exp.qw2_sm(0.20), exp.qw2_sm(0.26)
    batch = exp.cevns_template_from_qw2({k: np.stack([q1[k], q2[k]]) for k in q1})
    assert batch.shape == (2,) + exp.cevns_sm.shape
    assert np.allclose(batch[1], exp.cevns_expected(sin2_theta_w=0.26), rtol=1e-9)
    # Q_W = Z(1/2 − 2 s²) − N/2 < 0: a larger sin²θ_W makes |Q_W| (and the rate) larger
    assert batch[1].sum() > batch[0].sum()
    with pytest.raises(ConfigError, match="qw2 lacks"):
        exp.cevns_template_from_qw2({})


def test_flux_averaged_xsec_identities(exp):
    per = [exp.flux_averaged_xsec([f]) for f in exp.flavours]
    assert exp.flux_averaged_xsec() == pytest.approx(np.mean(per), rel=1e-12)  # equal fluence per flavour
    assert per[exp.flavours.index("numu")] < per[exp.flavours.index("nue")] < per[exp.flavours.index("numubar")]
    with pytest.raises(UnknownNameError):
        exp.flux_averaged_xsec(["nutau"])


# ---- CLI and error paths ---------------------------------------------------------------------------------------
def test_cli_json_contract(tmp_path, rep, monkeypatch, capsys):
    import cevns.experiments.repro_csi2021 as mod

    monkeypatch.setattr(mod, "reproduce", lambda progress=False: rep)  # the fit itself is checked above
    out = tmp_path / "r.json"
    assert main(["reproduce", "coherent-csi-2021", "--json", str(out), "--plots", str(tmp_path / "p"), "--no-progress"]) == 0
    data = json.loads(out.read_text())
    for key in ("predicted_cevns", "fitted_cevns", "fitted_cevns_err", "significance_sigma", "xsec_cm2",
                "xsec_err_up_cm2", "xsec_err_down_cm2", "xsec_sm_cm2", "sin2_theta_w", "sin2_theta_w_low",
                "sin2_theta_w_high", "xsec_nue_cm2", "xsec_numu_cm2"):
        assert isinstance(data[key], float), key
    assert sorted(p.name for p in (tmp_path / "p").glob("*.png")) == \
        ["csi2021_pe.png", "csi2021_sin2w_profile.png", "csi2021_time.png"]
    assert "published" in capsys.readouterr().out


def test_unknown_names(exp):
    with pytest.raises(UnknownNameError, match="coherent-csi-2021"):
        load_experiment("coherent-csi-2022")
    with pytest.raises(UnknownNameError, match="counts"):
        exp.likelihood("nsi")


def test_spec_typo():
    spec = load_spec("coherent-csi-2021")
    spec["detector"]["light_yeild_pe_per_keVee"] = 13.35
    with pytest.raises(ConfigError, match="detector.*allowed fields"):
        validate_spec(spec)


@pytest.fixture()
def release_copy(tmp_path):
    dst = tmp_path / "rel"
    shutil.copytree(DATA_ROOT / "coherent_csi_2021", dst)
    return dst


def test_missing_release_file(release_copy):
    (release_copy / "effCoefficients.txt").unlink()
    with pytest.raises(DataError, match="effCoefficients.txt"):
        load_experiment("coherent-csi-2021", data_root=str(release_copy))


@pytest.mark.parametrize("fname,keep", [("dataBeamOnC.txt", 0.5), ("brnTrec.txt", 0.6), ("scintRespCoefficients.txt", 0.7)])
def test_truncated_release_file(release_copy, fname, keep):
    p = release_copy / fname
    lines = p.read_text().splitlines(keepends=True)
    p.write_text("".join(lines[: int(len(lines) * keep)]))
    with pytest.raises(DataError, match=fname):
        load_experiment("coherent-csi-2021", data_root=str(release_copy))


def test_event_line_cut_mid_line(release_copy):
    p = release_copy / "dataBeamOnAC.txt"
    p.write_text(p.read_text()[:-9])  # last line loses its time column
    with pytest.raises(DataError, match="dataBeamOnAC.txt"):
        load_experiment("coherent-csi-2021", data_root=str(release_copy))
