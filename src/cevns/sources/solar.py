"""Natural neutrino backgrounds of a direct-detection experiment (source type ``natural_neutrinos``): solar (pp, pep,
⁷Be, ⁸B, hep, CNO), atmospheric, diffuse supernova (DSNB), geo and reactor neutrinos.

Spectral shapes: O'Hare's NeutrinoFog repository (``cevns/data/neutrino_fog/neutrinos``, see SOURCE.md), each a
table (E_ν [MeV], dΦ/dE) normalised here to unit area (trapezoid), or a line (pep, ⁷Be). Total fluxes and their
fractional uncertainties (the nuisances of a neutrino-fog likelihood): O'Hare, arXiv:2109.03116, Table 1 (listed in
:data:`COMPONENTS`; solar from the B16-GS98 SSM with the Bergström et al. global fit, geo from arXiv:1301.0365,
reactor site-dependent).

CEvNS is flavour-blind at tree level; in the package's one-loop couplings the flavour enters through the neutrino
charge radius (g_V^p = 0.0388 for ν_e, 0.0305 for ν_μ: ≤ 2.4 % on the xenon rate). We treat solar neutrinos as ν_e
(no oscillation to ν_μ,τ), geo and reactor as ν̄_e, DSNB as ν̄_e, atmospheric as ν_μ — a ≲ 2 % approximation,
stated here once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from cevns.errors import DataError, PhysicsDomainError, UnknownNameError
from cevns.sources.species import NEUTRINO_SPECIES, Species
from cevns.sources.spectrum import Spectrum

__all__ = ["COMPONENTS", "SOLAR", "FogComponent", "TabulatedSpectrum", "NaturalNeutrinoSource", "component_spectrum"]


@dataclass(frozen=True)
class FogComponent:
    """One neutrino flux: total flux [cm⁻² s⁻¹], fractional 1σ uncertainty, flavour used for CEvNS, the line energy
    [MeV] (None for a continuous spectrum) and the data file."""

    name: str
    flux_cm2_s: float
    rel_uncertainty: float
    flavour: str
    line_MeV: float | None
    file: str
    solar: bool


#: the O'Hare 2021 (arXiv:2109.03116, Table 1) fluxes and uncertainties, in his order
COMPONENTS: dict[str, FogComponent] = {c.name: c for c in [
    FogComponent("pp", 5.98e10, 0.006, "nue", None, "pp.txt", True),
    FogComponent("pep", 1.44e8, 0.01, "nue", 1.44, "pep.txt", True),
    FogComponent("hep", 7.98e3, 0.30, "nue", None, "hep.txt", True),
    FogComponent("7Be1", 4.93e8, 0.06, "nue", 0.3843, "7Be1.txt", True),
    FogComponent("7Be2", 4.50e9, 0.06, "nue", 0.8613, "7Be2.txt", True),
    FogComponent("8B", 5.16e6, 0.02, "nue", None, "8B.txt", True),
    FogComponent("13N", 2.78e8, 0.15, "nue", None, "13N.txt", True),
    FogComponent("15O", 2.05e8, 0.17, "nue", None, "15O.txt", True),
    FogComponent("17F", 5.29e6, 0.20, "nue", None, "17F.txt", True),
    FogComponent("DSNB", 85.7, 0.50, "nuebar", None, "DSNB.txt", False),
    FogComponent("Atm", 10.7, 0.25, "numu", None, "Atm.txt", False),
    FogComponent("GeoU", 4.34e6, 0.20, "nuebar", None, "GeoU.txt", False),
    FogComponent("GeoTh", 4.23e6, 0.257, "nuebar", None, "GeoTh.txt", False),
    FogComponent("GeoK", 20.54e6, 0.168, "nuebar", None, "GeoK.txt", False),
    FogComponent("Reactor", 3.06e6, 0.08, "nuebar", None, "Reactor.txt", False),
]}
SOLAR = tuple(n for n, c in COMPONENTS.items() if c.solar)

_GL: dict = {}


def _gl(n):
    if n not in _GL:
        _GL[n] = np.polynomial.legendre.leggauss(n)
    return _GL[n]


@dataclass(frozen=True)
class TabulatedSpectrum(Spectrum):
    """A tabulated continuous spectrum folded on ``n_panels`` log-spaced panels (``n_nodes`` Gauss–Legendre nodes each)
    between the lower limit and e_max: accurate for spectra spanning decades (atmospheric: 13 MeV–10 GeV)."""

    n_panels: int = 8

    def fold(self, g, e_low=0.0) -> np.ndarray:
        e_low = np.asarray(e_low, float)
        x, w = _gl(self.n_nodes)
        a = np.clip(e_low, self.e_min, self.e_max)
        la, lb = np.log(a), math.log(self.e_max)
        h = (lb - la) / self.n_panels  # panel width in ln E
        k = np.arange(self.n_panels)
        u = la[..., None, None] + h[..., None, None] * (k[:, None] + 0.5 * (x[None, :] + 1.0))  # (S, K, n)
        E = np.exp(u).reshape(e_low.shape + (-1,))
        ww = (0.5 * h[..., None, None] * np.broadcast_to(w, (self.n_panels, x.size))).reshape(e_low.shape + (-1,))
        return self.continuous_weight * np.sum(self.pdf(E) * g(E) * E * ww, axis=-1)


@lru_cache(maxsize=None)
def _table(fname: str) -> tuple[np.ndarray, np.ndarray, float]:
    path = resources.files("cevns") / "data" / "neutrino_fog" / "neutrinos" / fname
    try:
        arr = np.loadtxt(str(path), delimiter=",", ndmin=2)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read neutrino spectrum {path}: {exc}") from exc
    if arr.shape[1] != 2 or arr.shape[0] < 100 or not np.all(np.isfinite(arr)):
        raise DataError(f"{path}: expected >= 100 rows 'E_nu [MeV], dPhi/dE'")
    E, f = arr[:, 0], arr[:, 1]
    if np.any(np.diff(E) <= 0) or np.any(f < 0) or E[0] <= 0:
        raise DataError(f"{path}: energies must increase from > 0 MeV and dPhi/dE must be >= 0")
    area = float(np.trapezoid(f, E))
    return E, f / area, area


@lru_cache(maxsize=None)
def component_spectrum(name: str) -> Spectrum:
    """The normalised :class:`~cevns.sources.Spectrum` of one component (a line for pep and ⁷Be)."""
    if name not in COMPONENTS:
        raise UnknownNameError("neutrino-fog component", name, COMPONENTS)
    c = COMPONENTS[name]
    if c.line_MeV is not None:
        return Spectrum(pdf=None, lines=((c.line_MeV, 1.0),))
    E, f, _ = _table(c.file)
    return TabulatedSpectrum(pdf=lambda e, E=E, f=f: np.interp(e, E, f, left=0.0, right=0.0), e_min=float(E[0]),
                             e_max=float(E[-1]), n_nodes=16)


class NaturalNeutrinoSource:
    """Neutrino fluxes at the detector for the rate engine: species = component names (``pp``, ``8B``, ``Atm``, ...),
    each with its spectrum, its fluence Φ × ``exposure_time_s`` [cm⁻²] and the flavour of :data:`COMPONENTS`.
    ``fluxes``: {name: flux [cm⁻² s⁻¹]} overriding the O'Hare values (e.g. a solar model's ⁸B flux)."""

    def __init__(self, components=None, exposure_time_s: float = 365.25 * 86400.0, fluxes: dict | None = None):
        names = tuple(COMPONENTS) if components is None else tuple(components)
        if not names:
            raise PhysicsDomainError("a natural-neutrino source needs at least one component")
        for n in names:
            if n not in COMPONENTS:
                raise UnknownNameError("neutrino-fog component", n, COMPONENTS)
        if not (isinstance(exposure_time_s, (int, float)) and math.isfinite(exposure_time_s) and exposure_time_s > 0):
            raise PhysicsDomainError(f"exposure time must be > 0 s, got {exposure_time_s!r}")
        self.species = names
        self.exposure_time_s = float(exposure_time_s)
        self.fluxes = {n: COMPONENTS[n].flux_cm2_s for n in names}
        for n, v in (fluxes or {}).items():
            if n not in self.fluxes:
                raise UnknownNameError("component of this source", n, names)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise PhysicsDomainError(f"flux of {n} must be >= 0 cm⁻² s⁻¹, got {v!r}")
            self.fluxes[n] = float(v)

    def _check(self, name: str) -> None:
        if name not in self.fluxes:
            raise UnknownNameError("species of this natural-neutrino source", name, self.species)

    def spectrum(self, name: str) -> Spectrum:
        self._check(name)
        return component_spectrum(name)

    def fluence_per_cm2(self, name: str) -> float:
        self._check(name)
        return self.fluxes[name] * self.exposure_time_s

    def species_info(self, name: str) -> Species:
        self._check(name)
        return NEUTRINO_SPECIES[COMPONENTS[name].flavour]

    def uncertainty(self, name: str) -> float:
        """Fractional 1σ uncertainty of the component's flux (O'Hare 2021, Table 1)."""
        self._check(name)
        return COMPONENTS[name].rel_uncertainty
