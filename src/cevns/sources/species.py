"""Projectile species: what a source emits and the rate engine scatters off targets.

A species has a name, a mass [MeV] (0 for neutrinos: the kinematics of :mod:`cevns.interactions.kinematics` use it
for T_max and E_min) and a kind that says which interaction processes apply to it ('neutrino': the CEvNS and ν–e
processes of :mod:`cevns.interactions.terms`; 'dark_matter': processes that declare that kind). Neutrinos also carry
their lepton family and whether they are antiparticles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from cevns.errors import PhysicsDomainError, UnknownNameError

__all__ = ["Species", "NEUTRINO_SPECIES", "species", "KINDS"]

KINDS = ("neutrino", "dark_matter")


@dataclass(frozen=True)
class Species:
    """A projectile: ``name``, ``mass_MeV`` (≥ 0), ``kind`` (one of :data:`KINDS`), ``family`` ('e', 'mu', 'tau' for
    neutrinos; for dark matter optionally its spin statistics, e.g. 'complex_scalar' or 'dirac'; else None), ``anti``
    (antiparticle), ``process`` (dark matter: the name of the one registered process that acts on it, e.g.
    'dark_photon'; None: every process of its kind)."""

    name: str
    mass_MeV: float = 0.0
    kind: str = "neutrino"
    family: str | None = None
    anti: bool = False
    process: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UnknownNameError("species kind", self.kind, KINDS)
        if not (isinstance(self.mass_MeV, (int, float)) and math.isfinite(self.mass_MeV) and self.mass_MeV >= 0):
            raise PhysicsDomainError(f"species {self.name!r}: mass must be finite and >= 0 MeV, got {self.mass_MeV!r}")
        if self.kind == "neutrino" and self.mass_MeV != 0.0:
            raise PhysicsDomainError(f"species {self.name!r}: neutrinos are treated as massless here")

    @property
    def is_neutrino(self) -> bool:
        return self.kind == "neutrino"


#: the six neutrino species by flavour name (nue, numu, nutau and their antiparticles)
NEUTRINO_SPECIES: dict[str, Species] = {
    f"nu{fam}{'bar' if anti else ''}": Species(f"nu{fam}{'bar' if anti else ''}", 0.0, "neutrino", fam, anti)
    for fam in ("e", "mu", "tau") for anti in (False, True)}


def species(name_or_species) -> Species:
    """A :class:`Species` by name (the neutrino flavours 'nue', 'numubar', ...) or passed through."""
    if isinstance(name_or_species, Species):
        return name_or_species
    try:
        return NEUTRINO_SPECIES[name_or_species]
    except (KeyError, TypeError):
        raise UnknownNameError("projectile species", name_or_species, NEUTRINO_SPECIES) from None
