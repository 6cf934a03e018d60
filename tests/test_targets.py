import math

import numpy as np
import pytest

from cevns import constants as C
from cevns.errors import CevnsError, PhysicsDomainError, UnknownNameError, ConfigError
from cevns.targets import isotope, material, material_from_formula, material_from_mass_fractions, natural_isotopes
from cevns.targets.form_factors import (form_factor, helm, helm_rms_radius_default_fm, klein_nystrand, q_fm_from_recoil,
                                        symmetrized_fermi, tabulated)


def test_isotope_lookup_forms_and_masses():
    cs = isotope("Cs133")
    assert isotope("cs-133") is cs and isotope("133Cs") is cs
    assert (cs.Z, cs.N) == (55, 78)
    # nuclear mass = atomic mass - electrons + their total binding (~0.21 MeV for Z = 55, Lunney et al. Eq. A4)
    m_no_binding = 132.905451961 * C.AMU_MeV - 55 * C.M_ELECTRON
    assert 0.15 < cs.mass_MeV - m_no_binding < 0.3
    assert isotope("Ar40").mass_MeV == pytest.approx(37215.5, abs=1.0)


@pytest.mark.parametrize("el", ["Ar", "Ge", "Xe", "Pb", "Si", "C", "O"])
def test_abundances_sum_to_one(el):
    assert sum(i.abundance for i in natural_isotopes(el)) == pytest.approx(1.0, abs=2e-3)


def test_unknown_names_are_clear():
    with pytest.raises(UnknownNameError, match="unknown isotope 'Zz999'.*allowed: .*Cs133"):
        isotope("Zz999")
    with pytest.raises(UnknownNameError, match="material"):
        material("Unobtainium")
    with pytest.raises(CevnsError):
        natural_isotopes("Qq")


def test_material_counts():
    csi = material("CsI")
    molar = 132.905451961 + 126.9044719  # g/mol, both monoisotopic
    assert csi.nuclei_per_kg("Cs133") == pytest.approx(1000 * C.AVOGADRO / molar, rel=1e-9)
    assert csi.nuclei_per_kg() == pytest.approx(2 * 1000 * C.AVOGADRO / molar, rel=1e-9)
    water = material_from_formula("H2O")
    assert water.nuclei_per_kg("O16") < water.nuclei_per_kg("H1") / 1.9
    mix = material_from_mass_fractions({"Cs": 0.5, "I": 0.5})
    assert mix.nuclei_per_kg("Cs133") == pytest.approx(500 * C.AVOGADRO / 132.905451961, rel=1e-9)


@pytest.mark.parametrize("bad", [{"Cs": -0.5, "I": 1.5}, {"Cs": 0.3, "I": 0.3}, {"Cs": float("nan")}])
def test_bad_mass_fractions(bad):
    with pytest.raises(PhysicsDomainError):
        material_from_mass_fractions(bad)


def test_bad_formula():
    with pytest.raises(ConfigError, match="formula"):
        material_from_formula("csi")


MODELS = [helm, klein_nystrand, symmetrized_fermi]


@pytest.mark.parametrize("ff", MODELS)
@pytest.mark.parametrize("A", [23, 40, 76, 133])
def test_form_factor_normalisation_and_rms(ff, A):
    r = helm_rms_radius_default_fm(A)
    assert ff(np.array([0.0]), r)[0] == pytest.approx(1.0, abs=1e-12)
    # small-q expansion F = 1 - q^2 <r^2>/6 fixes the rms radius of every model
    q = np.array([1e-2])
    assert (1 - ff(q, r)[0]) / q[0] ** 2 * 6 == pytest.approx(r * r, rel=2e-3)


@pytest.mark.parametrize("nucleus,A", [("Ar40", 40), ("Ge76", 76), ("Xe132", 132)])
def test_helm_vs_horowitz_tables(nucleus, A):
    q = np.linspace(0.01, 0.5, 50)
    r = helm_rms_radius_default_fm(A)
    diff = np.abs(helm(q, r) - tabulated(q, nucleus))
    assert diff.max() < 0.04  # few-percent agreement below 0.5 fm^-1 (SOURCE.md expectation)
    assert tabulated(np.array([0.0]), nucleus)[0] == pytest.approx(1.0, abs=1e-5)


def test_form_factor_errors():
    with pytest.raises(PhysicsDomainError, match="rms radius"):
        helm(np.array([0.1]), -1.0)
    with pytest.raises(UnknownNameError):
        form_factor("gaussian", np.array([0.1]), 3.0)
    with pytest.raises(PhysicsDomainError, match="table range"):
        tabulated(np.array([100.0]), "Ar40")
    with pytest.raises(UnknownNameError):
        tabulated(np.array([0.1]), "Cs133")


def test_q_from_recoil():
    M = 1000.0
    T = 0.01
    assert q_fm_from_recoil(T, M) == pytest.approx(math.sqrt(2 * M * T + T * T) / C.HBARC_MeV_fm)
