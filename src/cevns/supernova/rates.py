"""Expected supernova-neutrino counts per detector and channel, detected-energy spectra and time-binned light curves.

Channels of a table detector are the SNOwGLoBES channel names (``ibd``, ``nue_e`` …, ``nue_O16``,
``nc_numu_O16`` …, ``nue_Pb208_1n``, ``nc_nutau_Pb208_2n`` …: neutral-current channels are per flavour); a CEvNS
detector has ``cevns_<species>``. :func:`observables` groups them into what a detector actually separates (HALO:
events with one or two neutrons; water/scintillator: IBD, ν–e elastic, CC and NC on O/C).
"""
from __future__ import annotations

import numpy as np

from cevns.errors import ConfigError, PhysicsDomainError
from cevns.sources.supernova import (SPECIES, PinchedModel, SupernovaSource, TimeDependentPinched,
                                     check_distance_kpc)
from cevns.supernova.detectors import CevnsDetector, TableDetector, cevns_counts, detector, table_response

__all__ = ["expected_counts", "detected_spectra", "light_curve", "observables", "channel_group", "GROUP_ORDER"]


def channel_group(det, channel: str) -> str:
    """The observable class of a table channel: lead → '1n' / '2n' / 'electron_elastic'; water and scintillator →
    'ibd', 'electron_elastic', 'cc_nucleus' (ν_e or ν̄_e CC on ¹⁶O/¹²C/¹³C), 'nc_nucleus' (NC on ¹⁶O/¹²C/¹³C)."""
    det = detector(det)
    if det.material == "lead":
        if channel.endswith("_1n"):
            return "1n"
        if channel.endswith("_2n"):
            return "2n"
        return "electron_elastic"
    if channel == "ibd":
        return "ibd"
    if channel.endswith("_e"):
        return "electron_elastic"
    if channel.startswith("nc_"):
        return "nc_nucleus"
    return "cc_nucleus"


GROUP_ORDER = ("1n", "2n", "ibd", "electron_elastic", "cc_nucleus", "nc_nucleus", "cevns")


def _source(model, distance_kpc, transformation, t_window_s=None) -> SupernovaSource:
    return SupernovaSource(model, check_distance_kpc(distance_kpc), transformation, t_window_s)


def _check_detectors(detectors) -> list:
    if isinstance(detectors, (str, TableDetector, CevnsDetector)):
        detectors = [detectors]
    dets = [detector(d) for d in detectors]  # unknown names fail here, before any work
    if not dets:
        raise ConfigError("no detector given")
    return dets


def expected_counts(model, detectors, distance_kpc: float = 10.0, transformation: str = "none",
                    t_window_s=None, tables=None, cevns_threshold_keV: float | None = None) -> dict:
    """{detector: {channel: expected events}} for a :class:`PinchedModel` or :class:`TimeDependentPinched` at
    ``distance_kpc`` through ``transformation`` ('none', 'msw_normal', 'msw_inverted')."""
    dets = _check_detectors(detectors)
    src = _source(model, distance_kpc, transformation, t_window_s)
    out = {}
    per_kg: dict = {}  # CEvNS detectors of the same target and threshold differ only by their mass
    for det in dets:
        if isinstance(det, TableDetector):
            resp = table_response(det, tables)
            spectra = resp.detected(lambda s: src.dfluence_dE(s, resp.E_MeV))
            out[det.name] = {ch: float(v.sum()) for ch, v in spectra.items()}
        else:
            thr = det.threshold_keV if cevns_threshold_keV is None else cevns_threshold_keV
            key = (det.material, thr, det.form_factor, det.scheme)
            if key not in per_kg:
                res = cevns_counts(det, src, cevns_threshold_keV)
                per_kg[key] = {s: v / det.mass_kg for s, v in res["per_species"].items()}
            out[det.name] = {f"cevns_{s}": v * det.mass_kg for s, v in per_kg[key].items()}
    return out


def observables(counts: dict) -> dict:
    """{detector: {observable class: events}} from :func:`expected_counts` (see :func:`channel_group`)."""
    out = {}
    for name, chans in counts.items():
        det = detector(name)
        agg: dict[str, float] = {}
        for ch, v in chans.items():
            g = "cevns" if isinstance(det, CevnsDetector) else channel_group(det, ch)
            agg[g] = agg.get(g, 0.0) + v
        out[name] = {g: agg[g] for g in GROUP_ORDER if g in agg}
    return out


def detected_spectra(model, det, distance_kpc: float = 10.0, transformation: str = "none", tables=None) -> dict:
    """{channel: events per 0.5 MeV detected-energy bin (200 bins, centres 0.5 … 100 MeV)} of one table detector."""
    det = _check_detectors([det])[0]
    if not isinstance(det, TableDetector):
        raise ConfigError(f"detected-energy spectra need a SNOwGLoBES-table detector, not {det.name}")
    src = _source(model, distance_kpc, transformation)
    resp = table_response(det, tables)
    return resp.detected(lambda s: src.dfluence_dE(s, resp.E_MeV))


def light_curve(model: TimeDependentPinched, detectors, t_edges_s, distance_kpc: float = 10.0,
                transformation: str = "none", tables=None, cevns_threshold_keV: float | None = None) -> dict:
    """{detector: {channel: expected events per time bin}} for the emission in each bin of ``t_edges_s`` [s after
    bounce] (arrival-time offsets common to all detectors are dropped)."""
    if not isinstance(model, TimeDependentPinched):
        raise ConfigError("a light curve needs a time-dependent model (TimeDependentPinched)")
    edges = np.asarray(t_edges_s, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise PhysicsDomainError("time-bin edges must be >= 2 finite, strictly increasing times [s]")
    dets = _check_detectors(detectors)
    check_distance_kpc(distance_kpc)
    srcs = [_source(model, distance_kpc, transformation, (lo, hi)) for lo, hi in zip(edges[:-1], edges[1:])]
    out = {}
    for det in dets:
        if isinstance(det, TableDetector):
            resp = table_response(det, tables)
            phi = lambda s: np.stack([src.dfluence_dE(s, resp.E_MeV) for src in srcs])  # noqa: E731
            out[det.name] = {ch: v.sum(axis=-1) for ch, v in resp.detected(phi).items()}
        else:
            per = {f"cevns_{s}": np.zeros(len(srcs)) for s in SPECIES}
            for i, src in enumerate(srcs):
                if all(src.fluence_per_cm2(s) <= 0 for s in SPECIES):
                    continue
                for s, v in cevns_counts(det, src, cevns_threshold_keV)["per_species"].items():
                    per[f"cevns_{s}"][i] = v
            out[det.name] = per
    return out


def model_summary(model) -> dict:
    """The parameters of a model for reports (JSON-ready)."""
    if isinstance(model, PinchedModel):
        return {"type": "pinched", "groups": model.as_dict(), "total_energy_erg": model.total_energy_erg()}
    ti = model.time_integrated()
    return {"type": "time_dependent", "name": model.name, "t_range_s": list(model.t_range_s),
            "time_integrated": ti.as_dict(), "total_energy_erg": ti.total_energy_erg()}
