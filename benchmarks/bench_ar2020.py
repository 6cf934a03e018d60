"""CENNS-10 argon (Analysis A) benchmarks (issue 3): one likelihood evaluation, whole fit (setup excluded)."""
from __future__ import annotations



import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of as _best_of  # noqa: E402


def _exp():
    from _timing import experiment

    return experiment("coherent-ar-2020")


def bench_likelihood():
    """χ² over the 960 energy × F90 × time bins: 4 templates, 5 interpolated shape variants, pull terms."""
    lik = _exp().likelihood("counts")
    xs = [lik.defaults(), lik.x_from({"n_cevns": 150.0, "ar20_brn_prompt_norm": 1.1, "ar20_brn_delayed_norm": 0.5,
                                      "ar20_steady_state_norm": 1.01, "ar20_cevns_f90": 0.3, "ar20_cevns_time_mean": -0.2,
                                      "ar20_brn_energy": 0.4, "ar20_brn_time_mean": -0.3, "ar20_brn_time_width": 0.6})]
    it = iter(range(10 ** 9))  # every parameter changes between calls: nothing memoised
    return _best_of(lambda: lik.chi2(xs[next(it) % 2]), number=2000)


def bench_fit():
    """Best fit with the CEvNS count free and every nuisance (3 background normalisations, 5 shape variants)
    profiled, including HESSE errors."""
    from cevns.inference import fit

    lik = _exp().likelihood("counts")
    return _best_of(lambda: fit(lik), repeat=3, number=3)


BENCHMARKS = [
    ("ar2020_likelihood_s", 2e-4, bench_likelihood),
    ("ar2020_fit_s", 2.0, bench_fit),
]
