"""Spec section ``source`` of type ``supernova`` (schema ``experiments/schemas/source_supernova.json``): a
:class:`~cevns.sources.supernova.SupernovaSource` with pinched spectra per group (default: the fiducial point of
arXiv:2012.12579), a distance and a flavour transformation. The burst is time-integrated: one timing component
('burst') that fills every time bin of the spec with probability 1 (the window is assumed to contain the burst)."""
from __future__ import annotations

import numpy as np

from cevns.experiments.sections.source import SourceBuild, TimeModel
from cevns.sources.supernova import (GROUPS, SPECIES, PinchedModel, PinchedParameters, SupernovaSource,
                                     fiducial_model, KPC_IN_cm)

__all__ = ["build_supernova"]


def build_supernova(sec: dict, t_edges, file_fn, exp_name: str) -> SourceBuild:
    fid = fiducial_model()
    spec_params = sec.get("spectra", {})
    params = {}
    for g in GROUPS:
        base = fid.params[g].as_dict()
        base.update(spec_params.get(g, {}))
        params[g] = PinchedParameters(**base)
    src = SupernovaSource(PinchedModel(params), sec["distance_kpc"], sec.get("transformation", "none"))
    n_t = 1 if t_edges is None else len(t_edges) - 1
    timing = TimeModel("tabulated", ("burst",), {s: "burst" for s in SPECIES}, table=np.ones((1, n_t)))
    return SourceBuild(src, timing, src.distance_kpc * KPC_IN_cm / 100.0, [list(SPECIES)],
                       {"distance_kpc": src.distance_kpc, "transformation": src.transformation})
