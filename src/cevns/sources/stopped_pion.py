"""Stopped-pion (π⁺ decay-at-rest) neutrino source: SNS, ESS, J-PARC MLF, Lujan.

π⁺ → μ⁺ ν_μ gives a prompt ν_μ line at E = (m_π² − m_μ²)/(2m_π) = 29.79 MeV; μ⁺ → e⁺ ν_e ν̄_μ gives the delayed
Michel spectra up to m_μ/2 (arXiv:hep-ex/0511042, Scholberg PRD 73, 033005 (2006), Eq. (2)–(3)):
    ν_e:  f(E) = 192/m_μ (E/m_μ)² (1/2 − E/m_μ)
    ν̄_μ: f(E) =  64/m_μ (E/m_μ)² (3/4 − E/m_μ)
Normalisation: r neutrinos per flavour per proton on target, isotropic, fluence r·POT/(4π L²).
Timing: the proton pulse convolved with the π⁺ lifetime (prompt) and with the π⁺ then μ⁺ lifetimes (delayed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.sources.spectrum import Spectrum

__all__ = ["michel_nue_pdf", "michel_numubar_pdf", "StoppedPionSource", "pot_from_beam_energy",
           "gaussian_pulse_time_cdf"]

PROMPT_FLAVOURS = ("numu",)
DELAYED_FLAVOURS = ("nue", "numubar")


def michel_nue_pdf(E_MeV):
    """ν_e spectrum from μ⁺ decay at rest [1/MeV], normalised on [0, m_μ/2]: 192/m_μ (E/m_μ)²(1/2 − E/m_μ)
    (arXiv:hep-ex/0511042 Eq. (3))."""
    x = np.asarray(E_MeV, dtype=float) / C.M_MUON
    return np.where((x >= 0) & (x <= 0.5), 192.0 / C.M_MUON * x * x * (0.5 - x), 0.0)


def michel_numubar_pdf(E_MeV):
    """ν̄_μ spectrum from μ⁺ decay at rest [1/MeV], normalised on [0, m_μ/2]: 64/m_μ (E/m_μ)²(3/4 − E/m_μ)
    (arXiv:hep-ex/0511042 Eq. (2))."""
    x = np.asarray(E_MeV, dtype=float) / C.M_MUON
    return np.where((x >= 0) & (x <= 0.5), 64.0 / C.M_MUON * x * x * (0.75 - x), 0.0)


def pot_from_beam_energy(beam_energy_GWh: float, proton_kinetic_energy_GeV: float) -> float:
    """Protons on target from integrated beam energy [GW·h] and proton kinetic energy [GeV]: POT = E_beam / T_p."""
    for name, v in (("beam energy [GW h]", beam_energy_GWh), ("proton kinetic energy [GeV]", proton_kinetic_energy_GeV)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise PhysicsDomainError(f"{name} must be a finite number > 0, got {v!r}")
    return beam_energy_GWh * C.GWH_IN_MeV / (proton_kinetic_energy_GeV * C.GeV)


def _exgauss_cdf(t, mu, sigma, tau):
    """CDF of a Gaussian(mu, sigma) convolved with an exponential of mean tau (all in the same time unit)."""
    t = np.asarray(t, dtype=float)
    z = (t - mu) / sigma
    # Φ(z) − exp(−(t−μ)/τ + σ²/2τ²) Φ(z − σ/τ), written with erfcx for stability
    phi = 0.5 * special.erfc(-z / math.sqrt(2.0))
    arg = (sigma / tau - z) / math.sqrt(2.0)
    pos = arg >= 0
    a_pos = np.where(pos, arg, 0.0)
    tail_pos = 0.5 * np.exp(-0.5 * z * z) * special.erfcx(a_pos)  # stable where arg >= 0
    expo = np.where(pos, 0.0, -(t - mu) / tau + 0.5 * (sigma / tau) ** 2)
    tail_neg = np.exp(expo) * 0.5 * special.erfc(arg)  # stable where arg < 0 (t well after the pulse)
    return phi - np.where(pos, tail_pos, tail_neg)


def gaussian_pulse_time_cdf(t_us, component: str, mean_us: float, sigma_us: float):
    """CDF of the neutrino arrival time [µs] for a Gaussian proton pulse (mean, sigma in µs).

    prompt  = pulse ⊗ Exp(τ_π);  delayed = pulse ⊗ Exp(τ_π) ⊗ Exp(τ_μ), whose density is the hypoexponential
    (e^{−t/τ_μ} − e^{−t/τ_π})/(τ_μ − τ_π) (Bateman, two-step decay), i.e. [τ_μ EMG(τ_μ) − τ_π EMG(τ_π)]/(τ_μ − τ_π).
    """
    if not (sigma_us > 0 and math.isfinite(mean_us)):
        raise PhysicsDomainError(f"proton pulse needs sigma_us > 0 and a finite mean, got {mean_us}, {sigma_us}")
    tp, tm = C.TAU_PION_CHARGED_us, C.TAU_MUON_us
    if component == "prompt":
        return _exgauss_cdf(t_us, mean_us, sigma_us, tp)
    if component == "delayed":
        return (tm * _exgauss_cdf(t_us, mean_us, sigma_us, tm) - tp * _exgauss_cdf(t_us, mean_us, sigma_us, tp)) / (tm - tp)
    raise UnknownNameError("timing component", component, ["prompt", "delayed"])


@dataclass(frozen=True)
class StoppedPionSource:
    """π⁺ DAR source: ``pot`` protons on target, ``nu_per_flavour_per_pot`` (r), baseline ``distance_m``.

    Timing (µs): either a Gaussian proton pulse (``pulse_mean_us``, ``pulse_sigma_us``) convolved with the decay
    lifetimes, or tabulated per-component binned PDFs via ``timing_table`` {'prompt': (edges, probs), 'delayed': ...}.
    """

    pot: float
    nu_per_flavour_per_pot: float
    distance_m: float
    pulse_mean_us: float = 0.0
    pulse_sigma_us: float = 0.15
    timing_table: dict | None = None

    flavours = PROMPT_FLAVOURS + DELAYED_FLAVOURS
    #: the projectile species the rate engine folds (neutrinos: the flavours)
    species = flavours

    def __post_init__(self):
        for name in ("pot", "nu_per_flavour_per_pot", "distance_m"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise PhysicsDomainError(f"StoppedPionSource.{name} must be a finite number > 0, got {v!r}")

    @staticmethod
    def component(flavour: str) -> str:
        if flavour in PROMPT_FLAVOURS:
            return "prompt"
        if flavour in DELAYED_FLAVOURS:
            return "delayed"
        raise UnknownNameError("stopped-pion flavour", flavour, PROMPT_FLAVOURS + DELAYED_FLAVOURS)

    def spectrum(self, flavour: str) -> Spectrum:
        """Normalised energy spectrum of one flavour."""
        comp = self.component(flavour)
        if comp == "prompt":
            return Spectrum(None, lines=((C.E_NU_PROMPT, 1.0),), continuous_weight=0.0)
        pdf = michel_nue_pdf if flavour == "nue" else michel_numubar_pdf
        return Spectrum(pdf, 0.0, C.E_NU_MICHEL_MAX)

    def fluence_per_cm2(self, flavour: str) -> float:
        """Time-integrated number of neutrinos of one flavour per cm² at the detector: r·POT/(4π L²)."""
        self.component(flavour)
        L_cm = self.distance_m * C.m
        return self.nu_per_flavour_per_pot * self.pot / (4.0 * math.pi * L_cm**2)

    def time_pdf(self, flavour: str, t_edges_us) -> np.ndarray:
        """Probability of arrival in each time bin [µs edges] (not renormalised to the window)."""
        comp = self.component(flavour)
        edges = np.asarray(t_edges_us, dtype=float)
        if self.timing_table is not None:
            tab_edges, probs = self.timing_table[comp]
            if len(tab_edges) != len(edges) or not np.allclose(tab_edges, edges):
                raise PhysicsDomainError("tabulated timing PDF binning differs from the requested time bins")
            return np.asarray(probs, dtype=float)
        cdf = gaussian_pulse_time_cdf(edges, comp, self.pulse_mean_us, self.pulse_sigma_us)
        return np.diff(cdf)
