"""Response matrices from recoil-energy quadrature nodes to observable bins.

``R[j, i]`` is the probability that a nuclear recoil at node i (T_i) is observed in bin j, times the detection
efficiency; expected counts are ``R @ events_per_node``. Built once per nuisance configuration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from cevns.detectors.smearing import gamma_pe_matrix, gaussian_matrix, poisson_pe_matrix
from cevns.errors import ConfigError

__all__ = ["PEResponse", "aggregate_rows"]


def aggregate_rows(fine: np.ndarray, fine_edges, obs_edges) -> np.ndarray:
    """Sum rows of ``fine`` (one row per fine bin, edges ``fine_edges``) into coarser bins ``obs_edges``; every obs
    edge must coincide with a fine edge."""
    fine_edges = np.asarray(fine_edges, dtype=float)
    idx = np.searchsorted(fine_edges, obs_edges)
    if np.any(idx >= len(fine_edges)) or not np.allclose(fine_edges[idx], obs_edges):
        raise ConfigError("observable bin edges must coincide with the 1-PE fine bin edges")
    cs = np.vstack([np.zeros((1, fine.shape[1])), np.cumsum(fine, axis=0)])
    return cs[idx[1:]] - cs[idx[:-1]]


@dataclass
class PEResponse:
    """Scintillator response in photoelectrons.

    quenching: object with ``eee_keV(T_keV)``; light_yield in PE/keVee; smearing 'poisson' (integer PE counts, the
    count n falls in [n, n+1)) or 'gamma' (arXiv:2110.07730 model) or 'gaussian' (σ = resolution·√mean);
    efficiency: callable of the PE value (evaluated at the 1-PE bin centres for 'poisson', at fine bin centres
    otherwise); obs_edges_pe: observable bin edges (integers for 'poisson').
    """

    quenching: object
    light_yield_pe_per_keVee: float
    obs_edges_pe: np.ndarray
    smearing: str = "poisson"
    efficiency: Callable[[np.ndarray], np.ndarray] | None = None
    fine_width_pe: float = 1.0
    gamma_coefs: tuple[float, float] = (0.0749, 9.56)

    def __post_init__(self):
        edges = np.asarray(self.obs_edges_pe, dtype=float)
        hi = float(edges[-1])
        self._fine_edges = np.arange(0.0, hi + 0.5 * self.fine_width_pe, self.fine_width_pe)
        centres = 0.5 * (self._fine_edges[:-1] + self._fine_edges[1:])
        self._eff = None if self.efficiency is None else np.asarray(self.efficiency(centres), dtype=float)
        # aggregation matrix from fine bins to observable bins (checked once here)
        one = np.eye(len(centres))
        self._agg = aggregate_rows(one, self._fine_edges, edges)
        if self._eff is not None:
            self._agg = self._agg * self._eff[None, :]

    def matrix(self, T_keV, quenching=None) -> np.ndarray:
        """R[obs_bin, node] for recoil nodes T [keVnr]; ``quenching`` overrides the model's (for nuisance grids)."""
        q = self.quenching if quenching is None else quenching
        eee = q.eee_keV(T_keV)
        mean_pe = self.light_yield_pe_per_keVee * eee
        fine_edges = self._fine_edges
        if self.smearing == "poisson":
            fine = poisson_pe_matrix(mean_pe, len(fine_edges) - 1)
        elif self.smearing == "gamma":
            a, b = self.gamma_coefs
            fine = gamma_pe_matrix(eee, self.light_yield_pe_per_keVee, fine_edges, a, b)
        elif self.smearing == "gaussian":
            fine = gaussian_matrix(mean_pe, np.sqrt(np.maximum(mean_pe, 0.0)), fine_edges)
        else:
            raise ConfigError(f"unknown smearing {self.smearing!r}; allowed: poisson, gamma, gaussian")
        return self._agg @ fine
