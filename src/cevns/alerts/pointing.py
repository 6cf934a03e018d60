"""Supernova pointing by neutrino arrival-time triangulation.

Physics: a plane neutrino front from the unit direction ``n`` (pointing *to* the source) reaches a detector at
position ``r`` at ``t = t0 - r.n / c``, so the arrival-time difference of detectors i, j is

    dt_ij = t_i - t_j = -(r_i - r_j) . n / c                   (Beacom & Vogel, astro-ph/9811350, Sec. II)

With measured times t_i (corrected by the tabulated detector bias, t_i -> t_i - bias_i) and uncertainties
sigma_i, the N-1 differences to a reference detector d_k = t_k - t_0 have covariance
C = diag(sigma_k^2) + sigma_0^2 (all off-diagonal pairs share the reference), and

    chi2(n) = (d - d_pred(n))^T C^-1 (d - d_pred(n))            (Linzer & Scholberg, arXiv:1909.03151, Sec. III)

evaluated on an equal-area sky grid (Fibonacci lattice).  The region of 68 % / 90 % is
chi2 - chi2_min <= 2.30 / 4.61 (two parameters, Wilks; PDG Review of Statistics, Table 40.2).

Detector positions: WGS84 geodetic -> Earth-fixed (ECEF) coordinates (NIMA TR8350.2, Eq. 4-14), rotated into
the equatorial (celestial) frame by the Earth Rotation Angle
ERA = 2 pi (0.7790572732640 + 1.00273781191135448 (JD_UT1 - 2451545.0))  (IERS Conventions 2010, TN36,
Eq. 5.15), with UT1 ~ UTC (|UT1 - UTC| < 0.9 s -> < 4e-3 deg) and no precession/nutation (a sky position
error of ~0.4 deg at 2030, far below triangulation resolution).  The rotation is evaluated at each detector's
own arrival time, so the Earth's rotation during the burst is included.
"""
from __future__ import annotations

import csv
import functools
import io
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from cevns.errors import ConfigError, UnknownNameError

from .timeutil import NS, UTCTime

C_M_PER_S = 299_792_458.0
WGS84_A = 6_378_137.0
WGS84_F = 1 / 298.257223563
DCHI2 = {0.68: 2.30, 0.90: 4.61}

# detector_properties.json names -> detector_location.csv names (same detectors, different spellings)
LOCATION_ALIASES = {"Super-K": "SK", "SNO+": "SNOP", "KM3NeT": "KM3", "Hyper-K": "HK", "IceCube": "IC",
                    "KamLAND": "KL"}


@dataclass(frozen=True)
class Site:
    name: str
    lon_deg: float
    lat_deg: float
    height_m: float
    sigma_s: float
    bias_s: float

    def ecef(self) -> np.ndarray:
        """WGS84 geodetic -> ECEF metres (NIMA TR8350.2 Eq. 4-14)."""
        lat, lon = math.radians(self.lat_deg), math.radians(self.lon_deg)
        e2 = WGS84_F * (2 - WGS84_F)
        n = WGS84_A / math.sqrt(1 - e2 * math.sin(lat) ** 2)
        return np.array([(n + self.height_m) * math.cos(lat) * math.cos(lon),
                         (n + self.height_m) * math.cos(lat) * math.sin(lon),
                         (n * (1 - e2) + self.height_m) * math.sin(lat)])


@functools.lru_cache(maxsize=1)
def detector_sites() -> dict[str, Site]:
    text = resources.files("cevns.data.snews").joinpath("detector_location.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    out = {}
    for r in rows[1:]:
        if not r or not r[0].strip():
            continue
        name = r[0].strip()
        out[name] = Site(name, *(float(x) for x in r[1:6]))
    return out


def site(name: str) -> Site:
    sites = detector_sites()
    key = LOCATION_ALIASES.get(name, name)
    if key not in sites:
        raise UnknownNameError("detector location", name, list(sites) + list(LOCATION_ALIASES))
    return sites[key]


def earth_rotation_angle(t: UTCTime) -> float:
    """ERA in radians, IERS Conventions 2010 Eq. 5.15 (UT1 ~ UTC)."""
    jd = t.to_posix_ns() / NS / 86400.0 + 2440587.5
    return 2 * math.pi * ((0.7790572732640 + 1.00273781191135448 * (jd - 2451545.0)) % 1.0)


def celestial_position(name: str, t: UTCTime) -> np.ndarray:
    """Detector position (m) in the equatorial frame at time t (rotate ECEF by ERA about z)."""
    x = site(name).ecef()
    a = earth_rotation_angle(t)
    c, s = math.cos(a), math.sin(a)
    return np.array([c * x[0] - s * x[1], s * x[0] + c * x[1], x[2]])


def sky_grid(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-area Fibonacci lattice: (unit vectors (n,3), ra_rad, dec_rad); each point covers 4 pi / n sr."""
    if n < 100 or n > 2_000_000:
        raise ConfigError(f"sky grid size {n}; allowed: 100..2,000,000")
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = (math.pi * (3 - math.sqrt(5)) * i) % (2 * math.pi)
    rxy = np.sqrt(1 - z * z)
    v = np.stack([rxy * np.cos(phi), rxy * np.sin(phi), z], axis=1)
    return v, phi, np.arcsin(z)


def direction_to_radec(v) -> tuple[float, float]:
    v = np.asarray(v, float) / np.linalg.norm(v)
    return math.degrees(math.atan2(v[1], v[0])) % 360.0, math.degrees(math.asin(v[2]))


def radec_to_direction(ra_deg: float, dec_deg: float) -> np.ndarray:
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    return np.array([math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)])


@dataclass
class PointingResult:
    ra_deg: float
    dec_deg: float
    chi2_min: float
    area_deg2: dict  # {0.68: deg^2, 0.90: deg^2}
    grid: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    dchi2: np.ndarray
    detectors: tuple

    def contains(self, ra_deg: float, dec_deg: float, cl: float = 0.90) -> bool:
        """Is the grid point nearest to (ra, dec) inside the cl region?"""
        k = int(np.argmax(self.grid @ radec_to_direction(ra_deg, dec_deg)))
        return bool(self.dchi2[k] <= DCHI2[cl])


def predicted_times(detectors, direction, t0: UTCTime) -> dict[str, int]:
    """Arrival times (elapsed ns) for a plane front from ``direction`` crossing the geocentre at t0 (simulation)."""
    n = np.asarray(direction, float) / np.linalg.norm(direction)
    out = {}
    for d in detectors:
        dt = -float(celestial_position(d, t0) @ n) / C_M_PER_S
        t1 = t0.add_ns(int(round(dt * NS)))  # re-evaluate rotation at the detector's own arrival time
        dt = -float(celestial_position(d, t1) @ n) / C_M_PER_S
        out[d] = t0.elapsed_ns + int(round(dt * NS))
    return out


def triangulate(times: dict[str, UTCTime | str | int], n_grid: int = 49152, apply_bias: bool = True,
                sigmas_s: dict[str, float] | None = None) -> PointingResult:
    """chi2 sky scan from arrival times {detector: time}; needs >= 2 detectors (a ring), >= 3 to localise."""
    if len(times) < 2:
        raise ConfigError(f"triangulation needs >= 2 detectors with locations, got {len(times)}")
    names = sorted(times)
    t_ns = []
    for d in names:
        v = times[d]
        tt = v if isinstance(v, int) else (v if isinstance(v, UTCTime) else UTCTime.parse(v, d)).elapsed_ns
        if apply_bias:
            tt -= int(round(site(d).bias_s * NS))
        t_ns.append(tt)
    sig = np.array([(sigmas_s or {}).get(d, site(d).sigma_s) for d in names])
    if np.any(sig <= 0):
        raise ConfigError("timing uncertainties must be > 0 s")
    ref = UTCTime(t_ns[0])
    pos = np.array([celestial_position(d, UTCTime(t)) for d, t in zip(names, t_ns)])  # rotation per detector
    dobs = np.array([(t - t_ns[0]) / NS for t in t_ns[1:]])
    cov = np.diag(sig[1:] ** 2) + sig[0] ** 2
    cinv = np.linalg.inv(cov)
    grid, ra, dec = sky_grid(n_grid)
    dpred = -((pos[1:] - pos[0]) @ grid.T).T / C_M_PER_S  # (ngrid, N-1)
    res = dobs[None, :] - dpred
    chi2 = np.einsum("gi,ij,gj->g", res, cinv, res)
    k = int(np.argmin(chi2))
    dchi2 = chi2 - chi2[k]
    pix = 4 * math.pi / n_grid * (180 / math.pi) ** 2
    areas = {cl: float(np.count_nonzero(dchi2 <= v) * pix) for cl, v in DCHI2.items()}
    r, d = direction_to_radec(grid[k])
    del ref
    return PointingResult(r, d, float(chi2[k]), areas, grid, np.degrees(ra), np.degrees(dec), dchi2, tuple(names))


CONSISTENCY_P_MIN = 1e-3


def consistency(result: PointingResult, p_min: float = CONSISTENCY_P_MIN) -> dict:
    """Goodness of fit of the best direction: P(chi2_dof > chi2_min) (PDG Review of Statistics, Sec. 40.3.2).

    N detectors give N-1 independent differences and the direction has 2 parameters, so dof = N - 3; with 2 or 3
    detectors a consistent set fits exactly (chi2_min ~ 0), and dof = 1 is used as a conservative reference.
    Arrival times that no plane wave can produce (a difference larger than the baseline / c) give a large
    chi2_min and ``consistent`` False: the region is then not a credible localisation."""
    from scipy.stats import chi2 as _chi2

    n = len(result.detectors)
    dof = max(n - 3, 1)
    p = float(_chi2.sf(result.chi2_min, dof))
    out = {"chi2_min": result.chi2_min, "chi2_dof": dof, "chi2_p_value": p, "consistent": p >= p_min}
    if p < p_min:
        out["warning"] = (f"arrival times are physically inconsistent with a plane wave from any direction "
                          f"(chi2_min = {result.chi2_min:.3g} for {dof} dof, p = {p:.2g} < {p_min:g}); check the "
                          "detector times and clocks: the region shown is not a credible localisation")
    return out


def plot_skymap(result: PointingResult, path, true_radec: tuple[float, float] | None = None) -> None:
    """Mollweide sky map of delta-chi2 with the 68 % and 90 % regions; writes a PNG."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import matplotlib.tri as mtri

    lon = -np.radians(((result.ra + 180) % 360) - 180)  # astronomical convention: RA increases to the left
    lat = np.radians(result.dec)
    fig = plt.figure(figsize=(9, 5))
    ax = fig.add_subplot(111, projection="mollweide")
    tri = mtri.Triangulation(lon, lat)
    cap = np.minimum(result.dchi2, 30.0)
    cs = ax.tricontourf(tri, cap, levels=np.linspace(0.0, 30.0 + 1e-6, 31), cmap="viridis_r")
    ax.tricontour(tri, result.dchi2, levels=[DCHI2[0.68], DCHI2[0.90]], colors=["k", "r"], linewidths=1)
    bl = -math.radians(((result.ra_deg + 180) % 360) - 180)
    ax.plot([bl], [math.radians(result.dec_deg)], "k*", ms=12, label="best fit")
    if true_radec is not None:
        ax.plot([-math.radians(((true_radec[0] + 180) % 360) - 180)], [math.radians(true_radec[1])], "rx",
                ms=10, label="true")
    ax.set_xticklabels([f"{int(x)}°" for x in (150, 120, 90, 60, 30, 0, 330, 300, 270, 240, 210)])
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("right ascension (deg)")
    ax.set_ylabel("declination (deg)")
    fig.colorbar(cs, orientation="horizontal", pad=0.08, label="Δχ² (capped at 30)")
    ax.set_title("SN triangulation ({}): 68 % (black), 90 % (red)".format(", ".join(result.detectors)))
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, dpi=90)
    plt.close(fig)
