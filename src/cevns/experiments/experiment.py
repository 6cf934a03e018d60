"""An experiment built from its spec: the sections composed into one forward model per (signal mode, physics names).

    spec ──► binning, data, target, source, detector, nuisances, backgrounds, signal   (one builder per section)
         ──► Experiment.model(signal, physics)  → ForwardModel μ(θ, ν)   (cached; fits, scans, toys, plots)
         ──► Experiment.likelihood(signal, physics) → ModelLikelihood     (the P = 1 view for iminuit)

Nothing here is specific to one experiment: a new experiment of a known source type is a spec plus its data files.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from cevns.errors import ConfigError
from cevns.experiments.releases import data_path
from cevns.experiments.sections.backgrounds import build_background
from cevns.experiments.sections.binning import build_binning
from cevns.experiments.sections.data import build_data
from cevns.experiments.sections.detector import build_detector
from cevns.experiments.sections.extra_signals import build_extra_signals
from cevns.experiments.sections.nuisances import ParamCollector, build_nuisances
from cevns.experiments.sections.signal import SIGNAL_MODES, build_signal
from cevns.experiments.sections.source import build_source
from cevns.experiments.sections.target import build_target
from cevns.experiments.sections.timing import TimeResponse
from cevns.model.forward import ForwardModel

__all__ = ["Experiment", "SIGNAL_MODES"]


class Experiment:
    """A built experiment. ``spec``: a validated spec dict; ``data_root``: a folder with the release files instead of
    the package's copy."""

    def __init__(self, spec: dict, data_root=None):
        self.spec = spec
        self.data_root = data_root
        name = self.name
        self.binning = build_binning(spec["binning"], name)
        self.nuisance_table = build_nuisances(spec.get("nuisances", {}), name)
        self.target = build_target(spec["target"], name)
        has_time = any(a["role"] == "time" for a in self.binning.axes)
        t_edges = self.binning.edges("time") if has_time else None
        self.detector = build_detector(spec["detector"], self.binning.edges("energy"), self.file, name)
        self.source = build_source(spec["source"], t_edges, self.file, name)
        self.data, self.events = build_data(spec["data"], self.binning, self.file, name)
        self.time = TimeResponse(self.source.timing, self.detector, t_edges) if has_time else None
        self.observed_full = self.data["observed"]
        self.observed = self.binning.select(self.observed_full)
        self.backgrounds = {n: build_background(n, s, self) for n, s in spec.get("backgrounds", {}).items()}
        if "cevns" in self.backgrounds:
            raise ConfigError(f"spec {name}: 'cevns' is the signal's name; rename the background")
        self.signal = build_signal(spec["signal"], self)
        #: additional physics-dependent samples with their own source (e.g. accelerator dark matter)
        self.extra_signals = build_extra_signals(spec.get("extra_signals", {}), self)
        self._models: dict = {}
        if spec["data"]["observed"].get("format") == "asimov":
            self._set_asimov_observed()
        self._check_declarations()

    # -- basics ------------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def title(self) -> str:
        return self.spec.get("title", self.name)

    @property
    def published(self) -> dict:
        return self.spec.get("published", {})

    def file(self, fname: str):
        return data_path(self.spec["dataset"], fname, self.data_root)

    def _poisson_counts(self) -> dict:
        out = {}
        for k, v in self.data.items():
            out[(k, "all")] = float(np.sum(v))
            out[(k, "roi")] = float(self.binning.select(v).sum())
        return out

    def _set_asimov_observed(self) -> None:
        """Data format 'asimov' (a projection without data): the observed counts are the model's nominal expectation
        (Standard Model, every nuisance at its nominal value), μ of the 'physics' mode."""
        m = self.model("physics")
        mu = m.expected(m.prepare({}), m.defaults()[None, :])[0]
        self.observed_full = self.binning.full(mu)
        self.data["observed"] = self.observed_full
        self.observed = self.binning.select(self.observed_full)
        self._models = {}

    def _check_declarations(self) -> None:
        """Every declared nuisance is used by some signal mode (a typo would otherwise be a silent no-op)."""
        used = set()
        for mode in self.modes:
            used |= {p.name for p in self.model(mode).nuisances}
        unused = sorted(set(self.nuisance_table.decl) - used)
        if unused:
            raise ConfigError(f"spec {self.name}: nuisances {unused} are declared but no sample uses them")

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(m for m in SIGNAL_MODES if not (m == "flavour" and self.spec["signal"]["type"] != "predicted"))

    # -- the model -----------------------------------------------------------------------------------------------
    def model(self, signal: str = "physics", physics=()) -> ForwardModel:
        """The forward model for a signal mode (:data:`SIGNAL_MODES`) and a tuple of physics parameter names."""
        if signal not in SIGNAL_MODES:
            from cevns.errors import UnknownNameError

            raise UnknownNameError("signal mode", signal, SIGNAL_MODES)
        if signal not in self.modes:
            raise ConfigError(f"experiment {self.name}: signal mode {signal!r} needs a predicted signal; "
                              f"allowed: {self.modes}")
        physics = tuple(sorted(set(physics)))
        if physics and signal != "physics":
            raise ConfigError(f"physics parameters {list(physics)} need the 'physics' signal mode, not {signal!r}")
        key = (signal, physics) + tuple(x.model_key for x in self.extra_signals.values())
        if key not in self._models:
            from cevns.interactions.parameters import validate_params

            validate_params({p: 0.0 if p not in ("m_zprime_MeV", "m_scalar_MeV", "rn_Cs", "rn_I", "rn_Ar", "rn_CsI")
                             else 5.0 for p in physics})
            pc = ParamCollector(self.nuisance_table, {"poisson_counts": self._poisson_counts()})
            mask = self.binning.mask
            samples = [self.signal.sample(pc, signal, physics, mask)]
            samples += [b.sample(pc, mask) for b in self.backgrounds.values()]
            samples += [x.sample(pc, mask) for x in self.extra_signals.values()]
            labels = {s.name: s.label or s.name for s in samples}
            self._models[key] = ForwardModel(self.name, physics, pc.params, self.observed, samples,
                                             {"signal": signal, "labels": labels, "shape": self.binning.shape})
        return self._models[key]

    def likelihood(self, signal: str = "counts", physics=None, fixed_physics: dict | None = None):
        """Binned Poisson likelihood (P = 1 view of :meth:`model`). ``signal='sin2_theta_w'`` is shorthand for the
        'physics' mode with sin²θ_W as its parameter; ``physics``: names of free/fixable physics parameters."""
        from cevns.inference.likelihood import ModelLikelihood

        if signal == "sin2_theta_w":
            signal, physics = "physics", tuple(physics or ()) + ("sin2_theta_w",)
        model = self.model(signal, physics or ())
        return ModelLikelihood(model, fixed_physics=fixed_physics)

    # -- predictions -----------------------------------------------------------------------------------------------
    def sm_prediction(self) -> float:
        """SM signal counts over the model's bins (nominal detector, timing and flux): what the normalisations scale."""
        return self.signal.sm_prediction()

    def engine_prediction(self, phys: dict | None = None, settings: dict | None = None) -> np.ndarray:
        """Our own prediction of the signal on the (energy, time) axes (P = 1): [E, t]."""
        return self.signal.engine.energy_time(phys, settings)[0]

    def flux_averaged_xsec(self, species=None, phys: dict | None = None) -> float:
        """SM (or ``phys``) flux-averaged cross section per nucleus [cm²] over the source's ``species``."""
        return self.signal.engine.flux_averaged_xsec(species, phys)

    def prediction_uncertainty(self) -> dict[str, float]:
        """Relative uncertainties of the signal prediction: one entry per nuisance acting on the signal in the
        'physics' mode (normsys: σ; response: half the difference at ±1σ), one per ``systematics.detector_variations``
        name (detector parameters varied in their errors, in quadrature) and ``systematics.extra``; then
        'experimental' (all but the nuisances and extras marked theory) and 'total' in quadrature."""
        m = self.model("physics")
        sig = m.samples[0]
        st = m.prepare({})
        nu0 = m.defaults()[None, :]
        n0 = float(sig.evaluate(st[0], nu0)[0].sum())
        out, theory = {}, set()
        for k in sorted(sig.parameter_indices()):
            p = m.nuisances[k]
            if p.constraint is None:
                continue
            decl = self.nuisance_table.get(p.name)
            if decl["type"] == "normsys":
                out[p.name] = p.constraint[1]
            else:
                vals = []
                for s in (-1.0, 1.0):
                    nu = nu0.copy()
                    nu[0, k] = p.constraint[0] + s * p.constraint[1]
                    vals.append(float(sig.evaluate(st[0], nu)[0].sum()))
                out[p.name] = 0.5 * abs(vals[1] - vals[0]) / n0
            if decl.get("category") == "theory":
                theory.add(p.name)
        syst = self.spec.get("systematics", {})
        groups: dict[str, float] = {}
        for v in syst.get("detector_variations", []):
            vals = []
            for delta in (-v["minus"], v["plus"]):
                sec = copy.deepcopy(self.spec["detector"])
                node = sec
                keys = v["path"].split(".")
                for kk in keys[:-1]:
                    node = node[kk]
                node[keys[-1]] = node[keys[-1]] + delta
                det = build_detector(sec, self.binning.edges("energy"), self.file, self.name)
                vals.append(self._signal_total_with_detector(det))
            groups[v["name"]] = groups.get(v["name"], 0.0) + (0.5 * abs(vals[1] - vals[0]) / n0) ** 2
        out.update({k: math.sqrt(v) for k, v in groups.items()})
        for e in syst.get("extra", []):
            out[e["name"]] = float(e["relative"])
            if e.get("category") == "theory":
                theory.add(e["name"])
        out["experimental"] = math.sqrt(sum(v * v for k, v in out.items() if k not in theory))
        out["theory"] = math.sqrt(sum(out[k] ** 2 for k in theory))
        out["total"] = math.hypot(out["experimental"], out["theory"])
        return out

    def _signal_total_with_detector(self, det) -> float:
        saved = self.detector
        try:
            self.detector = det
            sig = build_signal(self.spec["signal"], self)
            if hasattr(sig, "nominal"):  # released template: our engine's total carries the detector variation
                return float(sig.engine.energy_time()[0].sum()) * self.sm_prediction() / \
                    float(self.signal.engine.energy_time()[0].sum())
            return sig.sm_prediction()
        finally:
            self.detector = saved

    # -- views for tables and plots ------------------------------------------------------------------------------------
    def components_at(self, values: dict, signal: str = "counts", physics=()) -> dict[str, np.ndarray]:
        """Each sample at parameter values ``values`` (name → value; others at their defaults), as N-D arrays."""
        m = self.model(signal, physics)
        phys = {k: float(v) for k, v in values.items() if k in m.physics_names}
        nu = m.defaults()
        for k, v in values.items():
            if k not in m.physics_names:
                nu[m.index(k)] = v
        comps = m.components(m.prepare(phys), nu[None, :])
        return {n: self.binning.full(v[0]) for n, v in comps.items()}

    def projection(self, arr, axis) -> np.ndarray:
        """Sum of an N-D array over every axis but ``axis`` (name, role or index)."""
        k = axis if isinstance(axis, int) else self.binning.axis_index(axis)
        a = np.asarray(arr)
        return a.sum(axis=tuple(i for i in range(a.ndim) if i != k))

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, bins={self.binning.shape}, backgrounds={list(self.backgrounds)})"
