"""Dark-matter recoil spectra per tonne-year: elastic (nuclear recoil), Migdal and Bremsstrahlung (electromagnetic
energy), for any target material and halo.

* elastic: the rate engine itself (:mod:`cevns.rates`): a :class:`~cevns.sources.halo.HaloSource` folded with the
  'dm_si' kernel and the weights of :func:`cevns.interactions.terms.nuclear_weights` (process
  :data:`cevns.interactions.dark_matter.DM_SI_PROCESS`), on recoil nodes placed at the requested energies;
* migdal / brems: :func:`cevns.interactions.dark_matter.em_emission_spectrum` with the probability densities of
  :mod:`cevns.interactions.migdal` / :mod:`cevns.interactions.bremsstrahlung` (the same SI cross section).

Energies in keV (nuclear recoil for 'elastic', detected electromagnetic energy for 'migdal' and 'brems'), masses in
GeV, σ_n in cm², rates in events / (tonne · year · keV) (Julian year).
"""
from __future__ import annotations

import math

import numpy as np

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.interactions.dark_matter import SIGMA_PARAMETER, SIGMA_UNIT_cm2, em_emission_spectrum
from cevns.interactions.terms import KERNELS, nuclear_weights
from cevns.rates import FluxKernels, RecoilNodes
from cevns.sources.halo import DM_SPECIES, YEAR_S, HaloSource, VelocityDistribution, XENON1T_HALO
from cevns.targets.materials import material

__all__ = ["DD_PROCESSES", "target_components", "check_inputs", "elastic_spectrum", "migdal_spectrum",
           "brems_spectrum", "dd_rate", "elastic_flux_kernels"]

DD_PROCESSES = ("elastic", "migdal", "brems")
TONNE_kg = 1000.0


def target_components(target: str, mass_kg: float = TONNE_kg) -> list:
    """[(Isotope, nuclei)] of ``mass_kg`` of a material ('Xe', 'Ar', 'Ge', 'NaI', an isotope 'Xe131', ...)."""
    mat = material(target)
    return [(iso, n * mass_kg) for iso, n in mat.components]


def check_inputs(energies_keV, mass_GeV: float, sigma_cm2: float) -> np.ndarray:
    """Validated energies (1-D, finite, > 0 keV); raises a one-line PhysicsDomainError for a bad mass or σ."""
    if not (isinstance(mass_GeV, (int, float)) and math.isfinite(mass_GeV) and mass_GeV > 0):
        raise PhysicsDomainError(f"dark-matter mass must be a finite number > 0 GeV, got {mass_GeV!r}")
    if not (isinstance(sigma_cm2, (int, float)) and math.isfinite(sigma_cm2) and sigma_cm2 >= 0):
        raise PhysicsDomainError(f"cross section must be a finite number >= 0 cm², got {sigma_cm2!r}")
    E = np.atleast_1d(np.asarray(energies_keV, float))
    if E.ndim != 1 or E.size == 0 or not np.all(np.isfinite(E)) or np.any(E <= 0):
        raise PhysicsDomainError("energies must be finite numbers > 0 keV")
    return E


def _phys(sigma_cm2: float) -> dict:
    return {SIGMA_PARAMETER: np.array([sigma_cm2 / SIGMA_UNIT_cm2])}


def elastic_flux_kernels(source: HaloSource, components, T_keV) -> FluxKernels:
    """The engine's flux-folded 'dm_si' kernels at recoil energies ``T_keV`` (unit quadrature weights, so values are
    densities per MeV) for each (isotope, nuclei)."""
    T = np.asarray(T_keV, float) * C.keV
    nodes = {iso.name: RecoilNodes(iso, T, np.ones_like(T)) for iso, _ in components}
    return FluxKernels(source, nodes, {iso.name: float(n) for iso, n in components}, tuple(source.species))


def elastic_spectrum(E_R_keV, mass_GeV: float, sigma_cm2: float, target: str = "Xe",
                     halo: VelocityDistribution | None = None, form_factor: str = "helm") -> np.ndarray:
    """dR/dE_R [events/(t·yr·keV)] of spin-independent elastic scattering, through the rate engine."""
    E = check_inputs(E_R_keV, mass_GeV, sigma_cm2)
    src = HaloSource(mass_GeV, halo or XENON1T_HALO, YEAR_S)
    comps = target_components(target)
    fk = elastic_flux_kernels(src, comps, E)
    out = np.zeros(E.size)
    phys = _phys(sigma_cm2)
    for iso, _ in comps:
        K = fk.get("dm_si", KERNELS["dm_si"], DM_SPECIES, iso.name)
        w = nuclear_weights(phys, fk.nuclear_context(iso.name, DM_SPECIES, form_factor, "one_loop"))["dm_si"][0]
        out += K * w
    return out * C.keV


def _em(E_keV, mass_GeV, sigma_cm2, target, halo, prob, form_factor):
    E = check_inputs(E_keV, mass_GeV, sigma_cm2)
    src = HaloSource(mass_GeV, halo or XENON1T_HALO, YEAR_S)
    return em_emission_spectrum(E * C.keV, src, target_components(target), prob, _phys(sigma_cm2),
                                form_factor) * C.keV


def migdal_spectrum(E_em_keV, mass_GeV: float, sigma_cm2: float, target: str = "Xe",
                    halo: VelocityDistribution | None = None, shells=None, form_factor: str = "helm") -> np.ndarray:
    """dR/dE_em [events/(t·yr·keV)] of Migdal ionisation (E_em = electron energy + binding energy; the nuclear recoil
    energy is not added), the shells of :data:`cevns.interactions.migdal.DEFAULT_SHELLS` unless ``shells``."""
    from cevns.interactions.migdal import MIGDAL_ELEMENTS, migdal_probability

    for iso, _ in target_components(target):
        if iso.symbol not in MIGDAL_ELEMENTS:
            raise UnknownNameError("target element with Migdal probabilities", iso.symbol, MIGDAL_ELEMENTS)
    return _em(E_em_keV, mass_GeV, sigma_cm2, target, halo,
               lambda T, E, iso: migdal_probability(T, E, iso, shells), form_factor)


def brems_spectrum(omega_keV, mass_GeV: float, sigma_cm2: float, target: str = "Xe",
                   halo: VelocityDistribution | None = None, form_factor: str = "helm") -> np.ndarray:
    """dR/dω [events/(t·yr·keV)] of Bremsstrahlung photons of energy ω."""
    from cevns.interactions.bremsstrahlung import BREMS_ELEMENTS, bremsstrahlung_probability

    for iso, _ in target_components(target):
        if iso.symbol not in BREMS_ELEMENTS:
            raise UnknownNameError("target element with atomic scattering factors", iso.symbol, BREMS_ELEMENTS)
    return _em(omega_keV, mass_GeV, sigma_cm2, target, halo, bremsstrahlung_probability, form_factor)


def dd_rate(process: str, energies_keV, mass_GeV: float, sigma_cm2: float, target: str = "Xe",
            halo: VelocityDistribution | None = None) -> np.ndarray:
    """Dispatch by process name ('elastic', 'migdal', 'brems'); see the functions above."""
    fn = {"elastic": elastic_spectrum, "migdal": migdal_spectrum, "brems": brems_spectrum}.get(process)
    if fn is None:
        raise UnknownNameError("direct-detection process", process, DD_PROCESSES)
    return fn(energies_keV, mass_GeV, sigma_cm2, target, halo)
