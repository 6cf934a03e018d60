"""Nuclear-reactor ν̄_e source (source type ``reactor``): per-isotope spectra, fission fractions, thermal power.

Per fissioning isotope i ∈ {U235, U238, Pu239, Pu241} the spectrum S_i(E) [ν̄_e per fission per MeV] is assembled
from the tables in ``cevns/data/reactor_spectra`` (see its SOURCE.md):

* 2–8 MeV: Huber's conversion spectra for U-235, Pu-239, Pu-241 (arXiv:1106.0687, the 250 keV tables) and Mueller's
  U-238 parameterisation S(E) = exp(Σ_{p=1}^{6} α_p E^{p−1}) (arXiv:1101.2663, Eq. (12) with Table VI; equation
  number not re-checked here), both at the tables' energies;
* below 2 MeV (``low_energy``): ``kopeikin`` — the shape of Kopeikin's low-energy spectrum (a total reactor spectrum
  per fission; it appears to include the β-decays of ²³⁹U and ²³⁹Np after neutron capture on ²³⁸U: it holds
  ≈ 6.5–6.8 ν̄ per fission, ≈ 0.9 more than the fission-only tables), scaled per isotope to S_i(2 MeV); ``silaeva_sinev`` — the per-isotope
  Silaeva–Sinev tables (arXiv:2012.09917) from 1 to 2 MeV, scaled to S_i(2 MeV), and below 1 MeV the Kopeikin shape
  scaled to the 1 MeV value; ``none`` — nothing below 2 MeV;
* above 8 MeV (``high_energy``): ``silaeva_sinev`` — the Silaeva–Sinev tables from 8 to 10 MeV scaled to S_i(8 MeV);
  ``none`` — nothing above 8 MeV.

Between table points ln S is interpolated linearly (the spectra fall exponentially), and below the first point S
goes linearly to 0 at E = 0. The reactor: fission fractions f_i (Σ f_i = 1), mean energy per fission
Ē = Σ f_i E_i (Kopeikin, Mikaelyan, Sinev, arXiv:hep-ph/0410100, the thermal-fission energies released per fission),
fissions per second P_th/Ē, ν̄_e per second (P_th/Ē) Σ f_i ∫S_i dE, isotropic flux Φ = Ṅ/(4π L²) at distance L
(point-like core). The relative 1σ band of the spectrum, s(E), is Huber's total uncertainty (fission-weighted;
U-238 is given the U-235 band: Mueller's summation uncertainty is not shipped), Kopeikin's tabulated percentage
below 2 MeV, and held at its 8 MeV value above 8 MeV; the ``reactor_spectrum_shape`` nuisance moves the spectrum to
S(E)(1 + z s(E)) (see :meth:`ReactorSource.node_weights`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from cevns import constants as C
from cevns.errors import ConfigError, PhysicsDomainError, UnknownNameError
from cevns.sources.spectrum import Spectrum

__all__ = ["ISOTOPES", "FISSION_ENERGY_MeV", "MUELLER_U238_COEFFS", "HUBER_FIT_COEFFS", "LOW_ENERGY_MODELS",
           "HIGH_ENERGY_MODELS", "TYPICAL_LWR_FISSION_FRACTIONS", "isotope_table", "exp_poly_spectrum",
           "ReactorSpectrum", "ReactorSource", "check_fission_fractions", "build_reactor"]

ISOTOPES = ("U235", "U238", "Pu239", "Pu241")

#: energy released per fission [MeV] (thermal fission, used to convert thermal power into fissions per second):
#: Kopeikin, Mikaelyan, Sinev, Phys. Atom. Nucl. 67, 1892 (2004), arXiv:hep-ph/0410100 (±0.46, ±0.96, ±0.60, ±0.65)
FISSION_ENERGY_MeV = {"U235": 201.92, "U238": 205.52, "Pu239": 209.99, "Pu241": 213.60}

#: α_1..α_6 of Mueller's U-238 spectrum exp(Σ α_p E^{p−1}) [ν̄/fission/MeV], arXiv:1101.2663 Table VI (valid 2–8 MeV)
MUELLER_U238_COEFFS = (4.833e-1, 1.927e-1, -1.283e-1, -6.762e-3, 2.233e-3, -1.536e-4)

#: Huber's fits of the same form for the fissile isotopes, arXiv:1106.0687 Table III (used by the tests as an
#: independent check of the shipped 250 keV tables; the model itself uses the tables)
HUBER_FIT_COEFFS = {"U235": (4.367, -4.577, 2.100, -5.294e-1, 6.186e-2, -2.777e-3),
                    "Pu239": (4.757, -5.392, 2.563, -6.596e-1, 7.820e-2, -3.536e-3),
                    "Pu241": (2.990, -2.882, 1.278, -3.343e-1, 3.905e-2, -1.754e-3)}

#: a typical light-water-reactor fuel mid-cycle (an assumption stated in each spec that uses it)
TYPICAL_LWR_FISSION_FRACTIONS = {"U235": 0.58, "U238": 0.07, "Pu239": 0.30, "Pu241": 0.05}

LOW_ENERGY_MODELS = ("kopeikin", "silaeva_sinev", "none")
HIGH_ENERGY_MODELS = ("silaeva_sinev", "none")

_DATA = Path(__file__).resolve().parent.parent / "data" / "reactor_spectra"
_HUBER_FILES = {"U235": "U235", "Pu239": "Pu239", "Pu241": "Pu241"}
_SS_FILES = {"U235": "235U", "U238": "238U", "Pu239": "239Pu", "Pu241": "241Pu"}
_SECONDS_PER_DAY = 86400.0
_J_PER_MeV = 1.602176634e-13  # exact (SI 2019)


def exp_poly_spectrum(E_MeV, coeffs) -> np.ndarray:
    """S(E) = exp(Σ_p α_p E^{p−1}) [ν̄/fission/MeV] (arXiv:1101.2663 Eq. (12); arXiv:1106.0687 Table III)."""
    return np.exp(np.polynomial.polynomial.polyval(np.asarray(E_MeV, float), np.asarray(coeffs, float)))


def _read(path: Path, ncols: int) -> np.ndarray:
    from cevns.experiments.releases import read_table

    return read_table(path, ncols=ncols, min_rows=5)


@lru_cache(maxsize=None)
def _tables(data_dir: str) -> dict:
    d = Path(data_dir)
    out = {"huber": {}, "ss": {}}
    for iso, stem in _HUBER_FILES.items():
        t = _read(d / "huber" / f"{stem}-anti-neutrino-flux-250keV.dat", 14)
        out["huber"][iso] = (t[:, 0], t[:, 1], t[:, 13])  # energy, spectrum, total +1σ (relative)
    for iso, stem in _SS_FILES.items():
        t = _read(d / f"{stem}_Silaeva_vebar.csv", 2)
        out["ss"][iso] = (t[:, 0], t[:, 1])
    k = _read(d / "kopeikin_spectrum.txt", 3)
    out["kopeikin"] = (k[:, 0], k[:, 1], k[:, 2] / 100.0)
    e = out["huber"]["U235"][0]
    for iso in ("Pu239", "Pu241"):
        if not np.allclose(out["huber"][iso][0], e):
            raise ConfigError(f"Huber tables of U235 and {iso} have different energies")
    return out


def _scaled(E, S, at_E: float, target: float) -> np.ndarray:
    """S scaled so that its log-linear interpolation equals ``target`` at ``at_E``."""
    return S * target / float(np.exp(np.interp(at_E, E, np.log(S))))


@lru_cache(maxsize=None)
def isotope_table(isotope: str, low_energy: str = "kopeikin", high_energy: str = "silaeva_sinev",
                  data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E [MeV], S_i(E) [ν̄/fission/MeV], relative 1σ s_i(E)) on the assembled grid of one isotope (module docstring)."""
    if isotope not in ISOTOPES:
        raise UnknownNameError("fissioning isotope", isotope, ISOTOPES)
    if low_energy not in LOW_ENERGY_MODELS:
        raise UnknownNameError("reactor low-energy spectrum model", low_energy, LOW_ENERGY_MODELS)
    if high_energy not in HIGH_ENERGY_MODELS:
        raise UnknownNameError("reactor high-energy spectrum model", high_energy, HIGH_ENERGY_MODELS)
    tab = _tables(str(data_dir or _DATA))
    Eh, _, _ = tab["huber"]["U235"]
    if isotope == "U238":
        Sm, sm = exp_poly_spectrum(Eh, MUELLER_U238_COEFFS), tab["huber"]["U235"][2]
    else:
        _, Sm, sm = tab["huber"][isotope]
    E_lo, S_lo, s_lo = np.zeros(0), np.zeros(0), np.zeros(0)
    Ek, Sk, sk = tab["kopeikin"]
    if low_energy == "kopeikin":
        sel = Ek < Eh[0] - 1e-9
        E_lo, S_lo, s_lo = Ek[sel], _scaled(Ek, Sk, Eh[0], Sm[0])[sel], sk[sel]
    elif low_energy == "silaeva_sinev":
        Es, Ss = tab["ss"][isotope]
        sel = Es < Eh[0] - 1e-9
        E1, S1 = Es[sel], _scaled(Es, Ss, Eh[0], Sm[0])[sel]
        kk = Ek < E1[0] - 1e-9
        E_lo = np.r_[Ek[kk], E1]
        S_lo = np.r_[_scaled(Ek, Sk, E1[0], S1[0])[kk], S1]
        s_lo = np.r_[sk[kk], np.interp(E1, Ek, sk)]
    E_hi, S_hi = np.zeros(0), np.zeros(0)
    if high_energy == "silaeva_sinev":
        Es, Ss = tab["ss"][isotope]
        sel = Es > Eh[-1] + 1e-9
        E_hi, S_hi = Es[sel], _scaled(Es, Ss, Eh[-1], Sm[-1])[sel]
    E = np.r_[E_lo, Eh, E_hi]
    S = np.r_[S_lo, Sm, S_hi]
    s = np.r_[s_lo, sm, np.full(E_hi.size, sm[-1])]
    if np.any(np.diff(E) <= 0) or np.any(S <= 0):
        raise ConfigError(f"reactor spectrum of {isotope}: energies must increase and values be > 0")
    for a in (E, S, s):
        a.setflags(write=False)
    return E, S, s


def check_fission_fractions(fractions: dict, tol: float = 1e-3) -> dict[str, float]:
    """Validated {isotope: fission fraction}: known isotopes, each in [0, 1], summing to 1 within ``tol``."""
    if not isinstance(fractions, dict) or not fractions:
        raise PhysicsDomainError(f"fission fractions must be a non-empty mapping isotope -> fraction, got {fractions!r}")
    out = {}
    for k, v in fractions.items():
        if k not in ISOTOPES:
            raise UnknownNameError("fissioning isotope", k, ISOTOPES)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= 1.0):
            raise PhysicsDomainError(f"fission fraction of {k} must be a number in [0, 1], got {v!r}")
        out[k] = float(v)
    total = sum(out.values())
    if abs(total - 1.0) > tol:
        raise PhysicsDomainError(f"fission fractions sum to {total:.6g}, they must sum to 1 (within {tol:g}): {out}")
    return {k: out.get(k, 0.0) for k in ISOTOPES}


@dataclass(frozen=True)
class ReactorSpectrum(Spectrum):
    """A normalised reactor spectrum whose :meth:`fold` integrates panel by panel between the table energies (kinks of
    the log-linear interpolant), with ``n_gl`` Gauss–Legendre nodes per panel."""

    breaks: tuple = ()
    n_gl: int = 6
    #: energies [MeV] at whose kinematic end points the rate engine ends recoil panels (:func:`cevns.rates.flux_kernels`)
    kinks: tuple = ()

    def fold(self, g, e_low=0.0) -> np.ndarray:
        e_low = np.asarray(e_low, float)
        x, w = np.polynomial.legendre.leggauss(self.n_gl)
        edges = np.asarray(self.breaks, float)
        a = np.clip(e_low[..., None], edges[:-1], edges[1:])  # S + (panels,)
        half = 0.5 * (edges[1:] - a)
        E = a[..., None] + half[..., None] * (x + 1.0)  # S + (panels, n)
        shape = E.shape
        Ef = E.reshape(shape[:-2] + (-1,))
        vals = (self.pdf(Ef) * g(Ef)).reshape(shape)
        return np.sum(np.sum(vals * w, axis=-1) * half, axis=-1)


class ReactorSource:
    """A reactor at thermal power ``thermal_power_GW`` and distance ``distance_m`` (isotropic point source) with
    fission fractions (default: :data:`TYPICAL_LWR_FISSION_FRACTIONS`), seen for ``live_days`` of reactor-on time.
    The rate engine's view: one species ``nuebar``, its normalised spectrum and the fluence Φ · t [cm⁻²]."""

    species = ("nuebar",)

    def __init__(self, thermal_power_GW: float, distance_m: float, fission_fractions: dict | None = None,
                 live_days: float = 1.0, low_energy: str = "kopeikin", high_energy: str = "silaeva_sinev",
                 data_dir=None, shape_parameter: str | None = None):
        for name, v in (("thermal power [GW]", thermal_power_GW), ("distance [m]", distance_m),
                        ("reactor-on live time [days]", live_days)):
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
                raise PhysicsDomainError(f"reactor {name} must be a finite number > 0, got {v!r}")
        self.thermal_power_GW = float(thermal_power_GW)
        self.distance_m = float(distance_m)
        self.live_days = float(live_days)
        self.fission_fractions = check_fission_fractions(
            dict(TYPICAL_LWR_FISSION_FRACTIONS) if fission_fractions is None else fission_fractions)
        self.low_energy, self.high_energy = low_energy, high_energy
        self.shape_parameter = shape_parameter
        self._cut_below = low_energy == "none"  # nothing below the first table energy (2 MeV)
        self._tabs = {i: isotope_table(i, low_energy, high_energy, None if data_dir is None else str(data_dir))
                      for i in ISOTOPES}
        grids = [t[0] for t in self._tabs.values()]
        if any(g.shape != grids[0].shape or not np.allclose(g, grids[0]) for g in grids):
            raise ConfigError("the isotope spectra must share one energy grid")
        self._E = grids[0]
        self._lnS = np.stack([np.log(self._tabs[i][1]) for i in ISOTOPES])
        self._f = np.array([self.fission_fractions[i] for i in ISOTOPES])
        self._nu_per_fission_iso = {i: self._integral(self._tabs[i][1]) for i in ISOTOPES}
        e_min = float(self._E[0]) if self._cut_below else 0.0
        e_max = float(self._E[-1])
        breaks = self._E if self._cut_below else np.r_[0.0, self._E]
        kinks = tuple(float(k) for k in (2.0, 4.0, 5.5, 7.0, 8.5) if e_min < k < e_max)  # recoil panel ends
        self._spectrum = ReactorSpectrum(pdf=self.pdf, e_min=e_min, e_max=e_max, breaks=tuple(breaks.tolist()),
                                         kinks=kinks)

    # -- per-fission spectra -------------------------------------------------------------------------------------
    def _interp(self, E_MeV, lnS_rows) -> np.ndarray:
        """Σ rows of the log-linear interpolants (linear to 0 below the first point, 0 above the last)."""
        E = np.asarray(E_MeV, float)
        E0, E1 = self._E[0], self._E[-1]
        out = 0.0
        for row, f in lnS_rows:
            v = np.exp(np.interp(E, self._E, row))
            below = 0.0 if self._cut_below else np.exp(row[0]) * np.clip(E, 0.0, None) / E0
            v = np.where(E < E0, below, v)
            out = out + f * v
        return np.where((E >= 0) & (E <= E1), out, 0.0)

    def isotope_spectrum(self, isotope: str, E_MeV) -> np.ndarray:
        """S_i(E) [ν̄_e per fission per MeV] of one isotope."""
        if isotope not in ISOTOPES:
            raise UnknownNameError("fissioning isotope", isotope, ISOTOPES)
        return self._interp(E_MeV, [(self._lnS[ISOTOPES.index(isotope)], 1.0)])

    def spectrum_per_fission(self, E_MeV) -> np.ndarray:
        """Σ_i f_i S_i(E) [ν̄_e per fission per MeV]."""
        return self._interp(E_MeV, [(r, f) for r, f in zip(self._lnS, self._f) if f > 0])

    def _integral(self, S) -> float:
        """∫ S dE of one isotope's interpolant (exact for the log-linear pieces, plus the linear piece from 0)."""
        E, lnS = self._E, np.log(S)
        dE, d = np.diff(E), np.diff(lnS)
        with np.errstate(divide="ignore", invalid="ignore"):
            seg = np.where(np.abs(d) > 1e-12, dE * (S[1:] - S[:-1]) / np.where(d != 0, d, 1.0), dE * S[:-1])
        return float(seg.sum() + (0.0 if self._cut_below else 0.5 * E[0] * S[0]))

    @property
    def nu_per_fission(self) -> float:
        """ν̄_e per fission, Σ_i f_i ∫ S_i dE."""
        return float(sum(self.fission_fractions[i] * self._nu_per_fission_iso[i] for i in ISOTOPES))

    def nu_per_fission_isotope(self, isotope: str) -> float:
        return self._nu_per_fission_iso[isotope]

    @property
    def energy_per_fission_MeV(self) -> float:
        """Ē = Σ_i f_i E_i [MeV] (arXiv:hep-ph/0410100)."""
        return float(sum(self.fission_fractions[i] * FISSION_ENERGY_MeV[i] for i in ISOTOPES))

    @property
    def fissions_per_second(self) -> float:
        """P_th / Ē [s⁻¹]."""
        return self.thermal_power_GW * 1e9 / (self.energy_per_fission_MeV * _J_PER_MeV)

    @property
    def nu_per_second(self) -> float:
        """ν̄_e emitted per second (isotropically)."""
        return self.fissions_per_second * self.nu_per_fission

    @property
    def flux_cm2_s(self) -> float:
        """ν̄_e flux at the detector [cm⁻² s⁻¹]: Ṅ / (4π L²)."""
        L = self.distance_m * C.m
        return self.nu_per_second / (4.0 * math.pi * L * L)

    def pdf(self, E_MeV) -> np.ndarray:
        """Normalised spectrum [1/MeV]."""
        return self.spectrum_per_fission(E_MeV) / self.nu_per_fission

    def relative_uncertainty(self, E_MeV) -> np.ndarray:
        """s(E): the fission-weighted relative 1σ band of the spectrum (module docstring)."""
        E = np.asarray(E_MeV, float)
        num, den = 0.0, 0.0
        for k, iso in enumerate(ISOTOPES):
            if self._f[k] == 0:
                continue
            Si = self.isotope_spectrum(iso, E) * self._f[k]
            num = num + Si * np.interp(E, self._E, self._tabs[iso][2])
            den = den + Si
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)

    # -- the rate engine's interface -----------------------------------------------------------------------------
    def _check(self, name: str) -> None:
        if name != "nuebar":
            raise UnknownNameError("reactor species", name, self.species)

    def spectrum(self, name: str) -> ReactorSpectrum:
        self._check(name)
        return self._spectrum

    def fluence_per_cm2(self, name: str) -> float:
        """Φ × live time [cm⁻²]."""
        self._check(name)
        return self.flux_cm2_s * self.live_days * _SECONDS_PER_DAY

    def summary(self) -> dict:
        return {"thermal_power_GW": self.thermal_power_GW, "distance_m": self.distance_m, "live_days": self.live_days,
                "fission_fractions": dict(self.fission_fractions), "energy_per_fission_MeV": self.energy_per_fission_MeV,
                "nu_per_fission": self.nu_per_fission, "fissions_per_second": self.fissions_per_second,
                "nu_per_second": self.nu_per_second, "flux_cm2_s": self.flux_cm2_s,
                "mean_energy_MeV": float(self._spectrum.mean_energy()),
                "low_energy": self.low_energy, "high_energy": self.high_energy}

    # -- the spectral-shape nuisance -----------------------------------------------------------------------------
    @property
    def response_parameters(self) -> dict:
        """{name: nominal} of the source's own response parameters: the spectral-shape nuisance z (nominal 0)."""
        return {} if self.shape_parameter is None else {self.shape_parameter: 0.0}

    def node_factor(self, flux, settings: dict, node_key: str, electron: bool) -> np.ndarray:
        """Per recoil node of ``flux`` (a :class:`cevns.rates.FluxKernels`), the rate ratio K_z/K_0 = 1 + z R with
        R = (∫ pdf s K dE)/(∫ pdf K dE) for the spectrum S(E)(1 + z s(E)), z = ``settings[shape_parameter]``. K is the
        SM CEvNS kernel for nuclei and the g_R² ν̄_e–e kernel ('e_R', the dominant one for ν̄_e) for electrons: exact
        for those, applied to every kernel of the node (the other kernels, e.g. the magnetic moment's, get the same
        ratio: an approximation of the second order in s)."""
        from cevns.interactions.terms import KERNELS

        z = float(settings.get(self.shape_parameter, 0.0)) if self.shape_parameter else 0.0
        n = flux.nodes[node_key].T_MeV.size
        if z == 0.0:
            return np.ones(n)
        name = "e_R" if electron else "sm"
        K0 = flux.get(name, KERNELS[name], "nuebar", node_key)
        Ks = flux.get(name, KERNELS[name], "nuebar", node_key, flux_weight=self.relative_uncertainty,
                      weight_key="reactor_shape")
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(K0 > 0, Ks / np.where(K0 > 0, K0, 1.0), 0.0)
        return 1.0 + z * r


def build_reactor(sec: dict, t_edges, file_fn, exp_name: str):
    """Builder of source type ``reactor`` (see :data:`cevns.experiments.sections.source.SOURCE_BUILDERS`)."""
    from cevns.experiments.sections.source import SourceBuild, TimeModel

    try:
        src = ReactorSource(sec["thermal_power_GW"], sec["distance_m"], sec.get("fission_fractions"),
                            sec.get("live_days", 1.0), sec.get("low_energy", "kopeikin"),
                            sec.get("high_energy", "silaeva_sinev"), shape_parameter=sec.get("spectrum_parameter"))
    except PhysicsDomainError as exc:
        raise PhysicsDomainError(f"spec {exp_name}: source: {exc}") from None
    if t_edges is not None and len(t_edges) != 2:
        raise ConfigError(f"spec {exp_name}: a reactor source is steady: the time axis (if any) must have one bin")
    n_t = 1
    timing = TimeModel("tabulated", ("steady",), {"nuebar": "steady"}, table=np.ones((1, n_t)))
    info = src.summary()
    info["spectrum_parameter"] = sec.get("spectrum_parameter")
    return SourceBuild(src, timing, src.distance_m, [["nuebar"]], info)
