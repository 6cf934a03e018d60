"""`cevns scan` / `cevns limit` end to end on the fast CsI 2017 model, and their error paths."""
import json

import pytest

from cevns.cli import main


def test_list_params(capsys):
    assert main(["scan", "--list-params"]) == 0
    out = capsys.readouterr().out
    for name in ("eps_ee_uV", "eps_mutau_dV", "mu_nu_e", "mu_nu_mu", "sin2_theta_w", "rn_Cs", "rn_I", "rn_Ar",
                 "g_zprime", "m_zprime_MeV", "g_scalar", "m_scalar_MeV", "dm2_41_eV2", "Ue4_sq", "Umu4_sq"):
        assert name in out


def test_scan_writes_json_and_plot(tmp_path, capsys):
    js, png = tmp_path / "s.json", tmp_path / "s.png"
    rc = main(["scan", "--experiment", "coherent-csi-2017", "--param", "sin2_theta_w=0.05:0.45:21", "--json", str(js),
               "--plot", str(png), "--no-progress"])
    assert rc == 0 and png.stat().st_size > 1000
    data = json.loads(js.read_text())
    assert data["parameters"] == ["sin2_theta_w"] and len(data["axes"]["sin2_theta_w"]) == 21
    assert min(data["delta_chi2"]) == pytest.approx(0.0, abs=0.05) and "best_fit" in data
    assert "68.3 % CL set of sin2_theta_w: [" in capsys.readouterr().out


def test_limit_one_parameter(tmp_path, capsys):
    js = tmp_path / "l.json"
    assert main(["limit", "--experiment", "coherent-csi-2017", "--param", "rn_CsI=4.0:9.5:23", "--json", str(js),
                 "--no-progress"]) == 0
    data = json.loads(js.read_text())
    assert data["parameter"] == "rn_CsI" and 4.0 < data["upper_limit"] < 9.5


@pytest.mark.parametrize("argv,msg", [
    (["scan", "--experiment", "coherent-csi-2017", "--param", "eps_xx_uV=0:1:3"], "unknown physics parameter"),
    (["scan", "--experiment", "coherent-csi-2017", "--param", "sin2_theta_w=0:2:3"], "outside its allowed range"),
    (["scan", "--experiment", "coherent-csi-2017", "--param", "sin2_theta_w=0.3:0.1:3"], "LO < HI"),
    (["scan", "--experiment", "nope", "--param", "sin2_theta_w=0.1:0.3:3"], "unknown experiment"),
    (["scan", "--param", "sin2_theta_w=0.1:0.3:3"], "at least one --experiment"),
    (["limit", "--experiment", "coherent-csi-2017", "--param", "sin2_theta_w=0.1:0.3:3",
      "--param", "rn_CsI=4:6:3"], "mass axis"),
])
def test_scan_errors(argv, msg, capsys):
    assert main(argv + ["--no-progress"]) == 2
    assert msg in capsys.readouterr().err


def test_scan_prints_disjoint_sets(capsys):
    """CsI 2017 ε_ee^uV: the 68 % set is two intervals (the SM-like and the sign-flipped band); both are printed."""
    assert main(["scan", "--experiment", "coherent-csi-2017", "--param", "eps_ee_uV=-0.5:0.7:121", "--no-progress"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("68.3 % CL set"))
    assert line.count("∪") == 1


def test_fit_cli_frees_any_physics_parameter(tmp_path, capsys):
    js = tmp_path / "f.json"
    assert main(["fit", "--experiment", "coherent-csi-2017", "--free", "sin2_theta_w", "--json", str(js)]) == 0
    data = json.loads(js.read_text())
    assert 0.1 < data["values"]["sin2_theta_w"] < 0.3 and data["valid"]
    assert main(["fit", "--experiment", "coherent-csi-2017", "--param", "mu_nu_e=20", "--free", "mu_nu_e"]) == 0
    assert main(["fit", "--experiment", "coherent-csi-2017", "--param", "g_zprime=1e-4"]) == 0  # fixed, not free
    out = capsys.readouterr().out
    assert "g_zprime" in out and "χ²_min" in out


@pytest.mark.parametrize("argv,msg", [
    (["fit", "--experiment", "coherent-csi-2017", "--free", "eps_xx"], "unknown physics parameter"),
    (["fit", "--experiment", "coherent-csi-2017", "--experiment", "coherent-csi-2017"], "twice"),
    (["fit", "--experiment", "coherent-csi-2017", "--param", "mu_nu_e=abc"], "must be a number"),
    (["fit", "--experiment", "coherent-csi-2017", "--signal", "counts", "--free", "sin2_theta_w"], "--signal physics"),
])
def test_fit_cli_errors(argv, msg, capsys):
    assert main(argv) == 2
    assert msg in capsys.readouterr().err
