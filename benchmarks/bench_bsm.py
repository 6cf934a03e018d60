"""Issue 4 benchmarks: the 101×101 ε_ee^u–ε_ee^d profile scan (CsI 2021 + Ar, all nuisances profiled) and the
universal vector-mediator exclusion (50 masses × 60 couplings)."""
from __future__ import annotations

import contextlib
import time

import numpy as np

#: the NSI grid of the scan benchmarks
NSI_AXES = {"eps_ee_uV": np.linspace(-0.5, 0.7, 101), "eps_ee_dV": np.linspace(-0.5, 0.7, 101)}


def _recipe(physics):
    from cevns.inference.scan import ModelRecipe

    r = ModelRecipe(("coherent-csi-2021", "coherent-ar-2020"), tuple(physics))
    r.build()  # model construction (release reading, kernels, response matrices) is precomputation
    return r


def _timed_serial_scan(recipe) -> float:
    """Wall time [s] of one serial NSI scan in this process (also run as a Dask task: a worker's own serial scan)."""
    from cevns.inference.scan import scan

    t0 = time.perf_counter()
    scan(recipe, NSI_AXES, progress=False)
    return time.perf_counter() - t0


def bench_nsi():
    r = _recipe(("eps_ee_uV", "eps_ee_dV"))
    _timed_serial_scan(r)  # warm-up (the signal's stacked response matrices are built on first use)
    return min(_timed_serial_scan(r) for _ in range(3))  # best of three, like the other benchmarks' best-of-N


@contextlib.contextmanager
def _warm_local_cluster(recipe):
    """A two-worker local Dask cluster (``start_local_cluster(2)``, the cluster of scheduler='local' on a two-core
    machine) with the model built on every worker and one warm-up scan done there and here; closed afterwards."""
    from dask.distributed import Client

    from cevns.inference.scan import scan, start_local_cluster

    cluster = start_local_cluster(2)
    client = Client(cluster)
    try:
        client.run(recipe.build)  # every worker builds (and caches) the model once
        scan(recipe, NSI_AXES, progress=False, scheduler=client)  # and its stacked response matrices
        scan(recipe, NSI_AXES, progress=False)  # as the serial warm-up
        yield client
    finally:
        client.close()
        cluster.close()


def bench_nsi_dask2():
    """The same scan on a local Dask cluster of two single-threaded worker processes (started once, reused; the
    cluster start-up, the model build and one warm-up scan on every worker are excluded; the polish of the minimum
    runs on the workers, started when one block is left)."""
    from cevns.inference.scan import scan

    r = _recipe(("eps_ee_uV", "eps_ee_dV"))
    with _warm_local_cluster(r) as client:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            scan(r, NSI_AXES, progress=False, scheduler=client)
            best = min(best, time.perf_counter() - t0)
        return best


def bench_nsi_dask2_over_serial(pairs: int = 5):
    """Dask time / serial time of the same scan, measured in interleaved pairs in one process (the VM's speed drifts
    by 20-40 % between half hours, so separately timed bests can be from different phases): the median of the
    pairs' ratios. Issue 9's goal, 1.8x faster, is a ratio <= 1/1.8."""
    from cevns.inference.scan import scan

    r = _recipe(("eps_ee_uV", "eps_ee_dV"))
    with _warm_local_cluster(r) as client:
        ratios = []
        for _ in range(pairs):
            serial = _timed_serial_scan(r)
            t1 = time.perf_counter()
            scan(r, NSI_AXES, progress=False, scheduler=client)
            ratios.append((time.perf_counter() - t1) / serial)
        return float(np.median(ratios))


def bench_nsi_dask2_machine_bound(rounds: int = 4):
    """The best Dask/serial ratio this machine allows two workers, with no scheduling at all: each worker runs the
    whole serial scan, first one worker alone, then both at once (the same work on both cores); the bound is
    ½ · (time at once / time alone), the median of ``rounds``. Above 1/1.8 the 1.8x goal cannot be met here
    whatever the scheduling: two busy cores run each other's work slower (on the reference VM even a pure-Python
    loop does, so it is the machine, not the scan's memory traffic; see docs/benchmarks.md)."""
    r = _recipe(("eps_ee_uV", "eps_ee_dV"))
    with _warm_local_cluster(r) as client:
        workers = list(client.scheduler_info()["workers"])
        bounds = []
        for _ in range(rounds):
            alone = client.submit(_timed_serial_scan, r, pure=False, workers=workers[:1]).result()
            both = [f.result() for f in [client.submit(_timed_serial_scan, r, pure=False, workers=[w])
                                         for w in workers[:2]]]
            bounds.append(0.5 * float(np.mean(both)) / alone)
        return float(np.median(bounds))


def bench_mediator():
    from cevns.inference.scan import exclusion_per_mass, scan

    r = _recipe(("g_zprime", "m_zprime_MeV"))
    axes = {"m_zprime_MeV": np.geomspace(1.0, 1e4, 50), "g_zprime": np.geomspace(1e-6, 1e-1, 60)}
    t0 = time.perf_counter()
    res = scan(r, axes, progress=False, polish=False)
    exclusion_per_mass(res, "m_zprime_MeV", "g_zprime")
    return time.perf_counter() - t0


BENCHMARKS = [
    ("nsi_scan_101x101_s", 1.5, bench_nsi),
    ("nsi_scan_101x101_dask2_s", 1.5 / 1.8, bench_nsi_dask2),
    ("nsi_dask2_over_serial", 1 / 1.8, bench_nsi_dask2_over_serial),
    ("nsi_dask2_machine_bound", 1 / 1.8, bench_nsi_dask2_machine_bound),
    ("mediator_exclusion_s", 10.0, bench_mediator),
]
