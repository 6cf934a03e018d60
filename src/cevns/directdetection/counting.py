"""Counting-experiment limits: observed counts n, expected background b ± σ_b, efficiency ε, exposure → an upper
limit on the signal mean, a rate or a lifetime (e.g. nucleon decay, EXO-200 arXiv:1710.07670).

* frequentist: the Feldman–Cousins likelihood-ratio ordering (Feldman & Cousins, PRD 57, 3873 (1998),
  arXiv:physics/9711021, Sec. IV: the ratio R of their Eq. (4.1)); with σ_b > 0 the Poisson probability is averaged over a Gaussian
  background (truncated at 0) before the ordering, the hybrid of Conrad, Botner, Hallgren & Pérez de los Heros,
  PRD 67, 012002 (2003), arXiv:hep-ex/0202013;
* Bayesian: a flat prior on s ≥ 0, the background marginalised over the same truncated Gaussian; for σ_b = 0 the
  closed form 1 − CL = Q(n + 1, s_up + b)/Q(n + 1, b) with Q the regularised upper incomplete gamma function
  (Helene, NIM 212, 319 (1983); PDG 2024 "Statistics" review, Sec. 40.4.1);
* lifetime: τ > ε N t / s_up for N candidate nuclei observed for t (T½ = τ ln 2 on request).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special, stats

from cevns import constants as C
from cevns.errors import PhysicsDomainError

__all__ = ["feldman_cousins", "bayesian_upper_limit", "counting_limit", "lifetime_limit",
           "nuclei_times_years", "CountingLimit"]


def _check(n_obs, b, b_sigma, cl):
    if not (isinstance(n_obs, (int, np.integer)) and n_obs >= 0):
        raise PhysicsDomainError(f"observed counts must be an integer >= 0, got {n_obs!r}")
    if not (math.isfinite(b) and b >= 0):
        raise PhysicsDomainError(f"expected background must be finite and >= 0, got {b!r}")
    if not (math.isfinite(b_sigma) and b_sigma >= 0):
        raise PhysicsDomainError(f"background uncertainty must be finite and >= 0, got {b_sigma!r}")
    if not (0 < cl < 1):
        raise PhysicsDomainError(f"confidence level must be in (0, 1), got {cl!r}")


def _background_nodes(b: float, b_sigma: float, n: int = 48):
    """Nodes and weights of a Gaussian (b, σ_b) truncated at 0 (Gauss–Hermite, renormalised on b' ≥ 0)."""
    if b_sigma == 0:
        return np.array([b]), np.array([1.0])
    x, w = np.polynomial.hermite_e.hermegauss(n)
    bb = b + b_sigma * x
    w = np.where(bb >= 0, w, 0.0)
    return np.maximum(bb, 0.0), w / w.sum()


def _pmf(n, mu_plus_b_nodes, weights):
    """P(n | μ) averaged over the background nodes: (..., n) for μ (M,) + b nodes (K,)."""
    lam = mu_plus_b_nodes  # (M, K)
    return np.einsum("mkn,k->mn", stats.poisson.pmf(n[None, None, :], lam[..., None]), weights)


def feldman_cousins(n_obs: int, b: float, cl: float = 0.9, b_sigma: float = 0.0, mu_max: float | None = None,
                    step: float = 0.002) -> tuple[float, float]:
    """Feldman–Cousins confidence interval [μ_lo, μ_hi] for a Poisson signal mean with known (or, with σ_b > 0,
    Gaussian-uncertain) background: for each μ on a grid the acceptance region in n adds counts in decreasing order of
    R = P(n|μ+b)/P(n|μ̂+b), μ̂ = max(0, n − b) (for σ_b > 0: the maximum of the averaged likelihood), until its
    probability reaches ``cl``; the interval is the set of μ whose region contains n_obs."""
    _check(n_obs, b, b_sigma, cl)
    if mu_max is None:
        mu_max = n_obs + 5.0 * math.sqrt(n_obs + 1.0) + 8.0
    bn, bw = _background_nodes(b, b_sigma, 48 if b_sigma > 0 else 1)
    n_max = int(mu_max + b + 5 * b_sigma + 12 * math.sqrt(mu_max + b + 5 * b_sigma + 1) + 20)
    n = np.arange(n_max + 1)
    coarse = np.arange(0.0, mu_max + 0.05, 0.05)
    if b_sigma == 0:
        P_best = stats.poisson.pmf(n, np.maximum(n - b, 0.0) + b)
    else:  # the maximum over μ ≥ 0 of the averaged likelihood, per n (flat at its maximum: a grid suffices)
        P_best = _pmf(n, coarse[:, None] + bn[None, :], bw).max(axis=0)

    def accepted(mu):
        P = _pmf(n, mu[:, None] + bn[None, :], bw)  # (M, N)
        R = P / np.maximum(P_best[None, :], 1e-300)
        order = np.argsort(-R, axis=1, kind="stable")
        csum = np.cumsum(np.take_along_axis(P, order, axis=1), axis=1)
        k_needed = np.argmax(csum >= cl, axis=1)  # acceptance = the first k_needed + 1 counts in R order
        rank = np.argsort(order, axis=1)[:, n_obs]
        return rank <= k_needed

    acc = accepted(coarse)
    if not acc.any():
        raise PhysicsDomainError("no μ on the grid accepts the observation; enlarge mu_max")
    idx = np.flatnonzero(acc)
    if idx[-1] == coarse.size - 1:
        raise PhysicsDomainError(f"the interval reaches mu_max = {mu_max}; enlarge it")
    bounds = []
    for edge in (coarse[idx[0]], coarse[idx[-1]]):  # refine each end on a fine grid
        fine = np.arange(max(edge - 0.06, 0.0), edge + 0.06, step)
        a = accepted(fine)
        bounds.append(fine[a])
    lo = 0.0 if idx[0] == 0 else float(bounds[0].min())
    return lo, float(bounds[1].max())


def bayesian_upper_limit(n_obs: int, b: float, cl: float = 0.9, b_sigma: float = 0.0) -> float:
    """Bayesian upper limit on the signal mean (flat prior s ≥ 0); σ_b > 0 marginalises a truncated Gaussian."""
    _check(n_obs, b, b_sigma, cl)
    bn, bw = _background_nodes(b, b_sigma)

    def tail(s):  # P(signal > s | n) ∝ Σ_k w_k Q(n+1, s + b_k)
        return float(np.sum(bw * special.gammaincc(n_obs + 1, s + bn)) / np.sum(bw * special.gammaincc(n_obs + 1, bn)))

    hi = n_obs + 10.0 * math.sqrt(n_obs + 1.0) + 20.0
    return float(optimize.brentq(lambda s: tail(s) - (1.0 - cl), 0.0, hi, xtol=1e-10, rtol=1e-12))


class CountingLimit(dict):
    """Result of :func:`counting_limit` (a dict: method, cl, signal upper limit, rate / lifetime limits)."""


def nuclei_times_years(exposure_kg_yr: float, isotope: str, enrichment: float = 1.0) -> float:
    """N·t [nucleus·yr] of ``exposure_kg_yr`` of material whose mass fraction ``enrichment`` is ``isotope``."""
    from cevns.targets.isotopes import isotope as lookup

    iso = lookup(isotope)
    if not (math.isfinite(exposure_kg_yr) and exposure_kg_yr > 0):
        raise PhysicsDomainError(f"exposure must be > 0 kg·yr, got {exposure_kg_yr!r}")
    if not (0 < enrichment <= 1):
        raise PhysicsDomainError(f"enrichment must be in (0, 1], got {enrichment!r}")
    return exposure_kg_yr * 1000.0 * enrichment / iso.atomic_mass_u * C.AVOGADRO


def lifetime_limit(signal_upper: float, efficiency: float, nuclei_years: float, half_life: bool = False) -> float:
    """τ > ε N t / s_up [yr] (× ln 2 for a half-life)."""
    if not (0 < efficiency <= 1):
        raise PhysicsDomainError(f"efficiency must be in (0, 1], got {efficiency!r}")
    if not signal_upper > 0:
        raise PhysicsDomainError(f"the signal upper limit must be > 0, got {signal_upper!r}")
    tau = efficiency * nuclei_years / signal_upper
    return tau * math.log(2.0) if half_life else tau


def counting_limit(n_obs: int, b: float, b_sigma: float = 0.0, efficiency: float = 1.0, exposure: float = 1.0,
                   cl: float = 0.9, method: str = "fc", nuclei_years: float | None = None) -> CountingLimit:
    """Upper limit of a counting experiment: s_up (Feldman–Cousins 'fc' or Bayesian 'bayes'), the rate limit
    s_up/(ε × exposure) (per the exposure's unit) and, with ``nuclei_years``, the lifetime limit ε N t / s_up."""
    if method not in ("fc", "bayes"):
        from cevns.errors import UnknownNameError

        raise UnknownNameError("counting-limit method", method, ["fc", "bayes"])
    if not (0 < efficiency <= 1):
        raise PhysicsDomainError(f"efficiency must be in (0, 1], got {efficiency!r}")
    if not (math.isfinite(exposure) and exposure > 0):
        raise PhysicsDomainError(f"exposure must be > 0, got {exposure!r}")
    s_up = feldman_cousins(n_obs, b, cl, b_sigma)[1] if method == "fc" else bayesian_upper_limit(n_obs, b, cl, b_sigma)
    out = CountingLimit(method=method, cl=cl, n_obs=n_obs, background=b, background_sigma=b_sigma,
                        signal_upper=s_up, rate_upper=s_up / (efficiency * exposure))
    if nuclei_years is not None:
        out["lifetime_lower_yr"] = lifetime_limit(s_up, efficiency, nuclei_years)
    return out
