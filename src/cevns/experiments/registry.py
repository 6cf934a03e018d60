"""Experiment registry: specs are JSON files in ``cevns/experiments/specs``, validated section by section.

``load_spec(name)`` checks the top level (``schemas/spec.json``) and then each section against its own schema
(``schemas/<section>.json``; the source against ``schemas/source_<type>.json``); ``load_experiment(name)`` builds an
:class:`~cevns.experiments.experiment.Experiment` from it. A typo or a missing field raises
:class:`~cevns.errors.ConfigError` naming the section and the field path.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jsonschema

from cevns.errors import ConfigError, UnknownNameError

__all__ = ["list_experiments", "load_spec", "validate_spec", "load_experiment", "SECTION_SCHEMAS", "SPEC_DIR"]

_HERE = Path(str(resources.files("cevns") / "experiments"))
SPEC_DIR = _HERE / "specs"
SCHEMA_DIR = _HERE / "schemas"

#: section name -> schema file (the source's depends on its type)
SECTION_SCHEMAS = {"target": "target.json", "detector": "detector.json", "binning": "binning.json", "data": "data.json",
                   "signal": "signal.json", "backgrounds": "backgrounds.json", "nuisances": "nuisances.json",
                   "systematics": "systematics.json", "extra_signals": "extra_signals.json"}


def list_experiments() -> list[str]:
    return sorted(p.stem for p in SPEC_DIR.glob("*.json"))


@lru_cache(maxsize=None)
def _schema(fname: str) -> dict:
    p = SCHEMA_DIR / fname
    if not p.is_file():
        raise ConfigError(f"no schema {fname}")
    return json.loads(p.read_text())


def _branch_error(e):
    """Inside a oneOf, the error of the branch whose 'type' or 'model' constant matches the instance (it says what is
    really wrong), else the deepest one."""
    while e.validator in ("oneOf", "anyOf") and e.context:
        inst, branch = e.instance, None
        if isinstance(inst, dict):
            for i, sub in enumerate(e.validator_value):
                props = sub.get("properties", {}) if isinstance(sub, dict) else {}
                for key in ("type", "model"):
                    c = props.get(key, {}).get("const") if isinstance(props.get(key), dict) else None
                    if c is not None and inst.get(key) == c:
                        branch = i
        ctx = [c for c in e.context if branch is None or c.relative_schema_path[0] == branch]
        if not ctx:
            break
        e = sorted(ctx, key=lambda c: (-len(list(c.absolute_path)), c.validator == "const"))[0]
    return e


def _check(obj, schema: dict, where: str, spec_name: str) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: (len(list(e.absolute_path)), list(map(str, e.absolute_path))))
    if errors:
        e = _branch_error(errors[0])
        path = "/".join([where] + [str(p) for p in e.absolute_path])
        msg = e.message
        if e.validator == "additionalProperties":
            msg += f"; allowed fields here: {', '.join(sorted(e.schema.get('properties', {})))}"
        raise ConfigError(f"spec {spec_name}: field '{path}': {msg}")


def validate_spec(spec: dict) -> dict:
    """Validate a spec dict: the top level, then every section against its schema. Raises ConfigError naming the
    section and field path."""
    if not isinstance(spec, dict):
        raise ConfigError(f"a spec must be a JSON object, got {type(spec).__name__}")
    name = spec.get("name", "?")
    _check(spec, _schema("spec.json"), "<top level>", name)
    src_type = spec["source"].get("type")
    fname = f"source_{src_type}.json"
    if not (SCHEMA_DIR / fname).is_file():
        known = sorted(p.stem.removeprefix("source_") for p in SCHEMA_DIR.glob("source_*.json"))
        raise ConfigError(f"spec {name}: field 'source/type': unknown source type {src_type!r}; allowed: {known}")
    _check(spec["source"], _schema(fname), "source", name)
    for sec, f in SECTION_SCHEMAS.items():
        if sec in spec:
            _check(spec[sec], _schema(f), sec, name)
    return spec


def load_spec(name_or_path: str) -> dict:
    """Spec by registered name (e.g. 'coherent-csi-2017') or by path to a JSON file."""
    p = Path(name_or_path)
    if p.suffix == ".json" and p.is_file():
        path = p
    elif p.suffix == ".json" or "/" in str(name_or_path) or os.sep in str(name_or_path):
        what = "is not a file" if p.exists() else "does not exist"
        raise ConfigError(f"spec file {name_or_path} {what} (give a registered experiment name or a JSON spec file; "
                          f"registered: {', '.join(list_experiments())})")
    else:
        path = SPEC_DIR / f"{name_or_path}.json"
        if not path.is_file():
            raise UnknownNameError("experiment", name_or_path, list_experiments())
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"spec {path} is not valid JSON: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"spec {path} cannot be read: {exc}") from exc
    return validate_spec(spec)


def load_experiment(name_or_spec, data_root: str | None = None):
    """Build the :class:`~cevns.experiments.experiment.Experiment` of a registered name, a spec path, or a spec dict."""
    from cevns.experiments.experiment import Experiment

    spec = validate_spec(name_or_spec) if isinstance(name_or_spec, dict) else load_spec(name_or_spec)
    return Experiment(spec, data_root)
