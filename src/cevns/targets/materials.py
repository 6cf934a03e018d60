"""Materials: mixtures of elements (by chemical formula or by mass fraction) and target counts per kg.

A material is a list of (isotope, number of nuclei per kg). Built-ins: CsI, NaI, Ge, Ar, Xe, Pb, Si, C, O, Ne, H2O,
C8H8 (plastic scintillator); define others with :func:`material_from_formula` or :func:`material_from_mass_fractions`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cevns.constants import AVOGADRO
from cevns.errors import ConfigError, PhysicsDomainError, UnknownNameError
from cevns.targets.isotopes import Isotope, natural_isotopes

__all__ = ["Material", "material", "material_from_formula", "material_from_mass_fractions", "MATERIALS"]


def element_molar_mass_g(symbol: str) -> float:
    """Mean molar mass of a natural element [g/mol] from the isotope masses and abundances."""
    isos = natural_isotopes(symbol)
    w = sum(i.abundance for i in isos)
    return sum(i.abundance * i.atomic_mass_u for i in isos) / w


@dataclass(frozen=True)
class Material:
    """A target material: ``components`` is a tuple of (Isotope, nuclei per kg)."""

    name: str
    components: tuple[tuple[Isotope, float], ...]

    def nuclei_per_kg(self, isotope_name: str | None = None) -> float:
        """Number of nuclei per kg of material, of one isotope or (None) of all."""
        if isotope_name is None:
            return sum(n for _, n in self.components)
        for iso, n in self.components:
            if iso.name == isotope_name:
                return n
        raise UnknownNameError(f"isotope of {self.name}", isotope_name, [i.name for i, _ in self.components])

    @property
    def isotopes(self) -> list[Isotope]:
        return [iso for iso, _ in self.components]


def _parse_formula(formula: str) -> dict[str, int]:
    tokens = re.findall(r"([A-Z][a-z]?)(\d*)", formula)
    if not tokens or "".join(a + b for a, b in tokens) != formula:
        raise ConfigError(f"cannot parse chemical formula {formula!r}; write e.g. 'CsI', 'H2O', 'C8H8'")
    counts: dict[str, int] = {}
    for sym, n in tokens:
        counts[sym] = counts.get(sym, 0) + (int(n) if n else 1)
    return counts


def material_from_formula(formula: str, name: str | None = None) -> Material:
    """Material from a chemical formula with natural isotopic abundances (e.g. 'CsI', 'NaI', 'H2O')."""
    counts = _parse_formula(formula)
    molar = sum(n * element_molar_mass_g(sym) for sym, n in counts.items())  # g/mol of formula units
    units_per_kg = 1000.0 * AVOGADRO / molar
    comps = []
    for sym, n in counts.items():
        isos = natural_isotopes(sym)
        w = sum(i.abundance for i in isos)
        comps += [(iso, units_per_kg * n * iso.abundance / w) for iso in isos]
    return Material(name or formula, tuple(comps))


def material_from_mass_fractions(fractions: dict[str, float], name: str = "custom") -> Material:
    """Material from element (or formula) mass fractions, e.g. {'Cs': 0.51, 'I': 0.49}; fractions must sum to 1."""
    if not fractions:
        raise ConfigError("mass fractions are empty; give e.g. {'Xe': 1.0}")
    total = 0.0
    comps: list[tuple[Isotope, float]] = []
    for key, f in fractions.items():
        if not (isinstance(f, (int, float)) and math.isfinite(f) and f > 0):
            raise PhysicsDomainError(f"mass fraction of {key!r} must be a finite number > 0, got {f!r}")
        total += f
        sub = material_from_formula(key)
        comps += [(iso, f * n) for iso, n in sub.components]
    if abs(total - 1.0) > 1e-6:
        raise PhysicsDomainError(f"mass fractions sum to {total:.6g}; they must sum to 1")
    return Material(name, tuple(comps))


_BUILTIN = {"CsI": "CsI", "NaI": "NaI", "Ge": "Ge", "Ar": "Ar", "Xe": "Xe", "Pb": "Pb", "Si": "Si", "C": "C",
            "O": "O", "Ne": "Ne", "H2O": "H2O", "C8H8": "C8H8", "F": "F", "Na": "Na", "Cs": "Cs", "I": "I"}
MATERIALS = sorted(_BUILTIN)


def material(name: str | Material) -> Material:
    """A built-in material by name ('CsI', 'NaI', 'Ge', 'Ar', 'Xe', 'Pb', ...), or a single isotope like 'Ar40'."""
    if isinstance(name, Material):
        return name
    if name in _BUILTIN:
        return material_from_formula(_BUILTIN[name], name)
    from cevns.targets.isotopes import ISOTOPES, _normalise_name

    key = _normalise_name(name)
    if key in ISOTOPES:  # an isotopically pure target
        iso = ISOTOPES[key]
        return Material(iso.name, ((iso, 1000.0 * AVOGADRO / iso.atomic_mass_u),))
    raise UnknownNameError("material", name, MATERIALS + ["<isotope name, e.g. Ar40>"])
