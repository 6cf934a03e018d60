"""Energy smearing: probability matrices from a mean signal (PE or keVee) to observable bins.

Poisson photostatistics (integer PE counts n, falling into the 1-PE bin [n, n+1)); gamma-distributed PE
(COHERENT CsI 2021, arXiv:2110.07730); Gaussian (σ/E = c/√E, CENNS-10, arXiv:2003.10630).
"""
from __future__ import annotations

import numpy as np
from scipy import special, stats

from cevns.errors import PhysicsDomainError

__all__ = ["poisson_pe_matrix", "gamma_pe_matrix", "gaussian_matrix"]


def poisson_pe_matrix(mean_pe, n_max: int) -> np.ndarray:
    """P[n, i] = Poisson(n; mean_pe[i]) for n = 0 … n_max−1 (photoelectron counting statistics)."""
    mu = np.asarray(mean_pe, dtype=float)
    if np.any(mu < 0) or not np.all(np.isfinite(mu)):
        raise PhysicsDomainError("Poisson means must be finite and >= 0")
    if mu.size and mu.max() < 500:  # recursion p(n) = p(n-1) μ/n: fast, exact to rounding for moderate μ
        ratios = mu[None, :] / np.arange(1, n_max)[:, None]
        p = np.empty((n_max, mu.size))
        p[0] = np.exp(-mu)
        p[1:] = p[0] * np.cumprod(ratios, axis=0)
        return p
    n = np.arange(n_max)[:, None]
    with np.errstate(divide="ignore"):
        logp = n * np.log(np.where(mu > 0, mu, 1.0)) - mu - special.gammaln(n + 1.0)
    return np.where(mu[None, :] > 0, np.exp(logp), (n == 0).astype(float))


def gamma_pe_matrix(eee_keV, light_yield_pe_per_keVee: float, edges_pe, a_coef: float = 0.0749, b_coef: float = 9.56):
    """P[j, i]: probability that a recoil of E_ee[i] keVee gives a PE count in bin j (edges in PE), for the CsI 2021
    gamma model (arXiv:2110.07730): with a = a_coef/E_ee, b = b_coef·E_ee, the PE count x follows
    x^b e^{−x/θ}/(θ^{b+1} Γ(b+1)), shape k = 1 + b, scale θ = mean/(1+b), mean = LY·E_ee."""
    E = np.maximum(np.asarray(eee_keV, dtype=float), 1e-9)
    shape = 1.0 + b_coef * E
    mean = light_yield_pe_per_keVee * E
    scale = mean / shape
    cdf = stats.gamma.cdf(np.asarray(edges_pe, dtype=float)[:, None], shape[None, :], scale=scale[None, :])
    return np.diff(cdf, axis=0)


def gaussian_matrix(mean, sigma, edges):
    """P[j, i] = probability that a Gaussian(mean[i], sigma[i]) lands in bin j."""
    mean = np.asarray(mean, dtype=float)[None, :]
    sigma = np.maximum(np.asarray(sigma, dtype=float)[None, :], 1e-12)
    z = (np.asarray(edges, dtype=float)[:, None] - mean) / sigma
    return np.diff(special.ndtr(z), axis=0)
