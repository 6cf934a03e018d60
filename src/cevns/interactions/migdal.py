"""The Migdal effect: ionisation of the recoiling atom's electron cloud in dark matter–nucleus scattering.

After a recoil T the electrons see the nucleus move with v_N = √(2T/M); an electron of shell (n, l) is ionised with
energy E_e with the probability density (Ibe, Nakano, Shoji & Suzuki, arXiv:1707.07258, Sec. 5)

    dP/dE_e = (1/2π) Σ_{nl} (q_e / 1 eV)² p_nl(E_e),   q_e = m_e v_N,

with p_nl the tabulated probabilities (``cevns/data/migdal_ibe2018``, read at q_e = 1 eV and scaled as q_e²; the 1/2π
as in wimprates' ``migdal.py``, following the paper's "Additional note"). The detected electromagnetic energy is
E_em = E_e + E_nl (the binding energy of the vacancy, released as X-rays/Auger electrons), and the recoil must reach
the inelastic threshold v_min(T, E_em) of :func:`cevns.interactions.dark_matter.v_min_kms`. The spectrum in E_em is
:func:`cevns.interactions.dark_matter.em_emission_spectrum` with this probability; the nuclear-recoil energy itself is
not added (wimprates' default ``include_approx_nr=False``; XENON1T added the quenched NR energy in its signal model).

By default only the shells wimprates sums are used: Xe n = 3, 4 (n = 5 is the valence band, unreliable in the
liquid; n = 1, 2 contribute very little), n = 2 for Ar and Si, n = 3 for Ge (:data:`DEFAULT_SHELLS`).
"""
from __future__ import annotations

from fnmatch import fnmatch
from functools import lru_cache
from importlib import resources

import numpy as np

from cevns import constants as C
from cevns.errors import DataError, UnknownNameError

__all__ = ["MIGDAL_ELEMENTS", "BINDING_ENERGIES_eV", "DEFAULT_SHELLS", "transition_table", "migdal_probability"]

#: shell binding energies E_nl [eV]: Ibe et al. Table II (Xe, Ar, Ge, as in wimprates); Si from the table wimprates
#: cites (www.chembio.uoguelph.ca atomic binding energies)
BINDING_ENERGIES_eV = {
    "Xe": dict(zip(["1_0", "2_0", "2_1", "3_0", "3_1", "3_2", "4_0", "4_1", "4_2", "5_0", "5_1"],
                   [3.5e4, 5.4e3, 4.9e3, 1.1e3, 9.3e2, 6.6e2, 2.0e2, 1.4e2, 6.1e1, 2.1e1, 9.8])),
    "Ar": dict(zip(["1_0", "2_0", "2_1", "3_0", "3_1"], [3.2e3, 3.0e2, 2.4e2, 2.7e1, 1.3e1])),
    "Ge": dict(zip(["1_0", "2_0", "2_1", "3_0", "3_1", "3_2", "4_0", "4_1"],
                   [1.1e4, 1.4e3, 1.2e3, 1.7e2, 1.2e2, 3.5e1, 1.5e1, 6.5e0])),
    "Si": dict(zip(["1_0", "2_0", "2_1", "3_0", "3_1"], [1844.1, 154.04, 103.71, 13.46, 8.1517])),
}
MIGDAL_ELEMENTS = tuple(BINDING_ENERGIES_eV)
#: shells summed by default (fnmatch patterns on 'n_l'), as in wimprates
DEFAULT_SHELLS = {"Xe": ("3_*", "4_*"), "Ar": ("2_*",), "Ge": ("3_*",), "Si": ("2_*",)}


@lru_cache(maxsize=None)
def transition_table(element: str) -> tuple[np.ndarray, dict]:
    """(E_e [eV] (251,), {shell: dp/dE_e [1/eV] at q_e = 1 eV}) of an element, read from the shipped CSV."""
    if element not in BINDING_ENERGIES_eV:
        raise UnknownNameError("Migdal target element", element, MIGDAL_ELEMENTS)
    path = resources.files("cevns") / "data" / "migdal_ibe2018" / f"migdal_transition_{element}.csv"
    try:
        with open(str(path), encoding="utf-8") as fh:
            header = fh.readline().strip().split(",")
        arr = np.loadtxt(str(path), delimiter=",", skiprows=1)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read Migdal table {path}: {exc}") from exc
    if header[-1] != "E" or arr.ndim != 2 or arr.shape != (251, len(header)) or not np.all(np.isfinite(arr)) \
            or np.any(arr < 0) or np.any(np.diff(arr[:, -1]) <= 0):
        raise DataError(f"Migdal table {path} is malformed (expected 251 rows of shells n_l and E [eV], increasing E)")
    shells = header[:-1]
    if set(shells) != set(BINDING_ENERGIES_eV[element]):
        raise DataError(f"Migdal table {path}: shells {shells} differ from the binding-energy table")
    return arr[:, -1], {s: arr[:, k] for k, s in enumerate(shells)}


def _shells(element: str, shells) -> list[str]:
    pats = DEFAULT_SHELLS[element] if shells is None else tuple(shells)
    names = [s for s in BINDING_ENERGIES_eV[element] if any(fnmatch(s, p) for p in pats)]
    if not names:
        raise UnknownNameError(f"Migdal shell of {element}", pats, BINDING_ENERGIES_eV[element])
    return names


def migdal_probability(T_MeV, E_em_MeV, iso, shells=None) -> np.ndarray:
    """dP/dE_em [1/MeV] of ionising the atom of isotope ``iso`` after a recoil T [MeV] with total electromagnetic
    energy E_em = E_e + E_nl [MeV] (see the module docstring): Σ_nl (m_e v_N / 1 eV)² p_nl(E_em − E_nl) / 2π, p_nl
    linearly interpolated in E_e (zero outside the table). Arrays broadcast."""
    el = iso.symbol
    E_tab, table = transition_table(el)
    T = np.asarray(T_MeV, float)
    q_eV = C.M_ELECTRON * 1e6 * np.sqrt(2.0 * T / iso.mass_MeV)  # m_e v_N [eV]
    E_eV = np.asarray(E_em_MeV, float) * 1e6
    out = 0.0
    for s in _shells(el, shells):
        Ee = E_eV - BINDING_ENERGIES_eV[el][s]
        out = out + np.interp(Ee, E_tab, table[s], left=0.0, right=0.0)
    return q_eV * q_eV * out / (2.0 * np.pi) * 1e6  # [1/eV] → [1/MeV]
