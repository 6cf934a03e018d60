"""Detector response: from recoil quadrature nodes to observable bins, at any values of the response parameters.

    R[E_bin, node] = Σ_fine agg[E_bin, fine] · ε(fine centre; ν) · P(fine | E_ee(T_node; ν))

with E_ee from the quenching model (nuclear recoils) or E_ee = T (electron recoils, no quenching), P the smearing
(Poisson photostatistics, the gamma model of arXiv:2110.07730, a Gaussian σ = a√E_ee of arXiv:2003.10630, or a
Gaussian σ² = σ_noise² + F ε_pair E_ee of an ionisation or calorimetric detector, e.g. germanium with F ≈ 0.11,
ε_pair = 2.96 eV), ε the efficiency in the observable (PE, keVee, or eV for calorimeters) times an optional
threshold (a step, or an error-function edge of a given width, in the observable's unit). Response parameters (a quenching factor, the ±1σ quenching and
efficiency models of a release) are named in the spec's detector section and declared in its nuisances;
:meth:`DetectorResponse.matrix` takes their values. Expected counts are R @ (events per node).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from cevns.detectors.efficiency import coherent2017_efficiency, coherent2021_efficiency, coherent2021_time_efficiency
from cevns.detectors.quenching import (ConstantQuenching, Lindhard, TabulatedQF, quenching_from_release_coeffs,
                                       quenching_from_spec, variant_coefficients)
from cevns.detectors.smearing import gamma_pe_matrix, gaussian_matrix, poisson_pe_matrix
from cevns.errors import ConfigError, DataError

__all__ = ["aggregate_rows", "DetectorResponse", "QUENCHING_MODELS", "SMEARING_MODELS", "EFFICIENCY_MODELS"]


def _centres(e):
    e = np.asarray(e, float)
    return 0.5 * (e[:-1] + e[1:])


def _read_table(path, **kw):
    from cevns.experiments.releases import read_table

    return read_table(path, **kw)


def aggregate_rows(fine: np.ndarray, fine_edges, obs_edges) -> np.ndarray:
    """Sum rows of ``fine`` (one row per fine bin, edges ``fine_edges``) into coarser bins ``obs_edges``; every obs
    edge must coincide with a fine edge."""
    fine_edges = np.asarray(fine_edges, dtype=float)
    tol = 1e-9 * max(1.0, abs(float(fine_edges[-1])))  # edges like 0.2 vs 0.19999999999999998 of an arange
    idx = np.searchsorted(fine_edges, np.asarray(obs_edges, dtype=float) - tol)
    if np.any(idx >= len(fine_edges)) or not np.allclose(fine_edges[idx], obs_edges):
        raise ConfigError("observable bin edges must coincide with the 1-PE fine bin edges")
    cs = np.vstack([np.zeros((1, fine.shape[1])), np.cumsum(fine, axis=0)])
    return cs[idx[1:]] - cs[idx[:-1]]


QUENCHING_MODELS = ("constant", "linear_qf", "polynomial_eee", "tabulated", "release_polynomial_MeV", "lindhard", "none")
SMEARING_MODELS = ("poisson", "gamma", "gaussian_sqrt", "gaussian_noise_fano")
#: observable units and their size in keV of (electron-equivalent or, for calorimeters, recoil) energy per unit
OBSERVABLE_UNITS = ("pe", "keVee", "eV")
EFFICIENCY_MODELS = ("none", "coherent2017", "coherent2021", "table")


def _rows(table: np.ndarray, spec: dict, what: str):
    try:
        return table[spec["plus_row"]], table[spec["minus_row"]]
    except IndexError:
        raise ConfigError(f"{what}: rows {spec['plus_row']}, {spec['minus_row']} not in a table of {table.shape[0]} "
                          "rows") from None


@dataclass
class DetectorResponse:
    """The detector response of a spec section (see the module docstring). ``file_fn`` resolves release file names;
    ``response_parameters``: {name: nominal value} of the response parameters it reads."""

    sec: dict
    energy_edges: np.ndarray
    file_fn: object
    exp_name: str
    response_parameters: dict = field(default_factory=dict)

    def __post_init__(self):
        sec, name = self.sec, self.exp_name
        obs = sec["observable"]
        self.axis = obs["unit"]
        if self.axis == "pe":
            self.light_yield = float(obs["light_yield_pe_per_keVee"])
            if not (math.isfinite(self.light_yield) and self.light_yield > 0):
                raise ConfigError(f"spec {name}: light yield must be > 0 PE/keVee")
        elif self.axis == "keVee":
            self.light_yield = 1.0
        elif self.axis == "eV":  # calorimeters: energy in eV (per keV of deposited energy: 1000)
            self.light_yield = 1000.0
        else:
            raise ConfigError(f"spec {name}: observable unit {self.axis!r}; allowed: {', '.join(OBSERVABLE_UNITS)}")
        thr = sec.get("threshold")
        self.threshold = None
        if thr is not None:
            v, w = thr.get("value"), thr.get("width", 0.0)
            for what, x in (("threshold", v), ("threshold width", w)):
                if not (isinstance(x, (int, float)) and math.isfinite(x) and x >= 0):
                    raise ConfigError(f"spec {name}: detector {what} must be a number >= 0 ({self.axis}), got {x!r}")
            self.threshold = (float(v), float(w))
        if self.energy_edges[0] < 0:
            raise ConfigError(f"spec {name}: the energy axis must start at >= 0")
        sm = sec["smearing"]
        self.smearing = sm["model"]
        if self.smearing not in SMEARING_MODELS:
            raise ConfigError(f"spec {name}: smearing {self.smearing!r}; allowed: {SMEARING_MODELS}")
        if self.smearing == "poisson":
            if self.axis != "pe" or not np.allclose(self.energy_edges, np.round(self.energy_edges)):
                raise ConfigError(f"spec {name}: Poisson smearing needs integer PE bin edges")
            width = 1.0
        else:
            width = float(sm.get("fine_width", 0.5))
        self.fine_edges = np.arange(0.0, self.energy_edges[-1] + 0.5 * width, width)
        self._agg = aggregate_rows(np.eye(len(self.fine_edges) - 1), self.fine_edges, self.energy_edges)
        # the same aggregation as index ranges of fine bins: R = Σ_{fine ∈ bin} (a sum, no matrix product)
        lo = np.argmax(self._agg > 0.5, axis=1)
        self._agg_starts = lo.astype(np.intp)
        self._agg_stop = int(lo[-1] + np.count_nonzero(self._agg[-1] > 0.5))
        if not np.all(np.diff(self._agg_starts) == np.count_nonzero(self._agg[:-1] > 0.5, axis=1)):
            raise ConfigError(f"spec {name}: observable bins must be contiguous")
        self._fine_centres = _centres(self.fine_edges)
        self._setup_quenching(sec["quenching"])
        self._setup_efficiency(sec.get("efficiency", {"model": "none"}))
        thr = self.threshold
        self._direct_gaussian = (self.smearing in ("gaussian_noise_fano", "gaussian_sqrt") and self.eff_model == "none"
                                 and (thr is None or (thr[1] == 0 and thr[0] <= self.energy_edges[0])))
        te = sec.get("time_efficiency")
        self.time_efficiency_params = None if te is None else {"t0_us": te["t0_us"], "slope_per_us": te["slope_per_us"]}

    # -- quenching -----------------------------------------------------------------------------------------------
    def _setup_quenching(self, q: dict) -> None:
        m = q["model"]
        if m not in QUENCHING_MODELS:
            raise ConfigError(f"spec {self.exp_name}: quenching model {m!r}; allowed: {QUENCHING_MODELS}")
        self.q_model = m
        self.q_variants = []
        #: response parameters of the quenching model (they do not act on electron recoils)
        self.quenching_parameters = set()
        if m == "constant":
            ConstantQuenching(q["qf"])  # validates
            self.qf0 = float(q["qf"])
            if "parameter" in q:
                self.response_parameters[q["parameter"]] = self.qf0
                self.quenching_parameters.add(q["parameter"])
        elif m == "lindhard":
            self.q_fixed = Lindhard(q["k"], q.get("Z", 32), q.get("adiabatic_xi_keV", 0.0))  # validates
            if "parameter" in q:
                self.response_parameters[q["parameter"]] = float(q["k"])
                self.quenching_parameters.add(q["parameter"])
        elif m == "tabulated" and "file" in q:
            tab = _read_table(self.file_fn(q["file"]), ncols=2, min_rows=2)
            self.q_fixed = TabulatedQF(tuple(tab[:, 0]), tuple(tab[:, 1]))
        elif m == "release_polynomial_MeV":
            tab = _read_table(self.file_fn(q["file"]), ncols=4, min_rows=1)
            self.q_nominal = tab[q.get("nominal_row", 0)]
            for v in q.get("variants", []):
                plus, minus = _rows(tab, v, f"{q['file']}")
                self.q_variants.append((v["parameter"], plus, minus))
                self.response_parameters[v["parameter"]] = 0.0
                self.quenching_parameters.add(v["parameter"])
        else:
            self.q_fixed = quenching_from_spec({k: v for k, v in q.items() if not k.endswith("_sigma") and k != "note"})

    def eee_keV(self, T_keV, settings: dict | None = None) -> np.ndarray:
        """Electron-equivalent energy [keVee] of nuclear recoils T [keVnr] at response-parameter values ``settings``."""
        s = settings or {}
        T = np.asarray(T_keV, float)
        if self.q_model == "constant":
            qf = s.get(self.sec["quenching"].get("parameter"), self.qf0)
            return ConstantQuenching(qf).eee_keV(T)
        if self.q_model == "lindhard" and "parameter" in self.sec["quenching"]:
            q = self.q_fixed
            return Lindhard(s.get(self.sec["quenching"]["parameter"], q.k), q.Z, q.adiabatic_xi_keV).eee_keV(T)
        if self.q_model == "release_polynomial_MeV":
            c = self.q_nominal.copy()
            for name, plus, minus in self.q_variants:
                c = c + variant_coefficients(self.q_nominal, plus, minus, s.get(name, 0.0)) - self.q_nominal
            return np.maximum(quenching_from_release_coeffs(c).eee_keV(T), 0.0)
        return self.q_fixed.eee_keV(T)

    # -- efficiency ----------------------------------------------------------------------------------------------
    def _setup_efficiency(self, e: dict) -> None:
        m = e["model"]
        if m not in EFFICIENCY_MODELS:
            raise ConfigError(f"spec {self.exp_name}: efficiency model {m!r}; allowed: {EFFICIENCY_MODELS}")
        self.eff_model = m
        self.eff_variant = None
        if m == "coherent2017":
            self.eff_params = {"a": e["a"], "k": e["k"], "x0": e["x0"]}
        elif m == "coherent2021":
            tab = _read_table(self.file_fn(e["file"]), ncols=4, min_rows=1)
            self.eff_nominal = tab[e.get("nominal_row", 0)]
            if "variant" in e:
                plus, minus = _rows(tab, e["variant"], e["file"])
                self.eff_variant = (e["variant"]["parameter"], plus, minus)
                self.response_parameters[e["variant"]["parameter"]] = 0.0
        elif m == "table":
            tab = _read_table(self.file_fn(e["file"]), ncols=e.get("columns"), min_rows=2)
            ce, cv = e["energy_column"], e["efficiency_column"]
            if max(ce, cv) >= tab.shape[1]:
                raise ConfigError(f"{e['file']}: has {tab.shape[1]} columns; columns {ce}, {cv} out of range")
            et, vt = tab[:, ce], tab[:, cv]
            if np.any(np.diff(et) <= 0) or np.any(vt < 0) or np.any(vt > 1):
                raise DataError(f"{e['file']}: energies must increase and efficiencies lie in [0, 1]")
            self.eff_table = (et, vt)

    def efficiency(self, x, settings: dict | None = None) -> np.ndarray:
        """Efficiency at observable values x (PE or keVee) for response-parameter values ``settings``."""
        x = np.asarray(x, float)
        eff = self._efficiency(x, settings)
        if self.threshold is not None:
            thr, w = self.threshold
            edge = (x >= thr).astype(float) if w == 0 else 0.5 * special.erfc((thr - x) / (math.sqrt(2.0) * w))
            eff = eff * edge
        return eff

    def _efficiency(self, x, settings: dict | None = None) -> np.ndarray:
        s = settings or {}
        if self.eff_model == "none":
            return np.ones_like(x)
        if self.eff_model == "coherent2017":
            return coherent2017_efficiency(x, **self.eff_params)
        if self.eff_model == "coherent2021":
            c = self.eff_nominal
            if self.eff_variant is not None:
                name, plus, minus = self.eff_variant
                c = variant_coefficients(self.eff_nominal, plus, minus, s.get(name, 0.0))
            return np.maximum(coherent2021_efficiency(x, *c), 0.0)  # the release's logistic goes negative at 0 PE
        et, vt = self.eff_table  # table: linear interpolation, the end values beyond the table
        return np.interp(x, et, vt, left=vt[0], right=vt[-1])

    def time_efficiency(self, t_us) -> np.ndarray:
        if self.time_efficiency_params is None:
            return np.ones_like(np.asarray(t_us, float))
        return coherent2021_time_efficiency(t_us, **self.time_efficiency_params)

    # -- response matrices ---------------------------------------------------------------------------------------
    def _smear(self, eee: np.ndarray, a: int = 0, edges=None) -> np.ndarray:
        """P[fine bin, node] for the fine bins from index ``a`` on (Gaussian models; the others compute all rows), or
        for the bins ``edges`` (Gaussian models)."""
        if self.smearing == "poisson":
            return poisson_pe_matrix(self.light_yield * eee, len(self.fine_edges) - 1)[a:]
        sm = self.sec["smearing"]
        if self.smearing == "gamma":
            return gamma_pe_matrix(eee, self.light_yield, self.fine_edges, sm["a_coef"], sm["b_coef"])[a:]
        ly = self.light_yield
        fe = self.fine_edges[a:] if edges is None else edges
        if self.smearing == "gaussian_noise_fano":
            # σ² = σ_noise² + F ε_pair E (energies in keV), in the observable's unit
            var_keV2 = (1e-3 * sm["sigma_noise_eV"]) ** 2 + sm.get("fano", 0.0) * 1e-3 * sm.get("pair_energy_eV", 2.96) * \
                np.maximum(eee, 0.0)
            P = gaussian_matrix(ly * eee, ly * np.sqrt(var_keV2), fe)
            if sm.get("pedestal") == "subtract":
                # only the excess over a window without deposit: P(x | E) − P(x | 0) (the noise triggers themselves
                # are background), so that deposits far below the noise add ~E dP/dE, not P(x | 0) each
                P = P - gaussian_matrix(np.zeros(1), np.full(1, ly * 1e-3 * sm["sigma_noise_eV"]), fe)
            return P
        return gaussian_matrix(ly * eee, ly * sm["a_sqrt_keV"] * np.sqrt(np.maximum(eee, 0.0)), fe)

    def matrix(self, T_keV, settings: dict | None = None, electron: bool = False) -> np.ndarray:
        """R[E_bin, node] for recoils T [keV] (nuclear, or electron recoils without quenching) at ``settings``."""
        eee = np.asarray(T_keV, float) if electron else self.eee_keV(T_keV, settings)
        if self._direct_gaussian:  # efficiency 1 over the bins: integrate the Gaussian over each bin directly
            return self._smear(eee, edges=self.energy_edges)
        eff = self._fine_efficiency(settings)
        a, b = int(self._agg_starts[0]), self._agg_stop  # only the fine bins inside the observable bins
        W = self._smear(eee, a)[: b - a] * eff[a:b, None]
        return np.add.reduceat(W, self._agg_starts - a, axis=0)

    def _fine_efficiency(self, settings: dict | None) -> np.ndarray:
        """The efficiency at the fine-bin centres; computed once when no response parameter can change it."""
        if self.eff_model in ("coherent2021",) and self.eff_variant is not None:
            return self.efficiency(self._fine_centres, settings)
        cached = getattr(self, "_fine_eff_cache", None)
        if cached is None:
            cached = self._fine_eff_cache = self.efficiency(self._fine_centres, None)
            cached.setflags(write=False)
        return cached

    def electron_energy_max_keV(self) -> float:
        """The electron-equivalent energy at the top of the observable axis [keVee]."""
        return float(self.energy_edges[-1]) / self.light_yield
