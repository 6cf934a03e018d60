"""A predicted signal: source × interaction × target × detector response → energy factors per group, batched over θ.

For every projectile species s (grouped, e.g. by arrival-time component), isotope i, kinematic kernel k and detector
response setting v (nominal, and each grid point of each response nuisance such as a quenching or efficiency shift),

    A_v[g, E] = Σ_{s ∈ g} Σ_i Σ_k  R_v,i[E, n] · K_k,s,i[n] · w_k(θ; s, i)[n]                  (+ electron recoils)

with K the flux-folded kernels of :mod:`cevns.rates` and w the weights of :mod:`cevns.interactions.terms`. The
products R_v ⊙ K are stacked over settings once, so one parameter batch is one matrix product per (k, s, i).
Flux-changing processes (sterile oscillation) subtract A(θ) · R_v (K_k ⊙ ⟨sin²Δ⟩(Δm²)) per distinct Δm² (folds cached).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cevns.errors import ConfigError
from cevns.interactions import oscillation
from cevns.interactions.parameters import batch_size
from cevns.interactions.terms import (KERNELS, electron_weights, flux_terms, nuclear_weights, required_kernels)
from cevns.rates import FluxKernels

__all__ = ["ResponseSettings", "PredictedSignal"]


@dataclass
class ResponseSettings:
    """Detector response matrices for each setting v: ``nuclear[v][iso_name]`` (n_E, nodes) and optionally
    ``electron[v][element]`` (n_E, electron nodes). ``modifiers``: [(parameter index, VariantGrid, [setting index
    per grid point])], the nominal grid point of each being setting 0."""

    nuclear: list[dict[str, np.ndarray]]
    electron: list[dict[str, np.ndarray]] | None = None
    modifiers: list = field(default_factory=list)

    @property
    def n_settings(self) -> int:
        return len(self.nuclear)


def _row_basis(w: np.ndarray, max_rank: int = 8, rtol: float = 1e-12) -> np.ndarray | None:
    """Orthonormal rows Q (r, nodes), r ≤ max_rank, spanning the rows of w (P, nodes) to rtol of the largest row, by
    pivoted Gram–Schmidt; None if w needs more. Weights of a batch usually span few functions of the recoil energy
    (e.g. Q_W(θ)² under NSI is a quadratic form in Z F_p and N F_n: rank 3)."""
    R = np.array(w, dtype=float)
    n2 = np.einsum("pn,pn->p", R, R)
    floor = rtol * rtol * n2.max()
    basis = []
    while n2.max() > floor:
        if len(basis) == max_rank:
            return None
        i = int(np.argmax(n2))
        q = R[i] / np.sqrt(n2[i])
        for b in basis:  # re-orthogonalise against the basis (classical Gram–Schmidt loses it on small residuals)
            q = q - (q @ b) * b
        q /= np.linalg.norm(q)
        basis.append(q)
        R -= np.outer(R @ q, q)
        n2 = np.einsum("pn,pn->p", R, R)
    return np.array(basis) if basis else None


def _fold_factors(w: np.ndarray, M: np.ndarray):
    """w (P, nodes) @ M (nodes, k) as factors (C, B) with w @ M = C @ B, or (None, row (1, k)) when every row of w is
    the same (weights that the scanned parameters do not change, e.g. ν_μ rates under ε_ee: folded once). Rows that
    span r ≪ min(nodes, k) functions give C = w Qᵀ (P, r), B = Q M (r, k), checked to reproduce w to 1e-12 of its
    largest row; otherwise (w, M)."""
    P = w.shape[0]
    if P == 1 or w.strides[0] == 0 or not np.any(w[1:] != w[:1]):
        return None, w[:1] @ M
    if P > 16 and M.shape[1] > 16:
        Q = _row_basis(w)
        if Q is not None:
            C = w @ Q.T
            if np.abs(C @ Q - w).max() <= 1e-12 * np.abs(w).max():
                return C, Q @ M
    return w, M


def _fold(w: np.ndarray, M: np.ndarray) -> np.ndarray:
    """w (P, nodes) @ M (nodes, k) (one row when all rows of w are equal; see :func:`_fold_factors`)."""
    C, B = _fold_factors(w, M)
    return B if C is None else C @ B


class PredictedSignal:
    """Energy factors of a predicted signal for a fixed set of physics parameter names (which fixes the kernels to
    fold). ``groups``: list of lists of species names; ``baseline_m``/``baseline_spread_m``: for flux-changing
    processes. Call with a validated physics dict → (A0 (P, G, n_E), [(off_j, seg_j) (P, G, n_j, n_E)])."""

    def __init__(self, flux: FluxKernels, components, groups: list[list[str]], response: ResponseSettings,
                 physics_names, form_factor_model: str, scheme: str, baseline_m: float | None = None,
                 baseline_spread_m: float = 1.0, electron_atoms: dict | None = None, n_e: int | None = None):
        self.flux = flux
        self.components = list(components)
        self.groups = [list(g) for g in groups]
        self.response = response
        self.physics_names = tuple(physics_names)
        self.kernels = required_kernels(self.physics_names)
        self.e_kernels = required_kernels(self.physics_names, "electron") if electron_atoms else ()
        self.baseline_m, self.baseline_spread_m = baseline_m, baseline_spread_m
        self.electron_atoms = dict(electron_atoms or {})
        V = response.n_settings
        self.V = V
        first = next(iter(response.nuclear[0].values()))
        self.n_e = first.shape[0] if n_e is None else n_e
        self._group_of = {s: g for g, members in enumerate(self.groups) for s in members}
        self.species = [s for g in self.groups for s in g]
        self._stacked = {}
        self._rows = {}  # folds of weights that every point shares (θ-independent terms), by their row's bytes
        self.contexts = {(s, iso.name): flux.nuclear_context(iso.name, s, form_factor_model, scheme)
                         for iso, _ in self.components for s in self.species}
        self.e_contexts = {}
        if self.electron_atoms:
            if response.electron is None:
                raise ConfigError("electron recoils need electron response matrices")
            self.e_contexts = {(s, el): flux.electron_context(el, s) for el in self.electron_atoms for s in self.species}

    def with_response(self, response: ResponseSettings) -> "PredictedSignal":
        """The same signal (kernels, contexts) with other response matrices of the same shape: a shallow copy with
        an empty stacked-matrix cache (one-off predictions at new response settings reuse everything else)."""
        import copy

        if response.n_settings != self.V:
            raise ConfigError(f"{response.n_settings} response settings for a signal built with {self.V}")
        out = copy.copy(self)
        out.response = response
        out._stacked, out._rows = {}, {}
        return out

    # -- stacked response ⊙ kernel matrices ---------------------------------------------------------------------
    def columns(self, layout: str) -> list[tuple[int, int | None]]:
        """The column blocks of a layout, each (v, v0): response setting v, minus setting v0 unless None.
        'settings': every setting; 'morph': the nominal, then for each modifier j its offsets V_j,k − V_nominal and
        then its segments V_j,k+1 − V_j,k (the state of :meth:`__call__`, every array a view of one product)."""
        if layout == "settings":
            return [(v, None) for v in range(self.V)]
        if layout != "morph":
            raise ConfigError(f"layout {layout!r}; allowed: settings, morph")
        cols = [(0, None)]
        for _, _, st in self.response.modifiers:
            cols += [(v, 0) for v in st]
        for _, _, st in self.response.modifiers:
            cols += [(b, a) for a, b in zip(st[:-1], st[1:])]
        return cols

    def _stack(self, kernel_vec: np.ndarray, iso_name: str, electron: bool, layout: str) -> np.ndarray:
        """(nodes, columns·n_E): the response of each column block of ``layout`` times one flux-folded kernel,
        transposed for w @ M."""
        mats = self.response.electron if electron else self.response.nuclear
        blocks = [mats[v][iso_name] if v0 is None else mats[v][iso_name] - mats[v0][iso_name]
                  for v, v0 in self.columns(layout)]
        return np.ascontiguousarray(np.concatenate([(m * kernel_vec[None, :]).T for m in blocks], axis=1))

    def _fold(self, w: np.ndarray, kernel: str, s: str, target: str, electron: bool, layout: str = "settings",
              factored: bool = False):
        """Σ_n w[p, n] K[n] R_c[E, n] for every column block c of ``layout``: (P or 1, columns·n_E), or its factors
        (see :func:`_fold_factors`). With one setting (a one-off prediction) the product is taken directly, without
        building the stacked matrix. A row shared by every point of a batch (a term the parameters do not change) is
        folded once and kept, keyed by its bytes."""
        if w.shape[0] > 1 and (w.strides[0] == 0 or not np.any(w[1:] != w[:1])):  # (a one-off P = 1 fold is not kept)
            row = np.ascontiguousarray(w[:1], dtype=float)
            key = (kernel, s, target, electron, layout, row.tobytes())
            out = self._rows.get(key)
            if out is None:
                if len(self._rows) >= 512:
                    self._rows.clear()
                out = self._rows[key] = self._fold_direct(row, kernel, s, target, electron, layout)
            return (None, out) if factored else out
        return self._fold_direct(w, kernel, s, target, electron, layout, factored)

    def _fold_direct(self, w: np.ndarray, kernel: str, s: str, target: str, electron: bool, layout: str,
                     factored: bool = False):
        """:meth:`_fold` without the memory of shared rows."""
        if self.V == 1 and (("e", kernel, s, target, layout) if electron else (kernel, s, target, layout)) \
                not in self._stacked:
            K = self.flux.get(kernel, KERNELS[kernel], s, f"e:{target}" if electron else target)
            R = (self.response.electron if electron else self.response.nuclear)[0][target]
            w, M = w * K[None, :], R.T
        else:
            M = self.e_matrix(kernel, s, target, layout) if electron else self.matrix(kernel, s, target, layout)
        return _fold_factors(w, M) if factored else _fold(w, M)

    def matrix(self, kernel: str, s: str, iso_name: str, layout: str = "settings") -> np.ndarray:
        key = (kernel, s, iso_name, layout)
        if key not in self._stacked:
            K = self.flux.get(kernel, KERNELS[kernel], s, iso_name)
            self._stacked[key] = self._stack(K, iso_name, False, layout)
        return self._stacked[key]

    def e_matrix(self, kernel: str, s: str, el: str, layout: str = "settings") -> np.ndarray:
        key = ("e", kernel, s, el, layout)
        if key not in self._stacked:
            K = self.flux.get(kernel, KERNELS[kernel], s, f"e:{el}")
            self._stacked[key] = self._stack(K, el, True, layout)
        return self._stacked[key]

    def osc_matrix(self, dm2: float, s: str, iso_name: str, layout: str = "settings") -> np.ndarray:
        """Stacked response × SM kernel folded with ⟨sin²(1.267 Δm² L/E)⟩ (cached per Δm², at most 256 values)."""
        key = ("osc", float(dm2), s, iso_name, layout)
        if key not in self._stacked:
            if sum(1 for k in self._stacked if k[0] == "osc") > 256 * len(self.contexts):
                for k in [k for k in self._stacked if k[0] == "osc"]:
                    del self._stacked[k]
                self.flux._cache = {k: v for k, v in self.flux._cache.items() if k[3] is None}
            L, dL = self.baseline_m, self.baseline_spread_m
            if L is None:
                raise ConfigError("sterile oscillation needs the source-detector baseline")
            K = self.flux.get("sm", KERNELS["sm"], s, iso_name,
                              flux_weight=lambda E: oscillation.mean_sin2(dm2, L, E, dL), weight_key=("osc", float(dm2)))
            self._stacked[key] = self._stack(K, iso_name, False, layout)
        return self._stacked[key]

    # -- evaluation --------------------------------------------------------------------------------------------
    def all_settings(self, phys: dict) -> np.ndarray:
        """A_v[g, E] for every setting v: (P, V, G, n_E) (a view)."""
        return self._fold_all(phys, "settings").transpose(0, 2, 1, 3)

    def _fold_all(self, phys: dict, layout: str) -> np.ndarray:
        """A_c[g, E] for every column block c of ``layout`` (:meth:`columns`): (P, G, columns, n_E), C-contiguous."""
        P = batch_size(phys)
        V, nE, G = len(self.columns(layout)), self.n_e, len(self.groups)
        # terms the parameters do not change (one folded row) are summed once; the others are kept as factors
        # (C (P, r), B (r, V·n_E)) and multiplied out once per group: out[:, g] = common[g] + [C₁ C₂ …] @ [B₁; B₂; …]
        common = np.zeros((G, V * nE))
        factors: list[list] = [[] for _ in range(G)]

        def add(g, CB):
            C, B = CB
            if C is None:
                common[g] += B[0]
            else:
                factors[g].append((C, B))

        # a one-off prediction (one point, one setting): Σ_k,s w_k K_k,s per group and target first, then one
        # product with the response of that target instead of one per term
        one_off = P == 1 and self.V == 1
        summed: dict = {}

        def fold(w, k, s, target, electron):
            g = self._group_of[s]
            if one_off:
                v = w[0] * self.flux.get(k, KERNELS[k], s, f"e:{target}" if electron else target)
                key = (g, target, electron)
                summed[key] = v if key not in summed else summed[key] + v
            else:
                add(g, self._fold(w, k, s, target, electron, layout, factored=True))

        sm_w = {}
        for (s, iso_name), ctx in self.contexts.items():
            for k, w in nuclear_weights(phys, ctx, self.kernels).items():
                fold(w, k, s, iso_name, False)
                if k == "sm":
                    sm_w[(s, iso_name)] = w
        for (s, el), ec in self.e_contexts.items():
            for k, w in electron_weights(phys, ec, self.e_kernels).items():
                fold(w, k, s, el, True)
        for (g, target, electron), v in summed.items():
            common[g] += (self.response.electron if electron else self.response.nuclear)[0][target] @ v
        out = np.empty((P, G, V * nE))
        for g in range(G):
            if factors[g]:
                np.matmul(np.hstack([C for C, _ in factors[g]]), np.vstack([B for _, B in factors[g]]), out=out[:, g])
                out[:, g] += common[g]
            else:
                out[:, g] = common[g]
        for s in self.species:
            for A, dm2 in flux_terms(phys, s):
                g = self._group_of[s]
                for u in np.unique(dm2[A != 0]) if np.any(A != 0) else ():
                    if u <= 0:
                        continue
                    pts = np.nonzero((dm2 == u) & (A != 0))[0]
                    for iso, _ in self.components:
                        w = sm_w[(s, iso.name)]
                        wa = (w[pts] if w.shape[0] == P else np.broadcast_to(w, (P, w.shape[1]))[pts]) * A[pts, None]
                        out[pts, g] -= wa @ self.osc_matrix(u, s, iso.name, layout)
        return out.reshape(P, G, V, nE)

    def __call__(self, phys: dict):
        """(A0 (P, G, n_E), [(off_j, seg_j)]) with off_j = V_j − V_j,nom (P, G, n_j, n_E) on the grid of response
        parameter j and seg_j (P, G, n_j − 1, n_E) its differences between neighbouring grid values (the form of
        :class:`cevns.model.samples.GridModifier`, point-major: selecting points keeps rows whole)."""
        X = self._fold_all(phys, "morph")  # (P, G, columns, nE): nominal, offsets, segments
        sizes = [len(st) for _, _, st in self.response.modifiers]
        a, b = 1, 1 + sum(sizes)
        Vs = []
        for n in sizes:
            Vs.append((X[:, :, a:a + n], X[:, :, b:b + n - 1]))
            a, b = a + n, b + n - 1
        return X[:, :, 0], Vs
