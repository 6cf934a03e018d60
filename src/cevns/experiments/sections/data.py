"""Section ``data``: observed counts and auxiliary samples (e.g. an anti-coincidence window), each read from a release
file into the spec's binning. Formats: ``grid3`` (x centre, y centre, value; 2-D, x-major), ``nd_grid`` (one row per
bin: the bin centre on each axis then the value, last axis fastest), ``events`` (one row per event: the
energy-axis value and the time-axis value, counted into the bins)."""
from __future__ import annotations

import numpy as np

from cevns.errors import ConfigError, DataError
from cevns.experiments.releases import read_grid3, read_table
from cevns.experiments.sections.binning import Binning
from cevns.experiments.sections.common import centres

__all__ = ["build_data", "read_grid_nd", "histogram_events", "FORMATS"]

FORMATS = ("grid3", "nd_grid", "events")


def read_grid_nd(path, edges: list[np.ndarray]) -> np.ndarray:
    """Values of a binned N-D release file with one row per bin (bin centres, then the value; C order). Checks the
    row and column counts, the centres against ``edges`` and that values are finite and ≥ 0 (DataError naming the
    file otherwise)."""
    shape = tuple(len(e) - 1 for e in edges)
    arr = read_table(path, ncols=len(edges) + 1, rows=int(np.prod(shape)))
    grids = np.meshgrid(*[centres(e) for e in edges], indexing="ij")
    for k, g in enumerate(grids):
        scale = max(float(np.max(np.abs(g))), 1e-12)
        if not np.allclose(arr[:, k], g.ravel(), rtol=0, atol=1e-6 * scale):
            raise DataError(f"{path}: column {k + 1} does not hold the expected bin centres of axis {k} "
                            f"(expected {np.unique(g)[:4]}..., C order with the last axis fastest)")
    v = arr[:, -1].reshape(shape)
    if np.any(v < 0):
        raise DataError(f"{path}: negative bin contents")
    return v


def histogram_events(ev: np.ndarray, e_edges: np.ndarray, t_edges: np.ndarray) -> np.ndarray:
    """Events with e_edges[0] ≤ E < e_edges[-1], t_edges[0] ≤ t < t_edges[-1] counted into [E bin, t bin]."""
    e, t = ev[:, 0], ev[:, 1]
    sel = (e >= e_edges[0]) & (e < e_edges[-1]) & (t >= t_edges[0]) & (t < t_edges[-1])
    i = np.searchsorted(e_edges, e[sel], side="right") - 1
    j = np.searchsorted(t_edges, t[sel], side="right") - 1
    h = np.zeros((len(e_edges) - 1, len(t_edges) - 1))
    np.add.at(h, (i, j), 1.0)
    return h


def _read(entry: dict, binning: Binning, file_fn, exp_name: str):
    fmt = entry["format"]
    path = file_fn(entry["file"])
    if fmt == "nd_grid":
        return read_grid_nd(path, [a["edges"] for a in binning.axes]), None
    if len(binning.axes) != 2:
        raise ConfigError(f"spec {exp_name}: data format {fmt!r} needs a 2-D binning (energy, time)")
    ie, it = binning.axis_index("energy"), binning.axis_index("time")
    if (ie, it) != (0, 1):
        raise ConfigError(f"spec {exp_name}: data format {fmt!r} needs the energy axis first, then the time axis")
    e_edges, t_edges = binning.axes[0]["edges"], binning.axes[1]["edges"]
    if fmt == "grid3":
        x, y, z = read_grid3(path, len(e_edges) - 1, len(t_edges) - 1)
        if not (np.allclose(x, centres(e_edges)) and np.allclose(y, centres(t_edges))):
            raise DataError(f"{entry['file']}: bin centres differ from the spec's binning")
        if np.any(z < 0):
            raise DataError(f"{entry['file']}: negative counts")
        return z, None
    ev = read_table(path, ncols=2, rows=entry.get("n_events"))
    if np.any(ev[:, 0] < 0) or np.any(ev[:, 1] < t_edges[0] - 1.0):
        raise DataError(f"{entry['file']}: negative energies or times far before the window (malformed event list)")
    return histogram_events(ev, e_edges, t_edges), ev


def build_data(sec: dict, binning: Binning, file_fn, exp_name: str) -> tuple[dict, dict]:
    """({dataset name: counts (binning shape)}, {dataset name: event array or None})."""
    if "observed" not in sec:
        raise ConfigError(f"spec {exp_name}: the data section needs an 'observed' dataset")
    counts, events = {}, {}
    for name, entry in sec.items():
        if entry["format"] not in FORMATS:
            raise ConfigError(f"spec {exp_name}: data {name!r}: unknown format {entry['format']!r}; allowed: {FORMATS}")
        counts[name], events[name] = _read(entry, binning, file_fn, exp_name)
    return counts, events
