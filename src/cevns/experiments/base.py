"""Common construction of spec-driven experiment classes (dataclasses with ``spec``, ``data_root``, ``_setup``)."""
from __future__ import annotations

from cevns.experiments.releases import data_path

__all__ = ["SpecExperiment"]


class SpecExperiment:
    """Mixin: ``from_spec(spec, data_root)`` builds and sets up; ``name``; ``_file(fname)`` resolves a release file."""

    spec: dict
    data_root: str | None

    @classmethod
    def from_spec(cls, spec: dict, data_root: str | None = None):
        exp = cls(spec, data_root)
        exp._setup()
        return exp

    @property
    def name(self) -> str:
        return self.spec["name"]

    def _file(self, fname: str):
        return data_path(self.spec["dataset"], fname, self.data_root)

    def _setup(self) -> None:  # pragma: no cover - every experiment kind implements it
        raise NotImplementedError
