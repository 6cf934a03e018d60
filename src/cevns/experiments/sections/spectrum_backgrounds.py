"""Backgrounds of steady, energy-only experiments (reactors, projected detectors), in the observable's unit.

* ``residual_offset``: the fixed offset b = σ² − r of a residual spectrum (data format ``residual_spectrum``): with
  the effective counts n = σ² it turns the Poisson likelihood into the Gaussian χ² Σ (r − s)²/σ² of the residual
  (see :mod:`cevns.experiments.sections.data`). No modifiers: the residual's uncertainty is already in σ.
* ``scaled_dataset``: the energy marginal of an auxiliary dataset × ``scale`` (e.g. reactor-off counts × the on/off
  exposure ratio α), with its normalisation modifiers (e.g. ``{"poisson_count": "reactor_off"}`` as σ).
* ``analytic``: a sum of shapes integrated exactly over the energy bins, totals for the whole exposure:
  ``flat`` (``counts_per_unit``: counts per observable unit), ``exponential`` (``counts_per_unit_at_0`` A and
  ``decay`` d: A e^{−x/d}) and ``gaussian`` (``counts``, ``mean``, ``sigma``: a line, e.g. an electron-capture peak).

Each is a one-group :class:`cevns.model.samples.FactorisedSample`, spread over the time bins in proportion to their
width (a steady background; a reactor spec has one time bin).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from cevns.errors import ConfigError, DataError
from cevns.model.samples import FactorisedSample

__all__ = ["ResidualOffset", "ScaledDataset", "AnalyticBackground", "analytic_bin_counts"]


def _flat_time(exp) -> np.ndarray:
    b = exp.binning
    try:
        t = np.asarray(b.edges("time"), float)
    except ConfigError:
        return np.ones((1, 1))
    w = np.diff(t)
    return (w / w.sum())[None, :]


def _energy_marginal(arr, exp) -> np.ndarray:
    a = np.asarray(arr, float)
    ie = exp.binning.axis_index("energy")
    return a.sum(axis=tuple(i for i in range(a.ndim) if i != ie))


class _Base:
    def __init__(self, name: str, sec: dict, exp):
        self.name, self.sec, self.exp, self.label = name, sec, exp, sec.get("label", name)
        self.time = _flat_time(exp)

    def _sample(self, pc, mask, norms) -> FactorisedSample:
        return FactorisedSample(self.name, self.energy.shape[1], self.time.shape[1], self.time, [0],
                                energy=self.energy, norms=norms, mask=mask, label=self.label)

    def sample(self, pc, mask) -> FactorisedSample:
        return self._sample(pc, mask, [pc.add(n) for n in self.sec.get("modifiers", [])])


class ResidualOffset(_Base):
    def __init__(self, name: str, sec: dict, exp):
        super().__init__(name, sec, exp)
        ds = sec.get("data", "observed")
        if exp.spec["data"].get(ds, {}).get("format") != "residual_spectrum":
            raise ConfigError(f"spec {exp.name}: background {name}: dataset {ds!r} is not a 'residual_spectrum'")
        r, sig = exp.events[ds][:, 0], exp.events[ds][:, 1]
        b = sig * sig - r
        if np.any(b < 0):
            raise DataError(f"spec {exp.name}: residual spectrum {ds!r}: sigma^2 < residual in some bin")
        self.energy = b[None, :]

    def sample(self, pc, mask) -> FactorisedSample:
        if self.sec.get("modifiers"):
            raise ConfigError(f"spec {self.exp.name}: background {self.name}: a residual offset takes no modifiers")
        return self._sample(pc, mask, [])


class ScaledDataset(_Base):
    def __init__(self, name: str, sec: dict, exp):
        super().__init__(name, sec, exp)
        ds = sec["data"]
        if ds not in exp.data:
            raise ConfigError(f"spec {exp.name}: background {name}: dataset {ds!r} not in 'data' ({sorted(exp.data)})")
        scale = sec.get("scale", 1.0)
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ConfigError(f"spec {exp.name}: background {name}: scale must be > 0, got {scale!r}")
        self.energy = (float(scale) * _energy_marginal(exp.data[ds], exp))[None, :]


def analytic_bin_counts(components, edges) -> np.ndarray:
    """Counts per bin of ``edges`` (observable unit) of a list of analytic components (module docstring)."""
    e = np.asarray(edges, float)
    out = np.zeros(e.size - 1)
    for c in components:
        shape = c.get("shape")
        if shape == "flat":
            out += float(c["counts_per_unit"]) * np.diff(e)
        elif shape == "exponential":
            d = float(c["decay"])
            if not d > 0:
                raise ConfigError(f"exponential background: decay must be > 0, got {d}")
            out += float(c["counts_per_unit_at_0"]) * d * -np.diff(np.exp(-e / d))  # ∫ A e^{−x/d} dx
        elif shape == "gaussian":
            s = float(c["sigma"])
            if not s > 0:
                raise ConfigError(f"gaussian background: sigma must be > 0, got {s}")
            out += float(c["counts"]) * np.diff(special.ndtr((e - float(c["mean"])) / s))
        else:
            raise ConfigError(f"analytic background: shape {shape!r}; allowed: flat, exponential, gaussian")
    if np.any(out < 0):
        raise ConfigError("analytic background: negative counts (check the signs of the components)")
    return out


class AnalyticBackground(_Base):
    def __init__(self, name: str, sec: dict, exp):
        super().__init__(name, sec, exp)
        self.energy = analytic_bin_counts(sec["components"], exp.binning.edges("energy"))[None, :]
