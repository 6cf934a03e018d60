"""The time-integrated flux fit of arXiv:2012.12579: 9 pinched-spectrum parameters (ℰ, ⟨E⟩, α for ν_e, ν̄_e, ν_x)
from HALO-1kT (events with one and two neutrons), Super-Kamiokande and JUNO (detected-energy spectra per channel
class), on Asimov data at a fiducial point.

Expected events in bin i (linear in the emitted spectra, arXiv:astro-ph/0208035 Eq. (2) for φ_g):
    μ_i(θ) = Σ_g B_g,i · φ_g(E; ℰ_g, ⟨E⟩_g, α_g) / (4π d²),    B_g = Σ_channels c_s(channel),g · N_t ε S σ
with the flavour-transformation coefficients c (:func:`cevns.sources.supernova.earth_coefficients`); ∂μ/∂θ is
analytic (:func:`cevns.sources.supernova.pinched_log_derivatives`). Likelihood: Poisson, χ² = 2 Σ [μ − n + n ln(n/μ)]
(Baker & Cousins, NIM 221 (1984) 437, Eq. (4)); Asimov data n = μ(θ₀). Fisher matrix F = Jᵀ diag(1/μ) J; profile
likelihood: every other parameter minimised (Levenberg–Marquardt on the Fisher-scoring Hessian, inside physical
bounds), 1σ where Δχ² = 1. Parameters are fitted relative to the fiducial values, so intervals read as relative
accuracies.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from cevns.errors import ConfigError, FitError
from cevns.sources.supernova import (ERG_IN_MeV, GROUPS, KPC_IN_cm, PinchedModel, check_distance_kpc,
                                     earth_coefficients, fiducial_model, pinched_log_derivatives, pinched_pdf,
                                     TRANSFORMATIONS)
from cevns.errors import UnknownNameError
from cevns.supernova.detectors import TableDetector, detector, table_response
from cevns.supernova.rates import channel_group

__all__ = ["PARAM_NAMES", "FluxFitModel", "profile_interval", "fisher_accuracy", "fisher_covariance", "analyse", "combinations",
           "DEFAULT_CLASSES"]

PARAM_NAMES = tuple(f"{g}.{p}" for g in GROUPS for p in ("energy_erg", "mean_MeV", "alpha"))
#: channel classes used per detector material by default: the paper's set without any ν_e-CC-on-nucleus channel
DEFAULT_CLASSES = {"lead": ("1n", "2n"), "water": ("ibd", "electron_elastic", "nc_nucleus"),
                   "scint": ("ibd", "electron_elastic", "nc_nucleus")}
#: absolute bounds of the fit (physical region): ℰ in units of its fiducial value, ⟨E⟩ [MeV], α
BOUNDS = {"energy_erg": (0.02, 50.0), "mean_MeV": (2.0, 40.0), "alpha": (-0.5, 15.0)}


def combinations(detectors) -> dict[str, list[str]]:
    """The detector combinations of arXiv:2012.12579: HALO-1kT alone, the other detectors, and all together
    (a single combination when HALO-1kT is absent or alone)."""
    names = [detector(d).name for d in detectors]
    if len(set(names)) != len(names):
        raise ConfigError(f"detector listed twice in {names}")
    halo = [n for n in names if n in ("halo-1kt", "halo")]
    rest = [n for n in names if n not in halo]
    out = {}
    if halo and rest:
        out["+".join(halo)] = halo
        out["+".join(rest)] = rest
    out["+".join(names)] = names
    return out


@dataclass
class FluxFitModel:
    """μ(r) and ∂μ/∂r for relative parameters r = θ/θ₀ (θ₀ = ``fiducial``), for table detectors only."""

    detectors: list
    distance_kpc: float = 10.0
    transformation: str = "msw_normal"
    fiducial: PinchedModel = field(default_factory=fiducial_model)
    classes: dict | None = None
    rebin: int = 2
    tables: object = None

    def __post_init__(self):
        self.distance_kpc = check_distance_kpc(self.distance_kpc)
        if self.transformation not in TRANSFORMATIONS:
            raise UnknownNameError("flavour transformation", self.transformation, TRANSFORMATIONS)
        dets = [detector(d) for d in self.detectors]
        bad = [d.name for d in dets if not isinstance(d, TableDetector)]
        if bad:
            raise ConfigError(f"the flux fit uses SNOwGLoBES-table detectors only; {bad} are CEvNS detectors")
        classes = dict(DEFAULT_CLASSES, **(self.classes or {}))
        coef = earth_coefficients(self.transformation)
        area = 4.0 * math.pi * (self.distance_kpc * KPC_IN_cm) ** 2
        rows, labels = [], []
        E = None
        for det in dets:
            resp = table_response(det, self.tables)
            E = resp.E_MeV
            idx = np.repeat(np.arange(200), resp.n_per_bin)
            by_class: dict[str, np.ndarray] = {}
            for ch, (sp, sw, M) in resp.channels.items():
                cl = channel_group(det, ch)
                if cl not in classes[det.material]:
                    continue
                A = M[:, idx] * sw[None, :] / area  # detected bins × energy nodes
                blk = np.stack([coef[sp].get(g, 0.0) * A for g in GROUPS])
                by_class[cl] = by_class.get(cl, 0.0) + blk
            for cl in classes[det.material]:
                if cl not in by_class:
                    continue
                blk = by_class[cl]
                if det.material == "lead":  # HALO counts neutrons: no energy information
                    blk = blk.sum(axis=1, keepdims=True)
                elif self.rebin > 1:
                    blk = blk.reshape(3, -1, self.rebin, blk.shape[-1]).sum(axis=2)
                rows.append(blk)
                labels += [f"{det.name}:{cl}:{i}" for i in range(blk.shape[1])]
        if not rows:
            raise ConfigError("no channel left for the fit")
        B = np.concatenate(rows, axis=1)
        self.E_MeV = E
        self.theta0 = self.fiducial.vector()
        mu0 = self._mu_raw(B, self.theta0)
        keep = mu0 > 1e-6 * max(mu0.max(), 1e-300)  # bins that can see anything at the fiducial point
        self.B = np.ascontiguousarray(B[:, keep, :])
        self.labels = [lab for lab, k in zip(labels, keep) if k]
        self.lo = np.array([BOUNDS[n.split(".")[1]][0] * (self.theta0[i] if n.endswith("energy_erg") else 1.0)
                            for i, n in enumerate(PARAM_NAMES)]) / self.theta0
        self.hi = np.array([BOUNDS[n.split(".")[1]][1] * (self.theta0[i] if n.endswith("energy_erg") else 1.0)
                            for i, n in enumerate(PARAM_NAMES)]) / self.theta0
        self.asimov = self.mu(np.ones(9))

    def _phi(self, theta):
        """φ_g on the nodes (3, nE) and its derivatives (3, 3, nE) with respect to (ℰ, ⟨E⟩, α)."""
        th = np.asarray(theta, float).reshape(3, 3)
        Eg, m, a = th[:, 0:1], th[:, 1:2], th[:, 2:3]
        phi = Eg * ERG_IN_MeV / m * pinched_pdf(self.E_MeV[None, :], m, a)
        dlm, dla = pinched_log_derivatives(self.E_MeV[None, :], m, a)
        d = np.stack([phi / Eg, phi * (dlm - 1.0 / m), phi * dla], axis=1)
        return phi, d

    def _mu_raw(self, B, theta):
        phi, _ = self._phi(theta)
        return np.einsum("gbe,ge->b", B, phi)

    def mu(self, r) -> np.ndarray:
        phi, _ = self._phi(np.asarray(r, float) * self.theta0)
        return np.einsum("gbe,ge->b", self.B, phi)

    def mu_jac(self, r):
        """μ (bins,) and ∂μ/∂r (bins, 9)."""
        phi, d = self._phi(np.asarray(r, float) * self.theta0)
        mu = np.einsum("gbe,ge->b", self.B, phi)
        J = np.einsum("gbe,gke->bgk", self.B, d).reshape(mu.size, 9) * self.theta0[None, :]
        return mu, J

    @staticmethod
    def deviance(mu, n) -> float:
        """Poisson χ² = 2 Σ [μ − n + n ln(n/μ)] (Baker & Cousins Eq. (4))."""
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(n > 0, n * np.log(n / mu), 0.0)
        return float(2.0 * np.sum(mu - n + t))

    def fisher(self, r=None) -> np.ndarray:
        """F = Jᵀ diag(1/μ) J at r (default the fiducial point) in relative parameters."""
        mu, J = self.mu_jac(np.ones(9) if r is None else r)
        return J.T @ (J / mu[:, None])

    def minimise(self, n, r_start, fixed: dict | None = None, max_iter: int = 200, tol: float = 1e-10):
        """(r, χ²) minimising the deviance over the parameters not in ``fixed`` {index: value}, inside the bounds
        (Levenberg–Marquardt on the Fisher-scoring Hessian 2 Jᵀ diag(1/μ) J)."""
        fixed = fixed or {}
        r = np.clip(np.array(r_start, float), self.lo, self.hi)
        for k, v in fixed.items():
            r[k] = v
        free = np.array([k for k in range(9) if k not in fixed])
        mu, J = self.mu_jac(r)
        chi = self.deviance(mu, n)
        lam = 1e-3
        for _ in range(max_iter):
            Jf = J[:, free]
            g = 2.0 * Jf.T @ (1.0 - n / mu)
            H = 2.0 * Jf.T @ (Jf / mu[:, None])
            dH = np.diag(H).copy() + 1e-12 * max(np.diag(H).max(), 1e-300)
            improved = False
            while lam < 1e12:
                step = np.linalg.solve(H + lam * np.diag(dH), -g)
                r_new = r.copy()
                r_new[free] = np.clip(r[free] + step, self.lo[free], self.hi[free])
                mu_new = self.mu(r_new)
                if np.all(mu_new > 0):
                    chi_new = self.deviance(mu_new, n)
                    if chi_new <= chi:
                        improved = True
                        break
                lam *= 8.0
            if not improved:
                break
            done = chi - chi_new < tol * max(1.0, chi) and np.max(np.abs(r_new - r)) < 1e-7
            r, chi = r_new, chi_new
            mu, J = self.mu_jac(r)
            lam = max(lam / 10.0, 1e-9)
            if done:
                break
        if not math.isfinite(chi):
            raise FitError("flux fit: non-finite χ²")
        return r, chi


def fisher_covariance(model: FluxFitModel):
    """(covariance of the relative parameters from the inverse Fisher matrix, mask of the parameters that the
    Fisher matrix does not constrain: those with weight on a null eigenvector)."""
    F = model.fisher()
    w, V = np.linalg.eigh(F)
    good = w > 1e-10 * w.max()
    cov = (V[:, good] / w[good]) @ V[:, good].T
    bad = np.any(np.abs(V[:, ~good]) > 1e-6, axis=1) if np.any(~good) else np.zeros(9, bool)
    return cov, bad


def fisher_accuracy(model: FluxFitModel) -> dict[str, float | None]:
    """1σ relative accuracy of each parameter from the inverse Fisher matrix (None where F is singular along it)."""
    cov, bad = fisher_covariance(model)
    return {n: (None if bad[k] else float(np.sqrt(cov[k, k]))) for k, n in enumerate(PARAM_NAMES)}


def profile_interval(model: FluxFitModel, k: int, n=None, guess: float | None = None, level: float = 1.0,
                     record: list | None = None) -> dict:
    """Profile-likelihood interval of parameter k (relative): Δχ² = ``level`` crossings on each side of the best
    fit, every other parameter minimised. A side that reaches the bound without crossing is None."""
    n = model.asimov if n is None else n
    r_best, chi0 = model.minimise(n, np.ones(9))
    x0 = r_best[k]
    step0 = guess if guess and math.isfinite(guess) and guess > 0 else 0.3
    out = {}
    for side, bound in ((+1, model.hi[k]), (-1, model.lo[k])):
        warm = {"r": r_best.copy()}

        def dchi(x):
            r, chi = model.minimise(n, warm["r"], {k: x})
            warm["r"] = r
            if record is not None:
                record.append((float(x), chi - chi0))
            return chi - chi0 - level

        a, s, fa = x0, step0, -level
        cross = None
        for _ in range(40):
            b = x0 + side * s
            if (side > 0 and b >= bound) or (side < 0 and b <= bound):
                b = bound
            fb = dchi(b)
            if fb >= 0:
                cross = optimize.brentq(dchi, a, b, xtol=1e-5) if side > 0 else optimize.brentq(dchi, b, a, xtol=1e-5)
                break
            if b == bound:
                break
            a, fa, s = b, fb, s * 1.6
        out["hi" if side > 0 else "lo"] = None if cross is None else float(cross)
    width = None if out["hi"] is None or out["lo"] is None else 0.5 * (out["hi"] - out["lo"])
    return {"best": float(x0), "lo": out["lo"], "hi": out["hi"], "sigma_rel": width}


def analyse(detectors, distance_kpc: float = 10.0, transformation: str = "msw_normal", fiducial=None,
            classes=None, profile_params=None, progress=None) -> dict:
    """Asimov study for every combination of :func:`combinations`: Fisher and profile 1σ relative accuracies.
    ``profile_params``: parameter names to profile (default the three ν_e ones)."""
    fid = fiducial or fiducial_model()
    prof = list(profile_params or PARAM_NAMES[:3])
    for p in prof:
        if p not in PARAM_NAMES:
            raise UnknownNameError("flux-fit parameter", p, PARAM_NAMES)
    out = {"distance_kpc": check_distance_kpc(distance_kpc), "transformation": transformation,
           "fiducial": fid.as_dict(), "combinations": {}, "relative_accuracy": {}, "fisher_relative_accuracy": {},
           "profile_intervals": {}, "profile_curves": {}, "fisher_covariance": {}}
    for label, dets in combinations(detectors).items():
        m = FluxFitModel(dets, distance_kpc, transformation, fid, classes)
        out["combinations"][label] = {"detectors": dets, "n_bins": int(m.asimov.size),
                                      "asimov_events": float(m.asimov.sum())}
        fa = fisher_accuracy(m)
        out["fisher_relative_accuracy"][label] = fa
        cov, bad = fisher_covariance(m)
        out["fisher_covariance"][label] = None if np.any(bad) else cov.tolist()
        acc, ints, curves = {}, {}, {}
        for p in prof:
            k = PARAM_NAMES.index(p)
            rec: list = []
            iv = profile_interval(m, k, guess=fa[p], record=rec)
            ints[p], acc[p], curves[p] = iv, iv["sigma_rel"], sorted(rec)
            if progress:
                progress(label, p, iv)
        out["relative_accuracy"][label] = acc
        out["profile_intervals"][label] = ints
        out["profile_curves"][label] = curves
    labels = list(out["combinations"])
    if len(labels) == 3:
        rest, both = labels[1], labels[2]
        out["improvement_from_halo"] = {
            p: (None if out["relative_accuracy"][rest].get(p) is None or out["relative_accuracy"][both].get(p) is None
                else 1.0 - out["relative_accuracy"][both][p] / out["relative_accuracy"][rest][p]) for p in prof}
    return out
