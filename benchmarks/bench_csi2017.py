"""CsI 2017 benchmarks (issue 2): expectation, one likelihood evaluation, whole fit."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of as _best_of  # noqa: E402


def _exp():
    from _timing import experiment

    return experiment("coherent-csi-2017")


def bench_expectation():
    """Full PE × time SM expectation from scratch: the Poisson response matrix with efficiency at a quenching factor
    (Poisson matrices on the recoil nodes of Cs and I), weak charges on the nodes, fold with the cached flux kernels
    and the time PDFs (the flux kernels are the cached precomputation)."""
    exp = _exp()
    eng = exp.signal.engine
    qf = iter(0.0878 + 1e-9 * np.arange(10 ** 6))  # a new quenching factor each call: nothing cached

    def one():
        eng._R.clear()  # nuclear responses rebuilt; the electron-recoil response does not depend on quenching
        return exp.engine_prediction(settings={"csi17_qf": next(qf)})

    return _best_of(one)


def bench_likelihood():
    """χ² at points that alternate in every parameter: every sample is recomputed (no memo hit)."""
    lik = _exp().likelihood("counts")
    xs = [lik.defaults(), lik.x_from({"n_cevns": 150.0, "csi17_brn_norm": 1.1, "csi17_ss_norm": 0.98, "csi17_qf": 0.09})]
    it = iter(range(10 ** 9))
    return _best_of(lambda: lik.chi2(xs[next(it) % 2]), number=2000)


def bench_fit():
    from cevns.inference import fit

    lik = _exp().likelihood("counts")
    return _best_of(lambda: fit(lik), repeat=3, number=3)


BENCHMARKS = [
    ("csi2017_expectation_s", 5e-4, bench_expectation),
    ("csi2017_likelihood_s", 1e-4, bench_likelihood),
    ("csi2017_fit_s", 1.0, bench_fit),
]
