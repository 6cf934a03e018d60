"""Detection efficiencies as functions of the observable (PE or keVee) and of time."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["coherent2017_efficiency", "modified_heaviside_2017", "coherent2021_efficiency", "coherent2021_time_efficiency"]


def modified_heaviside_2017(x_pe):
    """H(x) of the CsI 2017 release (arXiv:1804.09459): 0 for x < 5, 1/2 for 5 ≤ x < 6, 1 for x ≥ 6 PE."""
    x = np.asarray(x_pe, dtype=float)
    return np.where(x < 5.0, 0.0, np.where(x < 6.0, 0.5, 1.0))


def coherent2017_efficiency(x_pe, a=0.6655, k=0.4942, x0=10.8507):
    """CsI 2017 acceptance f(x) = a/(1 + exp(−k(x − x0))) H(x − 5), x in PE at 1-PE bin centres
    (arXiv:1804.09459, coherent_parameters.yaml)."""
    x = np.asarray(x_pe, dtype=float)
    return a / (1.0 + np.exp(-k * (x - x0))) * modified_heaviside_2017(x)


def coherent2021_efficiency(x_pe, a, b, c, d):
    """CsI 2021 energy efficiency ε(x) = a / (1 + exp(−b (x − c))) + d (x in PE; coefficients from the release's
    effCoefficients.txt, arXiv:2110.07730)."""
    x = np.asarray(x_pe, dtype=float)
    return a / (1.0 + np.exp(-b * (x - c))) + d


def coherent2021_time_efficiency(t_us, t0_us: float = 0.52, slope_per_us: float = 0.0494):
    """CsI 2021 time efficiency: 1 for t < 0.52 µs, exp(−0.0494 (t − 0.52)) after (arXiv:2110.07730)."""
    t = np.asarray(t_us, dtype=float)
    return np.where(t < t0_us, 1.0, np.exp(-slope_per_us * (t - t0_us)))


def integrate_time_efficiency(t_edges_us, pdf_fine_fn, n_sub: int = 50):
    """Helper: mean of an efficiency over each time bin, weighted by a density (callable on t). Not used in hot paths."""
    edges = np.asarray(t_edges_us, dtype=float)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        t = np.linspace(lo, hi, n_sub)
        w = pdf_fine_fn(t)
        out.append(np.trapezoid(w, t) / max(math.ulp(1.0), np.trapezoid(np.ones_like(t), t)))
    return np.asarray(out)
