"""Batched profile likelihood: χ²(θ) with every nuisance profiled, for thousands of parameter points at once.

A :class:`BatchedModel` maps physics parameters θ (arrays of P points) and nuisances ν (P × m) to expected counts
(P × bins). :func:`profile_batch` minimises the Baker–Cousins χ² (+ Gaussian pulls) over ν for all P points
simultaneously with damped Fisher-scoring (Gauss–Newton for Poisson) steps: the Jacobian comes from one forward
difference per nuisance, each step solves a batch of m × m systems. Models that are linear in their nuisances
(normalisations) converge in a few steps; piecewise-linear template morphing too. A final iminuit polish on the
global minimum is done by the caller where needed (:func:`cevns.inference.scan.scan`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from cevns.errors import ConfigError
from cevns.inference.likelihood import Parameter, _same_constraint

__all__ = ["BatchedModel", "CombinedBatchedModel", "profile_batch", "batch_poisson_chi2"]


def batch_poisson_chi2(mu: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Baker–Cousins χ² per row of mu (P × bins) against n (bins, or P × bins for per-row pseudo-data);
    rows with μ ≤ 0 where n > 0 give +inf."""
    if np.ndim(n) == 2:
        pos = n > 0
        bad = np.any((mu <= 0) & pos, axis=1)
        mu_safe = np.where(mu > 0, mu, 1e-300)
        nlogn = np.where(pos, n * np.log(np.where(pos, n, 1.0)), 0.0)
        out = 2.0 * (mu.sum(axis=1) - n.sum(axis=1) + nlogn.sum(axis=1) - (n * np.log(mu_safe)).sum(axis=1))
        out[bad] = np.inf
        return out
    pos = n > 0
    bad = np.any(mu[:, pos] <= 0, axis=1)
    mu_safe = np.where(mu > 0, mu, 1e-300)
    npos = n[pos]
    out = 2.0 * (mu.sum(axis=1) - n.sum() + (np.log(npos) * npos).sum() - np.log(mu_safe[:, pos]) @ npos)
    out[bad] = np.inf
    return out


@dataclass
class BatchedModel:
    """Expected counts for batches of points.

    ``prepare(physics)`` does the ν-independent work once per batch (physics: dict name → (P,) arrays) and returns a
    state; ``expected(state, nu)`` with nu (P, m) ordered as ``nuisances`` returns (P, bins) over the bins of
    ``observed`` (already ROI-masked)."""

    name: str
    physics_names: Sequence[str]
    nuisances: Sequence[Parameter]
    observed: np.ndarray
    expected: Callable[[object, np.ndarray], np.ndarray]
    prepare: Callable[[dict], object] = lambda phys: phys

    def __add__(self, other) -> "CombinedBatchedModel":
        return CombinedBatchedModel([self, other])

    @property
    def parts(self):
        return [self]


class CombinedBatchedModel:
    """Several batched models with nuisances shared by name (constraints must agree) and physics shared by name."""

    def __init__(self, parts):
        flat = []
        for p in parts:
            flat += p.parts
        self._parts = flat
        self.name = " + ".join(p.name for p in flat)
        nuis: dict[str, Parameter] = {}
        for part in flat:
            for q in part.nuisances:
                if q.name in nuis and not _same_constraint(nuis[q.name].constraint, q.constraint):
                    raise ConfigError(f"shared nuisance {q.name!r} has different constraints: "
                                      f"{nuis[q.name].constraint} vs {q.constraint}")
                nuis.setdefault(q.name, q)
        self.nuisances = list(nuis.values())
        names = [q.name for q in self.nuisances]
        self._maps = [np.array([names.index(q.name) for q in part.nuisances], dtype=int) for part in flat]
        self.physics_names = sorted({n for p in flat for n in p.physics_names})

    @property
    def parts(self):
        return self._parts

    def __add__(self, other):
        return CombinedBatchedModel([self, other])


def _as_combined(model) -> CombinedBatchedModel:
    return model if isinstance(model, CombinedBatchedModel) else CombinedBatchedModel([model])


def profile_batch(model, physics: dict[str, np.ndarray], n_iter: int = 12, start: np.ndarray | None = None,
                  tol: float = 1e-4, observed: list[np.ndarray] | None = None,
                  size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Profile all nuisances at every point. Returns (χ² (P,), ν̂ (P, m)).

    physics: name → (P,) arrays (scalars broadcast); start: (P, m) warm start (default: nuisance defaults);
    observed: per part, a (P, bins) array of pseudo-data replacing the model's data (toys, Asimov);
    size: number of points when every physics value is a scalar (e.g. toys at one θ).
    """
    model = _as_combined(model)
    sizes = {np.size(v) for v in physics.values()} - {1}
    if len(sizes) > 1:
        raise ConfigError(f"physics parameter arrays have different lengths {sorted(sizes)}")
    P = sizes.pop() if sizes else (size or 1)
    if observed is not None:
        P = max(P, max(o.shape[0] for o in observed))
    phys = {k: np.broadcast_to(np.asarray(v, dtype=float).ravel(), (P,)) for k, v in physics.items()}
    nu_list = model.nuisances
    m = len(nu_list)
    lo = np.array([q.limits[0] if q.limits[0] is not None else -np.inf for q in nu_list])
    hi = np.array([q.limits[1] if q.limits[1] is not None else np.inf for q in nu_list])
    cmean = np.array([q.constraint[0] if q.constraint else 0.0 for q in nu_list])
    cinv2 = np.array([1.0 / q.constraint[1] ** 2 if q.constraint else 0.0 for q in nu_list])
    steps = np.array([max(abs(q.step), 1e-6) for q in nu_list]) * 1e-2
    nu = np.tile([q.value for q in nu_list], (P, 1)) if start is None else np.array(start, dtype=float)

    states = [part.prepare({k: v for k, v in phys.items()}) for part in model.parts]

    def parts_mu(nu_):
        return [part.expected(st, nu_[:, mp]) for part, st, mp in zip(model.parts, states, model._maps)]

    obs = [part.observed for part in model.parts] if observed is None else [np.asarray(o, float) for o in observed]

    def chi2_of(mus, nu_):
        c = sum(batch_poisson_chi2(mu, o) for mu, o in zip(mus, obs))
        return c + (((nu_ - cmean) ** 2) * cinv2).sum(axis=1)

    mus = parts_mu(nu)
    chi = chi2_of(mus, nu)
    for _ in range(n_iter):
        grad = 2.0 * (nu - cmean) * cinv2
        fisher = np.zeros((P, m, m))
        fisher[:, np.arange(m), np.arange(m)] = 2.0 * cinv2
        for part, st, mp, mu0, n in zip(model.parts, states, model._maps, mus, obs):
            if len(mp) == 0:
                continue
            mu0s = np.maximum(mu0, 1e-12)
            J = np.empty((P, mu0.shape[1], len(mp)))
            for j, gj in enumerate(mp):
                h = steps[gj]
                nu_h = nu.copy()
                nu_h[:, gj] += h
                J[:, :, j] = (part.expected(st, nu_h[:, mp]) - mu0) / h
            w = 1.0 - np.atleast_2d(n) / mu0s
            grad[:, mp] += 2.0 * np.einsum("pb,pbj->pj", w, J)
            fisher[:, mp[:, None], mp[None, :]] += 2.0 * np.einsum("pb,pbj,pbk->pjk", 1.0 / mu0s, J, J)
        fisher += 1e-12 * np.eye(m)
        delta = -np.linalg.solve(fisher, grad[..., None])[..., 0]
        improved = np.zeros(P, bool)
        lam = np.ones(P)
        best_nu, best_chi, best_mus = nu, chi, mus
        for _half in range(6):  # damped step: halve where χ² does not decrease
            trial = np.clip(nu + lam[:, None] * delta, lo, hi)
            tmus = parts_mu(trial)
            tchi = chi2_of(tmus, trial)
            ok = tchi <= best_chi
            sel = ok & ~improved
            if np.any(sel):
                best_nu = np.where(sel[:, None], trial, best_nu)
                best_chi = np.where(sel, tchi, best_chi)
                best_mus = [np.where(sel[:, None], tm, bm) for tm, bm in zip(tmus, best_mus)]
                improved |= sel
            if improved.all():
                break
            lam = np.where(improved, lam, lam * 0.5)
        gain = chi - best_chi
        nu, chi, mus = best_nu, best_chi, best_mus
        if np.all(gain < tol):
            break
    return chi, nu
