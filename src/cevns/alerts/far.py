"""Accidental (false-alarm) coincidence rates with explicit units.

Derivation (Poisson processes; the classic accidental-coincidence formula, e.g. Eckart & Shonka 1938,
written here for the SNEWS "all fit in one window W after the earliest" rule; SNEWS context: arXiv:2011.00035
Sec. 4.1).  Detector i produces burst-like false triggers at rate R_i [1/s], independent.  An r-fold accidental
coincidence of a set S (|S| = r) happens when, after a trigger of one member i (rate R_i), every other member
j in S triggers within the following W seconds (probability R_j W for R_j W << 1).  Summing over which member
is the earliest:

    R_S = sum_{i in S} R_i prod_{j in S, j != i} (R_j W) = r W^(r-1) prod_{i in S} R_i        [1/s]   (1)

and for "at least r of n detectors" (leading order in R W) R_r = sum_{|S| = r} R_S.                    (2)

The sum in (2) is r W^(r-1) e_r(R_1, ..., R_n), with e_r the elementary symmetric polynomial, computed by the
recursion e_k <- e_k + R_i e_(k-1) in O(n r) (no enumeration of the C(n, r) sets).  For n equal rates R this is
C(n, r) r W^(r-1) R^r: any 2 of 20 detectors at one imitation per week, W = 10 s, is 1.04e-8 /s, one accidental
pair per 3.05 years, 190 times the rate of one specific pair.  Assumptions: independent, stationary Poisson
imitation processes; R_i W << 1; every detector of the online set is counted for the whole time.

Check (issue 5): two detectors at one imitation per week, W = 10 s:
R = 2 * 10 s * (1/604800 s)^2 = 5.47e-11 /s, i.e. one accidental pair per 579 Julian years ("about 600").
The original SNEWS code mixed per-second and per-year units in this formula; here every rate is in 1/s,
and :func:`per_year` converts with the Julian year (365.25 d).
"""
from __future__ import annotations

import math

from cevns.errors import ConfigError

SECONDS_PER_WEEK = 7 * 86400.0
SECONDS_PER_JULIAN_YEAR = 365.25 * 86400.0


def _check(rates, window_s):
    rates = [float(r) for r in rates]
    if any(not math.isfinite(r) or r < 0 for r in rates):
        raise ConfigError(f"imitation rates {rates}; allowed: finite, >= 0 (in 1/s)")
    if not (math.isfinite(window_s) and window_s > 0):
        raise ConfigError(f"window {window_s!r} s; allowed: finite > 0")
    return rates


def set_rate(rates_hz, window_s: float) -> float:
    """Eq. (1): accidental rate [1/s] that *all* detectors of the set fire within one window."""
    rates = _check(rates_hz, window_s)
    r = len(rates)
    if r < 2:
        raise ConfigError(f"a coincidence needs >= 2 detectors, got {r}")
    return r * window_s ** (r - 1) * math.prod(rates)


def elementary_symmetric(xs, r: int) -> float:
    """e_r(x_1..x_n) = sum over r-subsets of the product of their members (e_0 = 1)."""
    e = [1.0] + [0.0] * r
    for x in xs:
        for k in range(r, 0, -1):
            e[k] += x * e[k - 1]
    return e[r]


def r_fold_rate(rates_hz, window_s: float, r: int = 2) -> float:
    """Eq. (2): accidental rate [1/s] of >= r-fold coincidences among the given detectors."""
    rates = _check(rates_hz, window_s)
    if not (2 <= r <= len(rates)):
        raise ConfigError(f"r={r}; allowed: 2 <= r <= number of detectors ({len(rates)})")
    return r * window_s ** (r - 1) * elementary_symmetric(rates, r)


def per_year(rate_hz: float) -> float:
    return rate_hz * SECONDS_PER_JULIAN_YEAR


def mean_years_between(rate_hz: float) -> float:
    return math.inf if rate_hz == 0 else 1.0 / per_year(rate_hz)
