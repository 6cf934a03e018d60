"""From expected supernova counts to the per-detector significance a SNEWS 2.0 message carries (``p_val``,
arXiv:2011.00035 Sec. 4: each detector reports the p-value of its own burst trigger).

A detector with background rate r [Hz] looking at a window of Δt seconds sees N ~ Poisson(b), b = r Δt, without a
burst. The p-value of n counted events is P(N ≥ n | b) = P(n, b), the regularised lower incomplete gamma function
(the Poisson–gamma identity, Abramowitz & Stegun 6.5.2 with 26.4.21); with no observation the expected p-value uses
the median count of Poisson(s + b). The equivalent one-sided Gaussian significance is Z = Φ⁻¹(1 − p).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from cevns.errors import ConfigError, PhysicsDomainError
from cevns.supernova.rates import expected_counts

__all__ = ["detection_p_value", "log_p_value", "significance_sigma", "expected_p_values"]


def _check_nonneg(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not (math.isfinite(v) and v >= 0):
        raise PhysicsDomainError(f"{name} must be a finite number >= 0, got {v!r}")
    return float(v)


def log_p_value(n: int, b: float) -> float:
    """ln P(N ≥ n | Poisson mean b) = ln P(n, b) (A&S 6.5.2, 26.4.21), stable far in the tail."""
    b = _check_nonneg("background expectation", b)
    if n <= 0:
        return 0.0
    if b == 0.0:
        return -math.inf
    lp = float(stats.poisson.logsf(n - 1, b))
    if lp == -math.inf and b < n + 1:  # underflow far in the tail: pmf(n) ≤ P(N ≥ n) ≤ pmf(n)/(1 − b/(n+1))
        lp = float(stats.poisson.logpmf(n, b)) - math.log1p(-b / (n + 1))
    return lp


def detection_p_value(signal_events: float, background_rate_hz: float, window_s: float = 10.0,
                      observed: int | None = None) -> float:
    """p-value of the background-only hypothesis (the SNEWS ``p_val``): ``observed`` events, or the median count of
    Poisson(s + b) when None, in a window of ``window_s`` seconds with background rate ``background_rate_hz``."""
    s = _check_nonneg("signal expectation", signal_events)
    b = _check_nonneg("background rate [Hz]", background_rate_hz) * _check_nonneg("window [s]", window_s)
    n = int(stats.poisson.median(s + b)) if observed is None else int(observed)
    if n < 0:
        raise PhysicsDomainError(f"observed count must be >= 0, got {observed!r}")
    return math.exp(log_p_value(n, b))


def significance_sigma(log_p: float) -> float:
    """One-sided Gaussian significance Z = Φ⁻¹(1 − p) from ln p (``scipy.special.ndtri_exp``; inf for p = 0)."""
    if log_p == -math.inf:
        return math.inf
    return float(-special.ndtri_exp(min(log_p, 0.0)))


def expected_p_values(model, detectors, distance_kpc: float, background_rate_hz: dict, window_s: float = 10.0,
                      transformation: str = "none") -> dict:
    """{detector: {'signal', 'background', 'median_count', 'p_val', 'log_p_val', 'sigma'}}: the expected SNEWS
    ``p_val`` of each detector for a supernova ``model`` at ``distance_kpc``; ``background_rate_hz`` {detector: Hz}
    must name every detector (no default: backgrounds are the detectors' own numbers)."""
    missing = [d for d in detectors if d not in background_rate_hz]
    if missing:
        raise ConfigError(f"background rate [Hz] missing for detector(s) {missing}")
    counts = expected_counts(model, detectors, distance_kpc, transformation)
    out = {}
    for det, chans in counts.items():
        s = float(sum(chans.values()))
        b = _check_nonneg("background rate [Hz]", background_rate_hz[det]) * _check_nonneg("window [s]", window_s)
        n = int(stats.poisson.median(s + b))
        lp = log_p_value(n, b)
        out[det] = {"signal": s, "background": b, "median_count": n, "p_val": math.exp(lp), "log_p_val": lp,
                    "sigma": significance_sigma(lp)}
    return out
