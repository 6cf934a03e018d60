"""Section ``detector``: quenching, light yield or energy scale, smearing, efficiency and time efficiency, built into a
:class:`cevns.detectors.response.DetectorResponse` on the spec's energy axis."""
from __future__ import annotations

import numpy as np

from cevns.detectors.response import DetectorResponse

__all__ = ["build_detector"]


def build_detector(sec: dict, energy_edges, file_fn, exp_name: str) -> DetectorResponse:
    return DetectorResponse(sec, np.asarray(energy_edges, float), file_fn, exp_name)
