"""Experiments as data: declarative specs (JSON, schema-validated) plus builders per spec kind."""
from cevns.experiments.registry import list_experiments, load_experiment, load_spec, validate_spec

__all__ = ["list_experiments", "load_experiment", "load_spec", "validate_spec"]
