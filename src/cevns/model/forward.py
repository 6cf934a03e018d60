"""The one forward model of an experiment: μ(θ, ν)[P, bins] for P parameter points at once.

θ are physics parameters (names of :mod:`cevns.interactions.parameters`), ν every other parameter (free
normalisations such as a CEvNS count or σ/σ_SM, and constrained nuisances). ``prepare(θ)`` does the θ-dependent
work once per batch (predicted spectra per detector-response setting); ``expected(state, ν)`` and
``value_and_jacobian(state, ν)`` evaluate the samples with their modifiers (:mod:`cevns.model.samples`). The fit
(P = 1, :class:`cevns.inference.likelihood.ModelLikelihood`), profile scans, limits, Feldman–Cousins toys, Asimov
sensitivities and the per-component views of the plots all call this object; models add (``a + b``) into a
combination whose parameters are shared by name.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from cevns.errors import ConfigError, UnknownNameError
from cevns.inference.likelihood import Parameter
from cevns.interactions.parameters import PARAMETERS, validate_params
from cevns.model.samples import GradientAccumulator, JacobianAccumulator

__all__ = ["ForwardModel"]


def _add(mu: np.ndarray, m: np.ndarray) -> np.ndarray:
    """mu + m, in place when mu is a (P, bins) array of its own (a sample's fresh result), else a new array."""
    if mu.flags.owndata and mu.flags.writeable and mu.shape == np.broadcast_shapes(mu.shape, m.shape):
        mu += m
        return mu
    return mu + m


class ForwardModel:
    """μ(θ, ν) of one experiment.

    ``physics_names``: the θ this model was built for (the kernels they need are folded); others raise.
    ``nuisances``: the ν parameters (:class:`~cevns.inference.likelihood.Parameter`, in vector order; the name is
    kept for the profiling code, which profiles all of them). ``observed``: counts over the model's bins.
    ``samples``: :class:`~cevns.model.samples.FactorisedSample` / :class:`~cevns.model.samples.TemplateSample`.
    ``info``: free-form metadata (signal mode, bin shape, sample labels)."""

    def __init__(self, name: str, physics_names: Sequence[str], nuisances: Sequence[Parameter], observed,
                 samples: Sequence, info: dict | None = None):
        self.name = name
        self.physics_names = tuple(physics_names)
        for n in self.physics_names:
            if n not in PARAMETERS:
                raise UnknownNameError("physics parameter", n, PARAMETERS)
        self.nuisances = list(nuisances)
        names = [p.name for p in self.nuisances]
        if len(set(names)) != len(names):
            raise ConfigError(f"model {name}: duplicate parameter names {names}")
        clash = set(names) & set(self.physics_names)
        if clash:
            raise ConfigError(f"model {name}: {sorted(clash)} are both physics and model parameters")
        self.observed = np.asarray(observed, float).ravel()
        self.samples = list(samples)
        for s in self.samples:
            if s.n_bins != self.observed.size:
                raise ConfigError(f"model {name}: sample {s.name} has {s.n_bins} bins, the data {self.observed.size}")
            bad = [k for k in s.parameter_indices() if not 0 <= k < len(self.nuisances)]
            if bad:
                raise ConfigError(f"model {name}: sample {s.name} refers to parameter indices {bad}")
        self.info = dict(info or {})
        self._sample_params = [tuple(sorted(s.parameter_indices())) for s in self.samples]
        self._memo: list = [None] * len(self.samples)
        # samples whose μ is a fixed shape times a product of normalisations: one product (P, k) @ (k, bins) for all
        self._static = [j for j, s in enumerate(self.samples) if getattr(s, "static_shape", None) is not None]
        self._static_shapes = (np.stack([self.samples[j].static_shape for j in self._static]) if self._static
                               else None)
        self._dynamic = [j for j in range(len(self.samples)) if j not in self._static]

    # -- the interface of cevns.inference.batch ----------------------------------------------------------------
    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.nuisances]

    def index(self, name: str) -> int:
        try:
            return self.parameter_names.index(name)
        except ValueError:
            raise UnknownNameError(f"parameter of {self.name}", name, self.parameter_names) from None

    def check_physics(self, phys: dict) -> dict:
        """Validated {name: float array}; a name this model was not built for raises."""
        extra = [k for k in phys if k not in self.physics_names]
        if extra:
            raise UnknownNameError(f"physics parameter of model {self.name} (built for {list(self.physics_names)})",
                                   extra[0], self.physics_names)
        return validate_params(phys)

    def prepare(self, phys: dict, validated: bool = False):
        """θ-dependent state for the points of ``phys`` (name → scalar or (P,) array; absent names: SM/default)."""
        phys = phys if validated else self.check_physics(phys)
        return [s.prepare(phys) if s.depends_on_physics else None for s in self.samples]

    def take_state(self, state, idx):
        return [s.take(st, idx) for s, st in zip(self.samples, state)]

    def _evaluate(self, state, nu: np.ndarray, J=None) -> np.ndarray:
        """μ (P, bins) summed over the samples, their derivatives into J (an accumulator, or None): the samples of a
        fixed shape as one matrix product of their scales (P, k) and shapes (k, bins) (one pass over the (P, bins)
        result instead of a product and a sum for each), the others one by one."""
        mu = None
        if self._static:
            C = np.empty((nu.shape[0], len(self._static)))
            for i, j in enumerate(self._static):
                C[:, i] = self.samples[j].evaluate_scale(nu, J)
            mu = C @ self._static_shapes
        for j in self._dynamic:
            m = self.samples[j].evaluate(state[j], nu, J)
            mu = m if mu is None else _add(mu, m)
        return mu

    def expected(self, state, nu: np.ndarray) -> np.ndarray:
        """μ (P, bins) for ν (P, m) ordered as :attr:`nuisances`."""
        return self._evaluate(state, np.asarray(nu, float))

    def expected1(self, state, x) -> np.ndarray:
        """μ (bins,) at one point x (ν values in order, list or array): the P = 1 evaluation of the fit. Each sample's
        result is kept with the state and parameter values it was computed for, so a minimiser that moves one
        parameter at a time recomputes only the samples that depend on it."""
        x = x.tolist() if hasattr(x, "tolist") else list(x)
        mu = None
        cache = self._memo
        for j, (s, st) in enumerate(zip(self.samples, state)):
            vals = tuple([x[k] for k in self._sample_params[j]])
            c = cache[j]
            if c is not None and c[0] is st and c[1] == vals:
                m = c[2]
            else:
                m = s.evaluate1(st, x)
                cache[j] = (st, vals, m)
            mu = m if mu is None else mu + m
        return mu

    def value_and_jacobian(self, state, nu: np.ndarray, dtype=np.float32):
        """(μ (P, bins), ∂μ/∂ν (P, m, bins)); float32 Jacobians by default (they only set Newton directions)."""
        nu = np.asarray(nu, float)
        J = JacobianAccumulator(nu.shape[0], len(self.nuisances), self.observed.size, dtype)
        mu = self._evaluate(state, nu, J)
        return mu, J.result()

    def value_and_gradient(self, state, nu: np.ndarray, weights):
        """(μ (P, bins), Σ_bins ∂μ/∂ν · weights(μ) (P, m)): the Jacobian of :meth:`value_and_jacobian` contracted with
        bin weights that depend on μ (``weights``: μ → (P, bins), e.g. ∂χ²/∂μ), without forming it."""
        nu = np.asarray(nu, float)
        G = GradientAccumulator(nu.shape[0], len(self.nuisances))
        mu = self._evaluate(state, nu, G)
        return mu, G.contract(weights(mu))

    def components(self, state, nu: np.ndarray) -> dict[str, np.ndarray]:
        """Each sample's μ (P, bins), by sample name."""
        nu = np.asarray(nu, float)
        return {s.name: s.evaluate(st, nu) for s, st in zip(self.samples, state)}

    def defaults(self) -> np.ndarray:
        return np.array([p.value for p in self.nuisances], dtype=float)

    # -- combination --------------------------------------------------------------------------------------------
    @property
    def parts(self):
        return [self]

    def __add__(self, other):
        from cevns.inference.batch import CombinedModel

        return CombinedModel([self, other])

    def __repr__(self) -> str:
        return (f"ForwardModel({self.name!r}, physics={list(self.physics_names)}, {len(self.nuisances)} parameters, "
                f"{self.observed.size} bins, samples={[s.name for s in self.samples]})")
