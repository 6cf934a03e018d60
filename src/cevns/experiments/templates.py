"""Experiments released as binned templates: N-D PDFs of the signal and of every background, normalised to their
predicted counts, with alternative ("shape variant") PDFs for the systematics (spec kind ``released_templates``).

First user: COHERENT CENNS-10 liquid argon, Analysis A (arXiv:2003.10630, release arXiv:2006.12659): energy × F90 ×
t_trig, CEvNS, prompt and delayed beam-related neutrons (BRN), steady state (SS).

Model (every piece read from the release unless the spec says otherwise):

* μ[bin] = Σ_k s_k · max(T_k[bin](θ), 0): T_k is template k with its shape variants interpolated bin by bin, piecewise
  linearly in a unit-Gaussian nuisance θ_j (the "interpolated templates as nuisance parameters" of the companion's
  Sec. 3; HistFactory interpolation code 0, Cranmer et al. CERN-OPEN-2012-016 Eq. (8)):
  T(θ) = T₀ + θ (T₊ − T₀) for θ ≥ 0 and T₀ + θ (T₀ − T₋) for θ < 0; a one-sided variant is mirrored (T₋ = 2T₀ − T₊);
  a variant marked ``shape_only`` is renormalised to the nominal total first;
* background normalisations s_k: Gaussian constraints (1, σ_k/N_k) from the release's prediction uncertainties;
* signal scale, three parameterisations (``SIGNAL_MODES``):
  'counts'       s = n_<signal>/N_pred (free count: no flux nuisance, it would be degenerate with it);
  'xsec_scale'   s = xsec_scale · sns_flux_norm · <prefix>signal_norm (σ/σ_SM; flux (1, 0.10) shared by name with
                 the other SNS experiments; the rest of the prediction uncertainty, √(σ_pred² − σ_flux²), argon-only);
  'sin2_theta_w' s = r(sin²θ_W) · sns_flux_norm · <prefix>signal_norm, r = N_engine(s²)/N_engine(s²₀): the released
                 signal template scaled by the ratio of counts predicted by our engine (the shape change is zero when
                 F_p = F_n, the default, since Q_W(T) = F(T)(Z g_p + N g_n); see :meth:`EnginePrediction.shape_change`);
* −2 ln L: Baker–Cousins Poisson χ² over every bin + Gaussian pulls (:class:`~cevns.inference.BinnedPoissonLikelihood`).

The optional ``engine`` section is our own prediction of the signal on the energy and time axes (stopped-pion source,
quenching, Gaussian resolution, tabulated efficiency), used for the sin²θ_W ratio, the SM flux-averaged cross
section and the comparison with the released signal PDF.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cevns import constants as C
from cevns.detectors.quenching import quenching_from_spec
from cevns.detectors.response import aggregate_rows
from cevns.detectors.smearing import gaussian_matrix
from cevns.errors import ConfigError, DataError, UnknownNameError
from cevns.experiments.base import SpecExperiment
from cevns.interactions.terms import qw2_at, sin2_qw2_coefficients
from cevns.experiments.releases import read_table
from cevns.experiments.stopped_pion import edges_from_spec
from cevns.inference.likelihood import BinnedPoissonLikelihood, Parameter
from cevns.rates import flux_kernels
from cevns.sources.stopped_pion import StoppedPionSource
from cevns.targets.materials import material

__all__ = ["ReleasedTemplatesExperiment", "EnginePrediction", "read_grid_nd", "SIGNAL_MODES", "interpolate_template"]

SIGNAL_MODES = ("counts", "xsec_scale", "sin2_theta_w")


def _centres(e):
    return 0.5 * (e[:-1] + e[1:])


def read_grid_nd(path, edges: list[np.ndarray]) -> np.ndarray:
    """Values of a binned N-D release file with one row per bin: the bin centre on each axis, then the value, the last
    axis varying fastest (C order). Checks the row count, the column count, the centres against ``edges`` and that the
    values are finite and ≥ 0; raises :class:`DataError` naming the file."""
    shape = tuple(len(e) - 1 for e in edges)
    arr = read_table(path, ncols=len(edges) + 1, rows=int(np.prod(shape)))
    grids = np.meshgrid(*[_centres(np.asarray(e, float)) for e in edges], indexing="ij")
    for k, g in enumerate(grids):
        scale = max(float(np.max(np.abs(g))), 1e-12)
        if not np.allclose(arr[:, k], g.ravel(), rtol=0, atol=1e-6 * scale):
            raise DataError(f"{path}: column {k + 1} does not hold the expected bin centres of axis {k} "
                            f"(expected {np.unique(g)[:4]}..., C order with the last axis fastest)")
    v = arr[:, -1].reshape(shape)
    if np.any(v < 0):
        raise DataError(f"{path}: negative bin contents")
    return v


def interpolate_template(nominal: np.ndarray, d_plus: np.ndarray, d_minus: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Piecewise-linear template interpolation (HistFactory code 0, CERN-OPEN-2012-016 Eq. (8)), clipped at zero:
    T = T₀ + Σ_j [max(θ_j, 0) d₊_j + min(θ_j, 0) d₋_j] with d₊ = T₊ − T₀, d₋ = T₀ − T₋ (rows j)."""
    th = np.asarray(theta, float)
    t = nominal + np.maximum(th, 0.0) @ d_plus + np.minimum(th, 0.0) @ d_minus
    return np.maximum(t, 0.0)


# ------------------------------------------------------------------------------------------------------------------
class EnginePrediction:
    """Our own SM prediction of a stopped-pion CEvNS signal on the (energy, time) axes of a template experiment:
    source × target (nodes and flux kernels of :mod:`cevns.rates`) × quenching (E_ee = QF(T)·T) × Gaussian resolution
    σ = a √E_ee (arXiv:2003.10630) × efficiency table (function of the reconstructed E_ee, the last value above the
    table, as the release companion Sec. 2.6 prescribes) × time PDF of the Gaussian proton pulse ⊗ π⁺/μ⁺ lifetimes."""

    def __init__(self, eng: dict, energy_edges: np.ndarray, time_edges: np.ndarray, file_fn):
        self.spec = eng
        src = eng["source"]
        tm = src["timing"]
        self.pot = src["pot"]
        self.flux_sigma = src.get("nu_per_flavour_per_pot_sigma", 0.0) / src["nu_per_flavour_per_pot"]
        self.pulse_mean_us, self.pulse_sigma_us = tm["mean_us"], tm["sigma_us"]
        self.source = StoppedPionSource(self.pot, src["nu_per_flavour_per_pot"], src["distance_m"],
                                        pulse_mean_us=self.pulse_mean_us, pulse_sigma_us=self.pulse_sigma_us)
        self.flavours = tuple(self.source.flavours)
        tgt = eng["target"]
        self.mass_kg = tgt["mass_kg"]
        self.mass_sigma_rel = tgt.get("mass_sigma_kg", 0.0) / tgt["mass_kg"]
        self.components = [(iso, n * tgt["mass_kg"]) for iso, n in material(tgt["material"]).components]
        self.kernels = flux_kernels(self.source, self.components)
        self.form_factor = tgt.get("form_factor", "helm")
        self.scheme = tgt.get("coupling_scheme", "pdg")
        self.s2_ref = C.SIN2_THETA_W_0
        det = eng["detector"]
        self.qf_spec = dict(det["quenching"])
        self.resolution_a = det["resolution"]["a_sqrt_keV"]
        self.energy_edges = np.asarray(energy_edges, float)
        self.time_edges = np.asarray(time_edges, float)
        w = det.get("fine_width_keV", 0.5)
        self.fine_edges = np.arange(0.0, self.energy_edges[-1] + 0.5 * w, w)
        if self.energy_edges[0] < 0:
            raise ConfigError("engine prediction: the energy axis must start at >= 0 keVee")
        eff = det["efficiency"]
        tab = read_table(file_fn(eff["file"]), ncols=eff.get("columns"), min_rows=2)
        ce, cv = eff["energy_column"], eff["efficiency_column"]
        if max(ce, cv) >= tab.shape[1]:
            raise ConfigError(f"{eff['file']}: has {tab.shape[1]} columns; energy/efficiency columns {ce}, {cv} out of range")
        e_tab, v_tab = tab[:, ce], tab[:, cv]
        if np.any(np.diff(e_tab) <= 0) or np.any(v_tab < 0) or np.any(v_tab > 1):
            raise DataError(f"{eff['file']}: energies must increase and efficiencies lie in [0, 1]")
        self.eff_table = (e_tab, v_tab)
        self._agg = aggregate_rows(np.eye(len(self.fine_edges) - 1), self.fine_edges, self.energy_edges)
        self._qw2_coefficients()
        self._cache: dict = {}

    # -- pieces -------------------------------------------------------------------------------------------------
    def efficiency(self, eee_keV) -> np.ndarray:
        """Efficiency at reconstructed E_ee [keVee]: linear interpolation of the table, its last value above it,
        its first value below it."""
        e, v = self.eff_table
        return np.interp(np.asarray(eee_keV, float), e, v, left=v[0], right=v[-1])

    def response(self, T_keV, a: float | None = None, b: float | None = None) -> np.ndarray:
        """R[energy bin, node]: E_ee = (a + b T) T (arXiv:2003.10630), Gaussian σ = a_res √E_ee on the fine grid,
        times the efficiency at the fine-bin centre, summed into the energy bins."""
        q = quenching_from_spec({"model": "linear_qf", "a": self.qf_spec["a"] if a is None else a,
                                 "b": self.qf_spec["b"] if b is None else b})
        eee = q.eee_keV(T_keV)
        fine = gaussian_matrix(eee, self.resolution_a * np.sqrt(np.maximum(eee, 0.0)), self.fine_edges)
        eff = self.efficiency(_centres(self.fine_edges))
        return self._agg @ (fine * eff[:, None])

    def time_pdf(self, flavour: str, mean_us: float | None = None, sigma_us: float | None = None) -> np.ndarray:
        src = self.source
        if mean_us is not None or sigma_us is not None:
            src = StoppedPionSource(self.pot, self.source.nu_per_flavour_per_pot, self.source.distance_m,
                                    pulse_mean_us=self.pulse_mean_us if mean_us is None else mean_us,
                                    pulse_sigma_us=self.pulse_sigma_us if sigma_us is None else sigma_us)
        return src.time_pdf(flavour, self.time_edges)

    def _qw2_coefficients(self) -> None:
        """Q_W² = c₀ + c₁Δ + c₂Δ² (Δ = sin²θ_W − s²₀) on every (flavour, isotope) node set."""
        self._qw2c = sin2_qw2_coefficients(self.components, self.kernels.nodes, self.flavours, self.form_factor,
                                           self.scheme, self.s2_ref)

    def qw2(self, sin2_theta_w: float | None = None) -> dict:
        """Q_W² on the nodes per (flavour, isotope name) for a weak mixing angle (default: the SM value)."""
        return qw2_at(self._qw2c, sin2_theta_w, self.s2_ref)

    # -- predictions --------------------------------------------------------------------------------------------
    def energy_spectra(self, sin2_theta_w: float | None = None, a: float | None = None, b: float | None = None) -> dict:
        """Expected counts per energy bin for each flavour (before the time window) at the nominal exposure."""
        qw2 = self.qw2(sin2_theta_w)
        out = {}
        for iso, _ in self.components:
            nd = self.kernels.nodes[iso.name]
            R = self.response(nd.T_keV, a, b)
            for f in self.flavours:
                out[f] = out.get(f, 0.0) + R @ (self.kernels.kernels[(f, iso.name)] * qw2[(f, iso.name)])
        return out

    def energy_time(self, sin2_theta_w: float | None = None, a: float | None = None, b: float | None = None,
                    mean_us: float | None = None, sigma_us: float | None = None) -> np.ndarray:
        """Expected SM CEvNS counts [energy bin, time bin] (F90 summed: the engine has no pulse-shape model)."""
        spec = self.energy_spectra(sin2_theta_w, a, b)
        return sum(np.outer(spec[f], self.time_pdf(f, mean_us, sigma_us)) for f in self.flavours)

    def total(self, **kw) -> float:
        return float(self.energy_time(**kw).sum())

    def ratio_coefficients(self) -> tuple[float, float, float]:
        """(1, k₁, k₂) with N(s²)/N(s²₀) = 1 + k₁Δ + k₂Δ², Δ = s² − s²₀, summed over the whole analysis window."""
        if "ratio" not in self._cache:
            tp = {f: self.time_pdf(f).sum() for f in self.flavours}
            c = np.zeros(3)
            for iso, _ in self.components:
                nd = self.kernels.nodes[iso.name]
                Rsum = self.response(nd.T_keV).sum(axis=0)
                for f in self.flavours:
                    c += tp[f] * (self._qw2c[(f, iso.name)] @ (Rsum * self.kernels.kernels[(f, iso.name)]))
            self._cache["ratio"] = (1.0, float(c[1] / c[0]), float(c[2] / c[0]))
        return self._cache["ratio"]

    def ratio(self, sin2_theta_w) -> float:
        """N(sin²θ_W)/N(sin²θ_W⁰) in the analysis window."""
        _, k1, k2 = self.ratio_coefficients()
        d = sin2_theta_w - self.s2_ref
        return 1.0 + k1 * d + k2 * d * d

    def shape_change(self, s2_values=(0.18, 0.30)) -> float:
        """Largest change of the normalised (energy × time) shape between sin²θ_W values: max |p(s²) − p(s²₀)|/max p."""
        p0 = self.energy_time()
        p0 = p0 / p0.sum()
        out = 0.0
        for s2 in s2_values:
            p = self.energy_time(sin2_theta_w=s2)
            out = max(out, float(np.max(np.abs(p / p.sum() - p0)) / p0.max()))
        return out

    def flux_averaged_xsec(self, sin2_theta_w: float | None = None) -> float:
        """SM flux-averaged CEvNS cross section per nucleus [cm²], no detector response: Σ_{f,iso} N_iso Φ_f ⟨σ_iso⟩_f /
        (Σ_f Φ_f · Σ_iso N_iso) over the three SNS flavours (the convention of the CsI 2021 reproduction)."""
        qw2 = self.qw2(sin2_theta_w)
        n_tot = sum(n for _, n in self.components)
        events = sum(float(np.sum(self.kernels.kernels[(f, iso.name)] * qw2[(f, iso.name)]))
                     for f in self.flavours for iso, _ in self.components)
        fluence = sum(self.source.fluence_per_cm2(f) for f in self.flavours)
        return events / (fluence * n_tot)

    def uncertainty(self) -> dict[str, float]:
        """Relative uncertainties of our prediction: flux, fiducial mass, QF a and b (±1σ half-differences), total."""
        n0 = self.total()
        out = {"flux": self.flux_sigma, "mass": self.mass_sigma_rel}
        for k in ("a", "b"):
            s = self.qf_spec.get(f"{k}_sigma", 0.0)
            v = self.qf_spec[k]
            up, dn = self.total(**{k: v + s}), self.total(**{k: v - s})
            out[f"quenching_{k}"] = 0.5 * abs(up - dn) / n0
        out["total"] = math.sqrt(sum(x * x for x in out.values()))
        return out


# ------------------------------------------------------------------------------------------------------------------
@dataclass
class ReleasedTemplatesExperiment(SpecExperiment):
    """A binned-template experiment (spec kind ``released_templates``). Construct with :meth:`from_spec`."""

    spec: dict
    data_root: str | None = None
    theta_limits: tuple[float, float] = (-4.0, 4.0)
    _cache: dict = field(default_factory=dict, repr=False)

    # -- construction -------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        sp = self.spec
        self.prefix = sp.get("parameter_prefix", "")
        self.axis_names = [a["name"] for a in sp["axes"]]
        if len(set(self.axis_names)) != len(self.axis_names):
            raise ConfigError(f"spec {self.name}: duplicate axis names {self.axis_names}")
        self.edges = [edges_from_spec(a["edges"]) for a in sp["axes"]]
        for a, e in zip(self.axis_names, self.edges):
            if len(e) < 2 or np.any(np.diff(e) <= 0):
                raise ConfigError(f"spec {self.name}: axis {a!r} edges must increase")
        self.axis_labels = [a.get("label", a["name"]) for a in sp["axes"]]
        self.shape = tuple(len(e) - 1 for e in self.edges)
        self.observed = read_grid_nd(self._file(sp["observed"]), self.edges)
        # components
        self.component_names = [c["name"] for c in sp["components"]]
        if len(set(self.component_names)) != len(self.component_names):
            raise ConfigError(f"spec {self.name}: duplicate component names {self.component_names}")
        self.comp_spec = {c["name"]: c for c in sp["components"]}
        self.nominal = {}
        for c in sp["components"]:
            t = read_grid_nd(self._file(c["file"]), self.edges)
            tot = float(t.sum())
            if not math.isclose(tot, c["prediction"], rel_tol=5e-3):
                raise DataError(f"{c['file']}: template total {tot:.6g} differs from the spec prediction {c['prediction']} "
                                "(the templates are normalised to the predicted counts; truncated or wrong file?)")
            self.nominal[c["name"]] = t
        self.signal = sp["signal"]["component"]
        if self.signal not in self.nominal:
            raise UnknownNameError("signal component", self.signal, self.component_names)
        self.backgrounds = [n for n in self.component_names if n != self.signal]
        # shape systematics
        self.systematics = []
        names = set()
        for s in sp.get("shape_systematics", []):
            if s["component"] not in self.nominal:
                raise UnknownNameError(f"component of shape systematic {s['name']!r}", s["component"], self.component_names)
            if s["name"] in names:
                raise ConfigError(f"spec {self.name}: duplicate shape systematic {s['name']!r}")
            names.add(s["name"])
            t0 = self.nominal[s["component"]]
            tp = read_grid_nd(self._file(s["plus"]), self.edges)
            tm = read_grid_nd(self._file(s["minus"]), self.edges) if "minus" in s else None
            totals = {"plus": float(tp.sum()), "minus": None if tm is None else float(tm.sum())}
            if s.get("normalisation", "as_released") == "shape_only":
                tp = tp * (t0.sum() / tp.sum())
                tm = None if tm is None else tm * (t0.sum() / tm.sum())
            d_plus = (tp - t0).ravel()
            d_minus = d_plus.copy() if tm is None else (t0 - tm).ravel()
            self.systematics.append({"name": s["name"], "component": s["component"], "d_plus": d_plus,
                                     "d_minus": d_minus, "two_sided": tm is not None, "released_totals": totals})
        # prediction uncertainty split (flux shared, the rest experiment-only)
        cs = self.comp_spec[self.signal]
        self.signal_prediction = float(cs["prediction"])
        self.flux_parameter = sp["signal"].get("flux_parameter", "sns_flux_norm")
        # flux uncertainty: the spec's, else the engine source's (σ_r / r, computed like the other SNS specs so that a
        # shared flux parameter carries the identical constraint in a combination)
        eng_src = sp.get("engine", {}).get("source", {})
        self.flux_sigma = sp["signal"].get(
            "flux_sigma", eng_src.get("nu_per_flavour_per_pot_sigma", 0.0) / eng_src.get("nu_per_flavour_per_pot", 1.0))
        pred_rel = cs.get("prediction_sigma", 0.0) / cs["prediction"]
        if self.flux_sigma > pred_rel:
            raise ConfigError(f"spec {self.name}: flux_sigma {self.flux_sigma} exceeds the relative prediction "
                              f"uncertainty {pred_rel:.4f} of the signal")
        self.other_sigma = math.sqrt(max(pred_rel ** 2 - self.flux_sigma ** 2, 0.0))
        # our own prediction (optional)
        self.engine = None
        if "engine" in sp:
            ax = sp["engine"]["axes"]
            for k in ("energy", "time"):
                if ax[k] not in self.axis_names:
                    raise UnknownNameError(f"engine {k} axis", ax[k], self.axis_names)
            self.engine_axes = (self.axis_names.index(ax["energy"]), self.axis_names.index(ax["time"]))
            self.engine = EnginePrediction(sp["engine"], self.edges[self.engine_axes[0]], self.edges[self.engine_axes[1]],
                                           self._file)

    # -- parameters -------------------------------------------------------------------------------------------
    @property
    def poi_name(self) -> str:
        return f"n_{self.signal}"

    def nuisance_parameters(self) -> list[Parameter]:
        out = []
        for n in self.backgrounds:
            c = self.comp_spec[n]
            sig = c.get("prediction_sigma", 0.0) / c["prediction"]
            out.append(Parameter(f"{self.prefix}{n}_norm", 1.0, (0.0, max(5.0, 1.0 + 6.0 * sig)),
                                 (1.0, sig) if sig > 0 else None, max(0.1 * sig, 0.005), "nuisance",
                                 f"{c.get('label', n)} normalisation (× {c['prediction']:g})"))
        for s in self.systematics:
            out.append(Parameter(f"{self.prefix}{s['name']}", 0.0, self.theta_limits, (0.0, 1.0), 0.5, "nuisance",
                                 f"shape variant of {s['component']} [σ]" + ("" if s["two_sided"] else " (mirrored)")))
        return out

    def signal_parameters(self, signal: str = "counts") -> list[Parameter]:
        if signal not in SIGNAL_MODES:
            raise UnknownNameError("signal parameterisation", signal, SIGNAL_MODES)
        n0 = self.signal_prediction
        if signal == "counts":
            return [Parameter(self.poi_name, n0, (0.0, 10.0 * n0), None, 0.1 * n0, "poi", "signal counts (free)")]
        flux = Parameter(self.flux_parameter, 1.0, (0.3, 2.0), (1.0, self.flux_sigma) if self.flux_sigma > 0 else None,
                         0.05, "nuisance", "SNS neutrino flux normalisation (shared by name with other SNS experiments)")
        other = Parameter(f"{self.prefix}{self.signal}_norm", 1.0, (0.3, 2.0),
                          (1.0, self.other_sigma) if self.other_sigma > 0 else None, 0.05, "nuisance",
                          "signal prediction normalisation other than the flux (detector, quenching, ...)")
        if signal == "xsec_scale":
            return [Parameter("xsec_scale", 1.0, (0.0, 6.0), None, 0.05, "poi", "σ / σ_SM"), flux, other]
        if self.engine is None:
            raise ConfigError(f"spec {self.name}: the 'sin2_theta_w' signal needs an 'engine' section")
        return [Parameter("sin2_theta_w", self.engine.s2_ref, (0.0, 0.6), None, 0.01, "poi", "weak mixing angle"),
                flux, other]

    def parameters(self, signal: str = "counts") -> list[Parameter]:
        return self.signal_parameters(signal) + self.nuisance_parameters()

    # -- expectation ------------------------------------------------------------------------------------------
    def _packed(self):
        """Per component: flattened nominal, (d₊, d₋) rows of its systematics and their θ indices in the nuisance block."""
        if "packed" not in self._cache:
            nb = len(self.backgrounds)
            packed = []
            for n in self.component_names:
                idx = [nb + j for j, s in enumerate(self.systematics) if s["component"] == n]
                rows = [s for s in self.systematics if s["component"] == n]
                nbins = int(np.prod(self.shape))
                dp = np.array([s["d_plus"] for s in rows]).reshape(len(rows), nbins)
                dm = np.array([s["d_minus"] for s in rows]).reshape(len(rows), nbins)
                packed.append((n, self.nominal[n].ravel().copy(), dp, dm, np.array(idx, dtype=int)))
            self._cache["packed"] = packed
        return self._cache["packed"]

    def _signal_scale_fn(self, signal: str):
        n0 = self.signal_prediction
        if signal == "counts":
            return lambda x: x[0] / n0
        if signal == "xsec_scale":
            return lambda x: x[0] * x[1] * x[2]
        _, k1, k2 = self.engine.ratio_coefficients()
        s2_ref = self.engine.s2_ref

        def scale(x):
            d = x[0] - s2_ref
            return (1.0 + k1 * d + k2 * d * d) * x[1] * x[2]

        return scale

    def expected_fn(self, signal: str = "counts"):
        """μ(x) over all bins (flattened, C order) for x ordered as :meth:`parameters` (signal)."""
        ns = len(self.signal_parameters(signal))
        packed = self._packed()
        sig_scale = self._signal_scale_fn(signal)
        bg_index = {n: ns + i for i, n in enumerate(self.backgrounds)}
        plan = []
        for n, nom, dp, dm, idx in packed:
            plan.append((n == self.signal, bg_index.get(n, -1), nom, dp, dm, ns + idx, len(idx) > 0))
        nbins = int(np.prod(self.shape))
        maximum, minimum = np.maximum, np.minimum

        def expected(x):
            x = np.asarray(x, dtype=float)
            mu = np.zeros(nbins)
            for is_sig, ib, nom, dp, dm, ith, has_sys in plan:
                s = sig_scale(x) if is_sig else x[ib]
                if has_sys:
                    th = x[ith]
                    t = nom + maximum(th, 0.0) @ dp + minimum(th, 0.0) @ dm
                    mu += s * maximum(t, 0.0)
                else:
                    mu += s * nom
            return mu

        return expected

    def components_at(self, x, signal: str = "counts") -> dict[str, np.ndarray]:
        """Each component [N-D] at parameter vector x (for plots and tables)."""
        ns = len(self.signal_parameters(signal))
        sig_scale = self._signal_scale_fn(signal)
        out = {}
        for i, (n, nom, dp, dm, idx) in enumerate(self._packed()):
            t = interpolate_template(nom, dp, dm, np.asarray(x, float)[ns + idx]) if len(idx) else nom
            s = sig_scale(x) if n == self.signal else x[ns + self.backgrounds.index(n)]
            out[n] = (s * t).reshape(self.shape)
        return out

    def likelihood(self, signal: str = "counts") -> BinnedPoissonLikelihood:
        """Binned Poisson likelihood over every bin; ``signal`` one of :data:`SIGNAL_MODES`."""
        if signal not in SIGNAL_MODES:
            raise UnknownNameError("signal parameterisation", signal, SIGNAL_MODES)
        return BinnedPoissonLikelihood(self.name, self.parameters(signal), self.expected_fn(signal),
                                           self.observed.ravel())

    # -- helpers ----------------------------------------------------------------------------------------------
    def projection(self, arr: np.ndarray, axis: str | int) -> np.ndarray:
        """Sum of an N-D array over every axis but ``axis`` (name or index)."""
        k = self.axis_names.index(axis) if isinstance(axis, str) else int(axis)
        return np.asarray(arr).sum(axis=tuple(i for i in range(len(self.shape)) if i != k))

    def released_best_fit(self) -> dict[str, np.ndarray]:
        """Every component scaled to the release's best-fit count (``best_fit`` of the spec)."""
        out = {}
        for n in self.component_names:
            c = self.comp_spec[n]
            if "best_fit" not in c:
                raise ConfigError(f"spec {self.name}: component {n!r} has no 'best_fit'")
            out[n] = self.nominal[n] * (c["best_fit"] / self.nominal[n].sum())
        return out

    def flux_averaged_xsec(self, sin2_theta_w: float | None = None) -> float:
        if self.engine is None:
            raise ConfigError(f"spec {self.name}: the flux-averaged cross section needs an 'engine' section")
        return self.engine.flux_averaged_xsec(sin2_theta_w)
