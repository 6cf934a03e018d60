"""CsI 2017 benchmarks (issue 2): expectation, one likelihood evaluation, whole fit."""
from __future__ import annotations




import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of as _best_of  # noqa: E402


def _exp():
    from _timing import experiment

    return experiment("coherent-csi-2017")


def bench_expectation():
    """Full PE × time SM expectation: weak charges on the nodes, Poisson response matrix with efficiency, fold with
    the cached flux kernels and time PDFs (the flux kernels are the cached precomputation)."""
    exp = _exp()
    return _best_of(lambda: exp.cevns_template(0.0878))


def bench_likelihood():
    exp = _exp()
    lik = exp.likelihood()
    x = lik.defaults()
    return _best_of(lambda: lik.chi2(x), number=2000)


def bench_fit():
    from cevns.inference import fit

    exp = _exp()
    lik = exp.likelihood()
    return _best_of(lambda: fit(lik), repeat=3, number=3)


BENCHMARKS = [
    ("csi2017_expectation_s", 1e-3, bench_expectation),
    ("csi2017_likelihood_s", 1e-4, bench_likelihood),
    ("csi2017_fit_s", 1.0, bench_fit),
]
