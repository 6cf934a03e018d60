"""Minimisation with iminuit, profile scans and significances."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from iminuit import Minuit
from scipy import stats

from cevns.errors import CevnsError
from cevns.inference.likelihood import Likelihood

__all__ = ["FitResult", "fit", "profile_scan", "significance_from_delta_chi2", "interval_from_profile"]


@dataclass
class FitResult:
    values: dict[str, float]
    errors: dict[str, float]
    chi2: float
    valid: bool
    nfcn: int
    fixed: list[str] = field(default_factory=list)

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


def fit(lik: Likelihood, start: dict | None = None, fixed: dict | None = None, hesse: bool = True) -> FitResult:
    """Minimise χ²(x) = −2 ln L; ``fixed`` holds parameters at given values; returns values, errors (HESSE), χ²."""
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
        raise CevnsError(f"fit of {lik.name} did not converge to a finite χ²")
    return FitResult({k: float(v) for k, v in zip(lik.parameter_names, m.values)},
                     {k: float(v) for k, v in zip(lik.parameter_names, m.errors)},
                     float(m.fval), bool(m.valid), int(m.nfcn), sorted(fixed or {}))


def profile_scan(lik: Likelihood, name: str, values, start: dict | None = None, progress: bool = False) -> np.ndarray:
    """χ² profiled over all other parameters at each value of ``name`` (warm starts from the previous point)."""
    lik.index(name)
    vals = np.asarray(values, dtype=float)
    out = np.empty_like(vals)
    cur = dict(start or {})
    it = vals
    if progress:
        from tqdm import tqdm

        it = tqdm(vals, desc=f"profile {name}", leave=False)
    for i, v in enumerate(it):
        r = fit(lik, start=cur, fixed={name: float(v)}, hesse=False)
        out[i] = r.chi2
        cur = {k: x for k, x in r.values.items() if k != name}
    return out


def significance_from_delta_chi2(delta_chi2: float, dof: int = 1) -> float:
    """Gaussian-equivalent significance of a likelihood-ratio Δχ² (Wilks): Z = Φ⁻¹(1 − p/2)·… for dof=1, Z = √Δχ²."""
    if delta_chi2 <= 0:
        return 0.0
    if dof == 1:
        return math.sqrt(delta_chi2)
    p = stats.chi2.sf(delta_chi2, dof)
    return float(stats.norm.isf(p / 2.0))


def interval_from_profile(x, dchi2, level: float = 1.0) -> tuple[float, float]:
    """Ends of {x: Δχ²(x) ≤ level} by linear interpolation (nan-free; raises if the scan does not bracket it)."""
    x = np.asarray(x, float)
    d = np.asarray(dchi2, float) - np.min(dchi2)
    i0 = int(np.argmin(d))
    lo = hi = None
    for i in range(i0, 0, -1):
        if d[i - 1] > level >= d[i]:
            lo = x[i - 1] + (level - d[i - 1]) * (x[i] - x[i - 1]) / (d[i] - d[i - 1])
            break
    for i in range(i0, len(x) - 1):
        if d[i + 1] > level >= d[i]:
            hi = x[i] + (level - d[i]) * (x[i + 1] - x[i]) / (d[i + 1] - d[i])
            break
    if lo is None or hi is None:
        raise CevnsError(f"profile scan over [{x[0]}, {x[-1]}] does not bracket Δχ² = {level}; widen the range")
    return float(lo), float(hi)
