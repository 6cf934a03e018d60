"""Heartbeat bookkeeping: per-detector latency, inter-beat statistics, missing-detector flag, online set.

Latency = receipt time - ``sent_time_utc`` (leap-second aware, :mod:`cevns.alerts.timeutil`).  A detector is
flagged *missing* when its current silence exceeds ``mean + 3 sigma`` of its past inter-beat intervals
(SNEWS 2.0 heartbeat monitoring, arXiv:2406.17743 Sec. 4.3; sigma is the sample standard deviation, ddof=1).
At least ``min_intervals`` past intervals are needed before a detector can be flagged (no statistics before).

Bounded by construction: beats older than ``retention_s`` (receipt time) are dropped by :meth:`prune`, at most
``max_beats`` are kept per detector, and :meth:`allow` rate-limits each detector to one beat per
``min_interval_s`` of server time.  A detector is *online* at time t when its last beat sent at or before t said
ON, is at most ``stale_s`` old, and the detector is not flagged missing.
"""
from __future__ import annotations

import math
from bisect import bisect_right, insort
from dataclasses import dataclass

from cevns.errors import ConfigError

from .messages import Message
from .timeutil import NS


@dataclass(frozen=True, order=True)
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
    def __init__(self, min_intervals: int = 3, max_beats: int = 1000, n_sigma: float = 3.0,
                 retention_s: float = 24 * 3600.0, min_interval_s: float = 1.0, stale_s: float = 3600.0):
        if min_intervals < 2:
            raise ConfigError(f"min_intervals={min_intervals}; allowed: >= 2 (a std needs two intervals)")
        for name, v in (("retention_s", retention_s), ("stale_s", stale_s)):
            if not (v > 0):
                raise ConfigError(f"heartbeat {name} = {v!r}; allowed: > 0 s")
        if not (min_interval_s >= 0):
            raise ConfigError(f"heartbeat min_interval_s = {min_interval_s!r}; allowed: >= 0 s")
        self.min_intervals, self.max_beats, self.n_sigma = min_intervals, max_beats, n_sigma
        self.retention_ns = int(retention_s * NS)
        self.min_interval_ns = int(min_interval_s * NS)
        self.stale_ns = int(stale_s * NS)
        self.beats: dict[str, list[Beat]] = {}
        self._last_rx: dict[str, int] = {}

    def allow(self, detector: str, received_ns: int) -> bool:
        """Rate limit: False if ``detector`` had a beat accepted less than ``min_interval_s`` ago."""
        last = self._last_rx.get(detector)
        return last is None or received_ns - last >= self.min_interval_ns

    def note(self, key: str, received_ns: int) -> None:
        """Count an accepted beat of ``key`` for the rate limit only (e.g. connection tests)."""
        self._last_rx[key] = max(received_ns, self._last_rx.get(key, received_ns))

    def add(self, msg: Message, received_ns: int) -> None:
        if msg.tier != "Heartbeat":
            raise ConfigError(f"HeartbeatMonitor.add takes Heartbeat messages, got {msg.tier}")
        sent = msg.sent_time
        sent_ns = sent.elapsed_ns if sent is not None else received_ns
        lst = self.beats.setdefault(msg.detector_name, [])
        insort(lst, Beat(sent_ns, received_ns, msg.data["detector_status"]))
        del lst[:-self.max_beats]
        self._last_rx[msg.detector_name] = max(received_ns, self._last_rx.get(msg.detector_name, received_ns))

    def prune(self, now_ns: int) -> int:
        """Forget beats received more than ``retention_s`` before now; returns how many were dropped."""
        n = 0
        for d in list(self.beats):
            keep = [b for b in self.beats[d] if now_ns - b.received_ns <= self.retention_ns]
            n += len(self.beats[d]) - len(keep)
            if keep:
                self.beats[d] = keep
            else:
                del self.beats[d]
        return n

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
        """Detectors whose last heartbeat sent at or before ``at_ns`` said ON, is at most ``stale_s`` old, and
        that are not missing then."""
        out = []
        for d, bs in self.beats.items():
            i = bisect_right([b.sent_ns for b in bs], at_ns)
            if i and bs[i - 1].status == "ON" and at_ns - bs[i - 1].sent_ns <= self.stale_ns \
                    and not self.health(d, at_ns).missing:
                out.append(d)
        return sorted(out)
