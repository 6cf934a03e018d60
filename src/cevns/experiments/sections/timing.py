"""Time factors of the samples on the spec's time axis: the source's arrival-time model (or a released time
histogram) integrated over fine sub-bins of every time bin and weighted by the detector's time efficiency, with the
variants that the time-response parameters (pulse mean and width, a background time shift) morph between."""
from __future__ import annotations

import numpy as np

from cevns.experiments.sections.common import centres

__all__ = ["TimeResponse"]


class TimeResponse:
    """Fine sub-bins (``n_sub`` per time bin) with the detector's time-efficiency weights; timing of the source."""

    def __init__(self, timing, detector, t_edges, n_sub: int = 25):
        self.timing = timing
        self.t_edges = np.asarray(t_edges, float)
        self.nt = len(self.t_edges) - 1
        self.n_sub = int(n_sub)
        sub = np.linspace(0.0, 1.0, self.n_sub + 1)
        self.fine_edges = np.unique(np.concatenate([lo + (hi - lo) * sub
                                                    for lo, hi in zip(self.t_edges[:-1], self.t_edges[1:])]))
        self.weights = detector.time_efficiency(centres(self.fine_edges))

    def _bins_from_fine(self, fine_counts: np.ndarray) -> np.ndarray:
        """Fine-bin contents (…, n_fine) × time efficiency, summed into the time bins."""
        w = fine_counts * self.weights
        return w.reshape(w.shape[:-1] + (self.nt, self.n_sub)).sum(axis=-1)

    def source_factors(self, mean_us: float | None = None, sigma_us: float | None = None) -> np.ndarray:
        """(components, time bins): probability × efficiency per bin of each timing component of the source."""
        tm = self.timing
        if tm.kind == "tabulated":
            return tm.table.copy()
        return np.stack([self._bins_from_fine(np.diff(tm.cdf(c, self.fine_edges, mean_us, sigma_us)))
                         for c in tm.components])

    def shifted_histogram(self, edges, values, shift: float) -> np.ndarray:
        """A released time histogram (edges, values) shifted by ``shift`` (linear interpolation of its cumulative),
        × efficiency, in the time bins."""
        cum = np.concatenate([[0.0], np.cumsum(values)])
        c = np.interp(self.fine_edges - shift, edges, cum)
        return self._bins_from_fine(np.diff(c))
