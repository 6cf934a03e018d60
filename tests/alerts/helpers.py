"""Shared helpers for the alerts tests (not fixtures)."""
from __future__ import annotations

import threading
import time

from cevns.alerts.auth import sign
from cevns.alerts.messages import coincidence_message
from cevns.alerts.timeutil import NS, UTCTime

DETS = ["XENONnT", "DS-20K", "JUNO", "Baksan", "DUNE", "HALO", "IceCube", "NOvA", "Borexino", "LVD",
        "KamLAND", "Super-K", "SNO+", "KM3NeT", "LZ", "PandaX-4T", "SBND", "MicroBooNe", "Hyper-K", "HALO-1kT"]
T0 = UTCTime.parse("2030-06-01T00:00:00Z")


def burst_messages(n_bursts: int, per_burst: int, channel_test: bool = False, spacing_s: int = 100):
    """n_bursts well separated bursts, each with per_burst distinct detectors within 1 s."""
    out = []
    for b in range(n_bursts):
        for k in range(per_burst):
            det = DETS[(b + k) % len(DETS)]
            t = T0.add_ns(b * spacing_s * NS + k * 250_000_000)
            out.append(coincidence_message(det, t, 0.01, is_test=channel_test))
    return out


def envelope(msg, keys):
    return sign(msg.to_json(), msg.detector_name, keys[msg.detector_name])


def wait_until(pred, timeout: float, step: float = 0.05) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(step)
    return pred()


class ServerThread:
    def __init__(self, server):
        self.server = server
        self.stop = threading.Event()
        self.th = threading.Thread(target=server.run, args=(self.stop,), kwargs={"poll_s": 0.05}, daemon=True)

    def __enter__(self):
        self.th.start()
        return self.server

    def __exit__(self, *exc):
        self.stop.set()
        self.th.join(timeout=20)
        assert not self.th.is_alive(), "server thread did not stop"
