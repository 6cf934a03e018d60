"""cevns: predict, fit and interpret low-energy nuclear-recoil signals.

The forward model is source x interaction x target x detector response -> expected counts.
Units: see :mod:`cevns.constants` (MeV, cm, s; recoil energies in keV where a name says ``_keV``).
"""
from cevns.errors import CevnsError, ConfigError, DataError, PhysicsDomainError, UnknownNameError

__version__ = "0.1.0"
__all__ = ["CevnsError", "ConfigError", "DataError", "PhysicsDomainError", "UnknownNameError", "__version__"]
