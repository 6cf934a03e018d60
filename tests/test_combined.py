"""CsI 2021 + argon combination: shared parameters by name, the combined reproduction, SM N² scaling."""
import numpy as np
import pytest

from cevns import constants as C
from cevns.inference import fit
from cevns.inference.intervals import interval_from_profile
from cevns.inference.scan import ModelRecipe, scan
from cevns.reproductions.coherent_combined import fitted_signal, sm_flux_averaged_vs_n


@pytest.fixture(scope="module")
def exps(experiments):
    return experiments("coherent-csi-2021"), experiments("coherent-ar-2020")


def test_combined_likelihood_shares_flux_and_physics_only(exps):
    csi, ar = exps
    a, b = csi.likelihood("sin2_theta_w"), ar.likelihood("sin2_theta_w")
    comb = a + b
    names = comb.parameter_names
    assert names.count("sns_flux_norm") == 1 and names.count("sin2_theta_w") == 1
    assert set(a.parameter_names) & set(b.parameter_names) == {"sns_flux_norm", "sin2_theta_w"}
    r = fit(comb)
    assert 0.18 < r.values["sin2_theta_w"] < 0.28


def test_combined_reproduction(combined_reproduction):
    r = combined_reproduction.results
    parts = combined_reproduction.parts
    assert set(parts) == {"coherent-csi-2021", "coherent-ar-2020"}
    assert r["significance_sigma"] > parts["coherent-csi-2021"].results["significance_sigma"]
    assert r["sin2_theta_w_low"] < r["sin2_theta_w"] < r["sin2_theta_w_high"]
    # argon pulls sin²θ_W up from CsI alone and narrows the interval
    rc = parts["coherent-csi-2021"].results
    assert r["sin2_theta_w"] > rc["sin2_theta_w"]
    assert r["sin2_theta_w_high"] - r["sin2_theta_w_low"] < rc["sin2_theta_w_high"] - rc["sin2_theta_w_low"]


def test_combined_count_scales_what_each_fit_scales(exps, combined_reproduction):
    """The combined fitted count is Σ of the fitted signal samples: CsI's predicted template and argon's *released*
    one (128 at nominal), both × σ/σ_SM × flux (fix of issue 8: it used our argon prediction, 122)."""
    csi, ar = exps
    r = combined_reproduction.results
    v = r["best_fit_xsec"]
    la, lb = csi.likelihood("xsec_scale"), ar.likelihood("xsec_scale")
    assert r["fitted_cevns"] == pytest.approx(fitted_signal(la + lb, v), rel=1e-9)
    n_ar = float(lb.components(lb.x_from({k: x for k, x in v.items() if k in lb.parameter_names}))["cevns"].sum())
    assert n_ar == pytest.approx(128 * v["xsec_scale"] * v["sns_flux_norm"] * v["ar20_cevns_norm"], rel=0.02)
    n_csi = float(la.components(la.x_from({k: x for k, x in v.items() if k in la.parameter_names}))["cevns"].sum())
    assert n_csi + n_ar == pytest.approx(r["fitted_cevns"], rel=1e-9)


def test_combined_sin2w_scan_batched_agrees_with_minuit_profile(combined_reproduction):
    res = scan(ModelRecipe(("coherent-csi-2021", "coherent-ar-2020"), ("sin2_theta_w",)),
               {"sin2_theta_w": np.linspace(0.12, 0.34, 45)}, progress=False)
    lo, hi = interval_from_profile(res.axes["sin2_theta_w"], res.delta_chi2, 1.0)
    r = combined_reproduction.results
    assert lo == pytest.approx(r["sin2_theta_w_low"], abs=2e-3) and hi == pytest.approx(r["sin2_theta_w_high"], abs=2e-3)
    assert lo < C.SIN2_THETA_W_0 < hi


def test_sm_flux_average_follows_n_squared():
    N, sig, names = sm_flux_averaged_vs_n(("Ar40", "Ge74", "Cs133"))
    ratio = sig / N**2
    # N² law, broken only by the small proton term and by the form factor (stronger for heavy nuclei)
    assert ratio[0] > ratio[1] > ratio[2]
    assert ratio[2] / ratio[0] == pytest.approx(0.85, abs=0.1)
    assert sig[0] == pytest.approx(1.8e-39, rel=0.05)  # argon SM flux average ≈ 1.8e-39 cm² (arXiv:2003.10630)
