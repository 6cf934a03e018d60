"""CsI 2021 benchmarks (issue 3): one likelihood evaluation, the main fit, the 100-point sin²θ_W profile."""
from __future__ import annotations


import numpy as np


import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of as _best_of  # noqa: E402


_EXP = {}


def _exp():
    if "e" not in _EXP:
        from cevns.experiments import load_experiment

        _EXP["e"] = load_experiment("coherent-csi-2021")
    return _EXP["e"]


def bench_likelihood():
    """χ²(x) of the main (free CEvNS count) likelihood, every sample recomputed: morphing in 6 response/timing
    nuisances, 4 samples, Baker–Cousins over 360 bins, pulls."""
    lik = _exp().likelihood("counts")
    xs = [lik.defaults(),
          lik.x_from({"csi21_qf_pc0": 0.3, "csi21_qf_pc1": -0.4, "csi21_eff": 0.2, "csi21_pulse_mean_us": 0.583,
                      "csi21_pulse_sigma_us": 0.168, "csi21_brn_norm": 1.2, "csi21_brn_time_shift_us": 0.017,
                      "csi21_nin_norm": 1.1, "csi21_ss_norm": 1.01, "n_cevns": 300.0})]
    it = iter(range(10 ** 9))  # alternate between two points that differ in every parameter: nothing memoised
    return _best_of(lambda: lik.chi2(xs[next(it) % 2]), number=2000)


def bench_fit():
    from cevns.inference import fit

    lik = _exp().likelihood("counts")
    return _best_of(lambda: fit(lik), repeat=3, number=3)


def bench_sin2w_profile():
    """Best fit + 100-point profile in sin²θ_W (sns_flux_norm and all 9 detector/background nuisances profiled)."""
    from cevns.reproductions.coherent_csi_2021 import sin2_profile

    exp = _exp()
    lik = exp.likelihood("sin2_theta_w")
    values = np.linspace(0.10, 0.36, 100)
    return _best_of(lambda: sin2_profile(exp, lik, values), repeat=2, number=1)


BENCHMARKS = [
    ("csi2021_likelihood_s", 1e-4, bench_likelihood),
    ("csi2021_fit_s", 2.0, bench_fit),
    ("sin2w_profile_s", 10.0, bench_sin2w_profile),
]
