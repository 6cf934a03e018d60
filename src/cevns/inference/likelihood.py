"""Binned Poisson likelihoods with named parameters, Gaussian pull terms, and combination by name.

−2 ln L is written as the Baker–Cousins Poisson χ² (Baker & Cousins, NIM 221, 437 (1984), Eq. (8)):
    χ² = 2 Σ_i [μ_i − n_i + n_i ln(n_i/μ_i)]  +  Σ_k ((θ_k − θ̂_k)/σ_k)²
so values near the minimum are O(ndof) and Δχ² reads off directly. Likelihoods add: ``lik_a + lik_b`` is a combined
likelihood whose parameters are shared by name (a shared parameter must carry the same constraint in both).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from cevns.errors import ConfigError, UnknownNameError

__all__ = ["Parameter", "Likelihood", "BinnedPoissonLikelihood", "CombinedLikelihood", "ModelLikelihood", "poisson_chi2"]


@dataclass(frozen=True)
class Parameter:
    """A named parameter: ``value`` is the default (SM / nominal) and the fit's start; ``constraint`` = (mean, sigma)
    adds a Gaussian pull term; ``limits`` bound the fit; ``kind`` is 'poi' or 'nuisance'."""

    name: str
    value: float = 0.0
    limits: tuple[float | None, float | None] = (None, None)
    constraint: tuple[float, float] | None = None
    step: float = 0.1
    kind: str = "nuisance"
    doc: str = ""


def poisson_chi2(mu: np.ndarray, n: np.ndarray) -> float:
    """Baker–Cousins χ² = 2 Σ [μ − n + n ln(n/μ)] (terms with n = 0 reduce to 2μ); μ ≤ 0 with n > 0 gives +inf."""
    mu = np.asarray(mu, dtype=float)
    n = np.asarray(n, dtype=float)
    pos = n > 0
    if np.any(mu[pos] <= 0):
        return float("inf")
    mu_safe = np.where(pos, mu, 1.0)
    return float(2.0 * (np.sum(mu - n) + np.sum(n[pos] * np.log(n[pos] / mu_safe[pos]))))


class Likelihood:
    """Base class: subclasses set ``parameters`` and implement ``data_chi2(x)`` for x ordered like parameters."""

    name: str = "likelihood"
    parameters: list[Parameter]

    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def index(self, name: str) -> int:
        try:
            return self.parameter_names.index(name)
        except ValueError:
            raise UnknownNameError(f"parameter of {self.name}", name, self.parameter_names) from None

    def defaults(self) -> np.ndarray:
        return np.array([p.value for p in self.parameters], dtype=float)

    def x_from(self, values: dict[str, float] | None = None) -> np.ndarray:
        """Parameter vector from defaults overridden by ``values`` (unknown names raise)."""
        x = self.defaults()
        for k, v in (values or {}).items():
            x[self.index(k)] = v
        return x

    def pull_chi2(self, x: np.ndarray) -> float:
        """Σ ((θ − mean)/σ)² over constrained parameters (vectorised; rebuilt when ``parameters`` is replaced)."""
        key = id(self.parameters)
        if getattr(self, "_pull_key", None) != key:
            inv = np.array([1.0 / p.constraint[1] if p.constraint else 0.0 for p in self.parameters])
            mean = np.array([p.constraint[0] if p.constraint else 0.0 for p in self.parameters])
            self._pull = (inv, mean * inv)
            self._pull_key = key
        inv, mean_inv = self._pull
        r = np.asarray(x, dtype=float) * inv - mean_inv
        return float(r @ r)

    def data_chi2(self, x: np.ndarray) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def chi2(self, x) -> float:
        """−2 ln L (Baker–Cousins) including pull terms, for x ordered as ``parameters``."""
        x = np.asarray(x, dtype=float)
        return self.data_chi2(x) + self.pull_chi2(x)

    __call__ = chi2

    def __add__(self, other: "Likelihood") -> "CombinedLikelihood":
        return CombinedLikelihood([self, other])

    def with_parameter(self, name: str, **changes) -> "Likelihood":
        """A shallow copy with one parameter's fields replaced (e.g. constraint=None)."""
        import copy

        new = copy.copy(self)
        new.parameters = [replace(p, **changes) if p.name == name else p for p in self.parameters]
        if name not in new.parameter_names:
            raise UnknownNameError(f"parameter of {self.name}", name, self.parameter_names)
        return new


class BinnedPoissonLikelihood(Likelihood):
    """Observed counts ``observed`` (any shape) against ``expected(x)`` (same shape), over bins where ``mask``."""

    def __init__(self, name: str, parameters: Sequence[Parameter], expected: Callable[[np.ndarray], np.ndarray],
                 observed: np.ndarray, mask: np.ndarray | None = None):
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate parameter names in {name}: {names}")
        self.name = name
        self.parameters = list(parameters)
        self.expected = expected
        self.observed = np.asarray(observed, dtype=float)
        self.mask = None if mask is None else np.asarray(mask, bool)
        n = self.observed if mask is None else self.observed[self.mask]
        self._n = n.ravel()
        self._pos = np.flatnonzero(self._n > 0)
        self._npos = self._n[self._pos]
        self._const = float(np.sum(self._npos * np.log(self._npos)) - self._n.sum())  # Σ n ln n − Σ n

    def data_chi2(self, x: np.ndarray) -> float:
        """Baker–Cousins χ² with the data-only terms precomputed: 2[Σμ − Σ n ln μ + Σ n ln n − Σ n]."""
        mu = self.expected(x)
        if self.mask is not None:
            mu = mu[self.mask]
        mu = mu.ravel()
        mpos = mu.take(self._pos)
        if mpos.size and mpos.min() <= 0:
            return float("inf")
        return 2.0 * (mu.sum() - self._npos @ np.log(mpos) + self._const)


def _same_constraint(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in zip(a, b))


class CombinedLikelihood(Likelihood):
    """Sum of likelihoods; parameters are merged by name, in order of first appearance."""

    def __init__(self, parts: Sequence[Likelihood]):
        flat: list[Likelihood] = []
        for p in parts:
            flat += p.parts if isinstance(p, CombinedLikelihood) else [p]
        self.parts = flat
        self.name = " + ".join(p.name for p in flat)
        params: dict[str, Parameter] = {}
        for part in flat:
            for prm in part.parameters:
                if prm.name in params:
                    old = params[prm.name]
                    if not _same_constraint(old.constraint, prm.constraint):
                        raise ConfigError(f"shared parameter {prm.name!r} has different constraints in the combined "
                                          f"likelihoods: {old.constraint} vs {prm.constraint}")
                else:
                    params[prm.name] = prm
        self.parameters = list(params.values())
        names = self.parameter_names
        self._maps = [np.array([names.index(q.name) for q in part.parameters]) for part in flat]

    def data_chi2(self, x: np.ndarray) -> float:
        return sum(part.data_chi2(x[m]) for part, m in zip(self.parts, self._maps))


class ModelLikelihood(BinnedPoissonLikelihood):
    """The P = 1 view of a forward model (:class:`cevns.model.forward.ForwardModel`) for minimisers: parameters are the
    model's physics parameters (free or fixable by name) followed by its ν parameters; the θ-dependent state is
    cached for the last few θ values (a minimiser varies one parameter at a time). ``fixed_physics``: physics values
    that are not parameters of the likelihood (e.g. a mediator mass held fixed)."""

    def __init__(self, model, fixed_physics: dict | None = None, cache_size: int = 8):
        from cevns.interactions.parameters import PARAMETERS

        self.model = model
        self.fixed_physics = {k: float(v) for k, v in (fixed_physics or {}).items()}
        bad = [k for k in self.fixed_physics if k not in model.physics_names]
        if bad:
            raise UnknownNameError(f"physics parameter of {model.name}", bad[0], model.physics_names)
        self.free_physics = [n for n in model.physics_names if n not in self.fixed_physics]
        phys_params = []
        for n in self.free_physics:
            p = PARAMETERS[n]
            phys_params.append(Parameter(n, p.start_value(), p.limits, None, p.step, "poi", p.doc))
        self._nphys = len(phys_params)
        self._cache: dict = {}
        self._cache_size = cache_size
        m = model
        self._state0 = self.state(()) if self._nphys == 0 else None

        n = self._nphys

        def expected(x):
            if n == 0:
                return m.expected1(self._state0, x)
            return m.expected1(self.state(x[:n]), x[n:])

        super().__init__(model.name, phys_params + list(model.nuisances), expected, model.observed)

    def physics_dict(self, theta) -> dict:
        out = dict(self.fixed_physics)
        out.update({n: float(v) for n, v in zip(self.free_physics, theta)})
        return out

    def state(self, theta):
        """The model state at physics values ``theta`` (free physics parameters, in order), cached."""
        theta = np.asarray(theta, dtype=float)
        key = theta.tobytes()
        st = self._cache.get(key)
        if st is None:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            st = self.model.prepare({k: np.array([v]) for k, v in self.physics_dict(theta.tolist()).items()})
            self._cache[key] = st
        return st

    def components(self, x) -> dict[str, np.ndarray]:
        """Each sample's expectation over the model's bins at parameter vector x."""
        x = np.asarray(x, float)
        return {k: v[0] for k, v in self.model.components(self.state(x[:self._nphys]), x[self._nphys:][None, :]).items()}
