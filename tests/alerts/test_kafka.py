"""Integration tests against a real Kafka-protocol broker (Tansu, loopback): round trip, load, broker faults."""
from __future__ import annotations

import time

from cevns.alerts.archive import Archive
from cevns.alerts.server import AlertCollector, AlertServer
from cevns.alerts.transport import open_transport

from helpers import ServerThread, burst_messages, envelope, wait_until

OBS, ALR = "snews-observations", "snews-alerts"


def _topics(tansu):
    tansu.create_topic(OBS)
    tansu.create_topic(ALR)


def test_kafka_round_trip(tansu, keys, tmp_path):
    _topics(tansu)
    st, pt, ct = open_transport(tansu.url), open_transport(tansu.url), open_transport(tansu.url)
    try:
        srv = AlertServer(st, keys, Archive(tmp_path / "a.sqlite"))
        col = AlertCollector(ct, ALR)
        msgs = burst_messages(2, 3)
        with ServerThread(srv):
            for m in msgs:
                pt.publish(OBS, envelope(m, keys))
            pt.publish(OBS, b"\x80\x04\x95hostile")  # a pickle on the real wire
            assert pt.flush(10) == 0
            assert wait_until(lambda: (col.poll(0.1), len(col.alerts) >= 4)[1], 30)
        assert srv.stats["accepted"] == 6 and srv.rejected_codes["pickle"] == 1
        states = sorted(a["state"] for a in col.alerts.values())
        assert states == ["NEW", "NEW", "UPDATE", "UPDATE"]
        col.close()
    finally:
        for t in (st, pt, ct):
            t.close()


def test_kafka_load_10k_exactly_once(tansu, keys, tmp_path, record_property):
    """>= 10,000 messages through the broker at >= 1,000 msg/s, each processed exactly once."""
    _topics(tansu)
    n_bursts, per = 5000, 2
    msgs = burst_messages(n_bursts, per)
    envs = [envelope(m, keys) for m in msgs]
    st, pt = open_transport(tansu.url), open_transport(tansu.url)
    arch = Archive(tmp_path / "load.sqlite")
    try:
        srv = AlertServer(st, keys, arch)
        with ServerThread(srv):
            time.sleep(1.0)  # consumer group joined
            t0 = time.monotonic()
            for e in envs:
                pt.publish(OBS, e)
            assert pt.flush(30) == 0
            t_pub = time.monotonic() - t0
            ok = wait_until(lambda: srv.stats["accepted"] >= len(envs), 60, 0.01)
            t_all = time.monotonic() - t0
        assert ok, f"only {srv.stats['accepted']} of {len(envs)} processed"
        rate = len(envs) / t_all
        record_property("sustained_rate_msg_per_s", rate)
        print(f"\nLOAD: {len(envs)} messages, published in {t_pub:.2f} s, all processed after {t_all:.2f} s "
              f"-> sustained {rate:.0f} msg/s end-to-end")
        assert arch.count_messages() == len(envs)
        uu = [r[0] for r in arch.messages()]
        assert len(set(uu)) == len(envs) == len(uu)
        assert set(uu) == {m.uuid for m in msgs}
        assert srv.stats["accepted"] == len(envs) and srv.stats["duplicates"] == 0 and srv.stats["rejected"] == 0
        assert srv.stats["alerts"] == n_bursts  # one NEW per two-detector burst
        assert rate >= 1000, f"sustained rate {rate:.0f} msg/s < 1000"
    finally:
        st.close()
        pt.close()


def test_kafka_broker_killed_and_restarted(tansu, keys, tmp_path, record_property):
    """SIGKILL the broker mid-stream, restart it: the server reconnects; no alert lost or duplicated."""
    _topics(tansu)
    n_bursts = 200
    msgs = burst_messages(n_bursts, 3)
    st, pt, ct = open_transport(tansu.url), open_transport(tansu.url), open_transport(tansu.url)
    arch = Archive(tmp_path / "fault.sqlite")
    try:
        srv = AlertServer(st, keys, arch)
        col = AlertCollector(ct, ALR, group="fault-collector")
        with ServerThread(srv):
            half = len(msgs) // 2
            for m in msgs[:half]:
                pt.publish(OBS, envelope(m, keys))
            pt.flush(5)
            time.sleep(0.3)
            tansu.kill()
            time.sleep(1.0)
            for m in msgs[half:half + 30]:  # published while the broker is down
                pt.publish(OBS, envelope(m, keys))
            tansu.start()  # same port; topics re-created (memory storage lost everything)
            for m in msgs[half + 30:]:
                pt.publish(OBS, envelope(m, keys))
                pt.heal()
            assert wait_until(lambda: pt.heal(), 20)
            pt.flush(10)

            def done():
                pt.heal()
                st.heal()
                col.poll(0.05)
                return arch.count_messages() >= len(msgs) and len(col.alerts) >= 2 * n_bursts
            ok = wait_until(done, 60, 0.1)
        sub_reconnects = srv_sub_reconnects(srv)
        print(f"\nFAULT: processed {arch.count_messages()}/{len(msgs)} messages, duplicates deduplicated "
              f"{srv.stats['duplicates']}, alerts archived {len(arch.alerts())}, received {len(col.alerts)} "
              f"distinct ({col.wire_count} on the wire), publisher re-sent {pt.resent}, server re-sent {st.resent}")
        record_property("fault_summary", f"{arch.count_messages()} msgs, {len(col.alerts)} alerts")
        assert ok, "not everything arrived after the broker restart"
        alerts = arch.alerts()
        ids = [a["alert_id"] for a in alerts]
        assert len(ids) == len(set(ids)) == 2 * n_bursts  # none duplicated in the archive
        assert set(col.alerts) == set(ids)  # none lost for the subscriber
        finals = [a for a in alerts if a["state"] == "UPDATE"]
        assert len(finals) == n_bursts and all(len(a["detectors"]) == 3 for a in finals)
        assert sum(a["state"] == "NEW" for a in alerts) == n_bursts
        assert len({r[0] for r in arch.messages()}) == len(msgs)
        del sub_reconnects
        col.close()
    finally:
        for t in (st, pt, ct):
            t.close()


def srv_sub_reconnects(srv):
    return None
