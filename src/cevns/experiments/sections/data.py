"""Section ``data``: observed counts and auxiliary samples (e.g. an anti-coincidence window), each read from a release
file into the spec's binning. Formats: ``grid3`` (x centre, y centre, value; 2-D, x-major), ``nd_grid`` (one row per
bin: the bin centre on each axis then the value, last axis fastest), ``events`` (one row per event: the
energy-axis value and the time-axis value, counted into the bins), ``events_nd`` (a CSV/table of events, one column
per axis given by ``columns``, counted into the N-D bins; every event must fall inside the binning),
``residual_spectrum`` (a user's background-subtracted spectrum, one row per energy bin: bin centre, residual counts r,
1σ uncertainty σ; :func:`read_residual_spectrum`) and ``asimov`` (no file: the experiment's own nominal expectation,
for projections; filled in by :class:`cevns.experiments.experiment.Experiment`).

A residual spectrum enters the Poisson likelihood as effective counts n = σ² over a fixed offset b = σ² − r (the
background type ``residual_offset``): the Poisson variance of n is σ² and its mean s + b, so that −2 ln L →
Σ (r − s)²/σ² for large σ² (the Gaussian χ² of a residual). It needs σ² ≥ r in every bin, true of any on − off
difference (Var = N_on + α² N_off ≥ N_on − α N_off)."""
from __future__ import annotations

import numpy as np

from cevns.errors import ConfigError, DataError
from cevns.experiments.releases import read_grid3, read_table
from cevns.experiments.sections.binning import Binning
from cevns.experiments.sections.common import centres

__all__ = ["build_data", "read_grid_nd", "histogram_events", "read_residual_spectrum", "residual_from_on_off",
           "FORMATS"]

FORMATS = ("grid3", "nd_grid", "events", "events_nd", "residual_spectrum", "asimov")


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


def read_residual_spectrum(path, e_edges) -> tuple[np.ndarray, np.ndarray]:
    """(r, σ) of a residual-spectrum file: one row per energy bin of ``e_edges`` with the bin centre, the residual
    counts r (may be negative) and their 1σ uncertainty σ > 0, with σ² ≥ r (DataError naming the file otherwise)."""
    c = centres(e_edges)
    arr = read_table(path, ncols=3, rows=len(c))
    if not np.allclose(arr[:, 0], c, rtol=0, atol=1e-6 * max(float(np.max(np.abs(c))), 1e-12)):
        raise DataError(f"{path}: column 1 must hold the energy-bin centres of the spec ({c[:3]}...)")
    r, sig = arr[:, 1], arr[:, 2]
    if np.any(sig <= 0):
        raise DataError(f"{path}: uncertainties must be > 0 (column 3)")
    if np.any(sig * sig < r):
        i = int(np.argmax(r - sig * sig))
        raise DataError(f"{path}: bin {i}: sigma^2 = {sig[i] ** 2:.4g} < residual {r[i]:.4g}; a residual of on - off "
                        "counts always has sigma^2 >= r")
    return r, sig


def residual_from_on_off(on, off, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Residual r = N_on − α N_off and σ = √(N_on + α² N_off) of reactor-on and reactor-off counts per bin, α the
    on/off exposure ratio (for users who hold both spectra)."""
    on, off = np.asarray(on, float), np.asarray(off, float)
    if not (np.isfinite(scale) and scale > 0):
        raise DataError(f"on/off exposure ratio must be > 0, got {scale!r}")
    return on - scale * off, np.sqrt(np.maximum(on + scale * scale * off, 1e-300))


def _read(entry: dict, binning: Binning, file_fn, exp_name: str):
    fmt = entry["format"]
    if fmt == "asimov":
        if "file" in entry:
            raise ConfigError(f"spec {exp_name}: data format 'asimov' takes no file")
        return np.zeros(binning.shape), None
    if "file" not in entry:
        raise ConfigError(f"spec {exp_name}: data format {fmt!r} needs a 'file'")
    path = file_fn(entry["file"])
    if fmt == "residual_spectrum":
        ie = binning.axis_index("energy")
        if any(n != 1 for i, n in enumerate(binning.shape) if i != ie):
            raise ConfigError(f"spec {exp_name}: a residual spectrum needs a 1-D energy binning (other axes: 1 bin)")
        r, sig = read_residual_spectrum(path, binning.axes[ie]["edges"])
        return (sig * sig).reshape(binning.shape), np.stack([r, sig], axis=1)
    if fmt == "nd_grid":
        return read_grid_nd(path, [a["edges"] for a in binning.axes]), None
    if fmt == "events_nd":
        return _events_nd(entry, path, binning, exp_name)
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


def _events_nd(entry: dict, path, binning: Binning, exp_name: str):
    """Counts of an N-D event list in the binning (columns given per axis; a header line is skipped)."""
    edges = [a["edges"] for a in binning.axes]
    cols = entry.get("columns", list(range(len(edges))))
    if len(cols) != len(edges):
        raise ConfigError(f"spec {exp_name}: data {entry['file']}: 'columns' needs one column index per axis "
                          f"({len(edges)}), got {cols}")
    ev = read_table(path, rows=entry.get("n_events"))
    if max(cols) >= ev.shape[1]:
        raise DataError(f"{entry['file']}: has {ev.shape[1]} columns, the spec reads column {max(cols)}")
    x = ev[:, cols]
    inside = np.all([(x[:, k] >= e[0]) & (x[:, k] <= e[-1]) for k, e in enumerate(edges)], axis=0)
    if not inside.all():
        raise DataError(f"{entry['file']}: {int((~inside).sum())} events fall outside the binning (wrong edges or "
                        "columns?)")
    h, _ = np.histogramdd(x, bins=edges)
    return h, ev


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
