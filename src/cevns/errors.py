"""One exception hierarchy for the whole package.

Every error says what was wrong and what is allowed. Catch ``CevnsError`` to catch them all.
"""
from __future__ import annotations


class CevnsError(Exception):
    """Root of every error raised on purpose by cevns."""


class ConfigError(CevnsError, ValueError):
    """A spec, option or argument is malformed: unknown key, missing field, wrong type."""


class DataError(CevnsError, OSError):
    """A data file is missing, truncated or malformed."""


class PhysicsDomainError(CevnsError, ValueError):
    """A physical quantity is outside its allowed domain (negative mass, non-finite energy, ...)."""


class UnknownNameError(CevnsError, KeyError):
    """An unknown isotope, material, flavour, experiment or parameter name."""

    def __init__(self, kind: str, name: object, allowed) -> None:
        allowed = sorted(str(a) for a in allowed)
        shown = ", ".join(allowed[:40]) + (" ..." if len(allowed) > 40 else "")
        self.kind, self.name, self.allowed = kind, name, allowed
        super().__init__(f"unknown {kind} {name!r}; allowed: {shown}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class FitError(CevnsError, RuntimeError):
    """A minimisation did not converge (invalid minimum, non-finite χ²): never reported as a result."""
