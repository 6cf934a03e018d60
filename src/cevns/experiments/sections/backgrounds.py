"""Section ``backgrounds``: each background a sample built from release files or auxiliary data.

Types:

* ``factorised_release``: an energy shape × a time shape (beam-related and neutrino-induced neutrons of COHERENT
  CsI). ``energy``: a 1-PE (or 1-unit) release file, optionally × beam energy (``per_GWh``), × the detector
  efficiency (``apply_efficiency``), normalised to the fraction of all events per bin (``normalise:
  window_fraction``, when the time file counts events at all energies). ``time``: one value per time bin
  (``binned``) or a finer released histogram (``histogram``), optionally shifted by a response parameter
  (``shift_parameter``) or following the source's pulse mean (``follows: pulse_mean``);
* ``steady_state``: the energy marginal of an auxiliary dataset (anti-coincidence window) × its time marginal
  (``time_shape: data``) or a flat time distribution × time efficiency (``flat_times_efficiency``);
* ``template``: a released N-D template normalised to its predicted counts, with ``histosys`` variants;
* ``efficiency_templates`` / ``released_array``: predicted spectra folded with released efficiency templates, and
  released templates per tonne-year × exposure (:mod:`.efficiency_templates`);
* ``residual_offset`` / ``scaled_dataset`` / ``analytic``: the offset of a residual spectrum, an auxiliary dataset ×
  a scale (reactor-off × on/off exposure ratio), analytic shapes in the observable (:mod:`.spectrum_backgrounds`).

``modifiers``: names of normsys/normfactor parameters, or {name, plus, minus, normalisation} for a histosys.
"""
from __future__ import annotations

import math

import numpy as np

from cevns.errors import ConfigError, DataError
from cevns.experiments.releases import read_table
from cevns.experiments.sections.common import centres
from cevns.experiments.sections.data import read_grid_nd
from cevns.experiments.sections.source import read_time_histogram
from cevns.model.samples import FactorisedSample, GridModifier, TemplateSample

__all__ = ["BACKGROUND_TYPES", "build_background", "histosys_variants"]

BACKGROUND_TYPES = ("factorised_release", "steady_state", "template", "efficiency_templates", "released_array",
                    "residual_offset", "scaled_dataset", "analytic")


def _aggregate(values, fine_edges, edges, what: str) -> np.ndarray:
    idx = np.searchsorted(fine_edges, edges)
    if np.any(idx >= len(fine_edges)) or not np.allclose(fine_edges[idx], edges):
        raise ConfigError(f"{what}: the energy bin edges must fall on the release's 1-unit bin edges")
    cs = np.concatenate([[0.0], np.cumsum(values)])
    return cs[idx[1:]] - cs[idx[:-1]]


def histosys_variants(m: dict, nominal: np.ndarray, file_fn, edges) -> tuple[np.ndarray, dict]:
    """(variants (3, bins) at θ = −1, 0, +1, released totals) of a histosys modifier: the ±1σ files, a one-sided
    variant mirrored (T₋ = 2T₀ − T₊), ``normalisation: shape_only`` rescaling the variants to the nominal total."""
    tp = read_grid_nd(file_fn(m["plus"]), edges)
    tm = read_grid_nd(file_fn(m["minus"]), edges) if "minus" in m else None
    totals = {"plus": float(tp.sum()), "minus": None if tm is None else float(tm.sum())}
    if m.get("normalisation", "as_released") == "shape_only":
        tp = tp * (nominal.sum() / tp.sum())
        tm = None if tm is None else tm * (nominal.sum() / tm.sum())
    if tm is None:
        tm = 2.0 * nominal - tp
    return np.stack([tm.ravel(), nominal.ravel(), tp.ravel()]), totals


class FactorisedRelease:
    def __init__(self, name: str, sec: dict, exp):
        self.name, self.sec, self.label = name, sec, sec.get("label", name)
        b = exp.binning
        e_edges, t_edges = b.edges("energy"), b.edges("time")
        en = sec["energy"]
        rows = en.get("rows")
        arr = read_table(exp.file(en["file"]), ncols=2, rows=rows, min_rows=1)
        x, v = arr[:, 0], arr[:, 1]
        fine = np.arange(0.0, math.ceil(x[-1] + 0.5) + 1e-9)
        if not np.allclose(x, centres(fine)[:x.size]) or np.any(v < 0):
            raise DataError(f"{en['file']}: expected 1-unit bin centres 0.5, 1.5, ... and non-negative values")
        if e_edges[-1] > fine[-1] + 1e-9:
            raise ConfigError(f"{en['file']}: covers the energy axis up to {fine[-1]}, the spec's axis goes to "
                              f"{e_edges[-1]}")
        counts = v * (exp.spec["source"]["beam_energy_GWh"] if en.get("per_GWh") else 1.0)
        if en.get("apply_efficiency"):
            counts = counts * exp.detector.efficiency(x)
        binned = _aggregate(counts, fine, e_edges, en["file"])
        if en.get("normalise", "none") == "window_fraction":
            if binned.sum() <= 0:
                raise DataError(f"{en['file']}: no content inside the energy range of the analysis")
            binned = binned / counts.sum()
        self.energy = binned[None, :]
        tm = sec["time"]
        self.shift_parameter = tm.get("shift_parameter")
        self.follows = tm.get("follows")
        if tm["format"] == "binned":
            tarr = read_table(exp.file(tm["file"]), ncols=2, rows=len(t_edges) - 1)
            if not np.allclose(tarr[:, 0], centres(t_edges)) or np.any(tarr[:, 1] < 0):
                raise DataError(f"{tm['file']}: time-bin centres differ from the spec's binning, or negative values")
            self.hist = None
            self.time = tarr[:, 1][None, :]
            if self.shift_parameter or self.follows:
                raise ConfigError(f"spec {exp.name}: background {name}: a 'binned' time shape cannot be shifted")
        elif tm["format"] == "histogram":
            self.hist = read_time_histogram(exp.file(tm["file"]), t_edges)
            self.time = exp.time.shifted_histogram(*self.hist, 0.0)[None, :]
        else:
            raise ConfigError(f"spec {exp.name}: background {name}: time format {tm['format']!r}; allowed: binned, histogram")
        if self.follows not in (None, "pulse_mean"):
            raise ConfigError(f"spec {exp.name}: background {name}: 'follows' must be 'pulse_mean'")
        self.exp = exp

    def sample(self, pc, mask) -> FactorisedSample:
        exp = self.exp
        time_mods = []
        if self.shift_parameter:
            k = pc.add(self.shift_parameter, 0.0)
            g = pc.grid(self.shift_parameter)
            V = np.stack([exp.time.shifted_histogram(*self.hist, s) for s in g.values])[:, None, :]
            time_mods.append(GridModifier(k, g, V))
        if self.follows == "pulse_mean":
            tm = exp.source.timing
            if tm.mean_parameter is None:
                raise ConfigError(f"spec {exp.name}: background {self.name} follows the pulse mean, but the source "
                                  "timing has no mean_parameter")
            k = pc.add(tm.mean_parameter, tm.mean_us)
            g = pc.grid(tm.mean_parameter)
            V = np.stack([exp.time.shifted_histogram(*self.hist, m - tm.mean_us) for m in g.values])[:, None, :]
            time_mods.append(GridModifier(k, g, V))
        norms = [pc.add(n) for n in self.sec.get("modifiers", [])]
        return FactorisedSample(self.name, self.energy.shape[1], self.time.shape[1], self.time, [0], energy=self.energy,
                                time_mods=time_mods, norms=norms, mask=mask, label=self.label)


class SteadyState:
    def __init__(self, name: str, sec: dict, exp):
        self.name, self.sec, self.label = name, sec, sec.get("label", name)
        ds = sec["data"]
        if ds not in exp.data:
            raise ConfigError(f"spec {exp.name}: background {name}: dataset {ds!r} not in 'data' ({sorted(exp.data)})")
        ac = exp.data[ds]
        if ac.ndim != 2:
            raise ConfigError(f"spec {exp.name}: background {name}: needs a 2-D (energy × time) dataset")
        n = float(ac.sum())
        if n <= 0:
            raise DataError(f"spec {exp.name}: dataset {ds!r} has no events in the analysis window")
        self.energy = ac.sum(axis=1)[None, :]
        shape = sec.get("time_shape", "data")
        if shape == "data":
            t = ac.sum(axis=0) / n
        elif shape == "flat_times_efficiency":
            w = exp.time._bins_from_fine(np.diff(exp.time.fine_edges))
            t = w / w.sum()
        else:
            raise ConfigError(f"spec {exp.name}: background {name}: time_shape {shape!r}; allowed: data, "
                              "flat_times_efficiency")
        self.time = t[None, :]
        self.exp = exp

    def sample(self, pc, mask) -> FactorisedSample:
        norms = [pc.add(n) for n in self.sec.get("modifiers", [])]
        return FactorisedSample(self.name, self.energy.shape[1], self.time.shape[1], self.time, [0], energy=self.energy,
                                norms=norms, mask=mask, label=self.label)


class Template:
    def __init__(self, name: str, sec: dict, exp):
        self.name, self.sec, self.label = name, sec, sec.get("label", name)
        edges = [a["edges"] for a in exp.binning.axes]
        self.nominal = read_grid_nd(exp.file(sec["file"]), edges)
        tot = float(self.nominal.sum())
        if not math.isclose(tot, sec["prediction"], rel_tol=5e-3):
            raise DataError(f"{sec['file']}: template total {tot:.6g} differs from the spec prediction "
                            f"{sec['prediction']} (templates are normalised to the predicted counts)")
        self.histosys = []
        for m in sec.get("modifiers", []):
            if isinstance(m, dict):
                V, totals = histosys_variants(m, self.nominal, exp.file, edges)
                self.histosys.append((m["name"], V, totals))
        self.exp = exp

    def context(self, pc) -> dict:
        s = self.sec
        return {"prediction": s["prediction"], "prediction_sigma": s.get("prediction_sigma", 0.0)}

    def sample(self, pc, mask) -> TemplateSample:
        if mask is not None:
            raise ConfigError(f"spec {self.exp.name}: template backgrounds do not support an ROI mask")
        ctx = self.context(pc)
        norms = [pc.add(m, context=ctx) for m in self.sec.get("modifiers", []) if isinstance(m, str)]
        mods = []
        for name, V, _ in self.histosys:
            k = pc.add(name)
            mods.append(GridModifier(k, pc.grid(name), V))
        return TemplateSample(self.name, self.nominal, mods, norms, label=self.label)


def _efficiency_templates(name: str, sec: dict, exp):
    from cevns.experiments.sections.efficiency_templates import EfficiencyTemplateBackground

    return EfficiencyTemplateBackground(name, sec, exp)


def _released_array(name: str, sec: dict, exp):
    from cevns.experiments.sections.efficiency_templates import ReleasedArrayBackground

    return ReleasedArrayBackground(name, sec, exp)


def _spectrum_background(name: str, sec: dict, exp):
    """``residual_offset``, ``scaled_dataset``, ``analytic`` (:mod:`.spectrum_backgrounds`)."""
    from cevns.experiments.sections import spectrum_backgrounds as sb

    cls = {"residual_offset": sb.ResidualOffset, "scaled_dataset": sb.ScaledDataset, "analytic": sb.AnalyticBackground}
    return cls[sec["type"]](name, sec, exp)


_BUILDERS = {"factorised_release": FactorisedRelease, "steady_state": SteadyState, "template": Template,
             "efficiency_templates": _efficiency_templates, "released_array": _released_array,
             "residual_offset": _spectrum_background, "scaled_dataset": _spectrum_background,
             "analytic": _spectrum_background}


def build_background(name: str, sec: dict, exp):
    t = sec.get("type")
    if t not in _BUILDERS:
        raise ConfigError(f"spec {exp.name}: background {name!r}: type {t!r}; allowed: {BACKGROUND_TYPES}")
    return _BUILDERS[t](name, sec, exp)
