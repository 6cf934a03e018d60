"""Section ``detector``: quenching, light yield or energy scale, smearing, efficiency and time efficiency, built into a
:class:`cevns.detectors.response.DetectorResponse` on the spec's energy axis."""
from __future__ import annotations

import numpy as np

from cevns.detectors.response import DetectorResponse

__all__ = ["build_detector"]


class ReleasedTemplatesDetector:
    """``model: released_templates``: the detector response comes with the signal's released efficiency templates
    (:mod:`cevns.experiments.sections.efficiency_templates`); nothing to build here."""

    response_parameters: dict = {}
    quenching_parameters: tuple = ()

    def __init__(self, sec: dict):
        self.sec = sec


def build_detector(sec: dict, energy_edges, file_fn, exp_name: str):
    if sec.get("model") == "released_templates":
        return ReleasedTemplatesDetector(sec)
    return DetectorResponse(sec, np.asarray(energy_edges, float), file_fn, exp_name)
