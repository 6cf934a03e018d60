"""Experiment registry: specs are JSON files in ``cevns/experiments/specs``, validated against a JSON schema.

``load_spec(name)`` validates the common header (schema.json) and then the kind's own schema
(``schema_<kind>.json``); ``load_experiment(name)`` builds the model with the builder registered for the kind.
A typo or a missing field raises :class:`~cevns.errors.ConfigError` naming the field path.
"""
from __future__ import annotations

import importlib
import json
from importlib import resources
from pathlib import Path

import jsonschema

from cevns.errors import ConfigError, UnknownNameError

__all__ = ["list_experiments", "load_spec", "validate_spec", "load_experiment", "BUILDERS"]

_HERE = Path(str(resources.files("cevns") / "experiments"))
SPEC_DIR = _HERE / "specs"

#: spec kind -> "module:Class" with a ``from_spec(spec, data_root=None)`` classmethod
BUILDERS: dict[str, str] = {
    "stopped_pion_pe_time": "cevns.experiments.stopped_pion:StoppedPionPETimeExperiment",
    "stopped_pion_pe_time_events": "cevns.experiments.csi2021:StoppedPionEventsExperiment",
    "released_templates": "cevns.experiments.templates:ReleasedTemplatesExperiment",
}


def list_experiments() -> list[str]:
    return sorted(p.stem for p in SPEC_DIR.glob("*.json"))


def _schema(name: str) -> dict:
    p = _HERE / name
    if not p.is_file():
        raise ConfigError(f"no schema {name} for this spec kind")
    return json.loads(p.read_text())


def _check(spec, schema: dict) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(spec), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        path = "/".join(str(p) for p in e.absolute_path) or "<top level>"
        msg = e.message
        if e.validator == "additionalProperties":
            msg += f"; allowed fields here: {', '.join(sorted(e.schema.get('properties', {})))}"
        name = spec.get("name", "?") if isinstance(spec, dict) else "?"
        raise ConfigError(f"spec {name}: field '{path}': {msg}")


def validate_spec(spec: dict) -> dict:
    """Validate a spec dict: the common header, then its kind's schema. Raises ConfigError naming the field path."""
    _check(spec, _schema("schema.json"))
    if spec["kind"] not in BUILDERS:
        raise ConfigError(f"spec {spec['name']}: field 'kind': unknown kind {spec['kind']!r}; allowed: {sorted(BUILDERS)}")
    _check(spec, _schema(f"schema_{spec['kind']}.json"))
    return spec


def load_spec(name_or_path: str) -> dict:
    """Spec by registered name (e.g. 'coherent-csi-2017') or by path to a JSON file."""
    p = Path(name_or_path)
    if p.suffix == ".json" and p.is_file():
        path = p
    else:
        path = SPEC_DIR / f"{name_or_path}.json"
        if not path.is_file():
            raise UnknownNameError("experiment", name_or_path, list_experiments())
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"spec {path} is not valid JSON: {exc}") from exc
    return validate_spec(spec)


def load_experiment(name_or_spec, data_root: str | None = None):
    """Build the experiment model for a registered name, a spec path, or a spec dict."""
    spec = validate_spec(name_or_spec) if isinstance(name_or_spec, dict) else load_spec(name_or_spec)
    modname, clsname = BUILDERS[spec["kind"]].split(":")
    cls = getattr(importlib.import_module(modname), clsname)
    return cls.from_spec(spec, data_root=data_root)
