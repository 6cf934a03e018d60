"""Isotopes: Z, N, masses (AME2020) and natural abundances (IUPAC/CIAAW 2013).

Atomic masses in u: W. J. Huang et al., Chin. Phys. C 45, 030002 (2021) (AME2020).
Isotopic abundances (mole fractions): J. Meija et al., Pure Appl. Chem. 88, 293 (2016) (CIAAW 2013), representative values.
Charge radii (fm), where used: I. Angeli & K. P. Marinova, At. Data Nucl. Data Tables 99, 69 (2013).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from cevns.constants import AMU_MeV, M_ELECTRON
from cevns.errors import UnknownNameError

__all__ = ["Isotope", "isotope", "ISOTOPES", "ELEMENTS", "natural_isotopes"]


def electron_binding_energy_MeV(Z: int) -> float:
    """Total electron binding energy B_e(Z) [MeV], Lunney, Pearson & Thibault, RMP 75, 1021 (2003), Eq. (A4)."""
    return (14.4381 * Z**2.39 + 1.55468e-6 * Z**5.35) * 1e-6


@dataclass(frozen=True)
class Isotope:
    """One nuclide. ``mass_MeV`` is the nuclear mass (atomic mass minus electrons plus their binding)."""

    symbol: str  # element symbol, e.g. "Cs"
    Z: int
    A: int
    atomic_mass_u: float
    abundance: float  # natural mole fraction within its element
    charge_radius_fm: float | None = None  # rms charge radius (Angeli & Marinova 2013), None where not tabulated

    @property
    def N(self) -> int:
        return self.A - self.Z

    @property
    def name(self) -> str:
        return f"{self.symbol}{self.A}"

    @property
    def mass_MeV(self) -> float:
        """Nuclear mass [MeV]: M = m_atom − Z m_e + B_e(Z)."""
        return self.atomic_mass_u * AMU_MeV - self.Z * M_ELECTRON + electron_binding_energy_MeV(self.Z)

    @property
    def point_proton_radius_fm(self) -> float | None:
        """Point-proton rms radius from the charge radius: R_p² = R_ch² − r_p² − (N/Z) r_n², arXiv:2005.01645 Eq. (10)."""
        if self.charge_radius_fm is None:
            return None
        r_p2, r_n2 = 0.8409**2, -0.1161  # proton charge radius² and neutron mean-square charge radius [fm²], PDG 2024
        return math.sqrt(self.charge_radius_fm**2 - r_p2 - (self.N / self.Z) * r_n2)


# symbol, Z, A, atomic mass [u] (AME2020), abundance (CIAAW 2013), charge radius [fm] (Angeli-Marinova 2013)
_TABLE = [
    ("H", 1, 1, 1.00782503223, 0.999885, 0.8409),
    ("H", 1, 2, 2.01410177812, 0.000115, 2.1421),
    ("C", 6, 12, 12.0, 0.9893, 2.4702),
    ("C", 6, 13, 13.00335483507, 0.0107, 2.4614),
    ("O", 8, 16, 15.99491461957, 0.99757, 2.6991),
    ("O", 8, 17, 16.99913175650, 0.00038, 2.6932),
    ("O", 8, 18, 17.99915961286, 0.00205, 2.7726),
    ("F", 9, 19, 18.99840316273, 1.0, 2.8976),
    ("Ne", 10, 20, 19.9924401762, 0.9048, 3.0055),
    ("Ne", 10, 21, 20.993846685, 0.0027, 2.9695),
    ("Ne", 10, 22, 21.991385114, 0.0925, 2.9525),
    ("Na", 11, 23, 22.9897692820, 1.0, 2.9936),
    ("Si", 14, 28, 27.97692653465, 0.92223, 3.1224),
    ("Si", 14, 29, 28.97649466490, 0.04685, 3.1176),
    ("Si", 14, 30, 29.973770136, 0.03092, 3.1336),
    ("Ar", 18, 36, 35.967545105, 0.003336, 3.3905),
    ("Ar", 18, 38, 37.96273211, 0.000629, 3.4028),
    ("Ar", 18, 40, 39.9623831237, 0.996035, 3.4274),
    ("Ge", 32, 70, 69.92424875, 0.2057, 4.0414),
    ("Ge", 32, 72, 71.922075826, 0.2745, 4.0576),
    ("Ge", 32, 73, 72.923458956, 0.0775, 4.0632),
    ("Ge", 32, 74, 73.921177761, 0.3650, 4.0742),
    ("Ge", 32, 76, 75.921402726, 0.0773, 4.0811),
    ("I", 53, 127, 126.9044719, 1.0, 4.7500),
    ("Xe", 54, 124, 123.9058920, 0.000952, 4.7644),
    ("Xe", 54, 126, 125.9042983, 0.000890, 4.7725),
    ("Xe", 54, 128, 127.9035310, 0.019102, 4.7774),
    ("Xe", 54, 129, 128.9047808611, 0.264006, 4.7775),
    ("Xe", 54, 130, 129.903509349, 0.040710, 4.7818),
    ("Xe", 54, 131, 130.90508406, 0.212324, 4.7808),
    ("Xe", 54, 132, 131.9041550856, 0.269086, 4.7859),
    ("Xe", 54, 134, 133.90539466, 0.104357, 4.7899),
    ("Xe", 54, 136, 135.907214484, 0.088573, 4.7964),
    ("Cs", 55, 133, 132.905451961, 1.0, 4.8041),
    ("Pb", 82, 204, 203.9730440, 0.014, 5.4803),
    ("Pb", 82, 206, 205.9744657, 0.241, 5.4902),
    ("Pb", 82, 207, 206.9758973, 0.221, 5.4943),
    ("Pb", 82, 208, 207.9766525, 0.524, 5.5012),
]

ISOTOPES: dict[str, Isotope] = {}
ELEMENTS: dict[str, list[Isotope]] = {}
for _sym, _Z, _A, _m, _ab, _rc in _TABLE:
    _iso = Isotope(_sym, _Z, _A, _m, _ab, _rc)
    ISOTOPES[_iso.name] = _iso
    ELEMENTS.setdefault(_sym, []).append(_iso)


def _normalise_name(name: str) -> str:
    """Accept 'Cs133', 'Cs-133', '133Cs', 'cs133'."""
    s = str(name).strip().replace("-", "").replace("_", "")
    digits = "".join(c for c in s if c.isdigit())
    letters = "".join(c for c in s if c.isalpha())
    return letters[:1].upper() + letters[1:].lower() + digits


def isotope(name: str | Isotope) -> Isotope:
    """Look up an isotope by name ('Cs133', 'Ar-40', '40Ar'); raises UnknownNameError listing those known."""
    if isinstance(name, Isotope):
        return name
    key = _normalise_name(name)
    try:
        return ISOTOPES[key]
    except KeyError:
        raise UnknownNameError("isotope", name, ISOTOPES) from None


def natural_isotopes(symbol: str) -> list[Isotope]:
    """Isotopes of an element with their natural abundances (mole fractions summing to 1 within 1e-3)."""
    key = _normalise_name(symbol)
    try:
        return list(ELEMENTS[key])
    except KeyError:
        raise UnknownNameError("element", symbol, ELEMENTS) from None
