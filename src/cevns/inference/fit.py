"""Minimisation with iminuit, profile scans and significances."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from iminuit import Minuit
from scipy import stats

from cevns.errors import FitError
from cevns.inference.likelihood import Likelihood

__all__ = ["FitResult", "fit", "profile_scan", "significance_from_delta_chi2"]


@dataclass
class FitResult:
    values: dict[str, float]
    errors: dict[str, float]
    chi2: float
    valid: bool
    nfcn: int
    fixed: list[str] = field(default_factory=list)
    #: physical-consistency warnings: parameters that ended at a limit of their allowed range
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _minuit(lik: Likelihood, start: dict | None, fixed: dict | None) -> Minuit:
    x0 = lik.x_from(start)
    for k, v in (fixed or {}).items():
        x0[lik.index(k)] = v
    m = Minuit(lik.chi2, x0, name=lik.parameter_names)
    m.errordef = Minuit.LEAST_SQUARES
    m.print_level = 0
    for p in lik.parameters:
        m.limits[p.name] = (p.limits[0] if p.limits[0] is not None else -np.inf,
                            p.limits[1] if p.limits[1] is not None else np.inf)
        m.errors[p.name] = p.step
    for k in fixed or {}:
        m.fixed[k] = True
    return m


def fit(lik: Likelihood, start: dict | None = None, fixed: dict | None = None, hesse: bool = True,
        require_valid: bool = True) -> FitResult:
    """Minimise χ²(x) = −2 ln L; ``fixed`` holds parameters at given values; returns values, errors (HESSE), χ².
    A minimum that MIGRAD does not call valid (after a second attempt) raises :class:`~cevns.errors.FitError` unless
    ``require_valid=False``, in which case the result carries ``valid=False`` for the caller to flag."""
    m = _minuit(lik, start, fixed)
    m.strategy = 1
    m.migrad()
    if not m.valid:
        m.migrad()  # a second call often recovers from a poor start
    if hesse and m.valid:
        try:
            m.hesse()
        except Exception:  # pragma: no cover - hesse failure keeps migrad errors
            pass
    if not np.isfinite(m.fval):
        raise FitError(f"fit of {lik.name} did not converge to a finite χ²")
    if require_valid and not m.valid:
        fmin = m.fmin
        raise FitError(f"fit of {lik.name} did not converge (EDM {fmin.edm:.3g}, calls {fmin.nfcn}, "
                       f"at limit: {fmin.has_parameters_at_limit}); fixed: {sorted(fixed or {})}")
    values = {k: float(v) for k, v in zip(lik.parameter_names, m.values)}
    warnings = []
    for p in lik.parameters:
        if p.name in (fixed or {}):
            continue
        lo, hi = p.limits
        v = values[p.name]
        span = (hi - lo) if (lo is not None and hi is not None) else max(1.0, abs(v))
        for edge, side in ((lo, "lower"), (hi, "upper")):
            if edge is not None and abs(v - edge) <= 1e-6 * span:
                warnings.append(f"{p.name} = {v:.6g} is at the {side} limit of its range {tuple(p.limits)}: the "
                                "minimum may lie beyond it and its error is unreliable")
    return FitResult(values, {k: float(v) for k, v in zip(lik.parameter_names, m.errors)},
                     float(m.fval), bool(m.valid), int(m.nfcn), sorted(fixed or {}), warnings)


def profile_scan(lik: Likelihood, name: str, values, start: dict | None = None, progress: bool = False) -> np.ndarray:
    """χ² profiled over all other parameters at each value of ``name`` (warm starts from the previous point).
    Points whose minimisation stays invalid are retried from ``start`` and, if still invalid, raise FitError."""
    lik.index(name)
    vals = np.asarray(values, dtype=float)
    out = np.empty_like(vals)
    cur = dict(start or {})
    invalid: list[float] = []
    it = vals
    if progress:
        from tqdm import tqdm

        it = tqdm(vals, desc=f"profile {name}", leave=False)
    for i, v in enumerate(it):
        r = fit(lik, start=cur, fixed={name: float(v)}, hesse=False, require_valid=False)
        if not r.valid:  # keep the better of the warm start and a cold start; flag a point that stays invalid
            r2 = fit(lik, start=start, fixed={name: float(v)}, hesse=False, require_valid=False)
            r = r2 if (r2.valid or r2.chi2 < r.chi2) else r
            if not r.valid:
                invalid.append(float(v))
        out[i] = r.chi2
        cur = {k: x for k, x in r.values.items() if k != name}
    if invalid:
        raise FitError(f"profile of {name} in {lik.name}: the fit did not converge at {name} = {invalid[:5]}")
    return out


def significance_from_delta_chi2(delta_chi2: float, dof: int = 1) -> float:
    """Gaussian-equivalent significance of a likelihood-ratio Δχ² (Wilks): Z = Φ⁻¹(1 − p/2)·… for dof=1, Z = √Δχ²."""
    if delta_chi2 <= 0:
        return 0.0
    if dof == 1:
        return math.sqrt(delta_chi2)
    p = stats.chi2.sf(delta_chi2, dof)
    return float(stats.norm.isf(p / 2.0))
