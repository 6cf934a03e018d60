"""Forward models of several registered experiments for physics-parameter scans.

``build_batched_model(('coherent-csi-2021', 'coherent-ar-2020'), ('eps_ee_uV', 'eps_ee_dV'))`` returns the sum of the
experiments' 'physics'-mode forward models (:meth:`cevns.experiments.experiment.Experiment.model`): the CEvNS rate is
predicted from the physics parameters, every systematic is a nuisance, and nuisances are shared by name (e.g.
``sns_flux_norm``) with their constraints and limits checked for agreement.
"""
from __future__ import annotations

from functools import lru_cache

from cevns.errors import ConfigError

__all__ = ["build_batched_model", "experiment"]


@lru_cache(maxsize=16)
def experiment(name: str):
    """A registered experiment, built once per process."""
    from cevns.experiments.registry import load_experiment

    return load_experiment(name)


def build_batched_model(experiments, physics, options: dict | None = None):
    from cevns.inference.batch import CombinedModel

    if not experiments:
        raise ConfigError("give at least one experiment")
    if options:
        raise ConfigError(f"unknown model options {sorted(options)}")
    return CombinedModel([experiment(n).model("physics", tuple(physics)) for n in experiments])
