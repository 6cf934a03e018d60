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

__all__ = ["CombinedModel", "ScaledModel", "profile_batch", "batch_poisson_chi2", "as_combined", "prepare_states",
           "take_states"]


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
    npos = n[pos]
    with np.errstate(divide="ignore", invalid="ignore"):  # log μ of the n > 0 bins only (a double log costs ~10 ns
        s = np.log(mu if pos.all() else mu[:, pos]) @ npos  # here, 20x a product); μ ≤ 0 there gives −inf or nan
    bad = ~(s > -np.inf)  # −inf or nan: μ ≤ 0 in a bin with n > 0
    out = 2.0 * (mu.sum(axis=1) - n.sum() + (np.log(npos) * npos).sum() - np.where(bad, 0.0, s))
    out[bad] = np.inf
    return out


def _chi2_weights(mu: np.ndarray, n: np.ndarray) -> np.ndarray:
    """∂χ²/∂μ of :func:`batch_poisson_chi2` per bin, 2 (1 − n/μ) (μ floored at 1e-12), in one new array."""
    w = np.maximum(mu, 1e-12)
    np.divide(n, w, out=w)
    w *= -2.0
    w += 2.0
    return w


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

    def value_and_gradient(self, state, nu, weights):
        f = self.factor
        mu, g = value_and_gradient(self.model, state, nu, lambda m: weights(f * m))
        return f * mu, f * g


def value_and_gradient(part, state, nu, weights):
    """(μ, Σ_bins ∂μ/∂ν · weights(μ)) of one part: its own ``value_and_gradient`` where it has one (no Jacobian
    array), else its Jacobian contracted."""
    if getattr(part, "value_and_gradient", None) is not None:
        return part.value_and_gradient(state, nu, weights)
    mu, J = part.value_and_jacobian(state, nu)
    return mu, np.matmul(J.astype(float), weights(mu)[:, :, None])[:, :, 0]


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


def prepare_states(model, physics: dict[str, np.ndarray]) -> list:
    """The θ-dependent state of every part of ``model`` at the points of ``physics`` (name → (P,) arrays)."""
    model = as_combined(model)
    return [part.prepare({k: np.asarray(v, float) for k, v in physics.items() if k in part.physics_names})
            for part in model.parts]


def take_states(model, states: list, idx: np.ndarray, n: int) -> list:
    """The states of the points ``idx`` out of states prepared for n points."""
    return [_take(part, st, idx, n) for part, st in zip(as_combined(model).parts, states)]


def as_combined(model) -> CombinedModel:
    return model if isinstance(model, CombinedModel) else CombinedModel([model])


def profile_batch(model, physics: dict[str, np.ndarray], n_iter: int = 12, start: np.ndarray | None = None,
                  tol: float = 1e-4, observed: list[np.ndarray] | None = None,
                  size: int | None = None, constraint_means: np.ndarray | None = None,
                  last_step: float = 0.0, fisher_start: np.ndarray | None = None,
                  return_fisher: bool = False, states: list | None = None):
    """Profile all nuisances at every point. Returns (χ² (P,), ν̂ (P, m)).

    physics: name → (P,) arrays (scalars broadcast); start: (P, m) warm start (default: nuisance defaults);
    observed: per part, a (P, bins) array of pseudo-data replacing the model's data (toys, Asimov);
    size: number of points when every physics value is a scalar (e.g. toys at one θ);
    constraint_means: (P, m) centres of the Gaussian pull terms per point (randomised auxiliary measurements of toys;
    default: the nuisances' nominal constraint means);
    last_step: a point whose Newton decrement (the χ² a full step would gain) is below this takes that step as its
    last, evaluated without Jacobians (χ² only): near a minimum the quadratic model is exact to O(decrement²), so
    the result moves by far less than the decrement while the Jacobian of the final point is never computed;
    fisher_start: (P, m, m) information matrices near ``start`` (e.g. interpolated from converged neighbours): the
    first step then needs only χ² and its gradient at the start (no Jacobian array), and a point whose first step
    gains less than ``last_step`` never builds one (quasi-Newton with the neighbours' curvature; every later step is
    exact Gauss–Newton). return_fisher: also return the information matrix last computed at each point (P, m, m).
    states: the parts' θ-dependent states of these P points, already prepared (e.g. selected with
    :func:`take_states` from a larger batch); default: prepared here from ``physics``.
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

    idx_all = np.arange(P)
    states = prepare_states(model, phys) if states is None else list(states)
    diag = np.arange(m)

    def vj(states_, nu_, obs_, idx):
        """χ², gradient and expected (Fisher) information of every point at nu_. Each part's Jacobian J (P, m_part,
        bins) is reduced at once and dropped (only (P, m) and (P, m, m) arrays are kept between steps):
        ∇χ² = 2 J(1 − n/μ), F = 2 J diag(1/μ) Jᵀ, both through Js = J/√μ in place."""
        pull = nu_ - cmean_all[idx]
        chi_ = (pull ** 2 * cinv2).sum(axis=1)
        grad_ = 2.0 * pull * cinv2
        fisher_ = np.zeros((nu_.shape[0], m, m))
        fisher_[:, diag, diag] = 2.0 * cinv2
        for part, st, mp, o in zip(model.parts, states_, model._maps, obs_):
            mu, J = part.value_and_jacobian(st, nu_[:, mp])
            chi_ = chi_ + batch_poisson_chi2(mu, o)
            if len(mp) == 0:
                continue
            mus = np.maximum(mu, 1e-12)
            root = np.sqrt(mus)
            if not (J.flags.owndata and J.flags.writeable):
                J = J.copy()
            J *= (1.0 / root).astype(J.dtype)[:, None, :]
            w = ((1.0 - np.atleast_2d(o) / mus) * root).astype(J.dtype)
            grad_[:, mp] += 2.0 * np.matmul(J, w[:, :, None])[:, :, 0]
            fisher_[:, mp[:, None], mp[None, :]] += 2.0 * np.matmul(J, J.transpose(0, 2, 1))  # batched BLAS
        return chi_, grad_, fisher_

    def vg(states_, nu_, obs_, idx):
        """χ² and gradient of every point at nu_, through the parts' Jacobian-vector products (no Jacobian array):
        ∇χ² = 2 Jᵀ(1 − n/μ) as in :func:`vj`."""
        pull = nu_ - cmean_all[idx]
        chi_ = (pull ** 2 * cinv2).sum(axis=1)
        grad_ = 2.0 * pull * cinv2
        for part, st, mp, o in zip(model.parts, states_, model._maps, obs_):
            mu, g = value_and_gradient(part, st, nu_[:, mp], lambda mu_, o=o: _chi2_weights(mu_, o))
            chi_ = chi_ + batch_poisson_chi2(mu, o)
            if len(mp):
                grad_[:, mp] += g
        return chi_, grad_

    def chi2_at(states_, nu_, obs_, idx):
        """χ² of every point at nu_ (no derivatives)."""
        pc = sum(batch_poisson_chi2(part.expected(st, nu_[:, mp]), o)
                 for part, st, mp, o in zip(model.parts, states_, model._maps, obs_))
        return pc + (((nu_ - cmean_all[idx]) ** 2) * cinv2).sum(axis=1)

    def take_parts(sts, pos, n):
        if pos.size == n and np.array_equal(pos, np.arange(n)):
            return sts
        return [_take(part, st, pos, n) for part, st in zip(model.parts, sts)]

    # a point is "stale" while it steps with its neighbours' curvature (fisher_start): χ² and gradient only, no
    # Jacobian; a step that fails is retried from the same point with its own information (exact from then on)
    stale_all = np.full(P, fisher_start is not None)
    if fisher_start is None:
        chi, grad, fisher = vj(states, nu, obs_all, idx_all)
    else:
        chi, grad = vg(states, nu, obs_all, idx_all)
        fisher = np.array(np.broadcast_to(fisher_start, (P, m, m)), dtype=float)
    fisher_all = fisher.copy() if return_fisher else None
    active = idx_all
    for it in range(n_iter):
        n_act = active.size
        a_nu, a_chi, a_obs = nu[active], chi[active], sub_obs(active)
        raw = fisher  # the information before the projection (carried over by stale points)
        # projected Newton: a nuisance at a limit whose gradient pushes it outwards is held there (its row and column
        # leave the system); clipping the full step instead can turn it into an ascent direction and stall the point
        held = ((a_nu <= lo) & (grad > 0)) | ((a_nu >= hi) & (grad < 0))
        if held.any():
            grad = np.where(held, 0.0, grad)
            free = ~held
            fisher = fisher * (free[:, :, None] & free[:, None, :])
            fisher[:, diag, diag] += held
        fisher = fisher + 1e-12 * np.eye(m)
        delta = -np.linalg.solve(fisher, grad[..., None])[..., 0]
        # Newton decrement: the χ² a full step would gain, −½ g·δ; points below tol are converged as they are
        dec = -0.5 * np.einsum("pm,pm->p", grad, delta)
        go = np.nonzero(dec >= tol)[0]
        if go.size == 0:
            break
        if go.size < n_act:
            states = take_parts(states, go, n_act)
            active, a_nu, a_chi, delta, dec, raw = active[go], a_nu[go], a_chi[go], delta[go], dec[go], raw[go]
            a_obs = [o if o.ndim == 1 else o[go] for o in a_obs]
            n_act = active.size
        stale = stale_all[active]
        # the full step with χ², gradient (and information, for exact points) at once (usually accepted); a last step
        # (decrement below last_step) with χ² only; damped steps where χ² does not decrease
        trial = np.clip(a_nu + delta, lo, hi)
        last = dec < last_step
        full = np.nonzero(~last)[0]
        tchi = np.empty(n_act)
        tgrad, tfisher = np.empty((full.size, m)), np.empty((full.size, m, m))
        fe, fs = np.nonzero(~stale[full])[0], np.nonzero(stale[full])[0]  # positions within full
        # the last steps (χ² only) ride along with the gradient call, or with a Jacobian call of as many points: one
        # call with a few more points costs far less than one more call
        fin = np.nonzero(last)[0]
        fin_vg = fin.size > 0 and fs.size > 0
        fin_vj = fin.size > 0 and not fin_vg and 0 < fe.size and fin.size <= max(8, fe.size)
        if fe.size:
            ex = full[fe]
            sel = np.concatenate([ex, fin]) if fin_vj else ex
            c_, g_, f_ = vj(take_parts(states, sel, n_act), trial[sel], [o if o.ndim == 1 else o[sel] for o in a_obs],
                            active[sel])
            tchi[sel], tgrad[fe], tfisher[fe] = c_, g_[:fe.size], f_[:fe.size]
            if return_fisher:
                fisher_all[active[ex]] = tfisher[fe]
        if fs.size:
            st_ = full[fs]
            sel = np.concatenate([st_, fin]) if fin_vg else st_
            c_, g_ = vg(take_parts(states, sel, n_act), trial[sel], [o if o.ndim == 1 else o[sel] for o in a_obs],
                        active[sel])
            tchi[sel], tgrad[fs] = c_, g_[:fs.size]
            tfisher[fs] = raw[st_]
        if fin.size and not (fin_vg or fin_vj):
            tchi[fin] = chi2_at(take_parts(states, fin, n_act), trial[fin], [o if o.ndim == 1 else o[fin] for o in a_obs],
                                active[fin])
        ok = tchi <= a_chi
        best_nu, best_chi = np.where(ok[:, None], trial, a_nu), np.where(ok, tchi, a_chi)
        # a full step that the neighbours' curvature made too long is retried with the point's own (no halving)
        retry = ~ok & ~last & stale
        pending = np.nonzero(~ok & ~retry)[0]
        # backtracking: the first of λ = 1/2, 1/4, … 1/32 that lowers χ², the λ values of a round evaluated in one call
        for lams in ((0.5, 0.25, 0.125), (0.0625, 0.03125)):
            if pending.size == 0:
                break
            k = len(lams)
            rows = np.tile(pending, k)
            lam = np.repeat(lams, pending.size)
            trial_p = np.clip(a_nu[rows] + lam[:, None] * delta[rows], lo, hi)
            pc = chi2_at(take_parts(states, rows, n_act), trial_p, [o if o.ndim == 1 else o[rows] for o in a_obs],
                         active[rows]).reshape(k, pending.size)
            okp = pc <= best_chi[pending]
            first = np.argmax(okp, axis=0)  # the largest λ that lowers χ² (sequential halving would stop there)
            got = okp.any(axis=0)
            sel = first[got] * pending.size + np.nonzero(got)[0]
            best_nu[pending[got]] = trial_p[sel]
            best_chi[pending[got]] = pc.ravel()[sel]
            pending = pending[~got]
        # χ² gained (a point that was at +inf and is now finite has gained everything; inf → inf gains nothing)
        finite = np.isfinite(a_chi)
        gain = np.where(finite, a_chi - np.where(finite, best_chi, 0.0), np.where(np.isfinite(best_chi), np.inf, 0.0))
        nu[active], chi[active] = best_nu, best_chi
        keep = np.nonzero(((gain >= tol) | retry) & ~last)[0]
        if keep.size == 0:
            break
        # a stale point keeps its neighbours' curvature only while it predicts the gain of its steps (within 25 %): a
        # wrong curvature also makes the decrement, and with it the convergence test, wrong
        trusted = ok & stale & (np.abs(gain - dec) <= 0.25 * dec)
        # the next step needs the gradient and information at the new points: the full-step ones are in hand, the
        # damped, retried and no longer trusted ones recomputed with their own information (exact from then on)
        damped = keep[~ok[keep] | (stale[keep] & ~trusted[keep])]
        pos = np.searchsorted(full, keep)
        grad, fisher = tgrad[pos], tfisher[pos]
        if damped.size:
            st_d = take_parts(states, damped, n_act)
            _, dgrad, dfisher = vj(st_d, nu[active[damped]], [o if o.ndim == 1 else o[damped] for o in a_obs],
                                   active[damped])
            where = np.searchsorted(keep, damped)
            grad[where], fisher[where] = dgrad, dfisher
            stale_all[active[damped]] = False
            if return_fisher:
                fisher_all[active[damped]] = dfisher
        states = take_parts(states, keep, n_act)
        active = active[keep]
    return (chi, nu, fisher_all) if return_fisher else (chi, nu)
