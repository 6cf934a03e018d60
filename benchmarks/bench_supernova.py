"""Issue 13 benchmarks: expected supernova counts in every registered detector (SNOwGLoBES-table channels and CEvNS
on the rate engine), and the 9-parameter profile likelihood of HALO-1kT on Asimov data."""
from __future__ import annotations

import time


def bench_rates():
    from cevns.sources.supernova import fiducial_model
    from cevns.supernova.detectors import detector_names
    from cevns.supernova.rates import expected_counts

    model, dets = fiducial_model(), detector_names()
    expected_counts(model, dets)  # table reading and response matrices are setup
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        expected_counts(model, dets, 10.0, "msw_normal")
        best = min(best, time.perf_counter() - t0)
    return best


def bench_halo_fit():
    from cevns.supernova.fit import PARAM_NAMES, FluxFitModel, fisher_accuracy, profile_interval

    m = FluxFitModel(["halo-1kt"], transformation="none")  # response matrices: setup
    t0 = time.perf_counter()
    fa = fisher_accuracy(m)
    for k, p in enumerate(PARAM_NAMES):
        profile_interval(m, k, guess=fa[p])
    return time.perf_counter() - t0


BENCHMARKS = [("sn_rates_all_detectors_s", 0.2, bench_rates), ("halo_fit_s", 10.0, bench_halo_fit)]
