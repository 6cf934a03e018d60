"""Direct-detection benchmarks (issue 14): a 50-point Migdal spectrum (wimprates: ~6 s), the xenon neutrino floor over
50 masses, and the XENONnT ⁸B flux fit (SR0+SR1)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_of as _best_of  # noqa: E402


def bench_migdal_spectrum():
    """dR/dE_em of the Migdal effect in xenon at 50 energies (1 GeV, n = 3, 4 shells, 9 isotopes): the whole call,
    nothing cached between calls but the transition tables."""
    from cevns.directdetection.spectra import migdal_spectrum

    E = np.linspace(0.1, 3.0, 50)
    migdal_spectrum(E, 1.0, 1e-40)  # tables read once
    return _best_of(lambda: migdal_spectrum(E, 1.0, 1e-40), repeat=3, number=5)


def bench_fog_xe():
    """The xenon neutrino floor at 50 masses (1 GeV–10 TeV): neutrino rates through the engine, WIMP rates, the
    discovery-limit curves over 65 exposures and the n = 2 crossings, from scratch."""
    from cevns.commands.darkmatter import OHARE_HALO
    from cevns.directdetection.fog import neutrino_floor
    from cevns.sources.halo import StandardHaloModel

    h = StandardHaloModel(**OHARE_HALO)
    t0 = time.perf_counter()
    neutrino_floor(np.geomspace(1.0, 1e4, 50), "Xe", halo=h)
    return time.perf_counter() - t0


def bench_xenonnt_fit():
    """SR0+SR1 ⁸B fit: best fit + background-only fit of the combined likelihood (specs loaded beforehand)."""
    from cevns.experiments import load_experiment
    from cevns.reproductions.xenonnt_b8 import _fit, combined_likelihood

    exps = [load_experiment(f"xenonnt-b8-{r}") for r in ("sr0", "sr1")]
    lik = combined_likelihood(exps)
    t0 = time.perf_counter()
    b = _fit(lik)
    _fit(lik, start=b.values, fixed={"xsec_scale": 0.0})
    return time.perf_counter() - t0


BENCHMARKS = [
    ("migdal_spectrum_50pt_s", 0.05, bench_migdal_spectrum),
    ("fog_xe_s", 30.0, bench_fog_xe),
    ("xenonnt_b8_fit_s", 5.0, bench_xenonnt_fit),
]
