"""Supernova detectors: SNOwGLoBES-table detectors (lead, water, scintillator) and CEvNS detectors on the package's
own rate engine (xenon, argon, germanium, CsI, NaI).

Table detectors: the counts of a channel c in detected-energy bin d are
    N_c[d] = N_targets,c · ε_c[d] · Σ_t S_c[d, t] ∫_{true bin t} σ_c(E) Φ_s(c)(E) dE
(SNOwGLoBES manual v1.3 § 9; snewpy ``RateCalculator``), the integral by 4-point Gauss–Legendre in each 0.5 MeV bin.

CEvNS detectors: N = Σ_isotopes Σ_species ∫_{T > T_thr} dT Σ_k w_k(T) K_k,s(T), with the flux-folded kernels of
:mod:`cevns.rates` (the same engine as every other experiment) and the Standard-Model weights of
:func:`cevns.interactions.terms.nuclear_weights`; a sharp recoil threshold (a panel edge of the recoil grid), no
quenching, resolution or efficiency curve: the masses and thresholds below are round illustrative numbers, not
collaboration detector models.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cevns import constants as C
from cevns.errors import PhysicsDomainError, UnknownNameError
from cevns.interactions.cevns import kinematic_kernel
from cevns.interactions.kinematics import t_max
from cevns.interactions.process import NuclearContext
from cevns.interactions.terms import nuclear_weights
from cevns.rates import FluxKernels, recoil_nodes
from cevns.sources.species import species as lookup_species
from cevns.sources.supernova import E_MAX_MeV, SPECIES
from cevns.supernova.snowglobes import DALTON_PER_KT, SnowglobesTables, energy_nodes, shipped_tables
from cevns.targets import material

__all__ = ["TableDetector", "CevnsDetector", "DETECTORS", "detector", "detector_names", "TableResponse",
           "table_response"]


@dataclass(frozen=True)
class TableDetector:
    """A detector read from SNOwGLoBES tables: ``config`` (SNOwGLoBES name), ``material`` (channel file), ``mass_kt``
    (the configuration's target normalisation is kept, its mass replaced), ``note`` (where the numbers come from)."""

    name: str
    config: str
    material: str
    mass_kt: float
    note: str
    kind: str = "table"


@dataclass(frozen=True)
class CevnsDetector:
    """A CEvNS detector on the rate engine: target ``material``, ``mass_kg``, sharp nuclear-recoil threshold [keV]."""

    name: str
    material: str
    mass_kg: float
    threshold_keV: float
    note: str
    form_factor: str = "helm"
    scheme: str = "one_loop"
    kind: str = "cevns"


_ILLUSTRATIVE = "illustrative target mass and sharp threshold (not a collaboration detector model)"
#: registered detectors by CLI name
DETECTORS: dict[str, object] = {d.name: d for d in (
    TableDetector("halo", "halo1", "lead", 0.079, "HALO at SNOLAB, 79 t of lead: SNOwGLoBES halo1 (36 % neutron "
                  "efficiency per event)"),
    TableDetector("halo-1kt", "halo2", "lead", 1.0, "HALO-1kT, 1 kt of lead: SNOwGLoBES halo2 (as arXiv:2012.12579)"),
    TableDetector("super-k", "wc100kt30prct", "water", 32.5, "Super-Kamiokande inner detector, 32.5 kt of water: "
                  "SNOwGLoBES wc100kt30prct scaled to 32.5 kt (the SNEWS 2.0 / snewpy convention)"),
    TableDetector("juno", "scint20kt", "scint", 20.0, "JUNO, 20 kt of liquid scintillator: SNOwGLoBES scint20kt "
                  "(no efficiency tables: 100 %)"),
    CevnsDetector("xenonnt", "Xe", 5900.0, 1.0, "XENONnT active xenon, 5.9 t; " + _ILLUSTRATIVE),
    CevnsDetector("lz", "Xe", 7000.0, 1.0, "LZ active xenon, 7 t; " + _ILLUSTRATIVE),
    CevnsDetector("xenon-1t", "Xe", 1000.0, 1.0, "1 t of natural xenon; " + _ILLUSTRATIVE),
    CevnsDetector("darkside-20k", "Ar", 50000.0, 5.0, "DarkSide-20k active argon, 50 t; " + _ILLUSTRATIVE),
    CevnsDetector("argon-1t", "Ar", 1000.0, 5.0, "1 t of natural argon; " + _ILLUSTRATIVE),
    CevnsDetector("germanium-1t", "Ge", 1000.0, 1.0, "1 t of natural germanium; " + _ILLUSTRATIVE),
    CevnsDetector("csi-1t", "CsI", 1000.0, 3.0, "1 t of CsI; " + _ILLUSTRATIVE),
    CevnsDetector("nai-1t", "NaI", 1000.0, 3.0, "1 t of NaI; " + _ILLUSTRATIVE),
)}


def detector_names() -> list[str]:
    return list(DETECTORS)


def detector(name) :
    """A registered detector by name (or passed through)."""
    if isinstance(name, (TableDetector, CevnsDetector)):
        return name
    try:
        return DETECTORS[name]
    except (KeyError, TypeError):
        raise UnknownNameError("supernova detector", name, DETECTORS) from None


@dataclass
class TableResponse:
    """Per channel of one table detector: species, σ(E)·w on the energy nodes [cm² MeV] and
    M[d, t] = N_targets ε[d] S[d, t] (detected × true bins)."""

    detector: TableDetector
    E_MeV: np.ndarray
    n_per_bin: int
    channels: dict = field(default_factory=dict)  # name -> (species, sigma_w (nodes,), M (200, 200))

    def true_binned(self, sigma_w: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """∫ σ Φ over each true bin; ``phi`` (..., nodes) → (..., 200)."""
        x = sigma_w * phi
        return x.reshape(x.shape[:-1] + (-1, self.n_per_bin)).sum(axis=-1)

    def detected(self, fluence_of, channels=None) -> dict[str, np.ndarray]:
        """{channel: detected-energy spectrum (..., 200)} for differential fluences ``fluence_of(species)`` on the
        nodes [1/(cm² MeV)], shape (..., nodes)."""
        cache: dict = {}
        out = {}
        for name in channels or self.channels:
            sp, sw, M = self.channels[name]
            if sp not in cache:
                cache[sp] = fluence_of(sp)
            out[name] = self.true_binned(sw, cache[sp]) @ M.T
        return out


_RESPONSES: dict = {}


def table_response(det, tables: SnowglobesTables | None = None, n_per_bin: int = 4) -> TableResponse:
    """The (cached) :class:`TableResponse` of a table detector."""
    det = detector(det)
    if not isinstance(det, TableDetector):
        raise UnknownNameError("SNOwGLoBES-table supernova detector", det.name,
                               [k for k, v in DETECTORS.items() if isinstance(v, TableDetector)])
    tables = tables or shipped_tables()
    key = (det.name, str(tables.base), n_per_bin)
    if key not in _RESPONSES:
        _, norm = tables.detector_configuration(det.config)
        E, W, _ = energy_nodes(n_per_bin)
        resp = TableResponse(det, E, n_per_bin)
        for ch in tables.channels(det.material):
            n_targets = det.mass_kt * DALTON_PER_KT * norm * ch.weight
            S = tables.smearing(det.config, ch.name)
            eff = tables.efficiency(det.config, ch.name)
            M = np.eye(200) if S is None else S
            if eff is not None:
                M = eff[:, None] * M
            resp.channels[ch.name] = (ch.species, tables.cross_section_cm2(ch.name, ch.species, E) * W, n_targets * M)
        _RESPONSES[key] = resp
    return _RESPONSES[key]


def _check_threshold(thr_keV) -> float:
    if isinstance(thr_keV, bool) or not isinstance(thr_keV, (int, float)) or not (math.isfinite(thr_keV) and thr_keV >= 0):
        raise PhysicsDomainError(f"recoil threshold must be a finite number >= 0 keV, got {thr_keV!r}")
    return float(thr_keV)


def cevns_counts(det: CevnsDetector, source, threshold_keV: float | None = None, n_per_panel: int = 8,
                 T_edges_keV=None) -> dict:
    """CEvNS events per species above the threshold (and, with ``T_edges_keV``, per recoil bin under 'spectrum'),
    through the rate engine: recoil panels split at T_max(E_max) of each isotope, at the threshold and at geometric
    points in between; Σ_iso Σ_nodes w_sm(T) K_sm,s(T)."""
    thr = _check_threshold(det.threshold_keV if threshold_keV is None else threshold_keV) * C.keV
    comps = [(iso, n * det.mass_kg) for iso, n in material(det.material).components]
    nodes, n_targets = {}, {}
    extra = [] if T_edges_keV is None else [float(e) * C.keV for e in T_edges_keV]
    for iso, n in comps:
        tm = float(t_max(E_MAX_MeV, iso.mass_MeV))
        lo = max(thr, 1e-3 * tm)
        bps = [tm] + list(np.geomspace(lo, tm, 7)[:-1]) + ([thr] if thr > 0 else []) + [e for e in extra if 0 < e < tm]
        nodes[iso.name] = recoil_nodes(iso, bps, n_per_panel, n_sub_first=2)
        n_targets[iso.name] = float(n)
    fk = FluxKernels(source, nodes, n_targets, tuple(SPECIES))
    # species whose fluence is the same mixture (e.g. ν_μ and ν_τ) share one flux fold: fold each distinct one once
    rep, seen = {}, {}
    for s in SPECIES:
        mx = source.fluence_mixture(s) if hasattr(source, "fluence_mixture") else None
        key = s if mx is None else (mx.numbers.tobytes(), mx.means_MeV.tobytes(), mx.alphas.tobytes())
        rep[s] = seen.setdefault(key, s)
    per_species = {s: 0.0 for s in SPECIES}
    spec = None if T_edges_keV is None else np.zeros(len(T_edges_keV) - 1)
    for iso, _ in comps:
        nd = nodes[iso.name]
        above = nd.T_MeV > thr
        for s in SPECIES:
            ctx = NuclearContext(iso, lookup_species(s), nd.T_MeV, det.form_factor, det.scheme)
            ev = fk.get("sm", kinematic_kernel, rep[s], iso.name) * nuclear_weights({}, ctx)["sm"][0]
            per_species[s] += float(ev[above].sum())
            if spec is not None:
                idx = np.searchsorted(np.asarray(T_edges_keV, float), nd.T_keV, side="right") - 1
                ok = above & (idx >= 0) & (idx < spec.size)
                spec += np.bincount(idx[ok], weights=ev[ok], minlength=spec.size)
    out = {"per_species": per_species}
    if spec is not None:
        out["spectrum"] = spec
    return out
