"""COHERENT CsI[Na] full dataset (arXiv:2110.07730) reproduction: published numbers, the model's pieces against the
release, error paths."""
import json
import shutil

import numpy as np
import pytest
from scipy import stats

from cevns.cli import main
from cevns.errors import ConfigError, DataError, UnknownNameError
from cevns.experiments import load_experiment, load_spec, validate_spec
from cevns.experiments.releases import DATA_ROOT

E40 = 1e-40


@pytest.fixture(scope="module")
def exp(experiments):
    return experiments("coherent-csi-2021")


@pytest.fixture(scope="module")
def rep(combined_reproduction):
    return combined_reproduction.parts["coherent-csi-2021"]


# ---- published numbers ---------------------------------------------------------------------------------------
def test_sm_prediction_within_5_percent(rep):
    # published 341 ± 11 (th) ± 42 (exp). Ours 345 (+1.2 %) with the analytic π-DAR flux (the released 2-D flux is
    # missing) and tree-level couplings; 5 % is well inside the published 12 % experimental uncertainty.
    r = rep.results
    assert r["predicted_cevns"] == pytest.approx(341, rel=0.05)
    assert r["predicted_cevns_err_th"] == pytest.approx(11, rel=0.05)  # the 3.2 % form-factor share, as published


@pytest.mark.xfail(reason="our experimental uncertainty is 14.7 % against the published 12.3 %: the released "
                          "efficiency variants alone move the prediction by 10 % (docs/validation.md)", strict=True)
def test_sm_prediction_experimental_uncertainty(rep):
    assert rep.results["predicted_cevns_err_exp"] == pytest.approx(42, rel=0.1)


def test_fit_and_significance(rep):
    r = rep.results
    assert abs(r["fitted_cevns"] - 306) < 20  # within the published 1σ
    assert abs(r["significance_sigma"] - 11.6) < 0.5
    assert stats.chi2.sf(r["chi2_best"], r["ndof"]) > 0.01  # measured p = 0.13


@pytest.mark.xfail(reason="fitted count error 33 vs published 20: it stays 30 with every nuisance fixed, so it is "
                          "statistical; the paper's steady-state sample was probably larger than the released AC list",
                   strict=True)
def test_fitted_count_error(rep):
    assert rep.results["fitted_cevns_err"] == pytest.approx(20, rel=0.2)


def test_cross_section(rep):
    r = rep.results
    # SM flux-averaged σ per nucleus (mean of Cs and I): 187.3 vs 189 published
    assert r["xsec_sm_cm2"] == pytest.approx(189 * E40, rel=0.02)
    assert r["xsec_cm2"] == pytest.approx(165 * E40, rel=0.03)
    assert r["xsec_err_up_cm2"] == pytest.approx(30 * E40, rel=0.15)
    assert r["xsec_err_down_cm2"] == pytest.approx(25 * E40, rel=0.15)


def test_sin2_theta_w(rep):
    r = rep.results
    assert r["sin2_theta_w"] == pytest.approx(0.220, abs=0.005)
    assert r["sin2_theta_w_high"] - r["sin2_theta_w"] == pytest.approx(0.028, abs=0.004)
    assert r["sin2_theta_w"] - r["sin2_theta_w_low"] == pytest.approx(0.026, abs=0.004)


def test_form_factor_nuisance_widens_the_sin2_interval(exp, rep):
    """The 3.2 % form-factor normalisation (fix of issue 8) is profiled in the sin²θ_W fit: without it the interval
    is narrower by about 2 %."""
    from cevns.inference import fit, profile_scan
    from cevns.inference.intervals import interval_from_profile

    lik = exp.likelihood("sin2_theta_w").with_parameter("csi21_ff_norm", constraint=(1.0, 1e-6), limits=(1.0, 1.0 + 1e-9))
    best = fit(lik, fixed={"csi21_ff_norm": 1.0})
    v = np.linspace(0.15, 0.30, 61)
    chi = profile_scan(lik, "sin2_theta_w", v, start=best.values)
    lo, hi = interval_from_profile(v, chi - chi.min())
    r = rep.results
    width_with = r["sin2_theta_w_high"] - r["sin2_theta_w_low"]
    assert 1.005 < width_with / (hi - lo) < 1.06


def test_flavour_fit_consistent_with_total(rep, exp):
    r = rep.results
    per = exp.signal.engine.energy_time(groups=[["nue"], ["numu"], ["numubar"]], by_group=True)[0]
    n_e, n_mu = per[0].sum(), per[1].sum() + per[2].sum()
    comb = (n_e * r["xsec_nue_cm2"] / r["xsec_nue_sm_cm2"] + n_mu * r["xsec_numu_cm2"] / r["xsec_numu_sm_cm2"]) / (n_e + n_mu)
    assert comb == pytest.approx(r["xsec_cm2"] / r["xsec_sm_cm2"], rel=0.05)
    assert abs(r["xsec_numu_cm2"] / r["xsec_numu_sm_cm2"] - 1) < 2 * r["xsec_numu_err_cm2"] / r["xsec_numu_sm_cm2"]


def test_timing_calibration_from_nin(exp):
    cal = exp.source.timing.calibration
    assert 0.5 < cal["mean_us"] < 0.65 and 0.1 < cal["sigma_us"] < 0.2
    assert cal["rms_residual_rel"] < 0.1
    # BRN neutrons arrive after the neutrinos (time of flight): released BRN peak (≈0.66 µs) later than the pulse mean
    brn_t = exp.components_at({}, "counts")["brn"].sum(axis=0)
    assert exp.binning.edges("time")[np.argmax(brn_t)] + 0.25 > cal["mean_us"]


def test_background_predictions(exp):
    # BRN and NIN expectations from the released t_rec sums × PE fraction below 60 PE (× time efficiency), written out
    comps = exp.components_at({}, "counts")
    pe = np.loadtxt(DATA_ROOT / "coherent_csi_2021" / "brnPE.txt")
    t = np.loadtxt(DATA_ROOT / "coherent_csi_2021" / "brnTrec.txt")
    frac = pe[pe[:, 0] < 60, 1].sum() / pe[:, 1].sum()
    tc = t[:, 0]
    eff = np.where(tc < 0.52, 1.0, np.exp(-0.0494 * (tc - 0.52)))
    want = frac * np.sum((t[:, 1] * eff)[(tc > 0) & (tc < 6)])
    assert comps["brn"].sum() == pytest.approx(want, rel=0.01)
    assert 4.0 < comps["nin"].sum() < 5.7
    assert comps["steady_state"].sum() == pytest.approx(1295)
    assert exp.observed.sum() == 1578


def test_flux_averaged_xsec_identities(exp):
    species = exp.source.source.species
    per = [exp.flux_averaged_xsec([f]) for f in species]
    assert exp.flux_averaged_xsec() == pytest.approx(np.mean(per), rel=1e-12)  # equal fluence per flavour
    assert per[species.index("numu")] < per[species.index("nue")] < per[species.index("numubar")]
    with pytest.raises(ConfigError, match="nutau"):
        exp.flux_averaged_xsec(["nutau"])


def test_signal_modes_agree(exp):
    """counts, xsec_scale and physics modes describe the same signal: at matching parameters the χ² is equal."""
    lc, lx, ls = (exp.likelihood(m) for m in ("counts", "xsec_scale", "sin2_theta_w"))
    nuis = {"csi21_qf_pc0": 0.3, "csi21_eff": -0.4, "csi21_brn_norm": 1.1}
    xs = lx.x_from(dict(nuis, xsec_scale=0.9, sns_flux_norm=1.05))
    n = float(lx.components(xs)["cevns"].sum())
    assert lc.data_chi2(lc.x_from(dict(nuis, n_cevns=n))) == pytest.approx(lx.data_chi2(xs), rel=1e-12)
    assert ls.data_chi2(ls.x_from(dict(nuis, sns_flux_norm=1.05))) == pytest.approx(
        lx.data_chi2(lx.x_from(dict(nuis, xsec_scale=1.0, sns_flux_norm=1.05))), rel=1e-12)


# ---- CLI and error paths ---------------------------------------------------------------------------------------
def test_cli_json_contract(tmp_path, rep, monkeypatch, capsys):
    import cevns.reproductions.coherent_csi_2021 as mod

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
    with pytest.raises((DataError, ConfigError), match=fname):
        load_experiment("coherent-csi-2021", data_root=str(release_copy))


def test_event_line_cut_mid_line(release_copy):
    p = release_copy / "dataBeamOnAC.txt"
    p.write_text(p.read_text()[:-9])  # last line loses its time column
    with pytest.raises(DataError, match="dataBeamOnAC.txt"):
        load_experiment("coherent-csi-2021", data_root=str(release_copy))
