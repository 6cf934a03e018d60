"""Batched models of the registered experiments, for scans over physics parameters.

``build_batched_model(('coherent-csi-2017',), ('sin2_theta_w',))`` returns a model whose CEvNS expectation is
predicted from the physics parameters (no free signal normalisation) with every systematic a nuisance; several
experiments combine with shared nuisances by name (e.g. ``sns_flux_norm``).
"""
from __future__ import annotations

from cevns.errors import ConfigError, UnknownNameError

__all__ = ["BATCHED_BUILDERS", "build_batched_model", "register_batched"]

#: experiment name -> "module:function(experiment, physics_names, **options) -> BatchedModel"
BATCHED_BUILDERS: dict[str, str] = {
    "coherent-csi-2017": "cevns.experiments.stopped_pion:batch_model_csi2017",
    "coherent-csi-2021": "cevns.experiments.batched_models:batch_model_csi2021",
    "coherent-ar-2020": "cevns.experiments.batched_models:batch_model_released_templates",
}


def register_batched(name: str, target: str) -> None:
    BATCHED_BUILDERS[name] = target


def build_batched_model(experiments, physics, options: dict | None = None):
    import importlib

    from cevns.experiments.registry import load_experiment
    from cevns.inference.batch import CombinedBatchedModel

    if not experiments:
        raise ConfigError("give at least one experiment")
    parts = []
    for name in experiments:
        if name not in BATCHED_BUILDERS:
            raise UnknownNameError("experiment with a physics-parameter model", name, BATCHED_BUILDERS)
        mod, fn = BATCHED_BUILDERS[name].split(":")
        builder = getattr(importlib.import_module(mod), fn)
        parts.append(builder(load_experiment(name), tuple(physics), **(options or {})))
    return CombinedBatchedModel(parts)
