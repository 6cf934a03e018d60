"""Heartbeat bookkeeping: per-detector latency, inter-beat statistics, missing-detector flag, online set.

Latency = receipt time - ``sent_time_utc`` (leap-second aware, :mod:`cevns.alerts.timeutil`).  A detector is
flagged *missing* when its current silence exceeds ``mean + 3 sigma`` of its past inter-beat intervals
(SNEWS 2.0 heartbeat monitoring, arXiv:2406.17743 Sec. 4.3; sigma is the sample standard deviation, ddof=1).
At least ``min_intervals`` past intervals are needed before a detector can be flagged (no statistics before).
"""
from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from cevns.errors import ConfigError

from .messages import Message
from .timeutil import NS


@dataclass(frozen=True)
class Beat:
    sent_ns: int
    received_ns: int
    status: str


@dataclass(frozen=True)
class DetectorHealth:
    detector: str
    n_beats: int
    last_sent_ns: int | None
    status: str | None
    latency_mean_s: float | None
    latency_std_s: float | None
    interval_mean_s: float | None
    interval_std_s: float | None
    silence_s: float | None
    threshold_s: float | None
    missing: bool


def _mean_std(xs: list[float]) -> tuple[float | None, float | None]:
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, None
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


class HeartbeatMonitor:
    def __init__(self, min_intervals: int = 3, max_beats: int = 10000, n_sigma: float = 3.0):
        if min_intervals < 2:
            raise ConfigError(f"min_intervals={min_intervals}; allowed: >= 2 (a std needs two intervals)")
        self.min_intervals, self.max_beats, self.n_sigma = min_intervals, max_beats, n_sigma
        self.beats: dict[str, list[Beat]] = {}

    def add(self, msg: Message, received_ns: int) -> None:
        if msg.tier != "Heartbeat":
            raise ConfigError(f"HeartbeatMonitor.add takes Heartbeat messages, got {msg.tier}")
        sent = msg.sent_time
        sent_ns = sent.elapsed_ns if sent is not None else received_ns
        lst = self.beats.setdefault(msg.detector_name, [])
        lst.append(Beat(sent_ns, received_ns, msg.data["detector_status"]))
        lst.sort(key=lambda b: b.sent_ns)
        del lst[:-self.max_beats]

    def health(self, detector: str, now_ns: int) -> DetectorHealth:
        bs = [b for b in self.beats.get(detector, []) if b.sent_ns <= now_ns]
        if not bs:
            return DetectorHealth(detector, 0, None, None, None, None, None, None, None, None, False)
        lat = [(b.received_ns - b.sent_ns) / NS for b in bs]
        iv = [(b2.sent_ns - b1.sent_ns) / NS for b1, b2 in zip(bs, bs[1:])]
        lm, ls = _mean_std(lat)
        im, istd = _mean_std(iv)
        silence = (now_ns - bs[-1].sent_ns) / NS
        thr = im + self.n_sigma * istd if (len(iv) >= self.min_intervals and istd is not None) else None
        return DetectorHealth(detector, len(bs), bs[-1].sent_ns, bs[-1].status, lm, ls, im, istd, silence, thr,
                              thr is not None and silence > thr)

    def missing(self, now_ns: int) -> list[str]:
        return sorted(d for d in self.beats if self.health(d, now_ns).missing)

    def online(self, at_ns: int) -> list[str]:
        """Detectors whose last heartbeat sent at or before ``at_ns`` said ON and that are not missing then."""
        out = []
        for d, bs in self.beats.items():
            i = bisect_right([b.sent_ns for b in bs], at_ns)
            if i and bs[i - 1].status == "ON" and not self.health(d, at_ns).missing:
                out.append(d)
        return sorted(out)
