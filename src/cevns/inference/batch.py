"""Batched profile likelihood: χ²(θ) with every nuisance profiled, for thousands of parameter points at once.

A model here is anything with the interface of :class:`cevns.model.forward.ForwardModel`: ``physics_names``,
``nuisances`` (the ν parameters), ``observed``, ``prepare(physics)`` (θ-dependent state for P points),
``expected(state, ν (P, m))`` → (P, bins), ``value_and_jacobian(state, ν)`` → (μ, ∂μ/∂ν (P, m, bins)) and
``take_state(state, idx)``. Models combine with parameters shared by name (:class:`CombinedModel`).
:func:`profile_batch` minimises the Baker–Cousins χ² (+ Gaussian pulls) over ν for all P points simultaneously with
damped Fisher-scoring (Gauss–Newton for Poisson) steps with the models' analytic Jacobians; models linear in their
nuisances (normalisations) converge in a few steps, piecewise-linear morphing too.
"""
from __future__ import annotations

import numpy as np

from cevns.errors import ConfigError
from cevns.inference.likelihood import Parameter, _same_constraint

__all__ = ["CombinedModel", "ScaledModel", "profile_batch", "batch_poisson_chi2", "as_combined"]


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


class CombinedModel:
    """Several models with ν parameters shared by name (their constraints and limits must agree) and physics
    parameters shared by name. The same experiment may not appear twice (its data would count twice)."""

    def __init__(self, parts):
        flat = []
        for p in parts:
            flat += p.parts
        names_seen = [p.name for p in flat]
        dup = sorted({n for n in names_seen if names_seen.count(n) > 1})
        if dup:
            raise ConfigError(f"experiment(s) {dup} given more than once: the data would be counted twice")
        self._parts = flat
        self.name = " + ".join(p.name for p in flat)
        nuis: dict[str, Parameter] = {}
        for part in flat:
            for q in part.nuisances:
                if q.name in nuis:
                    old = nuis[q.name]
                    if not _same_constraint(old.constraint, q.constraint):
                        raise ConfigError(f"shared parameter {q.name!r} has different constraints: "
                                          f"{old.constraint} vs {q.constraint}")
                    if not _same_constraint(tuple(old.limits), tuple(q.limits)):
                        raise ConfigError(f"shared parameter {q.name!r} has different limits: {old.limits} vs "
                                          f"{q.limits}")
                nuis.setdefault(q.name, q)
        self.nuisances = list(nuis.values())
        names = [q.name for q in self.nuisances]
        self._maps = [np.array([names.index(q.name) for q in part.nuisances], dtype=int) for part in flat]
        self.physics_names = sorted({n for p in flat for n in p.physics_names})

    @property
    def parts(self):
        return self._parts

    def __add__(self, other):
        return CombinedModel([self, other])


class ScaledModel:
    """A model whose expectation is multiplied by ``factor`` (a longer run or a bigger detector, for Asimov
    sensitivities); ``observed`` replaces its data."""

    def __init__(self, model, factor: float, observed=None):
        self.model, self.factor = model, float(factor)
        self.name = model.name
        self.physics_names = model.physics_names
        self.nuisances = model.nuisances
        self.observed = model.observed if observed is None else np.asarray(observed, float)

    @property
    def parts(self):
        return [self]

    def prepare(self, phys):
        return self.model.prepare(phys)

    def take_state(self, state, idx):
        return self.model.take_state(state, idx)

    def expected(self, state, nu):
        return self.factor * self.model.expected(state, nu)

    def value_and_jacobian(self, state, nu, dtype=np.float32):
        mu, J = self.model.value_and_jacobian(state, nu, dtype)
        return self.factor * mu, (self.factor * J).astype(J.dtype)


def _take(part, state, idx, n):
    """The state of a subset of points: a model may define ``take_state``; otherwise arrays (or tuples of arrays)
    whose axis of length n is the point axis are indexed along it (re-preparing is the fallback)."""
    if getattr(part, "take_state", None) is not None:
        return part.take_state(state, idx)

    if isinstance(state, np.ndarray) and state.shape[0] == n:
        return state[idx]
    if isinstance(state, np.ndarray) and state.shape[0] == 1:
        return state  # a single physics point broadcast over all nuisance points
    raise ConfigError(f"model {part.name}: cannot select points of its state; give the model a take_state")


def as_combined(model) -> CombinedModel:
    return model if isinstance(model, CombinedModel) else CombinedModel([model])


def profile_batch(model, physics: dict[str, np.ndarray], n_iter: int = 12, start: np.ndarray | None = None,
                  tol: float = 1e-4, observed: list[np.ndarray] | None = None,
                  size: int | None = None, constraint_means: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Profile all nuisances at every point. Returns (χ² (P,), ν̂ (P, m)).

    physics: name → (P,) arrays (scalars broadcast); start: (P, m) warm start (default: nuisance defaults);
    observed: per part, a (P, bins) array of pseudo-data replacing the model's data (toys, Asimov);
    size: number of points when every physics value is a scalar (e.g. toys at one θ);
    constraint_means: (P, m) centres of the Gaussian pull terms per point (randomised auxiliary measurements of toys;
    default: the nuisances' nominal constraint means).
    """
    model = as_combined(model)
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
    cmean_all = np.tile([q.constraint[0] if q.constraint else 0.0 for q in nu_list], (P, 1))
    if constraint_means is not None:
        cmean_all = np.broadcast_to(np.asarray(constraint_means, float), (P, m))
    cinv2 = np.array([1.0 / q.constraint[1] ** 2 if q.constraint else 0.0 for q in nu_list])
    nu = np.tile([q.value for q in nu_list], (P, 1)) if start is None else np.array(start, dtype=float)

    obs_all = [part.observed for part in model.parts] if observed is None else [np.asarray(o, float) for o in observed]

    def sub_obs(idx):
        return [o if o.ndim == 1 else o[idx] for o in obs_all]

    def prepare(idx):
        return [part.prepare({k: v[idx] for k, v in phys.items() if k in part.physics_names})
                for part in model.parts]

    def parts_mu(states_, nu_):
        return [part.expected(st, nu_[:, mp]) for part, st, mp in zip(model.parts, states_, model._maps)]

    def chi2_of(mus_, nu_, obs_, idx):
        c = sum(batch_poisson_chi2(mu, o) for mu, o in zip(mus_, obs_))
        return c + (((nu_ - cmean_all[idx]) ** 2) * cinv2).sum(axis=1)

    idx_all = np.arange(P)
    full_states = prepare(idx_all)
    states = full_states
    chi = chi2_of(parts_mu(states, nu), nu, obs_all, idx_all)
    active = idx_all
    for it in range(n_iter):
        # points still improving are iterated; converged ones are left alone (active set shrinks)
        if it > 0 and active.size < P:
            states = [_take(part, st, active, P) for part, st in zip(model.parts, full_states)]
        n_act = active.size
        a_nu, a_chi, a_obs = nu[active], chi[active], sub_obs(active)
        grad = 2.0 * (a_nu - cmean_all[active]) * cinv2
        fisher = np.zeros((n_act, m, m))
        fisher[:, np.arange(m), np.arange(m)] = 2.0 * cinv2
        for part, st, mp, n in zip(model.parts, states, model._maps, a_obs):
            if len(mp) == 0:
                continue
            mu0, J = part.value_and_jacobian(st, a_nu[:, mp])  # μ and J (P, m_part, bins) in one pass
            mu0s = np.maximum(mu0, 1e-12)
            w = (1.0 - np.atleast_2d(n) / mu0s).astype(J.dtype)
            grad[:, mp] += 2.0 * np.matmul(J, w[:, :, None])[:, :, 0]
            Jw = J * (1.0 / mu0s).astype(J.dtype)[:, None, :]  # expected (Fisher) information: always positive
            fisher[:, mp[:, None], mp[None, :]] += 2.0 * np.matmul(Jw, J.transpose(0, 2, 1))  # batched BLAS
        fisher += 1e-12 * np.eye(m)
        delta = -np.linalg.solve(fisher, grad[..., None])[..., 0]
        best_nu, best_chi = a_nu.copy(), a_chi.copy()
        pending = np.arange(n_act)  # positions (within the active set) still looking for a better point
        lam = 1.0
        for _half in range(6):  # damped step: halve where χ² does not decrease
            trial = np.clip(a_nu[pending] + lam * delta[pending], lo, hi)
            st_p = states if pending.size == n_act else [_take(part, st, pending, n_act)
                                                         for part, st in zip(model.parts, states)]
            tchi = chi2_of(parts_mu(st_p, trial), trial, [o if o.ndim == 1 else o[pending] for o in a_obs],
                           active[pending])
            ok = tchi <= best_chi[pending]
            best_nu[pending[ok]] = trial[ok]
            best_chi[pending[ok]] = tchi[ok]
            pending = pending[~ok]
            if pending.size == 0:
                break
            lam *= 0.5
        gain = a_chi - best_chi
        nu[active], chi[active] = best_nu, best_chi
        active = active[gain >= tol]
        if active.size == 0:
            break
    return chi, nu
