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
    assert "68.3 % CL interval" in capsys.readouterr().out


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
