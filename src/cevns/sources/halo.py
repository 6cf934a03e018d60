"""Dark matter in the Galactic halo as a source of massive projectiles (source type ``halo``).

Velocities are in km/s (Earth frame unless a name says otherwise), densities in GeV/cm³, the dark-matter mass in GeV
where a name ends in ``_GeV`` (MeV inside the rate engine, like every other mass).

* :class:`VelocityDistribution` — the speed distribution f(v) in the Earth frame (∫ f dv = 1), its end v_max, the
  points where it has kinks, and the mean inverse speed η(v_min) = ∫_{v>v_min} f(v)/v dv (numerical by default).
* :class:`StandardHaloModel` — the truncated Maxwellian (ρ, v₀, v_esc, Earth speed v_E, optionally from the date
  for the annual modulation) with the closed-form η; :class:`TabulatedSpeedDistribution` — any tabulated f(v).
* :class:`HaloSource` — the engine's view (see :mod:`cevns.rates`): one species ``chi`` of mass m, its spectrum in
  total energy E = m/√(1 − v²) weighted by flux (v f(v)/⟨v⟩), and the fluence n_χ ⟨v⟩ t with n_χ = ρ/m.

The rate engine folds a kernel K(T, E) with that spectrum; for the spin-independent kernel ∝ 1/v² the fold is
(ρ/m) t · η(v_min(T)) times the cross-section constants, i.e. the textbook dR/dE_R = ρ σ_N F² η / (2 m μ_N²)
(Lewin & Smith, Astropart. Phys. 6, 87 (1996), Sec. 3, with the η form of e.g. arXiv:1005.0579 App. B).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import erf

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.sources.species import Species
from cevns.sources.spectrum import Spectrum

__all__ = ["C_KMS", "YEAR_S", "VelocityDistribution", "StandardHaloModel", "TabulatedSpeedDistribution",
           "HaloSpectrum", "HaloSource", "earth_velocity_kms", "j2000_days", "XENON1T_HALO", "DM_SPECIES"]

C_KMS = 299792.458  # speed of light [km/s] (exact, SI)
YEAR_S = 365.25 * 86400.0  # Julian year [s]
DM_SPECIES = "chi"

_GL = {}


def _gl(n: int):
    if n not in _GL:
        _GL[n] = np.polynomial.legendre.leggauss(n)
    return _GL[n]


def _check_speed(name: str, v) -> float:
    if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
        raise PhysicsDomainError(f"{name} must be a finite speed > 0 km/s, got {v!r}")
    return float(v)


def j2000_days(year: int, month: int, day: float) -> float:
    """Days since J2000.0 (2000-01-01 12:00 TT) of a calendar date (day may be fractional, 1 = first day at 0 h UT):
    the calendar algorithm of McCabe, arXiv:1312.1355, App. A (as in wimprates' ``j2000_from_ymd``)."""
    if not 1 <= month <= 12:
        raise PhysicsDomainError(f"month must be 1..12, got {month!r}")
    y, m = (year, month) if month > 2 else (year - 1, month + 12)
    return math.floor(365.25 * y) + math.floor(30.61 * (m + 1)) + day - 730563.5


def earth_velocity_kms(t_days, v0_kms: float = 220.0, v_pec_kms=(11.1, 12.2, 7.3), v_orbit_kms: float = 29.8):
    """Earth velocity in the Galactic rest frame [km/s] (Galactic coordinates), circular-orbit approximation:
    v_LSR (0, v₀, 0) + solar peculiar velocity + v_orb (ε₁ cos ω(t − t₁) + ε₂ sin ω(t − t₁)), ε₁, ε₂ and t₁ (March 21)
    as tabulated in Freese, Lisanti & Savage, arXiv:1209.3339, Sec. III (the vectors wimprates uses; equation
    numbers not re-checked here), ω = 2π/365.25 d.
    ``t_days``: days since J2000.0, scalar or array → (..., 3)."""
    t = np.asarray(t_days, float)
    e1 = np.array([0.9931, 0.1170, -0.01032])
    e2 = np.array([-0.0670, 0.4927, -0.8676])
    t1 = j2000_days(2000, 3, 21)
    phi = 2.0 * np.pi / 365.25 * (t - t1)
    v = v_orbit_kms * (np.cos(phi)[..., None] * e1 + np.sin(phi)[..., None] * e2)
    return v + np.array([0.0, v0_kms, 0.0]) + np.asarray(v_pec_kms, float)


class VelocityDistribution:
    """Dark-matter speed distribution in the Earth frame. Subclasses give :meth:`speed_pdf` (normalised, [s/km]),
    :attr:`v_max_kms` and :attr:`kinks_kms` (points inside (0, v_max) where f has a kink: quadrature panels end
    there); η and ⟨v⟩ are then computed here by Gauss–Legendre quadrature, vectorised over v_min."""

    rho_GeV_cm3: float = 0.3
    v_max_kms: float
    kinks_kms: tuple = ()

    def speed_pdf(self, v_kms):  # pragma: no cover - abstract
        raise NotImplementedError

    @cached_property
    def panels_kms(self) -> np.ndarray:
        """Quadrature panel edges on [0, v_max]: 0, the kinks, v_max."""
        return np.array(sorted({0.0, *[k for k in self.kinks_kms if 0 < k < self.v_max_kms], self.v_max_kms}))

    def integrate(self, g, v_low_kms, n_per_panel: int = 32) -> np.ndarray:
        """∫_{v > v_low} f(v) g(v) dv over the panels (GL in each), vectorised: ``g`` receives v of shape
        v_low.shape + (n,) and must broadcast against it."""
        v_low = np.asarray(v_low_kms, float)
        x, w = _gl(n_per_panel)
        out = np.zeros(v_low.shape)
        for lo, hi in zip(self.panels_kms[:-1], self.panels_kms[1:]):
            a = np.clip(v_low, lo, hi)[..., None]
            half = 0.5 * (hi - a)
            v = a + half * (x + 1.0)
            out = out + np.sum(self.speed_pdf(v) * g(v) * w, axis=-1) * half[..., 0]
        return out

    def eta(self, v_min_kms) -> np.ndarray:
        """Mean inverse speed η(v_min) = ∫_{v>v_min} f(v)/v dv [s/km] (numerical; the SHM overrides it)."""
        return self.integrate(lambda v: 1.0 / v, v_min_kms)

    @cached_property
    def mean_speed_kms(self) -> float:
        """⟨v⟩ = ∫ v f(v) dv [km/s] (the flux per unit density)."""
        return float(self.integrate(lambda v: v, 0.0))

    def norm(self) -> float:
        """∫ f(v) dv (1 for a valid distribution; tests check it)."""
        return float(self.integrate(lambda v: np.ones_like(v), 0.0))

    def n_chi_per_cm3(self, mass_GeV: float) -> float:
        return self.rho_GeV_cm3 / mass_GeV


@dataclass(frozen=True, eq=False)
class StandardHaloModel(VelocityDistribution):
    """The Standard Halo Model: an isotropic Maxwellian of dispersion v₀/√2 truncated at v_esc in the Galactic frame,
    seen from the Earth moving at v_E. Defaults: the halo XENON1T used (ρ = 0.3 GeV/cm³, v₀ = 220 km/s,
    v_esc = 544 km/s, v_E = 232 km/s; arXiv:1805.12562 and arXiv:1907.12771). Earth-frame speed distribution
    (Lewin & Smith 1996, App. A; arXiv:1005.0579 App. B, angle-integrated):

        f(v) = v / (N_esc √π v₀ v_E) [e^{−(v−v_E)²/v₀²} − e^{−min(v+v_E, v_esc)²/v₀²}],   0 < v < v_esc + v_E

    with N_esc = erf(z) − 2z e^{−z²}/√π, z = v_esc/v₀."""

    rho_GeV_cm3: float = 0.3
    v0_kms: float = 220.0
    v_esc_kms: float = 544.0
    v_earth_kms: float = 232.0

    def __post_init__(self):
        if not (math.isfinite(self.rho_GeV_cm3) and self.rho_GeV_cm3 > 0):
            raise PhysicsDomainError(f"local DM density must be > 0 GeV/cm³, got {self.rho_GeV_cm3!r}")
        for n in ("v0_kms", "v_esc_kms", "v_earth_kms"):
            _check_speed(n, getattr(self, n))
        if self.v_earth_kms >= self.v_esc_kms:
            raise PhysicsDomainError(f"the Earth speed {self.v_earth_kms} km/s must be below v_esc {self.v_esc_kms} km/s")

    @classmethod
    def at_time(cls, t_days: float, rho_GeV_cm3: float = 0.3, v0_kms: float = 220.0, v_esc_kms: float = 544.0,
                **earth) -> "StandardHaloModel":
        """The SHM with the Earth speed |v_E(t)| of :func:`earth_velocity_kms` at t days after J2000.0 (annual
        modulation: ≈ ±15 km/s, maximum in early June)."""
        ve = float(np.linalg.norm(earth_velocity_kms(t_days, v0_kms, **earth)))
        return cls(rho_GeV_cm3, v0_kms, v_esc_kms, ve)

    @property
    def v_max_kms(self) -> float:
        return self.v_esc_kms + self.v_earth_kms

    @property
    def kinks_kms(self) -> tuple:
        return (self.v_esc_kms - self.v_earth_kms,)

    @cached_property
    def n_esc(self) -> float:
        z = self.v_esc_kms / self.v0_kms
        return float(erf(z) - 2.0 / math.sqrt(math.pi) * z * math.exp(-z * z))

    def speed_pdf(self, v_kms):
        """f(v) [s/km], normalised in the Earth frame (see the class docstring)."""
        v = np.asarray(v_kms, float)
        v0, ve, vesc = self.v0_kms, self.v_earth_kms, self.v_esc_kms
        upper = np.minimum(v + ve, vesc)
        f = v / (self.n_esc * math.sqrt(math.pi) * v0 * ve) * (np.exp(-((v - ve) / v0) ** 2) - np.exp(-(upper / v0) ** 2))
        return np.where((v > 0) & (v < vesc + ve), f, 0.0)

    def eta(self, v_min_kms) -> np.ndarray:
        """Closed-form mean inverse speed [s/km], x = v_min/v₀, y = v_E/v₀, z = v_esc/v₀ (arXiv:1005.0579 App. B;
        the same expression as O'Hare's NeutrinoFog ``MeanInverseSpeed_SHM``):
        [erf(x+y) − erf(x−y) − 4y e^{−z²}/√π] / (2 N_esc v_E) for x < z − y,
        [erf(z) − erf(x−y) − 2(z+y−x) e^{−z²}/√π] / (2 N_esc v_E) for z − y ≤ x < z + y, 0 beyond."""
        vmin = np.asarray(v_min_kms, float)
        v0 = self.v0_kms
        x, y, z = np.maximum(vmin, 0.0) / v0, self.v_earth_kms / v0, self.v_esc_kms / v0
        ez = math.exp(-z * z) / math.sqrt(math.pi)
        low = erf(x + y) - erf(x - y) - 4.0 * y * ez
        high = erf(z) - erf(x - y) - 2.0 * (z + y - x) * ez
        g = np.where(x < z - y, low, np.where(x < z + y, high, 0.0))
        return np.maximum(g, 0.0) / (2.0 * self.n_esc * self.v_earth_kms)


@dataclass(frozen=True, eq=False)
class TabulatedSpeedDistribution(VelocityDistribution):
    """Any Earth-frame speed distribution given on a grid (v [km/s] increasing from ≥ 0, f ≥ 0), linearly
    interpolated and normalised to 1 here; η and ⟨v⟩ by quadrature between the grid points."""

    v_kms: tuple
    f: tuple
    rho_GeV_cm3: float = 0.3

    def __post_init__(self):
        v, f = np.asarray(self.v_kms, float), np.asarray(self.f, float)
        if v.ndim != 1 or v.size < 3 or v.shape != f.shape or np.any(np.diff(v) <= 0) or v[0] < 0:
            raise PhysicsDomainError("a tabulated speed distribution needs >= 3 increasing speeds >= 0 km/s and as many f values")
        if not (np.all(np.isfinite(f)) and np.all(f >= 0) and f.sum() > 0):
            raise PhysicsDomainError("tabulated f(v) must be finite, >= 0 and not all zero")
        object.__setattr__(self, "_v", v)
        object.__setattr__(self, "_f", f / np.trapezoid(f, v))

    @property
    def v_max_kms(self) -> float:
        return float(self._v[-1])

    @property
    def kinks_kms(self) -> tuple:
        return tuple(float(x) for x in self._v[1:-1])

    def speed_pdf(self, v_kms):
        return np.interp(np.asarray(v_kms, float), self._v, self._f, left=0.0, right=0.0)

    def integrate(self, g, v_low_kms, n_per_panel: int = 4) -> np.ndarray:
        return super().integrate(g, v_low_kms, n_per_panel)


#: the halo XENON1T used for its Migdal/Bremsstrahlung and SI results (arXiv:1907.12771, arXiv:1805.12562)
XENON1T_HALO = StandardHaloModel(0.3, 220.0, 544.0, 232.0)


def _beta(E_MeV, m_MeV):
    """v/c of a particle of total energy E and mass m (0 below E = m)."""
    E = np.asarray(E_MeV, float)
    r = np.clip(m_MeV / np.maximum(E, m_MeV), 0.0, 1.0)
    return np.sqrt(np.maximum(1.0 - r * r, 0.0))


@dataclass(frozen=True)
class HaloSpectrum(Spectrum):
    """The flux-weighted halo spectrum in total energy E = m γ(v): pdf(E) dE = v f(v)/⟨v⟩ dv. :meth:`fold` integrates
    in velocity over the distribution's panels (kinks never inside a panel), so the engine's folds are accurate to
    quadrature precision."""

    mass_MeV: float = 1.0
    halo: VelocityDistribution | None = None

    def fold(self, g, e_low=0.0) -> np.ndarray:
        e_low = np.asarray(e_low, float)
        m, h = self.mass_MeV, self.halo
        v_low = _beta(e_low, m) * C_KMS
        mv = h.mean_speed_kms

        def gv(v):
            b = v / C_KMS
            return g(m / np.sqrt(1.0 - b * b)) * v / mv

        return h.integrate(gv, v_low)


class HaloSource:
    """Dark matter of one mass in a halo, for the rate engine: species ``chi`` (kind 'dark_matter'), its flux-weighted
    spectrum in total energy (:class:`HaloSpectrum`) and fluence n_χ ⟨v⟩ × ``exposure_time_s`` [cm⁻²]
    (n_χ = ρ/m; default exposure one Julian year, so rates come out per year)."""

    def __init__(self, mass_GeV: float, halo: VelocityDistribution | None = None, exposure_time_s: float = YEAR_S):
        if not (isinstance(mass_GeV, (int, float)) and math.isfinite(mass_GeV) and mass_GeV > 0):
            raise PhysicsDomainError(f"dark-matter mass must be a finite number > 0 GeV, got {mass_GeV!r}")
        if not (math.isfinite(exposure_time_s) and exposure_time_s > 0):
            raise PhysicsDomainError(f"exposure time must be > 0 s, got {exposure_time_s!r}")
        self.mass_GeV = float(mass_GeV)
        self.mass_MeV = self.mass_GeV * C.GeV
        self.halo = halo if halo is not None else XENON1T_HALO
        self.exposure_time_s = float(exposure_time_s)
        self.species = (DM_SPECIES,)
        self._species = Species(DM_SPECIES, self.mass_MeV, "dark_matter")
        vmax = self.halo.v_max_kms / C_KMS
        self._spectrum = HaloSpectrum(pdf=self._pdf, e_min=self.mass_MeV, e_max=self.mass_MeV / math.sqrt(1 - vmax * vmax),
                                      mass_MeV=self.mass_MeV, halo=self.halo)

    def _check(self, name: str) -> None:
        if name != DM_SPECIES:
            raise UnknownNameError("halo species", name, self.species)

    def _pdf(self, E_MeV):
        """pdf(E) [1/MeV] = v f(v)/⟨v⟩ · dv/dE, dv/dE = c m²/(E³ β)."""
        b = _beta(E_MeV, self.mass_MeV)
        v = b * C_KMS
        E = np.asarray(E_MeV, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            dv_dE = np.where(b > 0, C_KMS * self.mass_MeV**2 / (E**3 * b), 0.0)
        return self.halo.speed_pdf(v) * v / self.halo.mean_speed_kms * dv_dE

    def species_info(self, name: str) -> Species:
        self._check(name)
        return self._species

    def spectrum(self, name: str) -> HaloSpectrum:
        self._check(name)
        return self._spectrum

    def fluence_per_cm2(self, name: str) -> float:
        """n_χ ⟨v⟩ t [cm⁻²] (⟨v⟩ in cm/s)."""
        self._check(name)
        return self.halo.n_chi_per_cm3(self.mass_GeV) * self.halo.mean_speed_kms * 1e5 * self.exposure_time_s
