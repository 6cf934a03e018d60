"""Issue 11 benchmarks: the Dresden-II spectrum for one quenching model, and the 90 % CL μ_ν limit of COHERENT CsI +
Ar (their released data) with the Dresden-II Asimov set."""
from __future__ import annotations

import time

import numpy as np

from _timing import best_of


def bench_prediction():
    """Response matrices of one quenching model (a Lindhard k not computed before) for the five Ge isotopes and the
    electrons, folded with the flux-folded kernels (cached per source and target, as in every model): the full
    binned CEvNS + ν–e spectrum of Dresden-II."""
    from cevns.experiments.registry import load_experiment

    exp = load_experiment("dresden-ii")
    eng = exp.signal.engine
    ks = iter(np.linspace(0.12, 0.22, 10_000))

    def one():
        eng._R.clear()
        eng._Re.clear()
        eng._signals.clear()
        eng.energy_time(settings={"dresden_lindhard_k": float(next(ks))})

    one()
    return best_of(one, repeat=5, number=10)


def bench_mu_limit():
    from cevns.inference.scan import ModelRecipe, scan, upper_limit

    r = ModelRecipe(("coherent-csi-2021", "coherent-ar-2020", "dresden-ii"), ("mu_nu_e",))
    r.build()  # release reading, kernels and response matrices are precomputation
    axes = {"mu_nu_e": np.linspace(0.0, 40.0, 161)}
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        res = scan(r, axes, progress=False)
        upper_limit(axes["mu_nu_e"], res.delta_chi2)
        best = min(best, time.perf_counter() - t0)
    return best


BENCHMARKS = [("reactor_prediction_s", 0.010, bench_prediction),
              ("dresden_coherent_mu_limit_s", 10.0, bench_mu_limit)]
