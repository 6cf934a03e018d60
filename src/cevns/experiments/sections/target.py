"""Section ``target``: the material (isotopes and nuclei per kg), its mass, the nuclear form-factor model and the
neutrino–nucleon coupling scheme."""
from __future__ import annotations

import math
from dataclasses import dataclass

from cevns.errors import ConfigError, PhysicsDomainError
from cevns.interactions.cevns import COUPLING_SCHEMES
from cevns.targets.form_factors import FORM_FACTORS
from cevns.targets.materials import material

__all__ = ["Target", "build_target"]


@dataclass
class Target:
    """``components``: [(Isotope, number of nuclei)]; ``atoms``: {element: number of atoms}."""

    material: str
    mass_kg: float
    components: list
    atoms: dict
    form_factor: str
    coupling_scheme: str
    mass_sigma_kg: float = 0.0

    @property
    def n_nuclei(self) -> float:
        return sum(n for _, n in self.components)


def build_target(sec: dict, exp_name: str) -> Target:
    mass = sec["mass_kg"]
    if not (isinstance(mass, (int, float)) and math.isfinite(mass) and mass > 0):
        raise PhysicsDomainError(f"spec {exp_name}: target mass must be a finite number > 0 kg, got {mass!r}")
    ff = sec.get("form_factor", "helm")
    if ff not in FORM_FACTORS:
        raise ConfigError(f"spec {exp_name}: form factor {ff!r} unknown; allowed: {FORM_FACTORS}")
    scheme = sec.get("coupling_scheme", "one_loop")
    if scheme not in COUPLING_SCHEMES:
        raise ConfigError(f"spec {exp_name}: coupling scheme {scheme!r} unknown; allowed: {COUPLING_SCHEMES}")
    mat = material(sec["material"])
    comps = [(iso, n * mass) for iso, n in mat.components]
    atoms: dict[str, float] = {}
    for iso, n in comps:
        atoms[iso.symbol] = atoms.get(iso.symbol, 0.0) + n
    return Target(mat.name, float(mass), comps, atoms, ff, scheme, float(sec.get("mass_sigma_kg", 0.0)))
