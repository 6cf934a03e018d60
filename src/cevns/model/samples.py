"""Samples of a forward model (signal and backgrounds) and the modifiers acting on them, batched over P points.

Two kinds of sample cover every experiment so far:

* :class:`FactorisedSample` — observable bins (energy × time), each group g a product of an energy factor
  A_g[E] and a time factor B_τ(g)[t] (stopped-pion signals: prompt/delayed; backgrounds measured as PE shape ×
  time shape):  μ[E, t] = c · Σ_g s_g A_g[E] B_τ(g)[t];
* :class:`TemplateSample` — an N-D template (a released PDF), optionally multiplied bin by bin by a physics-dependent
  ratio r(θ) (new physics on a released SM template):  μ = c · max(T, 0) · r(θ).

Modifiers (pyhf/HistFactory-like, each implemented once here):

* multiplicative normalisations c = Π_k ν_k: ``normsys`` (Gaussian-constrained, e.g. a flux or background
  normalisation, shared by name across experiments) and ``normfactor`` (free, e.g. σ/σ_SM);
* ``count``: the sample normalised to a free number of events n over the model's bins, c = n / Σ shape;
* per-group free scales s_g (e.g. separate ν_e and ν_μ cross-section scales);
* variant morphing (``histosys`` on templates, response shifts on energy or time factors: quenching, efficiency,
  pulse timing, a background time shift): the one piecewise-linear code of :mod:`cevns.model.interpolation`,
  additive one nuisance at a time.

Every sample gives μ (P, bins) and, on request, ∂μ/∂ν for each parameter it depends on (exact derivatives of the
piecewise-linear model), so fits, profiles of thousands of points and Asimov/toy studies share one evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from cevns.errors import ConfigError
from cevns.model.interpolation import VariantGrid

__all__ = ["GridModifier", "StaticMorph", "FactorisedSample", "TemplateSample", "JacobianAccumulator",
           "GradientAccumulator"]


@dataclass
class GridModifier:
    """A nuisance (index ``param`` in the model's parameter vector) morphing an array between variants on ``grid``.
    ``variants`` (n_grid, …) for a fixed array; None when the variants come from the physics state (signals)."""

    param: int
    grid: VariantGrid
    variants: np.ndarray | None = None

    def __post_init__(self):
        if self.variants is not None:
            V = np.asarray(self.variants, float)
            if V.shape[0] != self.grid.n:
                raise ConfigError(f"{V.shape[0]} variants for a grid of {self.grid.n} values")
            self.variants = V
            #: V_k − V_nominal and V_{k+1} − V_k: one morphing step is off[i] + f · seg[i]
            self.off = V - V[self.grid.nominal_index]
            self.seg = np.diff(V, axis=0)


class StaticMorph:
    """base + Σ_j [V_j(ν_j) − V_j(nominal)] for fixed variants of several nuisances at P points, as one matrix
    product: V_j(ν) − V_j,nom = (1 − f) off_j[i] + f off_j[i+1] with off_j[k] = V_j[k] − V_j,nom (the piecewise-linear
    interpolation of :mod:`cevns.model.interpolation`), so the whole is [W, 1] @ [OFF; base] with W (P, Σ_j n_j)
    holding the two weights of each nuisance (the base is one more row: no extra pass over the (P, *feat) result).
    Derivatives: (off_j[i+1] − off_j[i]) / (g_{i+1} − g_i), also one matrix product."""

    def __init__(self, mods, base: np.ndarray):
        self.mods = list(mods)
        base = np.asarray(base, float)
        self.feat_shape = base.shape
        sizes = [m.grid.n for m in self.mods]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp) if sizes else np.zeros(0, np.intp)
        self.K = int(sum(sizes))
        self.OFF = (np.concatenate([m.off.reshape(m.grid.n, -1) for m in self.mods]) if self.mods
                    else np.zeros((0, base.size)))
        self._OFF_base = np.vstack([self.OFF, base.reshape(1, -1)])

    def __bool__(self) -> bool:
        return bool(self.mods)

    def morphed(self, nu: np.ndarray, jac: bool = False, factored: bool = False):
        """(base + Σ_j ΔV_j (P, *feat), ∂/∂ν_j (P, n_mods, *feat) or None); ``factored``: the derivatives as Wd
        (P, n_mods, K) with ∂/∂ν_j = Wd[:, j] @ OFF (not multiplied out)."""
        P = nu.shape[0]
        W = np.zeros((P, self.K + 1))
        W[:, self.K] = 1.0
        Wd = np.zeros((P, len(self.mods), self.K)) if jac else None
        r = np.arange(P)
        for j, m in enumerate(self.mods):
            i, f, inv = m.grid.locate(nu[:, m.param])
            c = self.offsets[j] + i
            W[r, c] = 1.0 - f
            W[r, c + 1] = f
            if jac:
                Wd[r, j, c] = -inv
                Wd[r, j, c + 1] = inv
        out = (W @ self._OFF_base).reshape((P,) + self.feat_shape)
        if not jac:
            return out, None
        if factored:
            return out, Wd
        return out, (Wd.reshape(P * len(self.mods), self.K) @ self.OFF).reshape((P, len(self.mods)) + self.feat_shape)

    def delta1(self, x: list):
        """Σ_j ΔV_j at one point (x: Python floats), or None without modifiers."""
        out = None
        for m in self.mods:
            i, f = m.grid.locate1(x[m.param])
            d = m.off[i] if f == 0.0 else m.off[i] + f * m.seg[i]
            out = d if out is None else out + d
        return out


def _morph_state(base: np.ndarray, mods, variants, nu: np.ndarray, jac: bool):
    """base (P or 1, G, n) + Σ_j [V_j(ν_j) − V_j,nom] for per-point variants from a physics state, given as
    (off_j (P or 1, G, n_j, n), seg_j (P or 1, G, n_j − 1, n)) like :class:`GridModifier` (point-major), and if
    ``jac`` [(param, ∂/∂ν_j)] (the interpolation of :class:`StaticMorph`)."""
    P = nu.shape[0]
    out = base
    d = []
    for m, (off, seg) in zip(mods, variants):
        i, f, inv = m.grid.locate(nu[:, m.param])
        extra = (slice(None),) + (None,) * (base.ndim - 1)
        if off.shape[0] == 1:
            o, sg = off[0, :, i], seg[0, :, i]
        else:
            r = np.arange(P)
            o, sg = off[r, :, i], seg[r, :, i]
        out = out + o + f[extra] * sg
        if jac:
            d.append((m.param, sg * inv[extra]))
    return out, d


def _morph_state1(base: np.ndarray, mods, variants, x: list) -> np.ndarray:
    """:func:`_morph_state` at one point (x: Python floats), without derivatives."""
    out = base
    for m, (off, seg) in zip(mods, variants):
        i, f = m.grid.locate1(x[m.param])
        out = out + off[0, :, i] if f == 0.0 else out + off[0, :, i] + f * seg[0, :, i]
    return out


class _Rows:
    """∂shape/∂ν of several parameters as an array (P, n, bins)."""

    def __init__(self, d: np.ndarray):
        self.d = d

    def rows(self) -> np.ndarray:
        return self.d

    def contract(self, w: np.ndarray) -> np.ndarray:
        """Σ_bins rows · w (P, n) for bin weights w (P, bins)."""
        return np.einsum("pnb,pb->pn", self.d, w)


class _MorphRows(_Rows):
    """∂shape/∂ν_j = (Wd[:, j] @ OFF) ⊙ post of a :class:`StaticMorph` (post: (P, bins) factor or None), kept
    factored: contracting with bin weights is (w ⊙ post) @ OFFᵀ, K numbers per point, then Wd."""

    def __init__(self, Wd: np.ndarray, OFF: np.ndarray, post: np.ndarray | None):
        self.Wd, self.OFF, self.post = Wd, OFF, post

    def rows(self) -> np.ndarray:
        P, n, K = self.Wd.shape
        d = (self.Wd.reshape(P * n, K) @ self.OFF).reshape(P, n, -1)
        if self.post is not None:
            d *= self.post[:, None, :]
        return d

    def contract(self, w: np.ndarray) -> np.ndarray:
        x = (w if self.post is None else w * self.post) @ self.OFF.T
        return np.einsum("pnk,pk->pn", self.Wd, x)


class _OuterRows(_Rows):
    """Rows of a factorised sample, flatten(Σ_τ L[p, j, τ, :] ⊗ R[p, τ, :]) (energy derivatives, ``vary='left'``)
    or flatten(Σ_τ L[p, τ, :] ⊗ R[p, j, τ, :]) (time derivatives, ``vary='right'``), restricted to ``cols``.
    Contracting with bin weights W[p, E, t] sums over the unchanged factor first (no (P, n, bins) array)."""

    def __init__(self, L: np.ndarray, R: np.ndarray, vary: str, n_e: int, n_t: int, cols):
        self.L, self.R, self.vary, self.n_e, self.n_t, self.cols = L, R, vary, n_e, n_t, cols

    def rows(self) -> np.ndarray:
        if self.vary == "left":
            P, n = self.L.shape[:2]
            d = np.matmul(self.L.transpose(0, 1, 3, 2), self.R[:, None]).reshape(P, n, -1)
        else:
            P, n = self.R.shape[:2]
            d = np.matmul(self.L.transpose(0, 2, 1)[:, None], self.R).reshape(P, n, -1)
        return d if self.cols is None else d[:, :, self.cols]

    def contract(self, w: np.ndarray) -> np.ndarray:
        P = w.shape[0]
        if self.cols is not None:
            full = np.zeros((P, self.n_e * self.n_t))
            full[:, self.cols] = w
            w = full
        W = w.reshape(P, self.n_e, self.n_t)
        if self.vary == "left":  # Σ_t R[p, τ, t] W[p, E, t], then Σ_τ,E L[p, j, τ, E] (·)
            X = np.matmul(np.broadcast_to(self.R, (P,) + self.R.shape[1:]), W.transpose(0, 2, 1))
            return np.einsum("pjte,pte->pj", self.L, X)
        Y = np.matmul(np.broadcast_to(self.L, (P,) + self.L.shape[1:]), W)  # Σ_E L[p, τ, E] W[p, E, t]
        return np.einsum("pjtu,ptu->pj", self.R, Y)


def _product(vals: list, P: int) -> np.ndarray:
    """Π vals (each (P,)) as a new (P,) array; ones without factors."""
    if not vals:
        return np.ones(P)
    out = vals[0].copy()
    for v in vals[1:]:
        out *= v
    return out


def _normalise(shape: np.ndarray, nu: np.ndarray, norms: list, count: int | None, J, blocks,
               scale_only: bool = False):
    """μ = c · shape with c = Π ν_k (× n/Σ shape for a count) and, into J (a :class:`JacobianAccumulator` or a
    :class:`GradientAccumulator`), ∂μ/∂ν for the normalisations and for the shape parameters (``blocks``: [(parameter
    indices (k,), ∂shape/∂ν as a :class:`_Rows`)]). ``scale_only``: return c (P,) instead of μ (the caller
    multiplies, e.g. the fixed shapes of several samples in one product)."""
    P = nu.shape[0]  # shape: (P or 1, bins)
    vals = [nu[:, k] for k in norms]
    c = _product(vals, P)
    if count is not None:
        F = shape.sum(axis=1)
        Fs = np.where(F > 0, F, 1.0)
        c_norm = c
        c = c * nu[:, count] / Fs
    mu = None if scale_only else c[:, None] * shape
    if J is None:
        return c if scale_only else mu
    for a, k in enumerate(norms):
        others = _product(vals[:a] + vals[a + 1:], P)
        if count is not None:
            others = others * nu[:, count] / Fs
        J.mul(k, shape, others[:, None])
    for ks, blk in blocks:
        if count is None:
            J.block(ks, blk, c)
        else:
            block = blk.rows()
            m_ = c[:, None] * shape if mu is None else mu
            d = c[:, None, None] * block - m_[:, None, :] * (block.sum(axis=2) / Fs[:, None])[:, :, None]
            for j, k in enumerate(ks):
                J.add(int(k), d[:, j])
    if count is not None:
        J.mul(count, shape, (c_norm / Fs)[:, None])
    return c if scale_only else mu


def _scale1(x: list, norms: list, count: int | None, F: float) -> float:
    """c of :func:`_normalise` at one point (x: Python floats): Π ν_k, × n/Σ shape for a count (F = Σ shape)."""
    c = 1.0
    for k in norms:
        c *= x[k]
    if count is not None:
        c *= x[count] / (F if F > 0 else 1.0)
    return c


class _PhysicsSample:
    """What every sample shares: an optional ``physics(phys)`` callable that prepares its θ-dependent state."""

    physics: Callable | None

    @property
    def depends_on_physics(self) -> bool:
        return self.physics is not None

    def prepare(self, phys: dict):
        return self.physics(phys) if self.physics is not None else None

    def evaluate_scale(self, nu: np.ndarray, J=None) -> np.ndarray:
        """c (P,) of μ = c · ``static_shape`` for a sample that has one, derivatives into J
        (:class:`cevns.model.forward.ForwardModel` multiplies the fixed shapes of all such samples at once)."""
        return _normalise(self.static_shape[None], nu, self.norms, None, J, [], scale_only=True)


class JacobianAccumulator:
    """∂μ/∂ν (P, m, bins) filled row by row by the samples (a row is written once and then added to)."""

    def __init__(self, P: int, m: int, n_bins: int, dtype=np.float32):
        self.J = np.empty((P, m, n_bins), dtype=dtype)
        self.done = np.zeros(m, dtype=bool)

    def add(self, k: int, d: np.ndarray) -> None:
        if self.done[k]:
            self.J[:, k] += d
        else:
            self.J[:, k] = d
            self.done[k] = True

    def mul(self, k: int, a: np.ndarray, b: np.ndarray) -> None:
        """Row k += a · b, written in place (no temporary) when the row is still empty."""
        if self.done[k]:
            self.J[:, k] += a * b
        else:
            np.multiply(a, b, out=self.J[:, k], casting="unsafe")
            self.done[k] = True

    def block(self, ks, blk: _Rows, c: np.ndarray) -> None:
        """Rows ks += c · ∂shape/∂ν (c: (P,))."""
        rows = blk.rows()
        for j, k in enumerate(ks):
            self.mul(int(k), rows[:, j], c[:, None])

    def result(self) -> np.ndarray:
        self.J[:, ~self.done] = 0.0
        return self.J


class GradientAccumulator:
    """The same rows as :class:`JacobianAccumulator`, recorded instead of written: :meth:`contract` gives
    Σ_bins ∂μ/∂ν_k · w (P, m) for weights w known only once μ is (the gradient of a χ²), without a (P, m, bins)
    array. Terms are references to the samples' arrays (no copies); a factor shared by several rows (a sample shape
    under several normalisations) is contracted once."""

    def __init__(self, P: int, m: int):
        self.P, self.m = P, m
        self.terms: list = []
        self.blocks: list = []

    def add(self, k: int, d: np.ndarray) -> None:
        self.terms.append((k, d, None))

    def mul(self, k: int, a: np.ndarray, b: np.ndarray) -> None:
        self.terms.append((k, a, b))

    def block(self, ks, blk: _Rows, c: np.ndarray) -> None:
        self.blocks.append((np.asarray(ks, dtype=np.intp), blk, c))

    def contract(self, w: np.ndarray) -> np.ndarray:
        """(P, m): row k of ∂μ/∂ν contracted with w (P, bins) over the bins."""
        g = np.zeros((self.P, self.m))
        dots: dict = {}
        for k, a, b in self.terms:
            key = id(a)
            if key not in dots:
                if a.ndim == 1 or a.shape[0] == 1 or a.strides[0] == 0:  # one row for every point
                    dots[key] = w @ np.asarray(a).reshape(-1, a.shape[-1])[0].astype(float)
                else:
                    dots[key] = np.einsum("pb,pb->p", a, w)
            g[:, k] += dots[key] if b is None else dots[key] * np.reshape(b, (self.P,))
        for ks, blk, c in self.blocks:
            g[:, ks] += blk.contract(w) * c[:, None]
        self.terms, self.blocks = [], []
        return g


@dataclass
class FactorisedSample(_PhysicsSample):
    """μ[E, t] = c · Σ_g s_g A_g[E] B_τ(g)[t] over ``n_e`` × ``n_t`` bins (C order), restricted to ``mask``.

    Energy factors: ``energy`` (G, n_e) fixed, or from ``physics(phys)`` → (A (P or 1, G, n_e), [(off_j, seg_j)
    (P or 1, G, n_j (− 1), n_e)] for each of ``energy_mods``, see :func:`_morph_state`) (a predicted signal). Time
    factors ``time`` (Gt, n_t) with ``time_mods`` (fixed variants (n_j, Gt, n_t)); ``group_time`` (G,) maps groups to
    time factors. ``norms``: parameter indices of
    multiplicative normalisations; ``group_norms`` (G,) parameter index of a per-group scale or −1; ``count``:
    parameter index of a free event count (c = n/Σ shape over the masked bins) or None."""

    name: str
    n_e: int
    n_t: int
    time: np.ndarray
    group_time: np.ndarray
    energy: np.ndarray | None = None
    energy_mods: list = field(default_factory=list)
    time_mods: list = field(default_factory=list)
    norms: list = field(default_factory=list)
    group_norms: np.ndarray | None = None
    count: int | None = None
    physics: Callable | None = None
    mask: np.ndarray | None = None
    label: str = ""

    def __post_init__(self):
        self.time = np.asarray(self.time, float)
        self.group_time = np.asarray(self.group_time, dtype=np.intp)
        G, Gt = self.group_time.size, self.time.shape[0]
        self._onehot = np.zeros((G, Gt))
        self._onehot[np.arange(G), self.group_time] = 1.0
        self._identity = G == Gt and np.array_equal(self.group_time, np.arange(G))
        has_gn = self.group_norms is not None and np.any(np.asarray(self.group_norms) >= 0)
        self.group_norms = np.asarray(self.group_norms, dtype=np.intp) if has_gn else None
        if self.energy is None and self.physics is None:
            raise ConfigError(f"sample {self.name}: needs fixed energy factors or a physics function")
        if self.energy is not None:
            self.energy = np.asarray(self.energy, float)
            if self.energy.shape != (G, self.n_e):
                raise ConfigError(f"sample {self.name}: energy factors {self.energy.shape} != ({G}, {self.n_e})")
        for m in self.time_mods:
            if m.variants is None or m.variants.shape[1:] != self.time.shape:
                raise ConfigError(f"sample {self.name}: time variants must have shape (n, {self.time.shape})")
        for m in self.energy_mods:
            if self.physics is None and (m.variants is None or m.variants.shape[1:] != self.energy.shape):
                raise ConfigError(f"sample {self.name}: energy variants must have shape (n, {self.energy.shape})")
        self._cols = None if self.mask is None else np.flatnonzero(np.asarray(self.mask).ravel())
        self._tmorph = StaticMorph(self.time_mods, self.time)
        self._emorph = StaticMorph(self.energy_mods, self.energy) if self.physics is None else None
        self._memo1: dict = {}
        self._fixed = None  # the shape of a sample without physics, modifiers or group scales, computed once
        if self.physics is None and not self.energy_mods and not self.time_mods and self.group_norms is None:
            A = self._collapse(self.energy[None], np.zeros((1, 0)))
            self._fixed = self._outer(A, self.time[None])[0]
        self.n_bins = self.n_e * self.n_t if self._cols is None else self._cols.size

    # -- state ------------------------------------------------------------------------------------------------
    @staticmethod
    def take(state, idx):
        if state is None:
            return None
        A, Vs = state
        if A.shape[0] == 1:
            return state
        return A[idx], [(o[idx], sg[idx]) for o, sg in Vs]

    # -- evaluation -------------------------------------------------------------------------------------------
    def _collapse(self, A: np.ndarray, nu: np.ndarray):
        """Σ_g s_g A_g into the time-factor slots: (P, Gt, n_e)."""
        if self.group_norms is not None:
            s = np.where(self.group_norms >= 0, nu[:, np.maximum(self.group_norms, 0)], 1.0)  # (P, G)
            return np.einsum("pg,gt,pge->pte", s, self._onehot, A)
        if self._identity:
            return A
        return np.einsum("gt,pge->pte", self._onehot, A)

    def _outer(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Σ_τ A[p, τ, :] ⊗ B[p, τ, :] flattened and masked: (P, bins)."""
        P = max(A.shape[0], B.shape[0])
        if A.shape[1] == 1:  # one time factor: an outer product per point (einsum: ~4× a batch of rank-1 matmuls)
            out = np.einsum("pe,pu->peu", np.broadcast_to(A[:, 0], (P, A.shape[2])),
                            np.broadcast_to(B[:, 0], (P, B.shape[2]))).reshape(P, -1)
        else:
            out = np.matmul(A.transpose(0, 2, 1), B).reshape(P, -1)
        return out if self._cols is None else out[:, self._cols]

    @property
    def static_shape(self) -> np.ndarray | None:
        """The shape (bins,) when μ = Π ν_k · shape (no physics, modifiers, group scales or free count), else None."""
        return self._fixed if self.count is None else None

    def evaluate(self, state, nu: np.ndarray, J: "JacobianAccumulator | None" = None) -> np.ndarray:
        """μ (P, bins); with ``J`` given, ∂μ/∂ν of this sample's parameters is added into it."""
        jac = J is not None
        P = nu.shape[0]
        blocks = []
        if self._fixed is not None:
            return _normalise(self._fixed[None], nu, self.norms, self.count, J, blocks)
        if self.physics is not None:
            A0, Vs = state
            A, dA = _morph_state(A0, self.energy_mods, Vs, nu, jac)
        elif self._emorph:
            A, dAs = self._emorph.morphed(nu, jac)
            dA = [] if dAs is None else [(m.param, dAs[:, j]) for j, m in enumerate(self.energy_mods)]
        else:
            A, dA = self.energy[None], []
        if self._tmorph:
            B, dBs = self._tmorph.morphed(nu, jac)
            if dBs is not None:  # (P, n_mods, Gt, n_t): the time derivatives on the time factors only
                dBs = dBs.reshape((P, len(self.time_mods)) + self.time.shape)
        else:
            B, dBs = self.time[None], None
        if A.shape[0] != P:
            A = np.broadcast_to(A, (P,) + A.shape[1:])
        if B.shape[0] != P:
            B = np.broadcast_to(B, (P,) + B.shape[1:])
        Ae = self._collapse(A, nu)
        shape = self._outer(Ae, B)
        if jac:
            dims = (self.n_e, self.n_t, self._cols)
            if self.group_norms is not None:
                for g, k in enumerate(self.group_norms):
                    if k >= 0:
                        t = self.group_time[g]
                        blocks.append(((int(k),), _OuterRows(A[:, None, g:g + 1], B[:, t:t + 1], "left", *dims)))
            if dA:  # (P, n_mods, Gt, n_E) ⊗ B
                dAs = np.stack([self._collapse(np.broadcast_to(d, A.shape), nu) for _, d in dA], axis=1)
                blocks.append((np.array([k for k, _ in dA]), _OuterRows(dAs, B, "left", *dims)))
            if dBs is not None:  # Ae ⊗ (P, n_mods, Gt, n_t)
                blocks.append((np.array([m.param for m in self.time_mods]), _OuterRows(Ae, dBs, "right", *dims)))
        return _normalise(shape, nu, self.norms, self.count, J, blocks)

    def evaluate1(self, state, x: list) -> np.ndarray:
        """μ (bins,) at one point x (a list of Python floats ordered as the model's parameters): the same model as
        :meth:`evaluate` with P = 1, in fewer array operations (the fit likelihood's hot path)."""
        if self._fixed is not None:
            shape = self._fixed
            return shape * _scale1(x, self.norms, self.count, float(shape.sum()) if self.count is not None else 0.0)
        # the shape, its energy and its time factors are kept with the values they were computed for: a minimiser
        # that moves one parameter recomputes only what depends on it
        ekey = tuple([x[m.param] for m in self.energy_mods])
        tkey = tuple([x[m.param] for m in self.time_mods])
        gkey = () if self.group_norms is None else tuple([x[k] for k in self.group_norms if k >= 0])
        memo = self._memo1
        S = memo.get("S")
        if S is not None and S[0] is state and S[1] == ekey and S[2] == tkey and S[3] == gkey:
            shape, F = S[4], S[5]
        else:
            A = memo.get("A")
            if A is not None and A[0] is state and A[1] == ekey:
                A = A[2]
            else:
                if self.physics is not None:
                    A0, Vs = state
                    A = _morph_state1(A0[0], self.energy_mods, Vs, x)
                else:
                    dA = self._emorph.delta1(x)
                    A = self.energy if dA is None else self.energy + dA
                memo["A"] = (state, ekey, A)
            B = memo.get("B")
            if B is not None and B[0] == tkey:
                B = B[1]
            else:
                dB = self._tmorph.delta1(x)
                B = self.time if dB is None else self.time + dB
                memo["B"] = (tkey, B)
            if self.group_norms is not None:
                s = np.array([x[k] if k >= 0 else 1.0 for k in self.group_norms])
                A = self._onehot.T @ (s[:, None] * A)
            elif not self._identity:
                A = self._onehot.T @ A
            shape = (A.T @ B).ravel()
            if self._cols is not None:
                shape = shape[self._cols]
            F = float(shape.sum()) if self.count is not None else 0.0
            memo["S"] = (state, ekey, tkey, gkey, shape, F)
        return shape * _scale1(x, self.norms, self.count, F)

    def parameter_indices(self) -> set[int]:
        out = set(self.norms) | {m.param for m in self.energy_mods} | {m.param for m in self.time_mods}
        if self.group_norms is not None:
            out |= {int(k) for k in self.group_norms if k >= 0}
        if self.count is not None:
            out.add(self.count)
        return out


@dataclass
class TemplateSample(_PhysicsSample):
    """μ = c · max(T(ν), 0) · r(θ) over ``nominal.size`` bins: a template with variant morphing (``mods``, fixed
    variants (n_j, bins)), multiplicative ``norms``, an optional free ``count`` and an optional physics ratio
    ``physics(phys)`` → r (P or 1, bins)."""

    name: str
    nominal: np.ndarray
    mods: list = field(default_factory=list)
    norms: list = field(default_factory=list)
    count: int | None = None
    physics: Callable | None = None
    label: str = ""

    def __post_init__(self):
        self.nominal = np.asarray(self.nominal, float).ravel()
        for m in self.mods:
            if m.variants is None or m.variants.shape[1:] != self.nominal.shape:
                raise ConfigError(f"sample {self.name}: variants must have shape (n, {self.nominal.size})")
        self.n_bins = self.nominal.size
        self._morph = StaticMorph(self.mods, self.nominal)

    @staticmethod
    def take(state, idx):
        if state is None or state.shape[0] == 1:
            return state
        return state[idx]

    @property
    def static_shape(self) -> np.ndarray | None:
        """The template (bins,) when μ = Π ν_k · template (no modifiers, physics or free count), else None."""
        return self.nominal if not self._morph and self.physics is None and self.count is None else None

    def evaluate(self, state, nu: np.ndarray, J: "JacobianAccumulator | None" = None) -> np.ndarray:
        """μ (P, bins); with ``J`` given, ∂μ/∂ν of this sample's parameters is added into it."""
        blocks = []
        if self._morph:
            t, Wd = self._morph.morphed(nu, J is not None, factored=True)
            pos = None  # bins clipped at 0 (the template morphed below zero), if any
            if t.min() < 0.0:
                pos = t > 0
                np.maximum(t, 0.0, out=t)
            if state is not None:
                t *= state
            shape = t
            if Wd is not None:  # ∂/∂ν_j = (Wd_j @ OFF) ⊙ [T > 0] ⊙ r(θ)
                post = state if pos is None else (pos.astype(float) if state is None else pos * state)
                blocks.append((np.array([m.param for m in self.mods]), _MorphRows(Wd, self._morph.OFF, post)))
        else:
            shape = self.nominal[None] if state is None else self.nominal[None] * state
        return _normalise(shape, nu, self.norms, self.count, J, blocks)

    def evaluate1(self, state, x: list) -> np.ndarray:
        """μ (bins,) at one point (see :meth:`FactorisedSample.evaluate1`)."""
        d = self._morph.delta1(x)
        shape = np.maximum(self.nominal if d is None else self.nominal + d, 0.0)
        if state is not None:
            shape = shape * state[0]
        return shape * _scale1(x, self.norms, self.count, float(shape.sum()) if self.count is not None else 0.0)

    def parameter_indices(self) -> set[int]:
        out = set(self.norms) | {m.param for m in self.mods}
        if self.count is not None:
            out.add(self.count)
        return out
