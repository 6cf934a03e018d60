"""Targets: isotopes, materials and nuclear form factors."""
from cevns.targets.isotopes import ISOTOPES, Isotope, isotope, natural_isotopes
from cevns.targets.materials import Material, material, material_from_formula, material_from_mass_fractions

__all__ = ["ISOTOPES", "Isotope", "isotope", "natural_isotopes", "Material", "material", "material_from_formula",
           "material_from_mass_fractions"]
