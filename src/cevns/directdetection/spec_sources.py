"""Source builders of experiment specs for direct detection (registered in
:data:`cevns.experiments.sections.source.SOURCE_BUILDERS`):

* ``natural_neutrinos``: :class:`cevns.sources.solar.NaturalNeutrinoSource` — ``components`` (default all),
  optional ``fluxes_cm2_s`` overrides, ``livetime_yr`` (the exposure is target mass × livetime);
* ``halo``: :class:`cevns.sources.halo.HaloSource` with a :class:`~cevns.sources.halo.StandardHaloModel`
  (``mass_GeV``, ``rho_GeV_cm3``, ``v0_kms``, ``v_esc_kms``, ``v_earth_kms``; XENON1T's halo by default) and
  ``livetime_yr``.

Neither has an arrival-time model (no time axis); all species form one group.
"""
from __future__ import annotations

from cevns.errors import ConfigError
from cevns.experiments.sections.source import SourceBuild
from cevns.sources.halo import YEAR_S, HaloSource, StandardHaloModel
from cevns.sources.solar import NaturalNeutrinoSource

__all__ = ["build_natural_neutrinos", "build_halo", "AU_m"]

AU_m = 1.495978707e11  # astronomical unit [m] (IAU 2012, exact): the solar baseline


def _no_time(t_edges, exp_name: str, what: str) -> None:
    if t_edges is not None:
        raise ConfigError(f"spec {exp_name}: a {what} source has no arrival-time model; remove the time axis")


def build_natural_neutrinos(sec: dict, t_edges, file_fn, exp_name: str) -> SourceBuild:
    _no_time(t_edges, exp_name, "natural_neutrinos")
    lt = float(sec["livetime_yr"])
    src = NaturalNeutrinoSource(sec.get("components"), lt * YEAR_S, sec.get("fluxes_cm2_s"))
    return SourceBuild(src, None, AU_m, [list(src.species)], {"livetime_yr": lt, "fluxes_cm2_s": dict(src.fluxes)})


def build_halo(sec: dict, t_edges, file_fn, exp_name: str) -> SourceBuild:
    _no_time(t_edges, exp_name, "halo")
    lt = float(sec["livetime_yr"])
    halo = StandardHaloModel(float(sec.get("rho_GeV_cm3", 0.3)), float(sec.get("v0_kms", 220.0)),
                             float(sec.get("v_esc_kms", 544.0)), float(sec.get("v_earth_kms", 232.0)))
    src = HaloSource(float(sec["mass_GeV"]), halo, lt * YEAR_S)
    return SourceBuild(src, None, 0.0, [list(src.species)], {"livetime_yr": lt, "mass_GeV": src.mass_GeV})
