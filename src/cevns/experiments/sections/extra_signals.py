"""Section ``extra_signals``: more physics-dependent samples, each with its own source, on the experiment's target,
detector, binning and data — e.g. dark matter made at the SNS next to the CEvNS signal, in one likelihood.

    "extra_signals": {"<name>": {"type": "accelerator_dm", "label": ..., "source": {accelerator_dm source},
                                 "modifiers": [normsys/normfactor names], "recoil_nodes": {...}}}

Types (:data:`EXTRA_SIGNAL_TYPES`):

* ``accelerator_dm``: χ from a :class:`cevns.sources.accelerator_dm.AcceleratorDMSource` (``source`` validated
  against ``schemas/source_accelerator_dm.json``; its POT and distance default to the main source's) scattering on
  the target through the registered dark-photon process (:mod:`cevns.interactions.dark_photon`), folded by the
  rate engine (:class:`cevns.rates.FluxKernels`, :class:`cevns.model.signal.PredictedSignal`) with the detector's
  response at every setting of its response parameters (quenching, efficiency: the same nuisances as the CEvNS
  signal). Time factor: the main source's Gaussian proton pulse shifted by the χ time-of-flight delays behind
  light, with the pulse mean and width parameters. The sample depends on the physics parameter ``dp_epsilon``
  (absent: ε = 0, no dark matter): the rate is production(ε) × scattering weights(ε) ∝ ε⁴ at the m_χ, m_V, α_D of
  the source section; ``dp_alpha_d`` and ``dp_m_v_MeV`` are fixed by that section.

The recoil nodes of an ``accelerator_dm`` signal are fixed (panels up to the recoil energy whose light is
``recoil_nodes.headroom`` × the top of the energy axis), so the detector response is computed once and
:meth:`AcceleratorDMSignal.set_point` changes the χ mass (or m_V, α_D) without recomputing it.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from cevns.errors import ConfigError
from cevns.interactions.parameters import batch_size, value
from cevns.model.samples import FactorisedSample, GridModifier
from cevns.model.signal import PredictedSignal, ResponseSettings
from cevns.rates import FluxKernels, recoil_nodes

__all__ = ["EXTRA_SIGNAL_TYPES", "AcceleratorDMSignal", "build_extra_signals"]

EXTRA_SIGNAL_TYPES = ("accelerator_dm",)
_DM_PHYSICS = ("dp_epsilon", "dp_alpha_d", "dp_m_v_MeV")


class AcceleratorDMSignal:
    """Extra signal type ``accelerator_dm`` (module docstring)."""

    def __init__(self, name: str, sec: dict, exp):
        from cevns.experiments.registry import SCHEMA_DIR, _check, _schema

        self.name, self.sec, self.exp = name, sec, exp
        self.label = sec.get("label", name)
        src = dict(sec["source"])
        src.setdefault("type", "accelerator_dm")
        if not (SCHEMA_DIR / "source_accelerator_dm.json").is_file():  # pragma: no cover - packaging error
            raise ConfigError("schema source_accelerator_dm.json is missing")
        _check(src, _schema("source_accelerator_dm.json"), f"extra_signals/{name}/source", exp.name)
        self.source_sec = src
        main = exp.source
        self.timing = main.timing
        if self.timing.kind != "gaussian_pulse":
            raise ConfigError(f"spec {exp.name}: extra signal {name}: needs a main source with 'gaussian_pulse' timing "
                              "(the dark matter arrives with the proton pulse)")
        if exp.time is None:
            raise ConfigError(f"spec {exp.name}: extra signal {name}: needs a time axis")
        self.defaults = {"pot": main.info.get("pot"), "distance_m": main.baseline_m, "timing": main.timing}
        rn = sec.get("recoil_nodes", {})
        self._nodes = self._fixed_nodes(float(rn.get("headroom", 1.25)), int(rn.get("n_panels", 10)),
                                        int(rn.get("n_per_panel", 12)))
        self._R: dict = {}
        self._signals: dict = {}
        self.point: dict = {}
        self.set_point()

    # -- recoil nodes and response -----------------------------------------------------------------------------
    def _fixed_nodes(self, headroom: float, n_panels: int, n_per_panel: int) -> dict:
        """Recoil nodes of each isotope on [0, T_hi], T_hi where the nominal light reaches ``headroom`` × the top of
        the energy axis (capped at 1 MeV): a geometric first panel (thresholds) and ``n_panels`` equal panels."""
        det = self.exp.detector
        top = float(self.exp.binning.edges("energy")[-1]) * headroom
        T = np.geomspace(1e-4, 1.0, 2000)  # MeV
        light = det.eee_keV(T * 1e3) * (det.light_yield if det.axis == "pe" else 1.0)
        above = np.nonzero(light >= top)[0]
        T_hi = float(T[above[0]]) if above.size else 1.0
        bps = [T_hi * k / n_panels for k in range(1, n_panels + 1)]
        return {iso.name: recoil_nodes(iso, bps, n_per_panel) for iso, _ in self.exp.target.components}

    def _matrices(self, settings: dict) -> dict:
        key = tuple(sorted(settings.items()))
        if key not in self._R:
            d = self.exp.detector
            self._R[key] = {k: d.matrix(nd.T_keV, settings) for k, nd in self._nodes.items()}
        return self._R[key]

    def response_settings(self, pc=None) -> ResponseSettings:
        """Nominal plus one setting per non-nominal grid value of each detector response parameter (the grid of the
        CEvNS signal: :func:`~cevns.experiments.sections.signal.response_grid`)."""
        from cevns.experiments.sections.signal import response_grid

        mats, mods = response_grid(pc, self.exp.detector.response_parameters, self._matrices)
        return ResponseSettings(mats, None, mods)

    # -- the dark-matter point ---------------------------------------------------------------------------------
    def set_point(self, **changes) -> None:
        """(Re)build the source at the section's values with ``changes`` (e.g. m_chi_MeV=20, m_v_over_m_chi=3,
        alpha_d=0.5, n_mesons=...). Models built afterwards by the experiment use the new point."""
        from cevns.sources.accelerator_dm import build_accelerator_dm

        sec = {**self.source_sec, **changes}
        if "m_v_over_m_chi" in changes:
            sec.pop("m_v_MeV", None)
        old_key = self.model_key if self.point else None
        models = getattr(self.exp, "_models", None)
        if old_key is not None and models:  # models of the previous point hold its response stacks: let them go
            for k in [k for k in models if old_key in k]:
                del models[k]
        self.build = build_accelerator_dm(sec, self.exp.binning.edges("time"), self.exp.file, self.exp.name,
                                          self.defaults)
        self.source = self.build.source
        self.point = {"m_chi_MeV": self.source.m_chi_MeV, "m_v_MeV": self.source.m_v_MeV,
                      "alpha_d": self.source.alpha_d, "epsilon_ref": self.source.epsilon,
                      "statistics": self.source.statistics}
        self.flux = FluxKernels(self.source, self._nodes, {iso.name: float(n) for iso, n in
                                                          self.exp.target.components}, tuple(self.source.species))
        self._signals = {}
        self._time_cache: dict = {}

    @property
    def model_key(self) -> tuple:
        """Identifies the point for the experiment's model cache."""
        return (self.name,) + tuple(sorted((k, v) for k, v in self.point.items()))

    def _signal(self, response: ResponseSettings, key) -> PredictedSignal:
        if key not in self._signals:
            t = self.exp.target
            self._signals[key] = PredictedSignal(self.flux, t.components, [list(self.source.species)], response,
                                                 _DM_PHYSICS, t.form_factor, t.coupling_scheme,
                                                 self.build.baseline_m)
        return self._signals[key]

    def dm_physics(self, phys: dict) -> tuple[dict, np.ndarray]:
        """({dp_epsilon, dp_alpha_d, dp_m_v_MeV} for the scattering weights, production scale (P,)) at validated
        model physics ``phys`` (ε from ``dp_epsilon``, 0 when absent)."""
        bad = [k for k in ("dp_alpha_d", "dp_m_v_MeV") if k in phys]
        if bad:
            raise ConfigError(f"extra signal {self.name}: {bad[0]} is fixed by its accelerator_dm source section "
                              f"(m_V = {self.point['m_v_MeV']:g} MeV, alpha_D = {self.point['alpha_d']:g})")
        P = batch_size(phys)
        eps = value(phys, "dp_epsilon", P) if "dp_epsilon" in phys else np.zeros(P)
        dm = {"dp_epsilon": np.asarray(eps, float), "dp_alpha_d": np.full(P, self.point["alpha_d"]),
              "dp_m_v_MeV": np.full(P, self.point["m_v_MeV"])}
        return dm, self.source.production_scale(eps)

    def _state(self, sig: PredictedSignal, phys: dict):
        dm, scale = self.dm_physics(phys)
        A0, Vs = sig(dm)
        s = scale[:, None, None]
        return A0 * s, [(off * s[..., None], seg * s[..., None]) for off, seg in Vs]

    # -- time -------------------------------------------------------------------------------------------------
    def time_factor(self, mean_us: float | None = None, sigma_us: float | None = None) -> np.ndarray:
        """(1, n_t): the pulse (mean, width) shifted by the flux-weighted χ delays, × time efficiency, per bin."""
        tm, tr = self.timing, self.exp.time
        m = tm.mean_us if mean_us is None else float(mean_us)
        sg = tm.sigma_us if sigma_us is None else float(sigma_us)
        key = (m, sg)
        if key not in self._time_cache:
            d_ns, w = self.source.delay_quantiles_ns()
            z = (tr.fine_edges[None, :] - m - 1e-3 * d_ns[:, None]) / (math.sqrt(2.0) * sg)
            cdf = (w[:, None] * 0.5 * (1.0 + special.erf(z))).sum(axis=0)
            self._time_cache[key] = tr._bins_from_fine(np.diff(cdf))[None, :]
        return self._time_cache[key]

    def _time_mods(self, pc) -> list:
        from cevns.experiments.sections.signal import pulse_modifiers

        return pulse_modifiers(pc, self.timing, self.time_factor)

    # -- the sample --------------------------------------------------------------------------------------------
    def sample(self, pc, mask) -> FactorisedSample:
        rs = self.response_settings(pc)
        key = tuple((pc.params[k].name, tuple(g.values)) for k, g, _ in rs.modifiers)
        sig = self._signal(rs, key)
        emods = [GridModifier(k, g, None) for k, g, _ in rs.modifiers]
        tmods = self._time_mods(pc)
        norms = [pc.add(n) for n in self.sec.get("modifiers", [])]
        T0 = self.time_factor()
        n_e = len(self.exp.binning.edges("energy")) - 1
        return FactorisedSample(self.name, n_e, T0.shape[1], T0, [0], energy_mods=emods, time_mods=tmods,
                                norms=norms, physics=lambda phys: self._state(sig, phys), mask=mask,
                                label=self.label)

    # -- views ------------------------------------------------------------------------------------------------
    def energy_time(self, epsilon: float | None = None) -> np.ndarray:
        """Dark-matter counts [E, t] at nominal detector and pulse for kinetic mixing ε (default: the source's)."""
        eps = self.point["epsilon_ref"] if epsilon is None else float(epsilon)
        sig = self._signal(self.response_settings(None), "nominal")
        A0, _ = self._state(sig, {"dp_epsilon": np.array([eps])})
        return A0[0, 0][:, None] * self.time_factor()[0][None, :]

    def expected_counts(self, epsilon: float | None = None) -> float:
        """Dark-matter counts in the model's bins (ROI) at nominal detector and pulse."""
        return float(self.exp.binning.select(self.energy_time(epsilon)).sum())

    def recoil_spectrum(self, epsilon: float | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{isotope: (T [keV], dN/dT [events/keV])} before the detector response, at ε (default: the source's)."""
        from cevns.interactions.terms import KERNELS, nuclear_weights

        eps = self.point["epsilon_ref"] if epsilon is None else float(epsilon)
        dm, scale = self.dm_physics({"dp_epsilon": np.array([eps])})
        out = {}
        t = self.exp.target
        for iso, _ in t.components:
            nd = self._nodes[iso.name]
            ctx = self.flux.nuclear_context(iso.name, "chi", t.form_factor, t.coupling_scheme)
            rate = np.zeros(nd.T_MeV.size)
            for k, w in nuclear_weights(dm, ctx).items():
                rate += w[0] * self.flux.get(k, KERNELS[k], "chi", iso.name)
            out[iso.name] = (nd.T_keV, rate * scale[0] / nd.weights_MeV * 1e-3)
        return out


_BUILDERS = {"accelerator_dm": AcceleratorDMSignal}


def build_extra_signals(sec: dict, exp) -> dict:
    """{name: builder} of the ``extra_signals`` section (names must not clash with the signal or backgrounds)."""
    out = {}
    for name, s in (sec or {}).items():
        t = s.get("type")
        if t not in _BUILDERS:
            raise ConfigError(f"spec {exp.name}: extra signal {name!r}: type {t!r}; allowed: {EXTRA_SIGNAL_TYPES}")
        if name in exp.backgrounds or name == getattr(exp.signal, "name", "cevns"):
            raise ConfigError(f"spec {exp.name}: extra signal {name!r} has the name of another sample")
        out[name] = _BUILDERS[t](name, s, exp)
    return out
