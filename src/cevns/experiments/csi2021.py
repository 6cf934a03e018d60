"""Stopped-pion CEvNS experiments released as unbinned (PE, t_rec) event lists: COHERENT CsI[Na] full dataset
(arXiv:2110.07730, PRL 129, 081801 (2022)).

Model (spec kind ``stopped_pion_pe_time_events``), every piece read from the release unless marked *modelled*:

* source: π⁺ decay at rest (prompt ν_μ line, Michel ν_e and ν̄_μ), r ν/flavour/POT, isotropic at L;
  timing *modelled* (the release lacks ``snsFlux2D.root``): a Gaussian proton pulse convolved with the π⁺ (and μ⁺)
  lifetimes (:func:`cevns.sources.stopped_pion.gaussian_pulse_time_cdf`); the pulse mean and width are fitted to the
  released NIN t_rec shape (neutrino-induced neutrons are made by the same neutrinos, so their arrival time is an
  image of the ν arrival time, up to a few tens of ns of neutron transport) and enter the likelihood as constrained
  nuisance parameters;
* quenching: E_ee(E_nr) = a x + b x² + c x³ + d x⁴ with x = E_nr in MeVnr (release ``scintRespCoefficients.txt``)
  with its two systematic directions (±1σ each) as nuisances z₀, z₁: coefficients nominal + z·(variant − nominal);
* smearing: gamma distribution of the PE count with a = 0.0749/E_ee, b = 9.56 E_ee (E_ee in keVee), mean
  1/a = 13.35 PE/keVee × E_ee (arXiv:2110.07730; :func:`cevns.detectors.smearing.gamma_pe_matrix`);
* energy efficiency ε(x) = a/(1 + e^{−b(x−c)}) + d (release ``effCoefficients.txt``; the file labels both variants
  "+1 sigma": they are mirror images about the nominal, taken as +1σ and −1σ), clipped at 0, nuisance z_ε;
* time efficiency 1 for t < 0.52 µs, exp(−0.0494 (t − 0.52 µs)/µs) after (arXiv:2110.07730), on every component;
* backgrounds: BRN and NIN as (PE shape) × (t_rec shape) of the release, normalisations constrained; BRN time shift
  nuisance; NIN timing follows the proton-pulse mean; steady state from the anti-coincidence (AC) events (PE
  marginal × (flat × time efficiency)), normalisation constrained by the AC statistics.

Speed: CEvNS PE spectra per flavour are precomputed on a grid of the quenching and efficiency nuisances for the three
coefficients of Q_W² in Δ = sin²θ_W − sin²θ_W⁰ (Q_W is linear in sin²θ_W), time PDFs on a grid of pulse (mean,
width); one expectation is a trilinear + bilinear interpolation and a few outer products (tens of µs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from cevns import constants as C
from cevns.detectors.efficiency import coherent2021_efficiency, coherent2021_time_efficiency
from cevns.detectors.quenching import PolynomialEee
from cevns.detectors.response import aggregate_rows
from cevns.detectors.smearing import gamma_pe_matrix
from cevns.errors import ConfigError, DataError, UnknownNameError
from cevns.experiments.base import SpecExperiment
from cevns.interactions.terms import qw2_at, sin2_qw2_coefficients
from cevns.experiments.releases import read_table
from cevns.experiments.stopped_pion import edges_from_spec
from cevns.inference.likelihood import BinnedPoissonLikelihood, Parameter
from cevns.rates import FluxKernels, flux_kernels
from cevns.sources.stopped_pion import StoppedPionSource, gaussian_pulse_time_cdf
from cevns.targets.materials import material

__all__ = ["StoppedPionEventsExperiment", "FastBinnedPoissonLikelihood", "SIGNAL_MODES", "quenching_from_release_coeffs"]

#: likelihood signal parameterisations: free counts, cross-section scale (× flux), sin²θ_W (× flux), ν_e / ν_μ scales
SIGNAL_MODES = ("counts", "xsec_scale", "sin2_theta_w", "flavour")
PREFIX = "csi21_"


def _centres(e):
    return 0.5 * (e[:-1] + e[1:])


def quenching_from_release_coeffs(coeffs_MeV) -> PolynomialEee:
    """E_ee [keVee] from E_nr [keVnr] for E_ee[MeVee] = Σ_k c_k x^k, x = E_nr [MeVnr] (k = 1..4, release convention of
    ``scintRespCoefficients.txt``, arXiv:2110.07730): c_k in keV units is c_k · 10³ · 10^{−3k}."""
    c = np.asarray(coeffs_MeV, dtype=float)
    return PolynomialEee(tuple([0.0] + [float(c[k - 1]) * 1e3 * 1e-3**k for k in range(1, len(c) + 1)]))


def _variant_coeffs(nominal, plus, minus, z: float) -> np.ndarray:
    """Coefficients at z standard deviations: nominal + z (plus − nominal) for z ≥ 0, nominal + |z| (minus − nominal)
    for z < 0 (linear in the coefficients, as the release's ±1σ variants are)."""
    return nominal + (z * (plus - nominal) if z >= 0 else -z * (minus - nominal))


class _UniformGrid:
    """A uniform 1-D grid with O(1) bracketing (clamped to the ends)."""

    def __init__(self, start: float, step: float, n: int):
        self.start, self.step, self.n = float(start), float(step), int(n)
        self.values = self.start + self.step * np.arange(self.n)

    def bracket(self, x: float) -> tuple[int, float]:
        u = (x - self.start) / self.step
        if u <= 0.0:
            return 0, 0.0
        if u >= self.n - 1:
            return self.n - 2, 1.0
        i = int(u)
        return i, u - i

    @property
    def limits(self):
        return float(self.values[0]), float(self.values[-1])


#: kept for compatibility: the shared :class:`BinnedPoissonLikelihood` now has the fast χ² and pull terms
FastBinnedPoissonLikelihood = BinnedPoissonLikelihood


@dataclass
class StoppedPionEventsExperiment(SpecExperiment):
    """A (PE × t_rec) CEvNS experiment built from unbinned event lists. Construct with :meth:`from_spec`."""

    spec: dict
    data_root: str | None = None
    z_grid: tuple[float, float, int] = (-3.0, 0.5, 13)  # quenching / efficiency nuisances [σ]: start, step, n
    mean_half_range_us: float = 0.30
    grid_step_us: float = 0.01
    sigma_grid_us: tuple[float, float, int] = (0.05, 0.01, 26)
    brn_shift_half_range_us: float = 0.25
    n_time_sub: int = 25
    _cache: dict = field(default_factory=dict, repr=False)

    def _setup(self) -> None:
        sp = self.spec
        self.pe_edges = edges_from_spec(sp["binning"]["pe_edges"])
        self.t_edges = edges_from_spec(sp["binning"]["time_edges_us"])
        if self.pe_edges[0] < 0 or np.any(np.diff(self.pe_edges) <= 0) or np.any(np.diff(self.t_edges) <= 0):
            raise ConfigError(f"spec {self.name}: bin edges must increase (PE edges >= 0)")
        self.npe, self.nt = len(self.pe_edges) - 1, len(self.t_edges) - 1
        det = sp["detector"]
        self.fine_pe_width = det.get("fine_pe_width", 0.5)
        self.fine_pe_edges = np.arange(0.0, self.pe_edges[-1] + 0.5 * self.fine_pe_width, self.fine_pe_width)
        self._agg_pe = aggregate_rows(np.eye(len(self.fine_pe_edges) - 1), self.fine_pe_edges, self.pe_edges)
        # fine time sub-bins inside every observable time bin (for the time-efficiency weighting)
        sub = np.linspace(0.0, 1.0, self.n_time_sub + 1)
        self.fine_t_edges = np.unique(np.concatenate([lo + (hi - lo) * sub for lo, hi in zip(self.t_edges[:-1], self.t_edges[1:])]))
        te = det["time_efficiency"]
        self.time_eff_params = {"t0_us": te["t0_us"], "slope_per_us": te["slope_per_us"]}
        self._eff_t_fine = coherent2021_time_efficiency(_centres(self.fine_t_edges), **self.time_eff_params)
        # source and target
        src = sp["source"]
        self.pot = src["pot"]
        self.flux_sigma = src.get("nu_per_flavour_per_pot_sigma", 0.0) / src["nu_per_flavour_per_pot"]
        self.source = StoppedPionSource(self.pot, src["nu_per_flavour_per_pot"], src["distance_m"])
        tgt = sp["target"]
        self.components = [(iso, n * tgt["mass_kg"]) for iso, n in material(tgt["material"]).components]
        self.kernels: FluxKernels = flux_kernels(self.source, self.components)
        self.flavours = tuple(self.source.flavours)
        self._comp_idx = np.array([0 if self.source.component(f) == "prompt" else 1 for f in self.flavours])
        self.form_factor = tgt.get("form_factor", "helm")
        self.scheme = tgt.get("coupling_scheme", "pdg")
        self.s2_ref = C.SIN2_THETA_W_0
        self._qw2_components()
        # detector files
        self.light_yield = det["light_yield_pe_per_keVee"]
        sm = det["smearing"]
        self.gamma_coefs = (sm["a_coef"], sm["b_coef"])
        q = read_table(self._file(det["quenching"]["file"]), ncols=4, rows=5)
        self.qf_nominal, self.qf_variants = q[0], ((q[1], q[2]), (q[3], q[4]))
        e = read_table(self._file(det["efficiency"]["file"]), ncols=4, rows=3)
        self.eff_nominal, self.eff_variant = e[0], (e[1], e[2])
        # data
        d = sp["data"]
        self.events = self._read_events(d["observed"], d.get("observed_events"))
        self.ac_events = self._read_events(d["steady_state"], d.get("steady_state_events"))
        self.observed = self._hist(self.events)
        self.ac = self._hist(self.ac_events)
        # grids and templates
        self._calibrate_timing()
        self._build_time_grids()
        self._build_pe_grids()
        self._build_backgrounds()
        self.cevns_sm = self.cevns_expected()

    def _read_events(self, fname: str, n_expected: int | None) -> np.ndarray:
        arr = read_table(self._file(fname), ncols=2, rows=n_expected)
        if np.any(arr[:, 0] < 0) or np.any(arr[:, 1] < self.t_edges[0] - 1.0):
            raise DataError(f"{fname}: negative PE or times far before the window (malformed event list)")
        return arr

    def _hist(self, ev: np.ndarray) -> np.ndarray:
        """Events with pe_edges[0] ≤ PE < pe_edges[-1], t_edges[0] ≤ t < t_edges[-1] counted in [PE bin, t bin]."""
        pe, t = ev[:, 0], ev[:, 1]
        sel = (pe >= self.pe_edges[0]) & (pe < self.pe_edges[-1]) & (t >= self.t_edges[0]) & (t < self.t_edges[-1])
        i = np.searchsorted(self.pe_edges, pe[sel], side="right") - 1
        j = np.searchsorted(self.t_edges, t[sel], side="right") - 1
        h = np.zeros((self.npe, self.nt))
        np.add.at(h, (i, j), 1.0)
        return h

    # ---- weak charge on the nodes --------------------------------------------------------------------------
    def _qw2_components(self) -> None:
        """Q_W² = c₀ + c₁Δ + c₂Δ² (Δ = sin²θ_W − s²₀) on every (flavour, isotope) node set."""
        self._qw2c = sin2_qw2_coefficients(self.components, self.kernels.nodes, self.flavours, self.form_factor,
                                           self.scheme, self.s2_ref)

    def qw2_sm(self, sin2_theta_w: float | None = None) -> dict:
        """Q_W² on the nodes per (flavour, isotope name) for a weak mixing angle (default: the SM value)."""
        return qw2_at(self._qw2c, sin2_theta_w, self.s2_ref)

    # ---- detector response ---------------------------------------------------------------------------------
    def qf_coeffs(self, z0: float = 0.0, z1: float = 0.0) -> np.ndarray:
        (p0, m0), (p1, m1) = self.qf_variants
        return _variant_coeffs(self.qf_nominal, p0, m0, z0) + _variant_coeffs(self.qf_nominal, p1, m1, z1) - self.qf_nominal

    def eff_coeffs(self, ze: float = 0.0) -> np.ndarray:
        return _variant_coeffs(self.eff_nominal, self.eff_variant[0], self.eff_variant[1], ze)

    def efficiency(self, x_pe, ze: float = 0.0) -> np.ndarray:
        """Energy efficiency at reconstructed PE x (clipped at 0, where the release's logistic goes negative)."""
        return np.maximum(coherent2021_efficiency(x_pe, *self.eff_coeffs(ze)), 0.0)

    def fine_response(self, T_keV, z0: float = 0.0, z1: float = 0.0) -> np.ndarray:
        """P[fine PE bin, node]: gamma-smeared PE of a recoil T [keVnr] (no efficiency)."""
        eee = np.maximum(quenching_from_release_coeffs(self.qf_coeffs(z0, z1)).eee_keV(T_keV), 0.0)
        return gamma_pe_matrix(eee, self.light_yield, self.fine_pe_edges, *self.gamma_coefs)

    def response_matrix(self, T_keV, z0: float = 0.0, z1: float = 0.0, ze: float = 0.0) -> np.ndarray:
        """R[PE bin, node] including the energy efficiency (evaluated at the fine PE bin centres)."""
        eff = self.efficiency(_centres(self.fine_pe_edges), ze)
        return (self._agg_pe * eff[None, :]) @ self.fine_response(T_keV, z0, z1)

    # ---- timing --------------------------------------------------------------------------------------------
    def _time_bins_from_fine(self, fine_counts: np.ndarray) -> np.ndarray:
        """Fine-bin contents (…, n_fine) × time efficiency, summed into the observable time bins."""
        w = fine_counts * self._eff_t_fine
        return w.reshape(w.shape[:-1] + (self.nt, self.n_time_sub)).sum(axis=-1)

    def time_pdf(self, component: str, mean_us: float, sigma_us: float) -> np.ndarray:
        """Probability × time efficiency per observable t_rec bin for a Gaussian pulse (slow path)."""
        cdf = gaussian_pulse_time_cdf(self.fine_t_edges, component, mean_us, sigma_us)
        return self._time_bins_from_fine(np.diff(cdf))

    def _read_time_hist(self, fname: str):
        arr = read_table(self._file(fname), ncols=2, min_rows=10)
        t, v = arr[:, 0], arr[:, 1]
        dt = np.diff(t)
        if np.any(dt <= 0) or not np.allclose(dt, dt[0], rtol=1e-3, atol=1e-6) or np.any(v < 0):
            raise DataError(f"{fname}: expected uniform increasing t_rec bin centres and non-negative values")
        edges = np.concatenate([t - 0.5 * dt[0], [t[-1] + 0.5 * dt[0]]])
        if edges[0] > self.t_edges[0] + 1e-9 or edges[-1] < self.t_edges[-1] - 1e-9:
            raise DataError(f"{fname}: t_rec range [{edges[0]:.3f}, {edges[-1]:.3f}] µs does not cover the analysis "
                            f"window [{self.t_edges[0]}, {self.t_edges[-1]}] µs (truncated file?)")
        return edges, v

    def _shifted_time_counts(self, edges, values, shift_us: float) -> np.ndarray:
        """A released t_rec histogram shifted by ``shift_us`` (linear interpolation of its cumulative), × time
        efficiency, in the observable time bins."""
        cum = np.concatenate([[0.0], np.cumsum(values)])
        c = np.interp(self.fine_t_edges - shift_us, edges, cum)
        return self._time_bins_from_fine(np.diff(c))

    def _calibrate_timing(self) -> None:
        """Pulse mean/width: fit the released NIN t_rec shape with pulse ⊗ (a prompt fraction f_p of π⁺ decays, and
        1 − f_p of μ⁺ decays) (NIN come from the same neutrinos), or take the spec values."""
        tm = self.spec["source"]["timing"]
        self.nin_time_edges, self.nin_time_values = self._read_time_hist(self.spec["backgrounds"]["nin"]["time_file"])
        mean, sigma = tm["mean_us"], tm["sigma_us"]
        self.timing_calibration = {"method": tm.get("calibrate_from", "none")}
        if tm.get("calibrate_from", "none") == "nin_time_shape":
            e, v = self.nin_time_edges, self.nin_time_values / self.nin_time_values.sum()

            def resid(p):
                m, s, fp = p
                return fp * np.diff(gaussian_pulse_time_cdf(e, "prompt", m, s)) + \
                    (1 - fp) * np.diff(gaussian_pulse_time_cdf(e, "delayed", m, s)) - v

            r = optimize.least_squares(resid, [mean, sigma, 0.05], bounds=([-1.0, 0.02, 0.0], [3.0, 0.6, 1.0]))
            if not r.success:
                raise DataError("could not fit the pulse timing to the NIN t_rec shape")
            mean, sigma = float(r.x[0]), float(r.x[1])
            self.timing_calibration.update(mean_us=mean, sigma_us=sigma, prompt_fraction=float(r.x[2]),
                                           rms_residual_rel=float(np.sqrt(np.mean(r.fun**2)) / v.max()))
        self.pulse_mean0, self.pulse_sigma0 = mean, sigma
        self.pulse_mean_prior = tm.get("mean_prior_sigma_us", 0.05)
        self.pulse_sigma_prior = tm.get("sigma_prior_sigma_us", 0.02)

    def _build_time_grids(self) -> None:
        n_m = int(round(2 * self.mean_half_range_us / self.grid_step_us)) + 1
        self.mean_grid = _UniformGrid(self.pulse_mean0 - self.mean_half_range_us, self.grid_step_us, n_m)
        self.sigma_grid = _UniformGrid(*self.sigma_grid_us)
        if not (self.sigma_grid.limits[0] < self.pulse_sigma0 < self.sigma_grid.limits[1]):
            raise ConfigError(f"pulse width {self.pulse_sigma0:.3f} µs outside the timing grid {self.sigma_grid.limits}")
        tg = np.empty((self.mean_grid.n, self.sigma_grid.n, 2, self.nt))
        for a, m in enumerate(self.mean_grid.values):
            for b, s in enumerate(self.sigma_grid.values):
                for c, comp in enumerate(("prompt", "delayed")):
                    tg[a, b, c] = self.time_pdf(comp, m, s)
        self._time_grid = tg
        # NIN timing follows the pulse mean (shift relative to the calibrated mean)
        self._nin_time_grid = np.stack([self._shifted_time_counts(self.nin_time_edges, self.nin_time_values,
                                                                  m - self.pulse_mean0) for m in self.mean_grid.values])

    # ---- CEvNS PE grids ------------------------------------------------------------------------------------
    def _build_pe_grids(self) -> None:
        zg = _UniformGrid(*self.z_grid)
        self.zgrid = zg
        nz, F = zg.n, len(self.flavours)
        nfine = len(self.fine_pe_edges) - 1
        fine = np.zeros((nz, nz, F, 3, nfine))
        for iso, _ in self.components:
            nd = self.kernels.nodes[iso.name]
            eee = np.stack([np.maximum(quenching_from_release_coeffs(self.qf_coeffs(a, b)).eee_keV(nd.T_keV), 0.0)
                            for a in zg.values for b in zg.values])  # (nz², nodes)
            R = gamma_pe_matrix(eee.ravel(), self.light_yield, self.fine_pe_edges, *self.gamma_coefs)
            R = R.reshape(nfine, nz, nz, -1)
            for fi, f in enumerate(self.flavours):
                kc = self.kernels.kernels[(f, iso.name)][None, :] * self._qw2c[(f, iso.name)]  # (3, nodes)
                fine[:, :, fi] += np.einsum("pabn,kn->abkp", R, kc)
        eff = np.stack([self.efficiency(_centres(self.fine_pe_edges), z) for z in zg.values])  # (nz, nfine)
        # pe[a, b, e, f, k, p] = Σ_fine agg[p, fine] eff[e, fine] fine[a, b, f, k, fine]
        self._pe_grid = np.einsum("abfkn,en,pn->abefkp", fine, eff, self._agg_pe, optimize=True)

    def cevns_pe_spectra(self, z0=0.0, z1=0.0, ze=0.0, sin2_theta_w=None) -> np.ndarray:
        """Interpolated CEvNS PE spectra per flavour [flavour, PE bin] (absolute counts, nominal flux)."""
        zg = self.zgrid
        i0, w0 = zg.bracket(z0)
        i1, w1 = zg.bracket(z1)
        ie, we = zg.bracket(ze)
        blk = self._pe_grid[i0:i0 + 2, i1:i1 + 2, ie:ie + 2]
        w = np.multiply.outer(np.multiply.outer((1 - w0, w0), (1 - w1, w1)), (1 - we, we))
        pe_fk = np.tensordot(w, blk, axes=3)  # (F, 3, P)
        d = 0.0 if sin2_theta_w is None else sin2_theta_w - self.s2_ref
        return pe_fk[:, 0] + d * pe_fk[:, 1] + (d * d) * pe_fk[:, 2]

    def time_pdfs(self, mean_us: float, sigma_us: float) -> np.ndarray:
        """Interpolated (prompt, delayed) time PDFs × efficiency [2, t bin]."""
        a, wa = self.mean_grid.bracket(mean_us)
        b, wb = self.sigma_grid.bracket(sigma_us)
        g = self._time_grid
        return ((1 - wa) * ((1 - wb) * g[a, b] + wb * g[a, b + 1]) + wa * ((1 - wb) * g[a + 1, b] + wb * g[a + 1, b + 1]))

    def cevns_expected(self, z0=0.0, z1=0.0, ze=0.0, mean_us=None, sigma_us=None, sin2_theta_w=None,
                       flavour_weights=None, by_flavour: bool = False):
        """Expected CEvNS counts [PE bin, t bin] (hot-path interpolation; nominal flux): Σ_f w_f S_f(PE) ⊗ T_f(t)."""
        pe = self.cevns_pe_spectra(z0, z1, ze, sin2_theta_w)
        tp = self.time_pdfs(self.pulse_mean0 if mean_us is None else mean_us,
                            self.pulse_sigma0 if sigma_us is None else sigma_us)[self._comp_idx]
        if flavour_weights is not None:
            pe = pe * np.asarray(flavour_weights, float)[:, None]
        if by_flavour:
            return {f: np.outer(pe[i], tp[i]) for i, f in enumerate(self.flavours)}
        return pe.T @ tp

    def cevns_template(self, z0=0.0, z1=0.0, ze=0.0, mean_us=None, sigma_us=None, sin2_theta_w=None,
                       by_flavour: bool = False, **qw_kwargs):
        """Slow path, from scratch: response matrices, weak charges (any :func:`weak_charge` options:
        form_factor_model, r_n_fm, scheme ...), and time PDFs at exactly these nuisance values."""
        from cevns.interactions.cevns import weak_charge

        mean_us = self.pulse_mean0 if mean_us is None else mean_us
        sigma_us = self.pulse_sigma0 if sigma_us is None else sigma_us
        qw_kwargs.setdefault("form_factor_model", self.form_factor)
        qw_kwargs.setdefault("scheme", self.scheme)
        tp = {c: self.time_pdf(c, mean_us, sigma_us) for c in ("prompt", "delayed")}
        out = {}
        for iso, _ in self.components:
            nd = self.kernels.nodes[iso.name]
            R = self.response_matrix(nd.T_keV, z0, z1, ze)
            for f in self.flavours:
                qw = weak_charge(nd.T_MeV, iso, f, sin2_theta_w=sin2_theta_w if sin2_theta_w is not None else self.s2_ref,
                                 **qw_kwargs)
                spec_pe = R @ self.kernels.events(f, iso.name, qw * qw)
                out[f] = out.get(f, 0.0) + np.outer(spec_pe, tp[self.source.component(f)])
        return out if by_flavour else sum(out.values())

    # ---- physics-parameter interface (weak-charge models) --------------------------------------------------
    def response_kernel_matrices(self, z0=0.0, z1=0.0, ze=0.0) -> dict:
        """M[(flavour, iso)] = R_iso[PE bin, node] × kernel[(flavour, iso)][node]: PE counts per unit Q_W² on each node."""
        key = ("M", z0, z1, ze)
        if key not in self._cache:
            mats = {}
            for iso, _ in self.components:
                R = self.response_matrix(self.kernels.nodes[iso.name].T_keV, z0, z1, ze)
                for f in self.flavours:
                    mats[(f, iso.name)] = R * self.kernels.kernels[(f, iso.name)][None, :]
            self._cache[key] = mats
        return self._cache[key]

    def cevns_template_from_qw2(self, qw2: dict, mean_us=None, sigma_us=None, z0=0.0, z1=0.0, ze=0.0) -> np.ndarray:
        """Expected CEvNS counts [PE, t] for weak charges squared on the recoil nodes: ``qw2[(flavour, iso_name)]`` is
        an array on ``kernels.nodes[iso_name]`` (shape (nodes,) or (P, nodes) for a batch → result (P, PE, t)).
        Every model that only changes Q_W (sin²θ_W, R_n, NSI, Z′) is a matrix-vector product here."""
        M = self.response_kernel_matrices(z0, z1, ze)
        tp = self.time_pdfs(self.pulse_mean0 if mean_us is None else mean_us,
                            self.pulse_sigma0 if sigma_us is None else sigma_us)
        missing = [k for k in M if k not in qw2]
        if missing:
            raise ConfigError(f"qw2 lacks {missing}; needs every (flavour, isotope) of {sorted(M)}")
        out = 0.0
        for (f, iso), m in M.items():
            pe = np.asarray(qw2[(f, iso)], float) @ m.T  # (..., PE)
            out = out + pe[..., :, None] * tp[0 if self.source.component(f) == "prompt" else 1]
        return out

    # ---- flux-averaged cross sections ----------------------------------------------------------------------
    def flux_averaged_xsec(self, flavours=None, sin2_theta_w=None) -> float:
        """SM flux-averaged CEvNS cross section per nucleus [cm²]: Σ_{f,iso} N_iso Φ_f ⟨σ_iso⟩_f / (Σ_f Φ_f Σ_iso N_iso),
        no detector response (the convention of arXiv:2110.07730: ⟨σ⟩_SM ≈ 189 × 10⁻⁴⁰ cm² for CsI)."""
        flavours = tuple(self.flavours if flavours is None else flavours)
        for f in flavours:
            if f not in self.flavours:
                raise UnknownNameError("stopped-pion flavour", f, self.flavours)
        qw2 = self.qw2_sm(sin2_theta_w)
        n_tot = sum(n for _, n in self.components)
        events = sum(float(np.sum(self.kernels.kernels[(f, iso.name)] * qw2[(f, iso.name)]))
                     for f in flavours for iso, _ in self.components)
        fluence = sum(self.source.fluence_per_cm2(f) for f in flavours)
        return events / (fluence * n_tot)

    # ---- backgrounds ---------------------------------------------------------------------------------------
    def _pe_shape(self, fname: str, which: str):
        arr = read_table(self._file(fname), ncols=2, rows=250)
        pe, v = arr[:, 0], arr[:, 1]
        if not np.allclose(pe, np.arange(250) + 0.5) or np.any(v < 0):
            raise DataError(f"{fname}: expected 250 rows of 1-PE bin centres 0.5 … 249.5 and non-negative values")
        one = np.arange(251.0)
        if self.pe_edges[-1] > 250 or not np.allclose(self.pe_edges, np.round(self.pe_edges)):
            raise ConfigError(f"{fname}: PE edges must be integers within [0, 250] to rebin the 1-PE release shape")
        binned = aggregate_rows(v[:, None], one, self.pe_edges)[:, 0]
        roi = binned.sum()
        if roi <= 0:
            raise DataError(f"{fname}: no content inside the PE range of the analysis")
        frac = roi / v.sum() if which == "counts_all_pe" else 1.0
        return binned / roi, frac

    def _build_backgrounds(self) -> None:
        bk = self.spec["backgrounds"]
        b, n = bk["brn"], bk["nin"]
        self.brn_pe, brn_frac = self._pe_shape(b["energy_file"], b.get("time_file_sum", "counts_all_pe"))
        self.nin_pe, nin_frac = self._pe_shape(n["energy_file"], n.get("time_file_sum", "counts_all_pe"))
        brn_edges, brn_vals = self._read_time_hist(b["time_file"])
        self.brn_sigma, self.nin_sigma = b["norm_sigma"], n["norm_sigma"]
        self.brn_shift_sigma = b.get("time_shift_sigma_us", 0.05)
        nb = int(round(2 * self.brn_shift_half_range_us / self.grid_step_us)) + 1
        self.brn_shift_grid = _UniformGrid(-self.brn_shift_half_range_us, self.grid_step_us, nb)
        self._brn_time_grid = brn_frac * np.stack([self._shifted_time_counts(brn_edges, brn_vals, s)
                                                   for s in self.brn_shift_grid.values])
        self._nin_time_grid = nin_frac * self._nin_time_grid
        # steady state: AC PE marginal × time shape
        ac_pe = self.ac.sum(axis=1)
        self.n_ac = float(ac_pe.sum())
        if self.n_ac <= 0:
            raise DataError(f"{self.spec['data']['steady_state']}: no anti-coincidence events in the analysis window")
        if bk["steady_state"]["time_shape"] == "flat_times_efficiency":
            w = self._time_bins_from_fine(np.diff(self.fine_t_edges))
            self.ss_template = np.outer(ac_pe, w / w.sum())
        else:
            self.ss_template = np.outer(ac_pe, self.ac.sum(axis=0)) / self.n_ac
        self.ss_sigma = 1.0 / math.sqrt(self.n_ac)

    def brn_expected(self, shift_us: float = 0.0) -> np.ndarray:
        i, w = self.brn_shift_grid.bracket(shift_us)
        return np.outer(self.brn_pe, (1 - w) * self._brn_time_grid[i] + w * self._brn_time_grid[i + 1])

    def nin_expected(self, mean_us: float | None = None) -> np.ndarray:
        i, w = self.mean_grid.bracket(self.pulse_mean0 if mean_us is None else mean_us)
        return np.outer(self.nin_pe, (1 - w) * self._nin_time_grid[i] + w * self._nin_time_grid[i + 1])

    # ---- predictions ---------------------------------------------------------------------------------------
    def sm_prediction(self, **kw) -> float:
        """SM CEvNS counts in the analysis window (nominal inputs; keyword args as :meth:`cevns_expected`)."""
        return float(self.cevns_expected(**kw).sum()) if kw else float(self.cevns_sm.sum())

    def sm_prediction_uncertainty(self) -> dict[str, float]:
        """Relative uncertainties of the SM prediction: flux, quenching (two directions), efficiency, timing, form
        factor (theory, from the spec), 'experimental' and 'total' quadrature sums."""
        n0 = self.sm_prediction()
        half = lambda k, **kw: 0.5 * abs(self.sm_prediction(**{k: 1.0}, **kw) - self.sm_prediction(**{k: -1.0}, **kw)) / n0
        out = {"flux": self.flux_sigma, "quenching_0": half("z0"), "quenching_1": half("z1"), "efficiency": half("ze")}
        tm = [self.sm_prediction(mean_us=self.pulse_mean0 + s * self.pulse_mean_prior) for s in (-1, 1)]
        ts = [self.sm_prediction(sigma_us=self.pulse_sigma0 + s * self.pulse_sigma_prior) for s in (-1, 1)]
        out["timing"] = math.hypot(0.5 * (tm[1] - tm[0]), 0.5 * (ts[1] - ts[0])) / n0
        out["experimental"] = math.sqrt(sum(v * v for v in out.values()))
        out["theory_form_factor"] = self.spec.get("systematics", {}).get("form_factor_sigma", 0.0)
        out["total"] = math.hypot(out["experimental"], out["theory_form_factor"])
        return out

    # ---- likelihood ----------------------------------------------------------------------------------------
    def nuisance_parameters(self) -> list[Parameter]:
        zlo, zhi = self.zgrid.limits
        return [
            Parameter(PREFIX + "qf_pc0", 0.0, (zlo, zhi), (0.0, 1.0), 0.5, "nuisance", "quenching systematic model 0 [σ]"),
            Parameter(PREFIX + "qf_pc1", 0.0, (zlo, zhi), (0.0, 1.0), 0.5, "nuisance", "quenching systematic model 1 [σ]"),
            Parameter(PREFIX + "eff", 0.0, (zlo, zhi), (0.0, 1.0), 0.5, "nuisance", "energy efficiency variant [σ]"),
            Parameter(PREFIX + "pulse_mean_us", self.pulse_mean0, self.mean_grid.limits,
                      (self.pulse_mean0, self.pulse_mean_prior), 0.02, "nuisance", "proton-pulse mean in t_rec [µs]"),
            Parameter(PREFIX + "pulse_sigma_us", self.pulse_sigma0, self.sigma_grid.limits,
                      (self.pulse_sigma0, self.pulse_sigma_prior), 0.01, "nuisance", "proton-pulse width [µs]"),
            Parameter(PREFIX + "brn_norm", 1.0, (0.0, 4.0), (1.0, self.brn_sigma), 0.1, "nuisance", "BRN normalisation"),
            Parameter(PREFIX + "brn_time_shift_us", 0.0, self.brn_shift_grid.limits, (0.0, self.brn_shift_sigma), 0.02,
                      "nuisance", "BRN t_rec shift [µs]"),
            Parameter(PREFIX + "nin_norm", 1.0, (0.0, 4.0), (1.0, self.nin_sigma), 0.1, "nuisance", "NIN normalisation"),
            Parameter(PREFIX + "ss_norm", 1.0, (0.5, 1.5), (1.0, self.ss_sigma), 0.02, "nuisance", "steady-state normalisation"),
        ]

    def signal_parameters(self, signal: str) -> list[Parameter]:
        flux = Parameter("sns_flux_norm", 1.0, (0.3, 2.0), (1.0, self.flux_sigma), 0.05, "nuisance",
                         "SNS neutrino flux normalisation (shared by name with other SNS experiments)")
        n0 = self.sm_prediction()
        if signal == "counts":
            return [Parameter("n_cevns", n0, (0.0, 10.0 * n0), None, 10.0, "poi", "CEvNS counts in the window (free)")]
        if signal == "xsec_scale":
            return [Parameter("xsec_scale", 1.0, (0.0, 5.0), None, 0.05, "poi", "σ / σ_SM (all flavours)"), flux]
        if signal == "sin2_theta_w":
            return [Parameter("sin2_theta_w", self.s2_ref, (0.0, 0.6), None, 0.01, "poi", "weak mixing angle"), flux]
        if signal == "flavour":
            return [Parameter("xsec_scale_nue", 1.0, (0.0, 6.0), None, 0.1, "poi", "σ_νe / σ_νe,SM"),
                    Parameter("xsec_scale_numu", 1.0, (0.0, 6.0), None, 0.1, "poi", "σ_νμ / σ_νμ,SM (ν_μ and ν̄_μ)"),
                    flux]
        raise UnknownNameError("signal parameterisation", signal, SIGNAL_MODES)

    def parameters(self, signal: str = "counts") -> list[Parameter]:
        return self.signal_parameters(signal) + self.nuisance_parameters()

    def _hot_arrays(self):
        """Flattened grids for the hot path. The CEvNS PE spectra are summed per timing component (prompt ν_μ;
        delayed ν_e + ν̄_μ share one time PDF): rows (z₀, z₁, z_ε) → (3 [Q_W² coefficients], 2·P); for the flavour
        fit per (ν_μ prompt, ν_e, ν̄_μ) → (3·P). Time grid rows (mean, σ) → (2·T)."""
        if "hot" not in self._cache:
            nz = self.zgrid.n
            P, T = self.npe, self.nt
            g = self._pe_grid.reshape(nz ** 3, len(self.flavours), 3, P)
            onehot = np.stack([(self._comp_idx == c).astype(float) for c in (0, 1)])  # (2, F)
            pegc3 = np.ascontiguousarray(np.einsum("cf,rfkp->rkcp", onehot, g).reshape(nz ** 3, 3, 2 * P))
            # the Q_W²-constant part with the two component totals appended (interpolated along with the spectra)
            pegc0 = np.concatenate([pegc3[:, 0], pegc3[:, 0].reshape(nz ** 3, 2, P).sum(axis=2)], axis=1)
            order = [self.flavours.index(f) for f in ("numu", "nue", "numubar")]
            pegf = np.ascontiguousarray(g[:, order, 0, :].reshape(nz ** 3, 3 * P))
            tg = self._time_grid.reshape(self.mean_grid.n * self.sigma_grid.n, 2 * T)
            tg = np.concatenate([tg, tg.reshape(-1, 2, T).sum(axis=2)], axis=1)
            offs_z = (0, 1, nz, nz + 1, nz * nz, nz * nz + 1, nz * nz + nz, nz * nz + nz + 1)
            offs_t = np.array([0, 1, self.sigma_grid.n, self.sigma_grid.n + 1])
            self._cache["hot"] = (pegc3, pegc0, pegf, tg, offs_z, offs_t)
        return self._cache["hot"]

    def expected_fn(self, signal: str = "counts"):
        """μ(x) (flattened [PE, t]) for x ordered as :meth:`parameters` (signal): the likelihood's hot path.

        Trilinear interpolation of the CEvNS PE spectra in (z₀, z₁, z_ε), bilinear interpolation of the time PDFs in
        the pulse (mean, width), linear in the BRN shift; then μ = Aᵀ B where the rows of A are PE spectra (prompt
        and delayed CEvNS, BRN, NIN, steady state) and the rows of B their time distributions times normalisations
        (every component factorises in PE × time)."""
        if signal not in SIGNAL_MODES:
            raise UnknownNameError("signal parameterisation", signal, SIGNAL_MODES)
        ns = len(self.signal_parameters(signal))
        zg, mg, sg, bg = self.zgrid, self.mean_grid, self.sigma_grid, self.brn_shift_grid
        pegc3, pegc0, pegf, tg, offs_z, offs_t = self._hot_arrays()
        nz, nsg = zg.n, sg.n
        P, T = self.npe, self.nt
        brn_tg, nin_tg = self._brn_time_grid, self._nin_time_grid
        ss_pe = self.ss_template.sum(axis=1)
        ss_t = self.ss_template.sum(axis=0) / ss_pe.sum()
        if not np.allclose(np.outer(ss_pe, ss_t), self.ss_template):
            raise ConfigError("steady-state template does not factorise in PE × time")
        # rows: BRN, NIN, steady state, prompt CEvNS, delayed CEvNS; then the two CEvNS row totals (buffers written
        # in place by np.dot(..., out=))
        abuf, bbuf = np.empty(5 * P + 2), np.empty(5 * T + 2)
        A, B = abuf[:5 * P].reshape(5, P), bbuf[:5 * T].reshape(5, T)
        A[0], A[1], A[2] = self.brn_pe, self.nin_pe, ss_pe
        A2s, B2s = abuf[3 * P:], bbuf[3 * T:]  # CEvNS rows + totals
        A2 = abuf[3 * P:5 * P]
        s2_ref = self.s2_ref
        zbr, mbr, sbr, bbr = zg.bracket, mg.bracket, sg.bracket, bg.bracket
        dot, multiply, array = np.dot, np.multiply, np.array

        def expected(x):
            x = x.tolist() if hasattr(x, "tolist") else list(x)  # Python floats: cheaper scalar arithmetic
            z0, z1, ze, m, s, bn, bs, nn, sn = x[ns:ns + 9]
            i0, w0 = zbr(z0)
            i1, w1 = zbr(z1)
            ie, we = zbr(ze)
            u0, u1, ue = 1.0 - w0, 1.0 - w1, 1.0 - we
            a00, a01, a10, a11 = u0 * u1, u0 * w1, w0 * u1, w0 * w1
            r = (i0 * nz + i1) * nz + ie
            rows = [r + o for o in offs_z]
            w8 = (a00 * ue, a00 * we, a01 * ue, a01 * we, a10 * ue, a10 * we, a11 * ue, a11 * we)
            if signal == "sin2_theta_w":
                d = x[0] - s2_ref
                dd = d * d
                w24 = array([c * k for c in w8 for k in (1.0, d, dd)])
                dot(w24, pegc3.take(rows, axis=0).reshape(24, 2 * P), out=A2)
                multiply(A2, x[1], out=A2)
            elif signal == "flavour":
                pf = dot(array(w8), pegf.take(rows, axis=0)).reshape(3, P)
                A[3] = pf[0] * (x[1] * x[2])
                A[4] = pf[1] * (x[0] * x[2]) + pf[2] * (x[1] * x[2])
            else:
                dot(array(w8), pegc0.take(rows, axis=0), out=A2s)
            a, wa = mbr(m)
            b, wb = sbr(s)
            ua = 1.0 - wa
            k = a * nsg + b
            dot(array((ua * (1.0 - wb), ua * wb, wa * (1.0 - wb), wa * wb)), tg.take([k, k + 1, k + nsg, k + nsg + 1], axis=0),
                out=B2s)
            if signal == "counts":
                multiply(A2, x[0] / (abuf[-2] * bbuf[-2] + abuf[-1] * bbuf[-1]), out=A2)
            elif signal == "xsec_scale":
                multiply(A2, x[0] * x[1], out=A2)
            j, wj = bbr(bs)
            dot(array((bn * (1.0 - wj), bn * wj)), brn_tg[j:j + 2], out=B[0])
            dot(array((nn * ua, nn * wa)), nin_tg[a:a + 2], out=B[1])
            multiply(ss_t, sn, out=B[2])
            return (A.T @ B).ravel()

        return expected

    def components_at(self, x, signal: str = "counts") -> dict[str, np.ndarray]:
        """Fitted components [PE, t] at parameter vector x (slower, for plots and tables)."""
        ns = len(self.signal_parameters(signal))
        z0, z1, ze, m, s, bn, bs, nn, sn = x[ns:ns + 9]
        if signal == "counts":
            sig = self.cevns_expected(z0, z1, ze, m, s)
            sig = sig * x[0] / sig.sum()
        elif signal == "flavour":
            fw = [x[2] * (x[0] if f == "nue" else x[1]) for f in self.flavours]
            sig = self.cevns_expected(z0, z1, ze, m, s, flavour_weights=fw)
        elif signal == "xsec_scale":
            sig = x[0] * x[1] * self.cevns_expected(z0, z1, ze, m, s)
        else:
            sig = x[1] * self.cevns_expected(z0, z1, ze, m, s, sin2_theta_w=x[0])
        return {"CEvNS": sig, "BRN": bn * self.brn_expected(bs), "NIN": nn * self.nin_expected(m),
                "steady state": sn * self.ss_template}

    def likelihood(self, signal: str = "counts") -> BinnedPoissonLikelihood:
        """Binned Poisson likelihood over the (PE, t_rec) window. ``signal``: 'counts' (n_cevns free), 'xsec_scale'
        (σ/σ_SM × sns_flux_norm), 'sin2_theta_w' (predicted from sin²θ_W × sns_flux_norm), 'flavour'
        (separate ν_e and ν_μ + ν̄_μ scales × sns_flux_norm). All nuisances of :meth:`nuisance_parameters`."""
        if signal not in SIGNAL_MODES:
            raise UnknownNameError("signal parameterisation", signal, SIGNAL_MODES)
        fn = self.expected_fn(signal)
        return FastBinnedPoissonLikelihood(self.name, self.parameters(signal), fn, self.observed.ravel())
