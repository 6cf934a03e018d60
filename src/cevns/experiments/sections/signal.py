"""Section ``signal``: the CEvNS (or other) signal sample, and how it is normalised in each signal mode.

Types:

* ``predicted``: source × interactions × target × detector (:class:`cevns.model.signal.PredictedSignal`), an energy
  factor per timing group (per species in the 'flavour' mode) on every setting of the detector's response
  parameters, × the source's time factors with their timing parameters. ``electron_recoils``: add ν–e scattering
  on the target's electrons (seen without quenching).
* ``released_template``: a released N-D signal template with its ``histosys`` variants, multiplied bin by bin by the
  ratio N(θ)/N(SM) of our own prediction on the (energy, time) axes (new physics on the collaboration's SM
  prediction and detector model).

Signal modes (the same for every experiment):

* ``counts``      the signal normalised to a free count ``n_cevns`` over the model's bins;
* ``xsec_scale``  a free σ/σ_SM (``xsec_scale``) × the mode's normsys modifiers (e.g. the shared flux);
* ``physics``     predicted from the physics parameters × the mode's normsys modifiers (sin²θ_W, NSI, ...);
* ``flavour``     free ν_e and ν_μ (ν_μ + ν̄_μ) cross-section scales (``xsec_scale_nue``, ``xsec_scale_numu``).

``modifiers``: {name, modes} for normalisations (which modes they apply to), {name, plus, minus, normalisation} for
histosys variants of a released template (every mode).
"""
from __future__ import annotations

import math

import numpy as np

from cevns.errors import ConfigError
from cevns.experiments.sections.backgrounds import histosys_variants
from cevns.experiments.sections.data import read_grid_nd
from cevns.inference.likelihood import Parameter
from cevns.interactions.parameters import validate_params
from cevns.model.samples import FactorisedSample, GridModifier, TemplateSample
from cevns.model.signal import PredictedSignal, ResponseSettings
from cevns.rates import flux_kernels

__all__ = ["SIGNAL_MODES", "SIGNAL_TYPES", "build_signal", "PredictionEngine"]

SIGNAL_MODES = ("counts", "xsec_scale", "physics", "flavour")
SIGNAL_TYPES = ("predicted", "released_template", "efficiency_templates")
COUNT_PARAMETER = "n_cevns"
FLAVOUR_SCALES = {"nue": "xsec_scale_nue", "nuebar": "xsec_scale_nue", "numu": "xsec_scale_numu",
                  "numubar": "xsec_scale_numu", "nutau": "xsec_scale_nutau", "nutaubar": "xsec_scale_nutau"}


def signal_pois(pc, mode: str, sm_prediction) -> tuple[int | None, list[int]]:
    """The signal's parameter of interest for ``mode``: 'counts' → a free event count (start: the SM prediction,
    ``sm_prediction()``), 'xsec_scale' → σ/σ_SM as a normalisation. Returns (count index or None, [norm indices])."""
    if mode == "counts":
        n0 = sm_prediction()
        return pc.add_parameter(Parameter(COUNT_PARAMETER, n0, (0.0, 10.0 * n0), None, 0.1 * n0, "poi",
                                          "signal counts in the analysis window (free)")), []
    if mode == "xsec_scale":
        return None, [pc.add_parameter(Parameter("xsec_scale", 1.0, (0.0, 6.0), None, 0.05, "poi",
                                                 "σ / σ_SM (all species)"))]
    return None, []


def response_grid(pc, parameters: dict, matrices) -> tuple[list, list]:
    """Response matrices at the nominal point, then at every non-nominal grid value of each response parameter (one
    at a time): (``[matrices({}), matrices({name: value}), ...]``, [(parameter index, grid, [setting index per grid
    value])]); ``pc`` (a parameter collector) registers the parameters; without it, the nominal matrices only."""
    mats, mods = [matrices({})], []
    if pc is None:
        return mats, mods
    for name, nominal in parameters.items():
        k = pc.add(name, nominal)
        g = pc.grid(name)
        idx = []
        for j, v in enumerate(g.values):
            if j == g.nominal_index:
                idx.append(0)
                continue
            idx.append(len(mats))
            mats.append(matrices({name: float(v)}))
        mods.append((k, g, idx))
    return mats, mods


def pulse_modifiers(pc, timing, factors) -> list:
    """Grid modifiers of the proton-pulse mean and width, for the parameters the timing model declares:
    ``factors(mean_us=v)`` / ``factors(sigma_us=v)`` are the time factors at one grid value."""
    mods = []
    for pname, nominal, kw in ((timing.mean_parameter, timing.mean_us, "mean_us"),
                               (timing.sigma_parameter, timing.sigma_us, "sigma_us")):
        if pname is None:
            continue
        k = pc.add(pname, nominal)
        g = pc.grid(pname)
        mods.append(GridModifier(k, g, np.stack([factors(**{kw: float(v)}) for v in g.values])))
    return mods


class PredictionEngine:
    """Our prediction of the signal: flux kernels on the target, detector response matrices (cached per setting of
    the response parameters), the source's time factors, and :class:`PredictedSignal` objects (cached per grouping
    and physics names)."""

    def __init__(self, exp, electron_recoils: bool = False):
        self.exp = exp
        t, d = exp.target, exp.detector
        el = None
        if electron_recoils:
            el = {"T_hi_MeV": 1.3e-3 * d.electron_energy_max_keV(), "atoms": t.atoms}
        self.flux = flux_kernels(exp.source.source, t.components, electrons=el)
        self.electron_atoms = t.atoms if electron_recoils else {}
        self._R: dict = {}
        self._Re: dict = {}
        self._signals: dict = {}

    # -- response ------------------------------------------------------------------------------------------------
    def matrices(self, settings: dict) -> tuple[dict, dict]:
        """(nuclear {iso: R}, electron {element: R}) at response-parameter values ``settings`` (cached)."""
        key = tuple(sorted(settings.items()))
        if key not in self._R:
            if len(self._R) >= 256:  # one-off predictions at many settings (a user's loop) must not grow memory
                self._R.clear()
                self._Re.clear()
            d = self.exp.detector
            nuc = {iso.name: d.matrix(self.flux.nodes[iso.name].T_keV, settings) for iso, _ in self.exp.target.components}
            # a source's own response parameters (a reactor spectral shape) reweight the recoil nodes
            src = self.exp.source.source
            reweight = getattr(src, "node_factor", None) if getattr(src, "response_parameters", None) else None
            if reweight is not None:
                nuc = {k: R * reweight(self.flux, settings, k, False)[None, :] for k, R in nuc.items()}
            # electron recoils are not quenched: their response depends on the other parameters only
            ekey = tuple((k, v) for k, v in key if k not in d.quenching_parameters)
            if ekey not in self._Re:
                self._Re[ekey] = {el: d.matrix(self.flux.nodes[f"e:{el}"].T_keV, settings, electron=True)
                                  for el in self.electron_atoms}
                if reweight is not None:
                    self._Re[ekey] = {el: R * reweight(self.flux, settings, f"e:{el}", True)[None, :]
                                      for el, R in self._Re[ekey].items()}
            self._R[key] = (nuc, self._Re[ekey])
        return self._R[key]

    def response_settings(self, pc=None) -> ResponseSettings:
        """Nominal plus one setting per non-nominal grid value of each detector response parameter (one at a time);
        without ``pc`` (a parameter collector) the nominal response only."""
        src_params = getattr(self.exp.source.source, "response_parameters", None) or {}
        mats, mods = response_grid(pc, {**self.exp.detector.response_parameters, **src_params}, self.matrices)
        return ResponseSettings([m[0] for m in mats], [m[1] for m in mats] if self.electron_atoms else None, mods)

    def signal(self, groups, physics_names, response: ResponseSettings, key) -> PredictedSignal:
        k = (tuple(tuple(g) for g in groups), tuple(sorted(physics_names)), key)
        if k not in self._signals:
            t = self.exp.target
            self._signals[k] = PredictedSignal(self.flux, t.components, groups, response, physics_names,
                                               t.form_factor, t.coupling_scheme, self.exp.source.baseline_m,
                                               electron_atoms=self.electron_atoms)
        return self._signals[k]

    # -- time ----------------------------------------------------------------------------------------------------
    def time_factors(self, pc=None):
        """(T0 (components, n_t), [GridModifier]) with the pulse-timing parameters (when declared and ``pc`` given)."""
        tr, tm = self.exp.time, self.exp.source.timing
        T0 = tr.source_factors()
        mods = pulse_modifiers(pc, tm, tr.source_factors) if pc is not None and tm.kind == "gaussian_pulse" else []
        return T0, mods

    # -- SM quantities ---------------------------------------------------------------------------------------------
    def energy_time(self, phys: dict | None = None, settings: dict | None = None, mean_us=None, sigma_us=None,
                    by_group: bool = False, groups=None):
        """Our prediction [E, t] at physics ``phys`` (default SM), response settings and pulse values: (P, n_E, n_t)
        (or per group (P, G, n_E, n_t)); ``groups``: lists of species (default: by timing component)."""
        phys = validate_params(phys or {})
        nuc, ele = self.matrices(settings or {})
        rs = ResponseSettings([nuc], [ele] if self.electron_atoms else None, [])
        src_groups = self.exp.source.groups
        groups = src_groups if groups is None else groups
        comp = {s: c for c, g in enumerate(src_groups) for s in g}
        for g in groups:
            if len({comp.get(s, -1) for s in g}) != 1 or -1 in {comp.get(s, -1) for s in g}:
                raise ConfigError(f"each group must hold species of one timing component of the source, got {g}")
        sig = self.signal(groups, tuple(phys), rs, ("fixed",)).with_response(rs)
        A = sig.all_settings(phys)[:, 0]  # (P, G, n_E)
        T = self.exp.time.source_factors(mean_us, sigma_us)[[comp[g[0]] for g in groups]]  # (G, n_t)
        per = A[:, :, :, None] * T[None, :, None, :]
        return per if by_group else per.sum(axis=1)

    def flux_averaged_xsec(self, species=None, phys: dict | None = None) -> float:
        """Flux-averaged CEvNS cross section per nucleus [cm²], no detector response:
        Σ_{s,i} N_i Φ_s ⟨σ_i⟩_s / (Σ_s Φ_s · Σ_i N_i) over ``species`` (default: all of the source)."""
        from cevns.interactions.terms import KERNELS, nuclear_weights

        phys = validate_params(phys or {})
        src = self.exp.source.source
        species = tuple(src.species if species is None else species)
        for s in species:
            if s not in src.species:
                raise ConfigError(f"species {s!r} not emitted by this source; allowed: {list(src.species)}")
        t = self.exp.target
        events = 0.0
        for iso, _ in t.components:
            T = self.flux.nodes[iso.name].T_MeV
            for s in species:
                ctx = self.flux.nuclear_context(iso.name, s, t.form_factor, t.coupling_scheme)
                w = nuclear_weights(phys, ctx)["sm"][0]
                events += float(np.sum(self.flux.get("sm", KERNELS["sm"], s, iso.name) * w))
        return events / (sum(src.fluence_per_cm2(s) for s in species) * t.n_nuclei)


def _mode_norms(sec: dict, mode: str) -> list[str]:
    out = []
    for m in sec.get("modifiers", []):
        if isinstance(m, dict) and "plus" in m:
            continue
        name = m if isinstance(m, str) else m["name"]
        modes = SIGNAL_MODES[1:] if isinstance(m, str) else m.get("modes", SIGNAL_MODES[1:])
        bad = [x for x in modes if x not in SIGNAL_MODES]
        if bad:
            raise ConfigError(f"signal modifier {name}: unknown mode {bad[0]!r}; allowed: {SIGNAL_MODES}")
        if mode in modes:
            out.append(name)
    return out


class PredictedSignalBuild:
    """Signal type ``predicted``."""

    def __init__(self, sec: dict, exp):
        self.sec, self.exp = sec, exp
        self.name = sec.get("name", "cevns")
        self.label = sec.get("label", "CEvNS")
        self.engine = PredictionEngine(exp, bool(sec.get("electron_recoils", False)))

    def sm_prediction(self) -> float:
        """SM counts of the signal over the model's bins at nominal detector and timing."""
        et = self.engine.energy_time()[0]
        return float(self.exp.binning.select(et).sum())

    def sample(self, pc, mode: str, physics_names, mask):
        exp = self.exp
        groups = exp.source.groups
        if mode == "flavour":
            sp = [s for g in groups for s in g]
            names = sorted({FLAVOUR_SCALES[s] for s in sp})
            pidx = {n: pc.add_parameter(Parameter(n, 1.0, (0.0, 6.0), None, 0.1, "poi",
                                                  f"σ/σ_SM of {n.removeprefix('xsec_scale_')} species"))
                    for n in names}
            comp = {s: c for c, g in enumerate(groups) for s in g}
            groups_used = [[s] for s in sp]
            group_time = [comp[s] for s in sp]
            group_norms = [pidx[FLAVOUR_SCALES[s]] for s in sp]
        else:
            groups_used, group_time, group_norms = groups, list(range(len(groups))), None
        count, norms = signal_pois(pc, mode, self.sm_prediction)
        ctx = {"prediction": 1.0, "prediction_sigma": 0.0}
        norms += [pc.add(n, context=ctx) for n in _mode_norms(self.sec, mode)]
        rs = self.engine.response_settings(pc)
        key = tuple((pc.params[k].name, tuple(g.values)) for k, g, _ in rs.modifiers)
        physics = self.engine.signal(groups_used, physics_names, rs, key)
        T0, tmods = self.engine.time_factors(pc)
        emods = [GridModifier(k, g, None) for k, g, _ in rs.modifiers]
        return FactorisedSample(self.name, len(exp.binning.edges("energy")) - 1, T0.shape[1], T0, group_time,
                                energy_mods=emods, time_mods=tmods, norms=norms, group_norms=group_norms, count=count,
                                physics=physics, mask=mask, label=self.label)


class ReleasedTemplateSignalBuild:
    """Signal type ``released_template``."""

    def __init__(self, sec: dict, exp):
        self.sec, self.exp = sec, exp
        self.name = sec.get("name", "cevns")
        self.label = sec.get("label", "CEvNS")
        edges = [a["edges"] for a in exp.binning.axes]
        self.nominal = read_grid_nd(exp.file(sec["file"]), edges)
        if not math.isclose(float(self.nominal.sum()), sec["prediction"], rel_tol=5e-3):
            raise ConfigError(f"{sec['file']}: template total {self.nominal.sum():.6g} differs from the signal "
                              f"prediction {sec['prediction']}")
        self.histosys = []
        for m in sec.get("modifiers", []):
            if isinstance(m, dict) and "plus" in m:
                V, totals = histosys_variants(m, self.nominal, exp.file, edges)
                self.histosys.append((m["name"], V, totals))
        self.engine = PredictionEngine(exp, bool(sec.get("electron_recoils", False)))
        self._sm = None

    def sm_prediction(self) -> float:
        return float(self.exp.binning.select(self.nominal).sum())

    def _ratio_fn(self, physics_names):
        """θ → N_engine(θ)/N_engine(SM) per (energy, time) bin, broadcast over the other axes (P, bins)."""
        exp, eng = self.exp, self.engine
        b = exp.binning
        ie, it = b.axis_index("energy"), b.axis_index("time")
        shape = b.shape
        rs = eng.response_settings(None)
        sig = eng.signal(exp.source.groups, physics_names, rs, "nominal")
        T = exp.time.source_factors()
        if self._sm is None:
            self._sm = np.einsum("ge,gt->et", sig.all_settings({})[0, 0], T)

        sm = self._sm

        def ratio(phys):
            et = np.einsum("pge,gt->pet", sig.all_settings(phys)[:, 0], T)
            with np.errstate(invalid="ignore", divide="ignore"):
                r = np.where(sm[None] > 0, et / np.where(sm > 0, sm, 1.0)[None], 1.0)
            if ie > it:
                r = np.swapaxes(r, 1, 2)
            full = [1] * len(shape)
            full[ie], full[it] = shape[ie], shape[it]
            r = r.reshape((r.shape[0],) + tuple(full))
            return np.broadcast_to(r, (r.shape[0],) + shape).reshape(r.shape[0], -1)

        return ratio

    def sample(self, pc, mode: str, physics_names, mask):
        if mask is not None:
            raise ConfigError(f"spec {self.exp.name}: a released-template signal does not support an ROI mask")
        if mode == "flavour":
            raise ConfigError(f"spec {self.exp.name}: the 'flavour' mode needs a predicted signal")
        count, norms = signal_pois(pc, mode, self.sm_prediction)
        names = _mode_norms(self.sec, mode)
        pred = {"prediction": self.sec["prediction"], "prediction_sigma": self.sec.get("prediction_sigma", 0.0)}
        for n in names:  # 'prediction_remainder' sigmas need the other normsys sigmas of this mode
            others = [pc.table.sigma(o, pred) for o in names if o != n
                      and pc.table.type_of(o) == "normsys" and pc.table.get(o).get("sigma") != "prediction_remainder"]
            norms.append(pc.add(n, context={**pred, "other_sigmas": others}))
        mods = [GridModifier(pc.add(name), pc.grid(name), V) for name, V, _ in self.histosys]
        physics = self._ratio_fn(physics_names) if (mode == "physics" and physics_names) else None
        return TemplateSample(self.name, self.nominal, mods, norms, count, physics, label=self.label)


def build_signal(sec: dict, exp):
    t = sec.get("type")
    if t == "predicted":
        return PredictedSignalBuild(sec, exp)
    if t == "released_template":
        return ReleasedTemplateSignalBuild(sec, exp)
    if t == "efficiency_templates":  # released mono-energetic efficiency templates (XENONnT)
        from cevns.experiments.sections.efficiency_templates import EfficiencyTemplateSignalBuild

        return EfficiencyTemplateSignalBuild(sec, exp)
    raise ConfigError(f"spec {exp.name}: signal type {t!r}; allowed: {SIGNAL_TYPES}")
