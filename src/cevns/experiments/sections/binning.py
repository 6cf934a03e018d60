"""Section ``binning``: the observable axes (energy-like, time-like, others), their edges and the region of interest."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cevns.errors import ConfigError
from cevns.experiments.sections.common import centres, edges_from_spec

__all__ = ["Binning", "build_binning"]


@dataclass
class Binning:
    """Axes (dicts with name, label, role, edges), the N-D shape, and the flat ROI mask (None: every bin)."""

    axes: list[dict]
    mask: np.ndarray | None

    @property
    def names(self) -> list[str]:
        return [a["name"] for a in self.axes]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a["edges"]) - 1 for a in self.axes)

    @property
    def n_bins(self) -> int:
        return int(np.prod(self.shape)) if self.mask is None else int(self.mask.sum())

    def axis_index(self, role_or_name: str) -> int:
        for i, a in enumerate(self.axes):
            if a["name"] == role_or_name or a["role"] == role_or_name:
                return i
        raise ConfigError(f"no axis with role or name {role_or_name!r}; axes: {self.names}")

    def edges(self, role_or_name: str) -> np.ndarray:
        return self.axes[self.axis_index(role_or_name)]["edges"]

    def select(self, arr) -> np.ndarray:
        """Flattened contents of an N-D array over the model's bins (the ROI)."""
        a = np.asarray(arr, float).reshape(-1)
        return a if self.mask is None else a[self.mask]

    def full(self, flat) -> np.ndarray:
        """N-D array from model-bin contents (zeros outside the ROI)."""
        out = np.zeros(int(np.prod(self.shape)))
        if self.mask is None:
            out[:] = flat
        else:
            out[self.mask] = flat
        return out.reshape(self.shape)


def build_binning(sec: dict, exp_name: str) -> Binning:
    axes = []
    for a in sec["axes"]:
        e = edges_from_spec(a["edges"], f"spec {exp_name}: binning axis {a['name']!r}")
        axes.append({"name": a["name"], "label": a.get("label", a["name"]), "role": a.get("role", "other"),
                     "edges": e})
    names = [a["name"] for a in axes]
    if len(set(names)) != len(names):
        raise ConfigError(f"spec {exp_name}: duplicate axis names {names}")
    roles = [a["role"] for a in axes if a["role"] != "other"]
    if len(set(roles)) != len(roles):
        raise ConfigError(f"spec {exp_name}: each of the roles 'energy', 'time' may be given to one axis only")
    mask = None
    roi = sec.get("roi")
    if roi:
        unknown = [k for k in roi if k not in names]
        if unknown:
            raise ConfigError(f"spec {exp_name}: ROI axis {unknown[0]!r} is not an axis; axes: {names}")
        sel = []
        for a in axes:
            c = centres(a["edges"])
            if a["name"] in roi:
                lo, hi = (float(x) for x in roi[a["name"]])
                if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                    raise ConfigError(f"spec {exp_name}: ROI of {a['name']!r} must be [lo, hi] with lo < hi, "
                                      f"got {roi[a['name']]}")
                s = (c >= lo) & (c < hi)
                if not s.any():
                    raise ConfigError(f"spec {exp_name}: ROI {roi[a['name']]} of {a['name']!r} contains no bin centre")
                sel.append(s)
            else:
                sel.append(np.ones(c.size, bool))
        m = sel[0]
        for s in sel[1:]:
            m = np.multiply.outer(m, s)
        mask = np.asarray(m, bool).ravel()
    return Binning(axes, mask)
