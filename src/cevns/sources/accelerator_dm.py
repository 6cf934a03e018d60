"""Dark matter made at a proton beam dump (the SNS): mesons → dark photon V → χχ*, as a source of the rate engine.

Units: MeV (c = 1), lengths in cm unless a name ends in ``_m``, times in ns where a name ends in ``_ns``.

Production channels (per proton on target, POT):

* ``pi0``: π⁰ → γ V from the GEANT4 π⁰ sample of the SNS target (``cevns/data/sns_pi0``, a shape; the yield per POT
  is a parameter, default 0.106 π⁰/POT as pyCEvNS uses it), decaying in flight;
* ``pi_minus_capture``: π⁻ captured at rest, π⁻ p → n V (default 0.0366 captures/POT from pyCEvNS, times the fraction
  of captures that are radiative, π⁻ p → n γ, a parameter; V monochromatic from free-proton kinematics).

BR(π⁰ → γV) = 2ε²(1 − m_V²/m_π⁰²)³ BR(π⁰ → γγ) (arXiv:0906.5614, Batell, Pospelov & Ritz; quoted by arXiv:2110.11453;
eq. numbers not checked here). For π⁻ p → n V the photon rate is scaled by ε², the phase space p_V/p_γ and the
polarisation sum of a massive vector coupled to the (conserved, E1 Kroll–Ruderman) current: 1 + m_V²/(2E_V²) (derived
in docs/accelerator_dm.md; Kroll & Ruderman, Phys. Rev. 93, 233 (1954)).

Both channels are integrated over the V line shape: for production factor P(s) (per ε²) of a V* of mass √s,

    dBR/ds = ε² P(s) · √s Γ(V*→χχ*)(√s)/π / [(s − m_V²)² + m_V² Γ_V²]

which is BR(→ γV) BR(V → χχ*) for a narrow V below the meson mass and the off-shell three-body rate π⁰ → γχχ* above it
(e.g. arXiv:1411.1055, Kahn, Krnjaic, Thaler & Toups, Sec. 2 for the off-shell regime; eq. number not checked).

Decay chain: V (or V*) isotropic in the meson rest frame, boosted to the lab (vectorised Lorentz boosts); χ from
V → χχ* with the angular distribution of the V polarisation (π⁰: helicity ±1 only; π⁻ capture: transverse and
longitudinal in the ratio 2 : m_V²/ω²), for the complex scalar (3/4)(1 − cos²θ*) (transverse), (3/2)cos²θ*
(longitudinal), for a Dirac χ the (1 + cos²θ*)-type forms of the spin sum (docs). The detector direction is imposed
("forced decay"): for each V the χ momenta along the line of sight to a point of the detector are solved exactly,
with the Jacobian dΩ*/dΩ_lab = p²/(γ p* |p − (β⃗·n̂) E|), so the flux density per solid angle is exact and every V
contributes. Points are spread over the detector volume (path length through the volume = volume average of the
flux). For an isotropic source at rest the flux is 2N/(4πL²) (tested).

Timing: the χ arrive a time L/(βc) after production; relative to light the delay L/c (1/β − 1) [ns] is returned as a
flux-weighted distribution (quantiles); the proton pulse is the experiment's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from cevns import constants as C
from cevns.errors import ConfigError, DataError, PhysicsDomainError, UnknownNameError
from cevns.interactions import dark_photon as dp
from cevns.sources.species import Species
from cevns.sources.spectrum import Spectrum

__all__ = ["BR_PI0_GAMMA_GAMMA", "CHANNELS", "DM_SPECIES", "DetectorGeometry", "AcceleratorDMSource", "boost",
           "two_body_momentum", "br_pi0_gamma_v", "pi_minus_v_rate_factor", "production_br", "line_shape_grid",
           "decay_angular_pdf", "forced_direction_solutions", "pi0_sample", "box_pdf", "chord_length_cm",
           "build_accelerator_dm", "C_CM_PER_NS"]

BR_PI0_GAMMA_GAMMA = 0.98823  # BR(π⁰ → γγ), PDG 2024
C_CM_PER_NS = 29.9792458  # speed of light [cm/ns]
DM_SPECIES = "chi"
#: production channels and their defaults (see the module docstring)
CHANNELS = {"pi0": {"per_pot": 52935 / 500000},
            "pi_minus_capture": {"per_pot": 18324 / 500000, "radiative_fraction": 0.02}}
_W_PIM = C.M_PION_CHARGED + C.M_PROTON  # π⁻ p at rest (atomic binding and nuclear effects neglected)
_leggauss = lru_cache(maxsize=8)(np.polynomial.legendre.leggauss)  # shared arrays: never modify in place


# ---- kinematics ----------------------------------------------------------------------------------------------------
def two_body_momentum(M, m1, m2):
    """CM momentum of M → m1 m2: √[(M² − (m1+m2)²)(M² − (m1−m2)²)]/(2M) (zero below threshold)."""
    M = np.asarray(M, float)
    a = (M * M - (m1 + m2) ** 2) * (M * M - (m1 - m2) ** 2)
    return np.sqrt(np.clip(a, 0.0, None)) / (2.0 * M)


def boost(p4, beta):
    """Lorentz boost of four-momenta p4 (..., 4) = (E, p⃗) from the rest frame of a body moving with velocity β⃗
    (..., 3) into the frame where it moves: E' = γ(E + β⃗·p⃗), p⃗' = p⃗ + [(γ − 1)(β⃗·p⃗)/β² + γE] β⃗."""
    p4 = np.asarray(p4, float)
    b = np.asarray(beta, float)
    b2 = np.sum(b * b, axis=-1, keepdims=True)
    g = 1.0 / np.sqrt(1.0 - b2)
    bp = np.sum(b * p4[..., 1:], axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        coef = np.where(b2 > 0, (g - 1.0) * bp / b2, 0.0) + g * p4[..., :1]
    return np.concatenate([g * (p4[..., :1] + bp), p4[..., 1:] + coef * b], axis=-1)


def _isotropic(rng, n):
    c = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * math.pi, n)
    s = np.sqrt(1.0 - c * c)
    return np.stack([s * np.cos(phi), s * np.sin(phi), c], axis=-1)


def box_pdf(E_MeV, m_parent_MeV: float, p_parent_MeV: float, m_chi_MeV: float):
    """Lab-energy density [1/MeV] of χ from an isotropic two-body decay V → χχ* in flight (V mass m, momentum p): flat
    between E± = γ(E* ± β p*) (the standard 'box'; any textbook on two-body decays, e.g. PDG 2024 Kinematics §49.4)."""
    E_v = math.hypot(m_parent_MeV, p_parent_MeV)
    g, b = E_v / m_parent_MeV, p_parent_MeV / E_v
    es = m_parent_MeV / 2.0
    ps = math.sqrt(es * es - m_chi_MeV**2)
    lo, hi = g * (es - b * ps), g * (es + b * ps)
    E = np.asarray(E_MeV, float)
    return np.where((E >= lo) & (E <= hi), 1.0 / (hi - lo), 0.0)


# ---- branching ratios and line shapes -------------------------------------------------------------------------------
def br_pi0_gamma_v(m_v_MeV, epsilon: float = 1.0, m_meson_MeV: float = C.M_PION_NEUTRAL,
                   br_gg: float = BR_PI0_GAMMA_GAMMA):
    """BR(π⁰ → γV) = 2ε²(1 − m_V²/m_π⁰²)³ BR(π⁰ → γγ) (module docstring; zero for m_V ≥ m_π⁰). At m_V = 10 MeV it is
    1.9441 ε², at 100 MeV 0.1814 ε²."""
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise PhysicsDomainError(f"epsilon (kinetic mixing) must be finite and >= 0, got {epsilon!r}")
    r = np.asarray(m_v_MeV, float) ** 2 / m_meson_MeV**2
    return 2.0 * epsilon**2 * np.clip(1.0 - r, 0.0, None) ** 3 * br_gg


def _pim_v_kinematics(s):
    """(E_V, p_V) of π⁻ p (at rest) → n V* with V* mass² s (free-proton kinematics)."""
    s = np.asarray(s, float)
    E = (_W_PIM**2 - C.M_NEUTRON**2 + s) / (2.0 * _W_PIM)
    return E, np.sqrt(np.clip(E * E - s, 0.0, None))


def pi_minus_v_rate_factor(s_MeV2, radiative_fraction: float):
    """Γ(π⁻p → nV*)/[ε² Γ(π⁻p → all)] for V* mass² s: f_rad · (p_V/p_γ) · (1 + s/(2E_V²)) (phase space times the
    polarisation sum of a massive vector coupled to the conserved E1 current; module docstring). Zero above
    threshold."""
    E, p = _pim_v_kinematics(s_MeV2)
    _, pg = _pim_v_kinematics(0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = radiative_fraction * p / pg * (1.0 + np.asarray(s_MeV2, float) / (2.0 * E * E))
    return np.where(p > 0, f, 0.0)


def _production_factor(channel: str, s, params: dict):
    """P(s): the rate of meson → (γ or n) V* per meson per ε² for a V* of mass² s."""
    if channel == "pi0":
        return br_pi0_gamma_v(np.sqrt(np.clip(s, 0.0, None)), 1.0)
    if channel == "pi_minus_capture":
        return pi_minus_v_rate_factor(s, params.get("radiative_fraction", CHANNELS[channel]["radiative_fraction"]))
    raise UnknownNameError("dark-matter production channel", channel, CHANNELS)


def _s_max(channel: str) -> float:
    if channel == "pi0":
        return C.M_PION_NEUTRAL**2
    return (_W_PIM - C.M_NEUTRON) ** 2


def line_shape_grid(channel: str, m_v_MeV: float, m_chi_MeV: float, epsilon: float, alpha_d: float,
                    statistics: str = "complex_scalar", params: dict | None = None, n: int = 400):
    """(s nodes, dBR/ds at the nodes, quadrature weights): the V line shape of the module docstring on
    s ∈ [4m_χ², s_max], mapped with s = m_V² + m_V Γ_V tan φ (uniform in φ: the Breit–Wigner peak is resolved whether
    it is inside the range, i.e. V on shell, or above it, i.e. V* off shell). BR = Σ dBR/ds · weights."""
    params = params or {}
    lo, hi = 4.0 * m_chi_MeV**2, _s_max(channel)
    if hi <= lo:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    gv = float(dp.total_width_MeV(m_v_MeV, m_chi_MeV, epsilon, alpha_d, statistics))
    a = m_v_MeV * gv
    f_lo, f_hi = math.atan((lo - m_v_MeV**2) / a), math.atan((hi - m_v_MeV**2) / a)
    x, w = _leggauss(n)
    phi = f_lo + 0.5 * (f_hi - f_lo) * (x + 1.0)
    wphi = 0.5 * (f_hi - f_lo) * w
    s = m_v_MeV**2 + a * np.tan(phi)
    ds_dphi = a / np.cos(phi) ** 2
    rs = np.sqrt(s)
    dbr = (epsilon**2 * _production_factor(channel, s, params) * rs
           * dp.width_chichi_MeV(rs, m_chi_MeV, alpha_d, statistics) / math.pi / ((s - m_v_MeV**2) ** 2 + a * a))
    return s, dbr, wphi * ds_dphi


def production_br(channel: str, m_v_MeV: float, m_chi_MeV: float, epsilon: float, alpha_d: float,
                  statistics: str = "complex_scalar", params: dict | None = None) -> float:
    """χχ* pairs per meson of ``channel`` (the line-shape integral of :func:`line_shape_grid`): for m_V well below
    the meson mass ≈ BR(→ γV) · BR(V → χχ*); above it the off-shell rate."""
    dp.check_masses(m_chi_MeV, m_v_MeV, alpha_d=alpha_d, epsilon=epsilon)
    _, d, w = line_shape_grid(channel, m_v_MeV, m_chi_MeV, epsilon, alpha_d, statistics, params)
    return float(np.sum(d * w))


def decay_angular_pdf(cos_star, f_transverse, beta_star, statistics: str = "complex_scalar"):
    """Normalised density in cos θ* (∫_{−1}^{1} = 1) of χ from V(*) → χχ* about the V helicity axis, for a fraction
    f_T of transverse (helicity ±1) and 1 − f_T of longitudinal V. Complex scalar: |ε·(p₁ − p₂)|² gives
    (3/4)(1 − c²) and (3/2)c²; Dirac: the trace E² − p²|ε̂·p̂|² gives [(2 − β²) + β²c²]/(4 − 4β²/3) and
    (1 − β²c²)/(2 − 2β²/3) (β = χ speed in the V frame; derived in docs/accelerator_dm.md)."""
    c2 = np.asarray(cos_star, float) ** 2
    fT = np.asarray(f_transverse, float)
    if dp._stat(statistics) == "complex_scalar":
        return fT * 0.75 * (1.0 - c2) + (1.0 - fT) * 1.5 * c2
    b2 = np.asarray(beta_star, float) ** 2
    return fT * ((2.0 - b2) + b2 * c2) / (4.0 - 4.0 * b2 / 3.0) + (1.0 - fT) * (1.0 - b2 * c2) / (2.0 - 2.0 * b2 / 3.0)


def forced_direction_solutions(pV, m_chi_MeV: float, nhat):
    """χ momenta along unit directions n̂ from V(*) four-momenta pV (N, 4) decaying to χχ*: the lab momenta p ≥ 0
    with γ(E − b p) = E* (b = β⃗_V·n̂, E* = m_V/2): p = [b E*/γ ± √(b²E*²/γ² − (1 − b²)(m² − E*²/γ²))]/(1 − b²).

    ``nhat`` (K, 3) or (N, K, 3). Returns (p, E, jac, ok) of shape (N, K, 2): lab momentum and energy of the two roots,
    the Jacobian dΩ*/dΩ_lab = p²/(γ p* |p − bE|) and whether the root is physical."""
    pV = np.asarray(pV, float)
    mV = np.sqrt(np.clip(pV[:, 0] ** 2 - np.sum(pV[:, 1:] ** 2, axis=1), 0.0, None))
    g = pV[:, 0] / mV
    bvec = pV[:, 1:] / pV[:, :1]
    n = np.asarray(nhat, float)
    b = bvec @ n.T if n.ndim == 2 else np.einsum("nk,njk->nj", bvec, n)  # β⃗·n̂ (N, K)
    es = (0.5 * mV)[:, None]
    ps = np.sqrt(np.clip(es * es - m_chi_MeV**2, 0.0, None))
    gg = g[:, None]
    A = 1.0 - b * b
    Bh = b * es / gg
    Cc = m_chi_MeV**2 - (es / gg) ** 2
    disc = Bh * Bh - A * Cc
    sq = np.sqrt(np.clip(disc, 0.0, None))
    p = np.stack([(Bh + sq) / A, (Bh - sq) / A], axis=-1)
    E = es[..., None] / gg[..., None] + b[..., None] * p
    ok = (disc[..., None] >= 0) & (p > 0) & (E > 0)
    ok[..., 1] &= sq > 0  # a double root counts once
    with np.errstate(divide="ignore", invalid="ignore"):
        jac = p * p / (gg[..., None] * ps[..., None] * np.abs(p - b[..., None] * E))
    jac = np.where(ok & np.isfinite(jac), jac, 0.0)
    return np.where(ok, p, 0.0), np.where(ok, E, 0.0), jac, ok


# ---- geometry ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DetectorGeometry:
    """The detector as seen from the target (the origin; the proton beam along +z): its centre at ``distance_m`` and
    polar angle ``angle_deg`` from the beam (azimuth 0, in the x–z plane), a cylinder of ``radius_m`` and
    ``length_m`` with its axis along ŷ (perpendicular to the beam plane; radius 0: a point)."""

    distance_m: float
    angle_deg: float = 90.0
    radius_m: float = 0.0
    length_m: float = 0.0

    def __post_init__(self):
        if not (math.isfinite(self.distance_m) and self.distance_m > 0):
            raise PhysicsDomainError(f"detector distance must be > 0 m, got {self.distance_m!r}")
        if not (math.isfinite(self.angle_deg) and 0.0 <= self.angle_deg <= 180.0):
            raise PhysicsDomainError(f"detector angle to the beam must be in [0, 180] degrees, got {self.angle_deg!r}")
        if self.radius_m < 0 or self.length_m < 0 or (self.radius_m > 0) != (self.length_m > 0):
            raise PhysicsDomainError("detector radius and length must both be > 0 (a cylinder) or both 0 (a point)")
        if max(self.radius_m, 0.5 * self.length_m) >= 0.5 * self.distance_m:
            raise PhysicsDomainError("the detector must be small compared with its distance from the target")

    @property
    def centre_cm(self) -> np.ndarray:
        t = math.radians(self.angle_deg)
        return self.distance_m * 100.0 * np.array([math.sin(t), 0.0, math.cos(t)])

    @property
    def volume_cm3(self) -> float:
        return math.pi * (100 * self.radius_m) ** 2 * 100 * self.length_m

    def points_cm(self, n: int, rng=None) -> np.ndarray:
        """n points spread uniformly over the volume (stratified in radius², azimuth and height; the centre for a
        point detector): (n, 3) [cm]."""
        if self.radius_m == 0 or n <= 1:
            return self.centre_cm[None, :]
        rng = np.random.default_rng(12345) if rng is None else rng
        u = (np.arange(n) + rng.uniform(0, 1, n)) / n
        r = 100 * self.radius_m * np.sqrt(u)
        phi = rng.permutation(n) * (2 * math.pi / n) + rng.uniform(0, 2 * math.pi / n, n)
        h = 100 * self.length_m * ((rng.permutation(n) + rng.uniform(0, 1, n)) / n - 0.5)
        t = math.radians(self.angle_deg)
        e_r = np.array([math.sin(t), 0.0, math.cos(t)])  # radial (line of sight)
        e_t = np.array([math.cos(t), 0.0, -math.sin(t)])  # in the beam plane, across the line of sight
        off = (r * np.cos(phi))[:, None] * e_r + (r * np.sin(phi))[:, None] * e_t + h[:, None] * np.array([0, 1.0, 0])
        return self.centre_cm[None, :] + off


def chord_length_cm(directions, geometry: DetectorGeometry) -> np.ndarray:
    """Path length [cm] of straight lines from the origin along unit ``directions`` (N, 3) through the cylinder of
    ``geometry`` (axis ŷ through the centre): the intersection of the infinite-cylinder interval with the slab
    |y − y_c| ≤ L/2 (vectorised ray–cylinder test)."""
    d = np.asarray(directions, float)
    c = geometry.centre_cm
    R, L = 100 * geometry.radius_m, 100 * geometry.length_m
    # cylinder: (x − cx)² + (z − cz)² ≤ R²  along x = t d_x, z = t d_z
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = -2.0 * (d[:, 0] * c[0] + d[:, 2] * c[2])
    cc = c[0] ** 2 + c[2] ** 2 - R * R
    disc = b * b - 4 * a * cc
    sq = np.sqrt(np.clip(disc, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (-b - sq) / (2 * a), (-b + sq) / (2 * a)
        y0, y1 = (c[1] - L / 2) / d[:, 1], (c[1] + L / 2) / d[:, 1]
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    flat = np.abs(d[:, 1]) < 1e-15
    ylo = np.where(flat, -np.inf if abs(c[1]) <= L / 2 else np.inf, ylo)
    yhi = np.where(flat, np.inf if abs(c[1]) <= L / 2 else -np.inf, yhi)
    lo = np.maximum(np.maximum(t0, ylo), 0.0)
    hi = np.minimum(t1, yhi)
    return np.where((disc > 0) & (a > 0) & (hi > lo), hi - lo, 0.0)


# ---- the π⁰ sample --------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def pi0_sample(path: str | None = None) -> np.ndarray:
    """π⁰ four-momenta (N, 4) [MeV] in a frame whose z axis is the proton beam, from the SNS GEANT4 sample
    (``cevns/data/sns_pi0/Pi0_Info.txt``; its angle column is arccos(−p_z/|p|), so the beam runs along −z in the file:
    z is flipped here). The mass and angle columns are checked."""
    from cevns.experiments.releases import data_path, read_table

    p = data_path("sns_pi0", "Pi0_Info.txt") if path is None else path
    a = read_table(p, ncols=6, min_rows=1000)
    ang, px, py, pz, E, _ = a.T
    m = np.sqrt(np.clip(E * E - px * px - py * py - pz * pz, 0.0, None))
    if np.max(np.abs(m - C.M_PION_NEUTRAL)) > 0.05:
        raise DataError(f"{p}: invariant masses are not the pi0 mass ({m.min():.3f}-{m.max():.3f} MeV)")
    pm = np.sqrt(px * px + py * py + pz * pz)
    if np.max(np.abs(np.degrees(np.arccos(np.clip(-pz / pm, -1, 1))) - ang)) > 0.05:
        raise DataError(f"{p}: the angle column is not the angle to the beam axis -z")
    return np.stack([E, px, py, -pz], axis=1)


def _rotate_z(p4, phi):
    c, s = np.cos(phi), np.sin(phi)
    out = p4.copy()
    out[:, 1] = c * p4[:, 1] - s * p4[:, 2]
    out[:, 2] = s * p4[:, 1] + c * p4[:, 2]
    return out


# ---- the source ----------------------------------------------------------------------------------------------------
@dataclass
class _ChannelFlux:
    name: str
    pairs_per_meson: float  # χχ* pairs per meson (line-shape integral)
    chi_per_pot_per_cm2: float  # χ + χ* reaching the detector, per POT per cm²
    energies: np.ndarray  # lab energies of the weighted sample [MeV]
    weights: np.ndarray  # per POT per cm²; sums to chi_per_pot_per_cm2
    delays_ns: np.ndarray  # arrival delay relative to light [ns]


@dataclass
class AcceleratorDMSource:
    """χ and χ* of one mass from the channels of the module docstring, seen by a detector (``geometry``), for the
    rate engine: one species ``chi`` (kind 'dark_matter', its ``family`` the statistics, ``process`` 'dark_photon';
    χ and χ* scatter alike and are counted together), a normalised :class:`Spectrum` in total energy and the
    fluence POT × Σ_channels (χ per POT per cm²) at the reference coupling ``epsilon``.

    ``channels``: {name: {'per_pot': mesons per POT, other channel parameters}} (default :data:`CHANNELS`).
    ``n_mesons``: Monte Carlo mesons per channel (vectorised); ``seed``: the numpy Generator seed;
    ``n_volume_points``: detector points the forced directions aim at; ``n_azimuths``: azimuths about the beam at
    which each event is seen (variance reduction; ≥ the number of points); ``min_kept``, ``max_batches``: more
    batches of ``n_mesons`` are drawn (up to ``max_batches``) until ``min_kept`` V can reach the detector;
    ``polarized``: use the V polarisation (else
    isotropic decays); ``n_bins``: bins of the energy spectrum (piecewise-linear pdf)."""

    m_chi_MeV: float
    m_v_MeV: float
    epsilon: float
    alpha_d: float
    pot: float
    geometry: DetectorGeometry
    channels: dict = field(default_factory=lambda: {k: dict(v) for k, v in CHANNELS.items()})
    statistics: str = "complex_scalar"
    n_mesons: int = 100_000
    seed: int = 20211021
    n_volume_points: int = 1
    n_azimuths: int = 4
    min_kept: int = 20_000
    max_batches: int = 8
    polarized: bool = True
    n_bins: int = 96
    pi0_path: str | None = None

    def __post_init__(self):
        dp.check_masses(self.m_chi_MeV, self.m_v_MeV, alpha_d=self.alpha_d, epsilon=self.epsilon)
        dp._stat(self.statistics)
        if not (math.isfinite(self.pot) and self.pot > 0):
            raise PhysicsDomainError(f"protons on target must be > 0, got {self.pot!r}")
        if int(self.n_mesons) < 100:
            raise ConfigError(f"n_mesons must be >= 100, got {self.n_mesons!r}")
        for ch, prm in self.channels.items():
            if ch not in CHANNELS:
                raise UnknownNameError("dark-matter production channel", ch, CHANNELS)
            extra = set(prm) - set(CHANNELS[ch])
            if extra:
                raise ConfigError(f"channel {ch}: unknown parameters {sorted(extra)}; allowed: {sorted(CHANNELS[ch])}")
            for k, v in prm.items():
                if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                    raise PhysicsDomainError(f"channel {ch}: {k} must be a finite number >= 0, got {v!r}")
        self.species = (DM_SPECIES,)
        self._species = Species(DM_SPECIES, float(self.m_chi_MeV), "dark_matter", family=self.statistics,
                                process="dark_photon")
        rng = np.random.default_rng(self.seed)
        self._points = self.geometry.points_cm(self.n_volume_points, rng)
        self.channel_flux = {ch: self._simulate(ch, prm, rng) for ch, prm in self.channels.items()}
        self._build_spectrum()

    # -- the Monte Carlo -------------------------------------------------------------------------------------------
    def _line_shape_cdf(self, channel, prm):
        """(cdf on the s bin edges, edges, pairs per meson) of the V line shape, or None when closed."""
        s, d, w = line_shape_grid(channel, self.m_v_MeV, self.m_chi_MeV, self.epsilon, self.alpha_d,
                                  self.statistics, prm)
        if s.size == 0:
            return None
        pdf = d * w
        tot = float(pdf.sum())
        if tot <= 0:
            return None
        cdf = np.concatenate([[0.0], np.cumsum(pdf)]) / tot
        edges = np.concatenate([[4 * self.m_chi_MeV**2], 0.5 * (s[1:] + s[:-1]), [_s_max(channel)]])
        return cdf, edges, tot

    def _batch(self, channel, shape, rng, n, u):
        """n mesons of ``channel`` with V(*) masses² from the line shape, V isotropic in the meson frame, boosted to
        the lab; kept only where some χ can reach the detector ring. Returns (pV, parent, s, f_T, φ offsets)."""
        cdf, edges, _ = shape
        s = np.interp(rng.uniform(0, 1, n), cdf, edges)
        if channel == "pi0":
            sample = pi0_sample(self.pi0_path)
            parent = _rotate_z(sample[rng.integers(0, sample.shape[0], n)], rng.uniform(0, 2 * math.pi, n))
            M = C.M_PION_NEUTRAL
            q = (M * M - s) / (2 * M)  # V momentum in the π⁰ frame (photon recoil)
            f_T = np.ones(n)
        else:
            parent = np.zeros((n, 4))
            parent[:, 0] = _W_PIM
            E_v, q = _pim_v_kinematics(s)
            f_T = 1.0 / (1.0 + s / (2.0 * E_v * E_v))
        dirs = _isotropic(rng, n)
        pV_rest = np.concatenate([np.sqrt(q * q + s)[:, None], q[:, None] * dirs], axis=1)
        pV = boost(pV_rest, parent[:, 1:] / parent[:, :1])
        phi0 = rng.uniform(0.0, 2.0 * math.pi, n)
        # keep the V whose decay products can reach some azimuth of the detector ring: a root exists for
        # b² ≥ 1 − γ*²/γ_V² (always if γ_V ≤ γ*), and needs b > 0 when γ_V > γ* (b = β⃗_V·n̂ at most b_max)
        mV = np.sqrt(s)
        gV = pV[:, 0] / mV
        g_star = 0.5 * mV / self.m_chi_MeV
        bperp = np.hypot(pV[:, 1], pV[:, 2]) / pV[:, 0]
        bz = pV[:, 3] / pV[:, 0]
        sin_k, cos_k = np.hypot(u[:, 0], u[:, 1]), u[:, 2]
        bmax = np.max(bperp[:, None] * sin_k[None, :] + bz[:, None] * cos_k[None, :], axis=1)
        keep = (gV <= g_star) | ((bmax > 0) & (bmax * bmax >= 1.0 - (g_star / gV) ** 2))
        return pV[keep], parent[keep], s[keep], f_T[keep], phi0[keep]

    def _simulate(self, channel, prm, rng) -> _ChannelFlux:
        per_pot = float(prm.get("per_pot", CHANNELS[channel]["per_pot"]))
        shape = self._line_shape_cdf(channel, prm)
        if shape is None or per_pot == 0:
            return _ChannelFlux(channel, 0.0, 0.0, np.zeros(0), np.zeros(0), np.zeros(0))
        pairs = shape[2]
        M = C.M_PION_NEUTRAL if channel == "pi0" else _W_PIM
        # directions from the (point-like) production vertex to the detector: the volume points, each event seen at
        # K azimuths about the beam (a random offset per event; the target is symmetric about the beam axis, so this
        # only averages the caustics of dΩ*/dΩ, reducing the variance, without bias)
        Kv = self._points.shape[0]
        K = max(int(self.n_azimuths), Kv)
        pts = self._points[np.arange(K) % Kv]
        r = np.linalg.norm(pts, axis=1)
        u = pts / r[:, None]
        # batches of n_mesons until min_kept events can reach the detector (or max_batches): at light masses the
        # V are fast and only a few percent of them can send χ to 90°
        n = int(self.n_mesons)
        parts, total = [], 0
        for _ in range(max(int(self.max_batches), 1)):
            parts.append(self._batch(channel, shape, rng, n, u))
            total += n
            if sum(b[0].shape[0] for b in parts) >= self.min_kept:
                break
        pV, parent, s, f_T, phi0 = (np.concatenate([b[k] for b in parts]) for k in range(5))
        mV = np.sqrt(s)
        phi = phi0[:, None] + 2.0 * math.pi * np.arange(K)[None, :] / K
        cph, sph = np.cos(phi), np.sin(phi)
        nhat = np.stack([cph * u[None, :, 0] - sph * u[None, :, 1], sph * u[None, :, 0] + cph * u[None, :, 1],
                         np.broadcast_to(u[None, :, 2], phi.shape)], axis=-1)  # (n, K, 3)
        p, E, jac, ok = forced_direction_solutions(pV, self.m_chi_MeV, nhat)  # (n, K, 2)
        ang = np.ones_like(jac) * 0.5
        if self.polarized:
            # cos θ* about the helicity axis (the V direction in the parent frame), from invariants
            es = 0.5 * mV
            ps = np.sqrt(np.clip(es * es - self.m_chi_MeV**2, 0.0, None))
            eP = (parent[:, 0] * pV[:, 0] - np.sum(parent[:, 1:] * pV[:, 1:], axis=1)) / mV  # parent energy, V frame
            qP = np.sqrt(np.clip(eP * eP - M * M, 0.0, None))
            chi_dot_P = parent[:, 0, None, None] * E - p * np.einsum("nj,nkj->nk", parent[:, 1:], nhat)[..., None]
            with np.errstate(invalid="ignore", divide="ignore"):
                cos_star = -(es[:, None, None] * eP[:, None, None] - chi_dot_P) / \
                    (ps[:, None, None] * qP[:, None, None])
            cos_star = np.clip(np.nan_to_num(cos_star), -1.0, 1.0)
            beta_star = np.where(es > 0, ps / es, 0.0)
            ang = decay_angular_pdf(cos_star, f_T[:, None, None], beta_star[:, None, None], self.statistics)
        # χ per meson per cm² at each detector point: 2 (χ and χ*) · pairs · f(cos θ*)/(2π) · dΩ*/dΩ / r²
        w = 2.0 * pairs * ang / (2.0 * math.pi) * jac / (r[None, :, None] ** 2) / (total * K)
        w = np.where(ok, w, 0.0) * per_pot
        sel = w > 0
        E_sel, w_sel = E[sel], w[sel]
        beta = np.clip(p[sel] / E_sel, 1e-12, 1.0)
        delay = (np.broadcast_to(r[None, :, None], E.shape)[sel] / C_CM_PER_NS) * (1.0 / beta - 1.0)
        return _ChannelFlux(channel, pairs, float(w_sel.sum()), E_sel, w_sel, delay)

    def _build_spectrum(self) -> None:
        E = np.concatenate([c.energies for c in self.channel_flux.values()])
        w = np.concatenate([c.weights for c in self.channel_flux.values()])
        self._total = float(w.sum())
        if self._total <= 0 or E.size == 0:
            raise PhysicsDomainError(f"no dark matter reaches the detector at m_chi = {self.m_chi_MeV:g} MeV, "
                                     f"m_V = {self.m_v_MeV:g} MeV from channels {sorted(self.channels)} (kinematically "
                                     "closed: 2 m_chi must be below the meson mass)")
        lo, hi = float(E.min()), float(E.max())
        span = max(hi - lo, 1e-6 * max(hi, 1.0))
        lo, hi = max(lo - 1e-3 * span, self.m_chi_MeV), hi + 1e-3 * span
        edges = np.linspace(lo, hi, self.n_bins + 1)
        h, _ = np.histogram(E, bins=edges, weights=w)
        dens = h / np.diff(edges)
        x = np.concatenate([[lo], 0.5 * (edges[1:] + edges[:-1]), [hi]])
        y = np.concatenate([[dens[0]], dens, [dens[-1]]])
        norm = np.trapezoid(y, x)
        self._pdf_x, self._pdf_y = x, y / norm
        self._spectrum = Spectrum(pdf=self._pdf, e_min=lo, e_max=hi, n_nodes=4 * self.n_bins)  # resolves the bins
        self._mean_energy = float(np.sum(E * w) / self._total)

    def _pdf(self, E_MeV):
        return np.interp(E_MeV, self._pdf_x, self._pdf_y, left=0.0, right=0.0)

    # -- the engine's view -----------------------------------------------------------------------------------------
    def _check(self, name: str) -> None:
        if name != DM_SPECIES:
            raise UnknownNameError("accelerator dark-matter species", name, self.species)

    def species_info(self, name: str) -> Species:
        self._check(name)
        return self._species

    def spectrum(self, name: str) -> Spectrum:
        self._check(name)
        return self._spectrum

    def fluence_per_cm2(self, name: str) -> float:
        """χ + χ* through the detector per cm² over the exposure (POT × Σ channels)."""
        self._check(name)
        return self.pot * self._total

    def per_pot_per_cm2(self) -> dict[str, float]:
        """χ + χ* per POT per cm² at the detector, by channel."""
        return {k: c.chi_per_pot_per_cm2 for k, c in self.channel_flux.items()}

    @property
    def mean_energy_MeV(self) -> float:
        return self._mean_energy

    def delay_quantiles_ns(self, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """(delays [ns], weights) summarising the flux-weighted arrival delay behind light: n equal-weight quantile
        midpoints (cached per n)."""
        cache = self.__dict__.setdefault("_delay_cache", {})
        if n not in cache:
            d = np.concatenate([c.delays_ns for c in self.channel_flux.values()])
            w = np.concatenate([c.weights for c in self.channel_flux.values()])
            o = np.argsort(d)
            cw = np.cumsum(w[o]) / w.sum()
            qs = (np.arange(n) + 0.5) / n
            cache[n] = (np.interp(qs, cw, d[o]), np.full(n, 1.0 / n))
        return cache[n]

    def production_scale(self, epsilon) -> np.ndarray:
        """Fluence at kinetic mixing ``epsilon`` (array) relative to this source's ε: the line-shape integrals
        (∝ ε², and through Γ_V very weakly more) recomputed per value, weighted by channel."""
        eps = np.atleast_1d(np.asarray(epsilon, float))
        if np.any(~np.isfinite(eps)) or np.any(eps < 0):
            raise PhysicsDomainError("epsilon (kinetic mixing) must be finite and >= 0")
        out = np.zeros(eps.size)
        tot = self._total
        for ch, cf in self.channel_flux.items():
            if cf.pairs_per_meson == 0:
                continue
            share = cf.chi_per_pot_per_cm2 / tot
            uniq, inv = np.unique(eps, return_inverse=True)
            vals = np.array([production_br(ch, self.m_v_MeV, self.m_chi_MeV, float(e), self.alpha_d,
                                           self.statistics, self.channels[ch]) if e > 0 else 0.0 for e in uniq])
            out += share * vals[inv] / cf.pairs_per_meson
        return out


# ---- spec builder -------------------------------------------------------------------------------------------------
def build_accelerator_dm(sec: dict, t_edges, file_fn, exp_name: str, defaults: dict | None = None):
    """A :class:`~cevns.experiments.sections.source.SourceBuild` from a validated ``source`` section of type
    ``accelerator_dm`` (schema ``source_accelerator_dm.json``). ``defaults`` (from the experiment's main source when
    this is an extra signal): 'pot', 'distance_m', 'timing' (the pulse to reuse). Timing: the proton pulse shifted by
    the flux-weighted time-of-flight delays; as a main source the generic prompt component (pulse ⊗ τ_π) is used,
    a 26 ns approximation, while an extra signal (:mod:`cevns.experiments.sections.extra_signals`) uses the pulse
    and the delays exactly."""
    from cevns.experiments.sections.source import SourceBuild, TimeModel

    d = dict(defaults or {})
    pot = sec.get("pot", d.get("pot"))
    if pot is None:
        raise ConfigError(f"spec {exp_name}: accelerator_dm source needs 'pot' (or a main source that has it)")
    dist = sec.get("distance_m", d.get("distance_m"))
    if dist is None:
        raise ConfigError(f"spec {exp_name}: accelerator_dm source needs 'distance_m'")
    det = sec.get("detector", {})
    geom = DetectorGeometry(float(dist), float(sec.get("angle_deg", 90.0)), float(det.get("radius_m", 0.0)),
                            float(det.get("length_m", 0.0)))
    m_chi = float(sec["m_chi_MeV"])
    m_v = float(sec["m_v_MeV"]) if "m_v_MeV" in sec else float(sec.get("m_v_over_m_chi", 3.0)) * m_chi
    chans = {k: dict(v) for k, v in sec.get("channels", {k: {} for k in CHANNELS}).items()}
    src = AcceleratorDMSource(m_chi, m_v, float(sec.get("epsilon_ref", 1e-4)), float(sec.get("alpha_d", 0.5)),
                              float(pot), geom, chans, sec.get("statistics", "complex_scalar"),
                              int(sec.get("n_mesons", 100_000)), int(sec.get("seed", 20211021)),
                              int(det.get("n_volume_points", 1)), bool(sec.get("polarized", True)))
    tm = d.get("timing")
    if tm is None:
        t = sec.get("timing", {"mean_us": 0.57, "sigma_us": 0.155})
        tm = TimeModel("gaussian_pulse", ("prompt",), {DM_SPECIES: "prompt"}, mean_us=float(t["mean_us"]),
                       sigma_us=float(t["sigma_us"]), mean_parameter=t.get("mean_parameter"),
                       sigma_parameter=t.get("sigma_parameter"))
    return SourceBuild(src, tm, float(dist), [[DM_SPECIES]], {"pot": float(pot), "m_chi_MeV": m_chi, "m_v_MeV": m_v})
