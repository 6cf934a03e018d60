"""Shared helpers for the alerts tests (not fixtures)."""
from __future__ import annotations

import threading
import time

from cevns.alerts.archive import Archive
from cevns.alerts.auth import sign
from cevns.alerts.messages import coincidence_message
from cevns.alerts.server import AlertServer
from cevns.alerts.timeutil import NS, UTCTime
from cevns.alerts.transport import open_transport

OBS = "snews-observations"

DETS = ["XENONnT", "DS-20K", "JUNO", "Baksan", "DUNE", "HALO", "IceCube", "NOvA", "Borexino", "LVD",
        "KamLAND", "Super-K", "SNO+", "KM3NeT", "LZ", "PandaX-4T", "SBND", "MicroBooNe", "Hyper-K", "HALO-1kT"]


def recent(hours_ago: float = 40.0) -> UTCTime:
    """A whole second about ``hours_ago`` before now: inside the server's 48 h plausibility window."""
    return UTCTime.from_posix_ns((time.time_ns() // NS - int(hours_ago * 3600)) * NS)


T0 = recent(40.0)


def burst_messages(n_bursts: int, per_burst: int, channel_test: bool = False, spacing_s: int = 20, t0=None):
    """n_bursts well separated bursts, each with per_burst distinct detectors within 1 s (all within 48 h)."""
    t0 = t0 or T0
    out = []
    for b in range(n_bursts):
        for k in range(per_burst):
            det = DETS[(b + k) % len(DETS)]
            t = t0.add_ns(b * spacing_s * NS + k * 250_000_000)
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
    def __init__(self, server, poll_s: float = 0.05):
        self.server = server
        self.stop = threading.Event()
        self.th = threading.Thread(target=server.run, args=(self.stop,), kwargs={"poll_s": poll_s}, daemon=True)

    def __enter__(self):
        self.th.start()
        self.server.ready.wait(20)  # subscribed (a broker that is down is retried: tests then time out later)
        return self.server

    def __exit__(self, *exc):
        self.stop.set()
        self.th.join(timeout=20)
        assert not self.th.is_alive(), "server thread did not stop"


def paced_run(url: str, keys, archive_path, n: int, rate_hz: float) -> dict:
    """Publish n coincidence messages (n/2 two-detector bursts) at rate_hz through a running server.

    A message counts as sent only when the broker acknowledged it (delivery callback).  Reports losses,
    duplicates, and the alert latency: from the sent_time_utc of a burst's later message to the moment a
    subscriber holds the verified alert (one clock, UTC)."""
    from cevns.alerts.server import AlertCollector

    st, pt, ct = open_transport(url), open_transport(url), open_transport(url)
    arch = Archive(archive_path)
    acked: list[str] = []
    failed: list[str] = []
    sent: dict[str, int] = {}
    recv: dict[str, int] = {}
    try:
        srv = AlertServer(st, keys, arch)
        col = AlertCollector(ct, "snews-alerts", public_key=srv.alert_public_key)
        stop = threading.Event()

        def listen():
            while not stop.is_set():
                for a in col.poll(0.05):
                    recv.setdefault(a.get("alert_id"), UTCTime.now().elapsed_ns)
        lt = threading.Thread(target=listen, daemon=True)
        msgs = burst_messages(n // 2, 2, spacing_s=max(1, int(40 * 3600 / max(n // 2, 1))), t0=recent(41.0))
        pt.warm_up()  # a publisher connects once, not per message: its ~0.5 s start is not the service's latency
        with ServerThread(srv):
            lt.start()
            time.sleep(0.5)
            t0 = time.monotonic()
            for k, m in enumerate(msgs):
                m = coincidence_message(m.detector_name, m.neutrino_time, m.data["p_val"])  # sent_time = now
                sent[m.uuid] = m.sent_time.elapsed_ns
                pt.publish(OBS, envelope(m, keys), on_delivery=lambda err, u=m.uuid: (acked if err is None
                                                                                       else failed).append(u))
                ahead = t0 + (k + 1) / rate_hz - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                pt.poll_deliveries(0)
            left = pt.flush(60)
            t_pub = time.monotonic() - t0
            ok = wait_until(lambda: srv.stats["accepted"] >= len(acked) and len(recv) >= srv.stats["alerts"], 120,
                            0.02)
            t_all = time.monotonic() - t0
        stop.set()
        lt.join(5)
        rows = arch.messages()
        archived = {r[0] for r in rows}
        lat = sorted((recv[i] - max(sent[u] for u in a["uuids"])) / NS for i, a in col.alerts.items() if i in recv)
        col.close()
        return {"n": len(msgs), "acked": len(acked), "failed": len(failed), "unacked_at_end": left,
                "archived": len(archived), "lost": len(set(acked) - archived), "duplicates": srv.stats["duplicates"],
                "alerts": len(col.alerts), "t_publish_s": round(t_pub, 2), "t_all_s": round(t_all, 2), "ok": ok,
                "latency_p50_s": lat[len(lat) // 2] if lat else None,
                "latency_p99_s": lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None,
                "rows_unique": len(rows) == len(archived)}
    finally:
        for t in (st, pt, ct):
            t.close()
        arch.close()


def sky_arrivals(dets, t0: UTCTime, ra_deg: float = 266.4, dec_deg: float = -29.0):
    """Arrival times of a burst from (ra, dec) at each detector, t0 at the Earth's centre: ({det: UTCTime} as a
    CoincidenceTier reports it, {det: UTCTime} shifted by the site's timing bias as a TimingTier reports it)."""
    from cevns.alerts.pointing import predicted_times, radec_to_direction, site

    truth = predicted_times(dets, radec_to_direction(ra_deg, dec_deg), t0)
    arrival = {d: t0.add_ns(truth[d] - t0.elapsed_ns) for d in dets}
    timed = {d: t0.add_ns(truth[d] - t0.elapsed_ns + int(round(site(d).bias_s * NS))) for d in dets}
    return arrival, timed
