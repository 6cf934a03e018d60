"""Access to the public data releases shipped in ``cevns/data/<dataset>/`` and readers for their text formats.

Every reader checks shape and finiteness and raises :class:`~cevns.errors.DataError` naming the file and the
problem (missing, truncated, malformed): never a silent zero or NaN.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from cevns.errors import DataError

__all__ = ["data_path", "read_table", "read_grid3", "DATA_ROOT"]

DATA_ROOT = Path(str(resources.files("cevns") / "data"))


def data_path(dataset: str, filename: str, root: str | Path | None = None) -> Path:
    """Path of a shipped release file; ``root`` overrides the package data folder (e.g. for a user's own copy)."""
    base = Path(root) if root is not None else DATA_ROOT / dataset
    p = base / filename
    if not p.is_file():
        raise DataError(f"release file {filename!r} of dataset {dataset!r} not found at {p}")
    return p


def read_table(path: str | Path, ncols: int | None = None, min_rows: int = 1, delimiter: str | None = None,
               rows: int | None = None) -> np.ndarray:
    """Numeric table from a text file: '#' comments and non-numeric header lines skipped; commas or whitespace.
    Checks the column count (``ncols``), the row count (``rows`` exact or ``min_rows``) and finiteness."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    out = []
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            s = line.split("#", 1)[0].strip()
            if not s:
                continue
            parts = [t for t in (s.replace(",", " ").split() if delimiter is None else s.split(delimiter)) if t.strip()]
            try:
                vals = [float(t) for t in parts]
            except ValueError:
                if not out:  # a text header line before the numbers
                    continue
                raise DataError(f"{path}: line {lineno} is not numeric: {line.strip()[:80]!r}") from None
            if ncols is not None and len(vals) != ncols:
                raise DataError(f"{path}: line {lineno} has {len(vals)} columns, expected {ncols} (truncated or malformed?)")
            out.append(vals)
    if not out:
        raise DataError(f"{path}: no numeric rows (empty or truncated file)")
    widths = {len(r) for r in out}
    if len(widths) != 1:
        raise DataError(f"{path}: rows have different numbers of columns {sorted(widths)} (malformed file)")
    arr = np.asarray(out, dtype=float)
    if rows is not None and arr.shape[0] != rows:
        raise DataError(f"{path}: {arr.shape[0]} rows, expected {rows} (truncated file?)")
    if arr.shape[0] < min_rows:
        raise DataError(f"{path}: {arr.shape[0]} rows, expected at least {min_rows} (truncated file?)")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{path}: non-finite values")
    return arr


def read_grid3(path: str | Path, nx: int, ny: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 3-column file (x centre, y centre, value) on an nx × ny grid, x-major: returns (x centres, y centres, Z[nx, ny])."""
    arr = read_table(path, ncols=3, rows=nx * ny)
    x = arr[:, 0].reshape(nx, ny)
    y = arr[:, 1].reshape(nx, ny)
    if not (np.allclose(x, x[:, :1]) and np.allclose(y, y[:1, :])):
        raise DataError(f"{path}: rows are not an {nx} x {ny} x-major grid")
    return x[:, 0], y[0, :], arr[:, 2].reshape(nx, ny)
