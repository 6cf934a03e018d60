"""Section ``source``: what reaches the detector — species, energy spectra, fluence, and the arrival-time model.

Types (``source.type``; the next sources are one builder each in :data:`SOURCE_BUILDERS`):

* ``stopped_pion``: π⁺ decay at rest (:class:`cevns.sources.StoppedPionSource`): a prompt ν_μ line and delayed
  Michel ν_e, ν̄_μ; r neutrinos per flavour per proton on target (POT given, or from the beam energy and the proton
  kinetic energy), isotropic at a distance. Timing: ``tabulated`` binned PDFs per component (release files), or a
  ``gaussian_pulse`` proton pulse ⊗ π⁺ (and μ⁺) lifetimes, whose mean and width may be fitted to a released time
  histogram of a neutrino-induced background (``calibrate_from``) and may be response parameters.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from cevns.errors import ConfigError, DataError, UnknownNameError
from cevns.experiments.releases import read_table
from cevns.experiments.sections.common import centres
from cevns.sources.stopped_pion import StoppedPionSource, gaussian_pulse_time_cdf, pot_from_beam_energy

__all__ = ["TimeModel", "SourceBuild", "build_source", "SOURCE_BUILDERS", "read_time_histogram"]


def read_time_histogram(path, t_edges) -> tuple[np.ndarray, np.ndarray]:
    """A released time histogram (uniform increasing bin centres, values ≥ 0) that covers the window ``t_edges``:
    (edges, values)."""
    arr = read_table(path, ncols=2, min_rows=10)
    t, v = arr[:, 0], arr[:, 1]
    dt = np.diff(t)
    if np.any(dt <= 0) or not np.allclose(dt, dt[0], rtol=1e-3, atol=1e-6) or np.any(v < 0):
        raise DataError(f"{path}: expected uniform increasing time-bin centres and non-negative values")
    edges = np.concatenate([t - 0.5 * dt[0], [t[-1] + 0.5 * dt[0]]])
    if edges[0] > t_edges[0] + 1e-9 or edges[-1] < t_edges[-1] - 1e-9:
        raise DataError(f"{path}: time range [{edges[0]:.3f}, {edges[-1]:.3f}] does not cover the analysis window "
                        f"[{t_edges[0]}, {t_edges[-1]}] (truncated file?)")
    return edges, v


@dataclass
class TimeModel:
    """Arrival-time model: ``components`` (e.g. prompt, delayed), species → component, and either tabulated binned
    PDFs ``table`` (components × time bins) or a Gaussian pulse (nominal ``mean_us``, ``sigma_us`` and the names of
    the response parameters that move them)."""

    kind: str
    components: tuple[str, ...]
    component_of: dict
    table: np.ndarray | None = None
    mean_us: float = 0.0
    sigma_us: float = 0.15
    mean_parameter: str | None = None
    sigma_parameter: str | None = None
    calibration: dict = field(default_factory=dict)

    def cdf(self, component: str, t_us, mean_us: float | None = None, sigma_us: float | None = None) -> np.ndarray:
        """Arrival-time CDF of a timing component for a Gaussian pulse (prompt: ⊗ τ_π; delayed: ⊗ τ_π ⊗ τ_μ)."""
        return gaussian_pulse_time_cdf(t_us, component, self.mean_us if mean_us is None else mean_us,
                                       self.sigma_us if sigma_us is None else sigma_us)


@dataclass
class SourceBuild:
    source: object
    timing: TimeModel
    baseline_m: float
    groups: list  # species grouped by timing component, in the order of timing.components
    info: dict = field(default_factory=dict)


def _calibrate(path, t_edges, mean: float, sigma: float) -> dict:
    """Pulse mean and width from a released time histogram of neutrino-induced events: least squares of
    pulse ⊗ (f_p prompt + (1 − f_p) delayed) against its normalised shape."""
    e, v = read_time_histogram(path, t_edges)
    v = v / v.sum()

    def resid(p):
        m, s, fp = p
        return fp * np.diff(gaussian_pulse_time_cdf(e, "prompt", m, s)) + \
            (1 - fp) * np.diff(gaussian_pulse_time_cdf(e, "delayed", m, s)) - v

    r = optimize.least_squares(resid, [mean, sigma, 0.05], bounds=([-1.0, 0.02, 0.0], [3.0, 0.6, 1.0]))
    if not r.success:
        raise DataError(f"could not fit the pulse timing to the time shape of {path}")
    return {"method": "time_shape_fit", "file": str(getattr(path, "name", path)), "mean_us": float(r.x[0]),
            "sigma_us": float(r.x[1]), "prompt_fraction": float(r.x[2]),
            "rms_residual_rel": float(np.sqrt(np.mean(r.fun ** 2)) / v.max())}


def build_stopped_pion(sec: dict, t_edges, file_fn, exp_name: str) -> SourceBuild:
    pot = sec.get("pot")
    if pot is None:
        if "beam_energy_GWh" not in sec or "proton_kinetic_energy_GeV" not in sec:
            raise ConfigError(f"spec {exp_name}: source needs 'pot' or both 'beam_energy_GWh' and "
                              "'proton_kinetic_energy_GeV'")
        pot = pot_from_beam_energy(sec["beam_energy_GWh"], sec["proton_kinetic_energy_GeV"])
    src = StoppedPionSource(float(pot), sec["nu_per_flavour_per_pot"], sec["distance_m"])
    comps = ("prompt", "delayed")
    comp_of = {f: src.component(f) for f in src.flavours}
    groups = [[f for f in src.flavours if comp_of[f] == c] for c in comps]
    tm = sec["timing"]
    if tm["model"] == "tabulated":
        if t_edges is None:
            raise ConfigError(f"spec {exp_name}: tabulated timing needs a time axis")
        tc = centres(t_edges)
        rows = []
        for c in comps:
            arr = read_table(file_fn(tm[c]), ncols=2, rows=len(tc))
            if not np.allclose(arr[:, 0], tc):
                raise ConfigError(f"{tm[c]}: time bin centres differ from the spec's time binning")
            if np.any(arr[:, 1] < 0):
                raise DataError(f"{tm[c]}: negative probabilities")
            rows.append(arr[:, 1])
        timing = TimeModel("tabulated", comps, comp_of, table=np.stack(rows))
    elif tm["model"] == "gaussian_pulse":
        mean, sigma = float(tm["mean_us"]), float(tm["sigma_us"])
        cal = {"method": "none"}
        if "calibrate_from" in tm:
            cal = _calibrate(file_fn(tm["calibrate_from"]), t_edges, mean, sigma)
            mean, sigma = cal["mean_us"], cal["sigma_us"]
        if not sigma > 0:
            raise ConfigError(f"spec {exp_name}: the pulse width must be > 0 µs")
        timing = TimeModel("gaussian_pulse", comps, comp_of, mean_us=mean, sigma_us=sigma,
                           mean_parameter=tm.get("mean_parameter"), sigma_parameter=tm.get("sigma_parameter"),
                           calibration=cal)
    else:
        raise ConfigError(f"spec {exp_name}: timing model {tm['model']!r}; allowed: tabulated, gaussian_pulse")
    return SourceBuild(src, timing, float(sec["distance_m"]), groups, {"pot": float(pot)})


def build_supernova(sec: dict, t_edges, file_fn, exp_name: str) -> SourceBuild:
    """A time-integrated supernova burst (:mod:`cevns.supernova.spec_source`; imported here lazily: no cycle)."""
    from cevns.supernova.spec_source import build_supernova as build

    return build(sec, t_edges, file_fn, exp_name)


def build_reactor(sec: dict, t_edges, file_fn, exp_name: str) -> SourceBuild:
    """A nuclear reactor (:mod:`cevns.sources.reactor`; imported lazily: no cycle)."""
    from cevns.sources.reactor import build_reactor as build

    return build(sec, t_edges, file_fn, exp_name)


def build_natural_neutrinos(sec: dict, t_edges, file_fn, exp_name: str) -> SourceBuild:
    """Solar, atmospheric, DSNB, geo and reactor neutrinos (:mod:`cevns.directdetection.spec_sources`; lazy import)."""
    from cevns.directdetection.spec_sources import build_natural_neutrinos as build

    return build(sec, t_edges, file_fn, exp_name)


def build_halo(sec: dict, t_edges, file_fn, exp_name: str) -> SourceBuild:
    """Halo dark matter of one mass (:mod:`cevns.directdetection.spec_sources`; lazy import)."""
    from cevns.directdetection.spec_sources import build_halo as build

    return build(sec, t_edges, file_fn, exp_name)


def build_accelerator_dm(sec: dict, t_edges, file_fn, exp_name: str) -> SourceBuild:
    """Dark matter from mesons made in a proton target (:mod:`cevns.sources.accelerator_dm`; lazy import)."""
    from cevns.sources.accelerator_dm import build_accelerator_dm as build

    return build(sec, t_edges, file_fn, exp_name)


#: source type → builder(section, time edges or None, file resolver, experiment name) → SourceBuild
SOURCE_BUILDERS = {"stopped_pion": build_stopped_pion, "supernova": build_supernova, "reactor": build_reactor,
                   "natural_neutrinos": build_natural_neutrinos, "halo": build_halo,
                   "accelerator_dm": build_accelerator_dm}


def build_source(sec: dict, t_edges, file_fn, exp_name: str) -> SourceBuild:
    t = sec.get("type")
    if t not in SOURCE_BUILDERS:
        raise UnknownNameError("source type", t, SOURCE_BUILDERS)
    return SOURCE_BUILDERS[t](sec, t_edges, file_fn, exp_name)
