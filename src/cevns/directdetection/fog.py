"""The neutrino fog: discovery limits of a dark-matter search against the natural neutrino CEvNS background, their
exposure dependence and the fog index, following O'Hare, "New definition of the neutrino floor for direct dark
matter searches", PRL 127, 251802 (2021), arXiv:2109.03116.

* Rates: binned recoil spectra per tonne-year from the package's own rate engine — the neutrinos through
  :class:`cevns.sources.solar.NaturalNeutrinoSource` folded with the CEvNS kernel and
  :func:`cevns.interactions.terms.nuclear_weights`, the WIMP through :class:`cevns.sources.halo.HaloSource` with the
  'dm_si' kernel (:mod:`cevns.interactions.dark_matter`): no second CEvNS or WIMP formula. Default binning as in
  O'Hare's code: 50 log-spaced bins of nuclear-recoil energy from 10⁻⁴ to 200 keV, perfect efficiency and resolution.
* Discovery limit: the smallest σ for which the median experiment (Asimov data n = s + b) rejects the
  background-only hypothesis at 3σ, q₀ = −2 ln λ(0) ≥ 9, with every neutrino flux normalisation profiled under its
  Gaussian constraint (O'Hare 2021, the profile likelihood of his Sec. II; his ``like.f95``), and at least 0.5 signal events (his cut).
  The profile is a convex problem in the normalisations (Poisson in linear parameters + Gaussian): solved by a
  vectorised Newton iteration for many (exposure, σ) points at once; the root q₀ = 9 by a decade scan in σ and an
  Illinois (regula falsi) refinement in ln σ.
* Fog index n = −(d ln σ/d ln MT)⁻¹ (O'Hare 2021, its definition of the fog): 1 background-free, 2 Poisson background-limited, > 2
  when the flux uncertainties saturate the sensitivity. The floor is the discovery-limit cross section where n first
  reaches 2 as the exposure grows (the boundary of the fog; his ``Floor_2D`` reads the n = 2 crossing).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cevns import constants as C
from cevns.errors import PhysicsDomainError
from cevns.interactions.kinematics import t_max
from cevns.interactions.terms import KERNELS, nuclear_weights
from cevns.rates import FluxKernels, RecoilNodes
from cevns.sources.halo import DM_SPECIES, YEAR_S, HaloSource, VelocityDistribution, XENON1T_HALO, C_KMS
from cevns.sources.solar import NaturalNeutrinoSource

__all__ = ["DEFAULT_EDGES_keV", "SIGMA_REF_cm2", "FogRates", "neutrino_binned_rates", "wimp_binned_rates",
           "asimov_q0", "discovery_limit", "fog_index", "floor_from_curve", "neutrino_floor", "FloorResult",
           "published_floor"]

#: O'Hare's binning: 50 log-spaced recoil bins, 1e-4 to 200 keV (runNuFloor_SI.py)
DEFAULT_EDGES_keV = np.geomspace(1e-4, 200.0, 51)
#: the cross section at which signal templates are tabulated
SIGMA_REF_cm2 = 1e-45
Q0_3SIGMA = 9.0
MIN_SIGNAL_EVENTS = 0.5


def _components(target: str):
    from cevns.directdetection.spectra import target_components

    return target_components(target)


def _gl(n):
    return np.polynomial.legendre.leggauss(n)


def _binned_nodes(iso, edges_keV, breaks_keV, n_per_panel: int):
    """Gauss–Legendre nodes on the bins, panels also split at the kinematic breakpoints: (RecoilNodes, bin index)."""
    e = np.asarray(edges_keV, float)
    br = [b for b in breaks_keV if e[0] < b < e[-1]]
    pts = np.unique(np.concatenate([e, br]))
    x, w = _gl(n_per_panel)
    lo, hi = pts[:-1], pts[1:]
    T = (lo[:, None] + 0.5 * (hi - lo)[:, None] * (x + 1.0)).ravel()
    W = (0.5 * (hi - lo)[:, None] * w).ravel()
    idx = np.searchsorted(e, T, side="right") - 1
    return RecoilNodes(iso, T * C.keV, W * C.keV), idx


def _bin_sum(vals, idx, n_bins):
    out = np.zeros(n_bins)
    np.add.at(out, idx, vals)
    return out


@dataclass
class FogRates:
    """Binned neutrino CEvNS rates [events per tonne-year per bin] by component, with the flux uncertainties."""

    target: str
    edges_keV: np.ndarray
    components: tuple
    B: np.ndarray  # (J, n_bins)
    rel_uncertainty: np.ndarray  # (J,)

    def total(self) -> np.ndarray:
        return self.B.sum(axis=0)


def neutrino_binned_rates(target: str = "Xe", edges_keV=None, components=None, n_per_panel: int = 8,
                          form_factor: str = "helm", scheme: str = "one_loop") -> FogRates:
    """CEvNS events per tonne-year in each recoil bin, per neutrino component (the engine's 'sm' kernel and
    weights, SM couplings of ``scheme``)."""
    edges = np.asarray(DEFAULT_EDGES_keV if edges_keV is None else edges_keV, float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0) or edges[0] <= 0:
        raise PhysicsDomainError("recoil bin edges must be increasing and > 0 keV")
    src = NaturalNeutrinoSource(components, exposure_time_s=YEAR_S)
    comps = _components(target)
    J, nb = len(src.species), edges.size - 1
    B = np.zeros((J, nb))
    for iso, n in comps:
        M = iso.mass_MeV
        bps = []
        for s in src.species:
            sp = src.spectrum(s)
            bps += [float(t_max(e, M)) / C.keV for e, _ in sp.lines]
            if sp.pdf is not None:
                bps.append(float(t_max(sp.e_max, M)) / C.keV)
        nodes, idx = _binned_nodes(iso, edges, bps, n_per_panel)
        fk = FluxKernels(src, {iso.name: nodes}, {iso.name: float(n)}, src.species)
        for j, s in enumerate(src.species):
            K = fk.get("sm", KERNELS["sm"], s, iso.name)
            w = nuclear_weights({}, fk.nuclear_context(iso.name, s, form_factor, scheme))["sm"][0]
            B[j] += _bin_sum(K * w, idx, nb)
    unc = np.array([src.uncertainty(s) for s in src.species])
    return FogRates(str(target), edges, src.species, B, unc)


def wimp_binned_rates(masses_GeV, target: str = "Xe", edges_keV=None, halo: VelocityDistribution | None = None,
                      n_per_panel: int = 8, form_factor: str = "helm") -> np.ndarray:
    """Spin-independent WIMP events per tonne-year per bin at σ_n = 1e-45 cm² for each mass: (n_m, n_bins)."""
    from cevns.interactions.dark_matter import SIGMA_PARAMETER, reduced_mass_MeV

    edges = np.asarray(DEFAULT_EDGES_keV if edges_keV is None else edges_keV, float)
    masses = np.atleast_1d(np.asarray(masses_GeV, float))
    if not (np.all(np.isfinite(masses)) and np.all(masses > 0)):
        raise PhysicsDomainError("dark-matter masses must be finite and > 0 GeV")
    h = halo or XENON1T_HALO
    comps = _components(target)
    out = np.zeros((masses.size, edges.size - 1))
    phys = {SIGMA_PARAMETER: np.array([SIGMA_REF_cm2 / 1e-45])}
    for a, m in enumerate(masses):
        src = HaloSource(float(m), h, YEAR_S)
        mm = src.mass_MeV
        for iso, n in comps:
            M = iso.mass_MeV
            mu = float(reduced_mass_MeV(mm, M))
            bps = [2.0 * mu * mu * (v / C_KMS) ** 2 / M / C.keV for v in (h.v_max_kms, *h.kinks_kms)]
            nodes, idx = _binned_nodes(iso, edges, bps, n_per_panel)
            fk = FluxKernels(src, {iso.name: nodes}, {iso.name: float(n)}, src.species)
            K = fk.get("dm_si", KERNELS["dm_si"], DM_SPECIES, iso.name)
            w = nuclear_weights(phys, fk.nuclear_context(iso.name, DM_SPECIES, form_factor, "one_loop"))["dm_si"][0]
            out[a] += _bin_sum(K * w, idx, edges.size - 1)
    return out


# ---- the Asimov discovery significance with profiled neutrino fluxes ------------------------------------------------
def _r_minus_log1p(r):
    """r − ln(1 + r), accurate for small |r| (series) and elsewhere (log1p)."""
    r = np.asarray(r, float)
    small = np.abs(r) < 1e-3
    series = r * r * (0.5 - r * (1.0 / 3.0 - r * (0.25 - 0.2 * r)))
    with np.errstate(invalid="ignore", divide="ignore"):
        direct = r - np.log1p(r)
    return np.where(small, series, direct)


def asimov_q0(sigma_scale, exposure, S, B, rel_unc, n_iter: int = 40, tol: float = 1e-10) -> np.ndarray:
    """q₀ of the Asimov data set n = X(σ/σ_ref S + Σ_j B_j) against background only, with the normalisations Φ_j of
    every background profiled under Gaussian constraints (1, δ_j), for P points at once:

        q₀ = min_Φ { 2 Σ_i [b_i − n_i + n_i ln(n_i/b_i)] + Σ_j ((Φ_j − 1)/δ_j)² },   b_i = X Σ_j Φ_j B_ji

    (O'Hare 2021 Sec. II, as in his ``like.f95``: Poisson terms and Gaussian flux terms). ``sigma_scale``, ``exposure`` (P,)
    (σ/σ_ref, tonne-years); S (n_bins,), B (J, n_bins) per tonne-year; δ (J,). Newton's method on the convex
    objective with step halving that keeps b > 0."""
    ss = np.atleast_1d(np.asarray(sigma_scale, float))
    X = np.broadcast_to(np.atleast_1d(np.asarray(exposure, float)), ss.shape)
    S = np.asarray(S, float)
    B = np.asarray(B, float)
    use = (S + B.sum(axis=0)) > 0
    S, B = S[use], B[:, use]
    inv2 = 1.0 / np.asarray(rel_unc, float) ** 2
    P, J = ss.size, B.shape[0]
    s = (X * ss)[:, None] * S[None, :]
    n = s + X[:, None] * B.sum(axis=0)[None, :]
    XB = X[:, None, None] * B[None, :, :]  # (P, J, nb)
    d = np.zeros((P, J))

    def objective(dd):
        diff = np.einsum("pj,pjb->pb", dd, XB) - s  # b − n
        with np.errstate(invalid="ignore", divide="ignore"):
            r = diff / n
        val = 2.0 * np.sum(n * _r_minus_log1p(r), axis=1) + np.sum(dd * dd * inv2, axis=1)
        return np.where(np.all(n + diff > 0, axis=1), val, np.inf), diff

    f, diff = objective(d)
    diag = np.arange(J)
    for _ in range(n_iter):
        b = n + diff
        grad = 2.0 * np.einsum("pjb,pb->pj", XB, 1.0 - n / b) + 2.0 * d * inv2
        A = XB * np.sqrt(2.0 * n / (b * b))[:, None, :]
        H = A @ A.transpose(0, 2, 1)
        H[:, diag, diag] += 2.0 * inv2
        step = np.linalg.solve(H, grad[..., None])[..., 0]
        t = np.ones(P)
        active = np.ones(P, bool)
        for _k in range(40):  # backtracking: decrease the objective, keep b > 0
            trial = d - t[:, None] * step
            ft, dt = objective(trial)
            ok = ft <= f + 1e-12 * np.abs(f)
            acc = active & ok
            d = np.where(acc[:, None], trial, d)
            diff = np.where(acc[:, None], dt, diff)
            df = np.where(acc, f - ft, 0.0)
            f = np.where(acc, ft, f)
            active &= ~ok
            if not active.any():
                break
            t = np.where(active, 0.5 * t, t)
        if np.all(np.abs(df) <= tol * np.maximum(f, 1.0)) and np.all(np.abs(t * np.abs(step).max(axis=1)) < 1e-9 + tol):
            break
    return f


@dataclass
class DiscoveryCurve:
    """σ_DL(exposure) for one mass: exposures [t·yr], discovery-limit cross sections [cm²] (NaN: not reached)."""

    mass_GeV: float
    exposures_t_yr: np.ndarray
    sigma_cm2: np.ndarray


def discovery_limit(S, B, rel_unc, exposures_t_yr, sigma_ref_cm2: float = SIGMA_REF_cm2, max_decades: int = 14,
                    n_refine: int = 14) -> np.ndarray:
    """The 3σ (q₀ = 9) Asimov discovery-limit cross section [cm²] at each exposure (with ≥ 0.5 signal events)."""
    X = np.asarray(exposures_t_yr, float)
    S = np.asarray(S, float)
    Ns = S.sum()
    if Ns <= 0:
        return np.full(X.shape, np.nan)
    t0 = np.log(MIN_SIGNAL_EVENTS / (X * Ns))  # ln(σ/σ_ref) with 0.5 signal events
    q_start = asimov_q0(np.exp(t0), X, S, B, rel_unc)
    out = np.full(X.shape, np.nan)
    done = q_start >= Q0_3SIGMA
    out[done] = np.exp(t0[done])
    # decade scan above the 0.5-event point
    todo = np.flatnonzero(~done)
    lo = t0.copy()
    q_lo = q_start.copy()
    hi = np.full(X.shape, np.nan)
    q_hi = np.full(X.shape, np.nan)
    for k in range(1, max_decades + 1):
        if todo.size == 0:
            break
        t = t0[todo] + k * math.log(10.0)
        q = asimov_q0(np.exp(t), X[todo], S, B, rel_unc)
        hit = q >= Q0_3SIGMA
        hi[todo[hit]], q_hi[todo[hit]] = t[hit], q[hit]
        lo[todo[~hit]], q_lo[todo[~hit]] = t[~hit], q[~hit]
        todo = todo[~hit]
    br = np.flatnonzero(~done & np.isfinite(hi))
    if br.size:
        a, b = lo[br], hi[br]
        fa = np.log(np.maximum(q_lo[br], 1e-300)) - math.log(Q0_3SIGMA)
        fb = np.log(q_hi[br]) - math.log(Q0_3SIGMA)
        for _ in range(n_refine):  # Illinois regula falsi on ln q0(ln σ) − ln 9 (bracket [a, b] kept)
            c = b - fb * (b - a) / (fb - fa)
            fc = np.log(np.maximum(asimov_q0(np.exp(c), X[br], S, B, rel_unc), 1e-300)) - math.log(Q0_3SIGMA)
            flip = fc * fb < 0
            a, fa = np.where(flip, b, a), np.where(flip, fb, 0.5 * fa)
            b, fb = c, fc
            if np.all(np.abs(fc) < 1e-7):
                break
        out[br] = np.exp(b)
    return out * sigma_ref_cm2


def fog_index(exposures_t_yr, sigma_cm2) -> np.ndarray:
    """n = −(d ln σ/d ln MT)⁻¹ on the exposure grid (central differences; one-sided at the ends)."""
    lx = np.log(np.asarray(exposures_t_yr, float))
    ls = np.log(np.asarray(sigma_cm2, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        return -1.0 / np.gradient(ls, lx)


def floor_from_curve(exposures_t_yr, sigma_cm2, n_floor: float = 2.0) -> tuple[float, float]:
    """(σ, exposure) where the fog index first reaches ``n_floor`` as the exposure grows (log-linear interpolation
    of n between grid points); (nan, nan) if it never does on the grid."""
    X = np.asarray(exposures_t_yr, float)
    s = np.asarray(sigma_cm2, float)
    ok = np.isfinite(s)
    X, s = X[ok], s[ok]
    if X.size < 3:
        return math.nan, math.nan
    n = fog_index(X, s)
    above = np.flatnonzero(n >= n_floor)
    if above.size == 0:
        return math.nan, math.nan
    k = above[0]
    if k == 0:
        return float(s[0]), float(X[0])
    f = (n_floor - n[k - 1]) / (n[k] - n[k - 1])
    lx = np.log(X[k - 1]) + f * (np.log(X[k]) - np.log(X[k - 1]))
    ls = np.interp(lx, np.log(X), np.log(s))
    return float(np.exp(ls)), float(np.exp(lx))


@dataclass
class FloorResult:
    target: str
    masses_GeV: np.ndarray
    floor_cm2: np.ndarray
    floor_exposure_t_yr: np.ndarray
    exposures_t_yr: np.ndarray
    curves_cm2: np.ndarray  # (n_m, n_X)
    rates: FogRates = field(repr=False, default=None)

    def to_dict(self) -> dict:
        return {"target": self.target, "masses_GeV": self.masses_GeV.tolist(), "floor_cm2": self.floor_cm2.tolist(),
                "floor_exposure_t_yr": self.floor_exposure_t_yr.tolist(),
                "exposures_t_yr": self.exposures_t_yr.tolist(), "discovery_limits_cm2": self.curves_cm2.tolist()}


def neutrino_floor(masses_GeV, target: str = "Xe", exposures_t_yr=None, edges_keV=None,
                   halo: VelocityDistribution | None = None, rates: FogRates | None = None) -> FloorResult:
    """The neutrino floor (n = 2 boundary of the fog) for each mass, with the discovery-limit curves behind it."""
    masses = np.atleast_1d(np.asarray(masses_GeV, float))
    X = np.geomspace(1e-4, 1e12, 65) if exposures_t_yr is None else np.asarray(exposures_t_yr, float)
    fr = rates if rates is not None else neutrino_binned_rates(target, edges_keV)
    W = wimp_binned_rates(masses, target, fr.edges_keV, halo)
    curves = np.array([discovery_limit(W[a], fr.B, fr.rel_uncertainty, X) for a in range(masses.size)])
    fl = np.array([floor_from_curve(X, c) for c in curves])
    return FloorResult(str(target), masses, fl[:, 0], fl[:, 1], X, curves, fr)


def published_floor(target: str = "Xe", coupling: str = "SI"):
    """(masses [GeV], σ [cm²]) of O'Hare's published floor (``cevns/data/neutrino_fog/floors``)."""
    from importlib import resources

    from cevns.errors import DataError, UnknownNameError

    base = resources.files("cevns") / "data" / "neutrino_fog" / "floors"
    name = f"{target}_{coupling}.txt"
    avail = sorted(p.name for p in base.iterdir() if p.name.endswith(".txt"))
    if name not in avail:
        raise UnknownNameError("published floor", name, avail)
    arr = np.loadtxt(str(base / name), comments="#", ndmin=2)
    if arr.shape[1] != 2 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise DataError(f"{name}: expected rows 'mass [GeV], cross section [cm^2]'")
    return arr[:, 0], arr[:, 1]
