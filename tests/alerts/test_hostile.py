"""Bad input, in process: every hostile kind rejected with its code and a logged reason, none executed; the
plausibility rules (uuid reuse, foreign retraction, retraction before its target, rate limits); dead letters."""
from __future__ import annotations

import json
import logging
import os

import pytest

from cevns.alerts.archive import Archive
from cevns.alerts.auth import sign
from cevns.alerts.messages import coincidence_message, heartbeat_message, retraction_message, significance_message
from cevns.alerts.server import AlertServer
from cevns.alerts.timeutil import NS
from cevns.alerts.transport import memory_broker

from helpers import envelope, recent, sky_arrivals
from hostile_cases import cases


def _srv(keys, tmp_path, name="h", **kw):
    return AlertServer(memory_broker(name), keys, Archive(tmp_path / f"{name}.sqlite"), **kw)


def test_hostile_messages_rejected_logged_not_executed(keys, tmp_path, caplog):
    sentinel = tmp_path / "PWNED"
    cs = cases(keys, str(sentinel))
    assert len(cs) >= 40
    srv = _srv(keys, tmp_path)
    caplog.set_level(logging.WARNING, logger="cevns.alerts.server")
    wrong = {}
    for name, (raw, code) in cs.items():
        caplog.clear()
        out = srv.handle(raw)
        assert out.status == "rejected", f"{name} was not rejected"
        assert out.reason and len(out.reason) > 10
        assert any("rejected message" in r.getMessage() and out.code in r.getMessage() for r in caplog.records), name
        if out.code != code:
            wrong[name] = (out.code, code)
    assert not wrong, f"unexpected codes (got, expected): {wrong}"
    assert not sentinel.exists() and not os.path.exists("x")
    assert srv.stats["rejected"] == len(cs) and srv.stats["accepted"] == 0 and srv.stats["dead_letters"] == 0
    assert len(srv.archive.rejections()) == len(cs) and srv.archive.count_messages() == 0
    # still answering: a valid message and a connection test are processed afterwards
    ok = coincidence_message("XENONnT", recent(1.0))
    assert srv.handle(envelope(ok, keys)).status == "accepted"
    ping = heartbeat_message("JUNO", is_test=True, meta={"connection_test": "n1"})
    assert srv.handle(envelope(ping, keys)).status == "accepted"
    sub = memory_broker("h").subscribe("snews-alerts")
    assert any(b"connection-test-ack" in r.payload and b"n1" in r.payload for r in sub.poll(0.5))


def test_test_channel_exempt_from_time_window(keys, tmp_path):
    """SNEWS exempts test messages from the 48 h window (the reference scenarios are years old)."""
    srv = _srv(keys, tmp_path, "exempt")
    m = coincidence_message("XENONnT", "2023-01-01T00:00:00Z", is_test=True)
    assert srv.handle(envelope(m, keys)).status == "accepted"
    srv2 = _srv(keys, tmp_path, "window", max_age_s=3600)
    old = coincidence_message("XENONnT", recent(2.0))
    assert srv2.handle(envelope(old, keys)).code == "implausible-time"


def test_duplicate_is_processed_once(keys, tmp_path):
    srv = _srv(keys, tmp_path, "dup")
    m = coincidence_message("XENONnT", recent(1.0))
    env = envelope(m, keys)
    assert [srv.handle(env).status for _ in range(3)] == ["accepted", "duplicate", "duplicate"]
    assert srv.archive.count_messages() == 1


def test_uuid_reuse_with_new_content_rejected_and_logged(keys, tmp_path, caplog):
    srv = _srv(keys, tmp_path, "reuse")
    m = coincidence_message("XENONnT", recent(1.0))
    assert srv.handle(envelope(m, keys)).status == "accepted"
    d = json.loads(m.to_json())
    d["neutrino_time_utc"] = recent(0.5).isoformat()
    caplog.set_level(logging.WARNING, logger="cevns.alerts.server")
    out = srv.handle(sign(json.dumps(d), "XENONnT", keys["XENONnT"]))
    assert out.status == "rejected" and out.code == "uuid-reuse"
    assert any("uuid-reuse" in r.getMessage() for r in caplog.records)
    assert srv.archive.message_row(m.uuid)[3] == m.to_json()  # the original is untouched


def test_foreign_retraction_rejected_with_warning(keys, tmp_path, caplog):
    srv = _srv(keys, tmp_path, "ret")
    t = recent(1.0)
    a = coincidence_message("XENONnT", t)
    b = coincidence_message("JUNO", t.add_ns(NS))
    for m in (a, b):
        srv.handle(envelope(m, keys))
    caplog.set_level(logging.WARNING, logger="cevns.alerts.server")
    out = srv.handle(envelope(retraction_message("JUNO", retract_uuid=a.uuid), keys))
    assert out.status == "rejected" and out.code == "foreign-retraction"
    assert any("foreign-retraction" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert a.uuid in srv.engine and b.uuid in srv.engine
    out = srv.handle(envelope(retraction_message("JUNO", latest_n=1), keys))
    assert b.uuid not in srv.engine and a.uuid in srv.engine
    assert [x.state for x in out.alerts] == ["RETRACTION"]


def test_retraction_before_its_target_is_held(keys, tmp_path):
    """The retraction arrives first: the target, when it comes, is retracted on arrival and raises no alert."""
    srv = _srv(keys, tmp_path, "early")
    t = recent(1.0)
    a = coincidence_message("XENONnT", t)
    b = coincidence_message("JUNO", t.add_ns(2 * NS))
    r = retraction_message("JUNO", retract_uuid=b.uuid)
    assert srv.handle(envelope(a, keys)).status == "accepted"
    assert srv.handle(envelope(r, keys)).status == "accepted"
    assert srv.status()["pending_retractions"] == 1
    out = srv.handle(envelope(b, keys))
    assert out.status == "accepted" and out.alerts == [] and b.uuid not in srv.engine
    assert srv.archive.message_row(b.uuid)[2] == "retracted" and srv.archive.message_row(r.uuid)[2] == "stored"
    assert srv.status()["pending_retractions"] == 0 and srv.archive.alerts() == []
    # a held retraction naming another detector's message is refused when that message arrives
    c = coincidence_message("DUNE", t.add_ns(3 * NS))
    srv.handle(envelope(retraction_message("JUNO", retract_uuid=c.uuid), keys))
    out = srv.handle(envelope(c, keys))
    assert c.uuid in srv.engine and [x.state for x in out.alerts] == ["NEW"]


def test_held_retraction_survives_restart_and_expires(keys, tmp_path):
    path = tmp_path / "held.sqlite"
    clock = [recent(0.0).elapsed_ns + 5 * NS]
    srv = AlertServer(memory_broker("held1"), keys, Archive(path), clock=lambda: clock[0], expiry_s=3600)
    target = coincidence_message("XENONnT", recent(1.0))
    r = retraction_message("XENONnT", retract_uuid=target.uuid)
    srv.handle(envelope(r, keys))
    srv.archive.close()
    srv2 = AlertServer(memory_broker("held2"), keys, Archive(path), clock=lambda: clock[0], expiry_s=3600)
    assert srv2.status()["pending_retractions"] == 1
    clock[0] += 3601 * NS
    srv2.housekeeping()
    assert srv2.status()["pending_retractions"] == 0 and srv2.archive.message_row(r.uuid)[2] == "expired"


def test_heartbeat_rate_limit_and_retention(keys, tmp_path):
    clock = [recent(0.0).elapsed_ns + 5 * NS]
    path = tmp_path / "hb.sqlite"
    srv = AlertServer(memory_broker("hb"), keys, Archive(path), clock=lambda: clock[0],
                      heartbeat_min_interval_s=1.0, heartbeat_retention_s=600)
    outs = [srv.handle(envelope(heartbeat_message("JUNO"), keys)).status for _ in range(5)]
    assert outs == ["accepted"] + ["rejected"] * 4 and srv.rejected_codes["rate-limited"] == 4
    from cevns.alerts.timeutil import UTCTime
    for k in range(50):
        clock[0] += 2 * NS
        hb = heartbeat_message("JUNO", sent_time=UTCTime(clock[0]))
        assert srv.handle(envelope(hb, keys)).status == "accepted"
    assert srv.status()["online_detectors"] == ["JUNO"]
    clock[0] += 3600 * NS
    srv.housekeeping()
    assert srv.hearts.beats == {} and srv.status()["online_detectors"] == []
    srv.archive.close()
    srv2 = AlertServer(memory_broker("hb2"), keys, Archive(path), clock=lambda: clock[0])
    assert srv2.hearts.beats == {}  # nothing replayed: beats older than the retention window were expired


def test_dead_letter_keeps_server_going(keys, tmp_path, monkeypatch):
    """A message that passes validation but fails in processing goes to the dead-letter table; the batch and
    the server go on."""
    srv = _srv(keys, tmp_path, "dl")
    t = recent(1.0)
    a, b, c = (coincidence_message(d, t.add_ns(k * NS)) for k, d in enumerate(["XENONnT", "JUNO", "DUNE"]))
    real_add = srv.engine.add

    def boom(msg, received_ns=None):
        if msg.uuid == b.uuid:
            raise RuntimeError("simulated processing failure")
        return real_add(msg, received_ns)
    monkeypatch.setattr(srv.engine, "add", boom)
    outs = srv.process_batch([envelope(m, keys) for m in (a, b, c)])
    assert [o.status for o in outs] == ["accepted", "dead-letter", "accepted"]
    assert srv.archive.message_row(b.uuid) is None  # rolled back to its savepoint
    (reason, _), = srv.archive.dead_letters()
    assert "simulated processing failure" in reason
    assert [x.state for x in outs[-1].alerts] == ["NEW"] and set(outs[-1].alerts[0].detectors) == {"XENONnT", "DUNE"}


def test_server_restart_rebuilds_from_archive(keys, tmp_path):
    """State persisted in SQLite: a restarted server continues the coincidence and ignores replays."""
    path = tmp_path / "r.sqlite"
    t = recent(1.0)
    a = coincidence_message("XENONnT", t)
    srv = AlertServer(memory_broker("r1"), keys, Archive(path))
    srv.handle(envelope(a, keys))
    srv.archive.close()
    srv2 = AlertServer(memory_broker("r2"), keys, Archive(path))
    assert srv2.handle(envelope(a, keys)).status == "duplicate"
    b = coincidence_message("JUNO", t.add_ns(5 * NS))
    out = srv2.handle(envelope(b, keys))
    assert [x.state for x in out.alerts] == ["NEW"] and set(out.alerts[0].detectors) == {"XENONnT", "JUNO"}


@pytest.mark.parametrize("n_online", [2, 20])
def test_far_uses_online_set(keys, tmp_path, n_online):
    """2-fold alert with n detectors online: 'any 2 of n' rate (1 per 3.05 years for 20), specific pair kept."""
    from helpers import DETS
    srv = _srv(keys, tmp_path, f"far{n_online}")
    for d in DETS[:n_online]:
        srv.handle(envelope(heartbeat_message(d), keys))
    t = recent(0.5)
    srv.handle(envelope(coincidence_message("XENONnT", t), keys))
    (a,) = srv.handle(envelope(coincidence_message("DS-20K", t.add_ns(NS)), keys)).alerts
    body = srv.archive.alerts()[0]
    assert body["false_alarm_online_detectors"] == n_online
    assert body["false_alarm_rate_per_year_this_set"] == pytest.approx(1 / 579.55, rel=1e-3)
    expect = 1 / 579.55 * n_online * (n_online - 1) / 2
    assert body["false_alarm_rate_per_year"] == pytest.approx(expect, rel=1e-3)
    if n_online == 20:
        assert 1 / body["false_alarm_rate_per_year"] == pytest.approx(3.05, abs=0.01)


def test_significance_and_pointing_attached(keys, tmp_path):
    """SignificanceTier p-values are combined (Fisher); three TimingTier detectors give a pointing estimate."""
    from cevns.alerts.messages import timing_message
    from cevns.alerts.server import fisher_combined
    srv = _srv(keys, tmp_path, "tiers")
    dets = ["Super-K", "IceCube", "JUNO"]
    arrival, timed = sky_arrivals(dets, recent(1.0))
    for d in dets:
        srv.handle(envelope(significance_message(d, [0.2, 0.01, 0.5], 1.0), keys))
    for d in dets:
        srv.handle(envelope(coincidence_message(d, arrival[d]), keys))
    body = srv.archive.alerts()[-1]
    p_det = 1 - (1 - 0.01) ** 3
    assert body["combined_significance"]["p_value"] == pytest.approx(fisher_combined([p_det] * 3), rel=1e-9)
    assert "pointing" not in body
    for d in dets:
        out = srv.handle(envelope(timing_message(d, timed[d], [0, 1000, 5000]), keys))
    (upd,) = out.alerts
    assert upd.state == "UPDATE"
    pt = srv.archive.alerts()[-1]["pointing"]
    assert pt["detectors"] == sorted(dets) and pt["consistent"] and pt["area_deg2_90"] > 0


def test_fisher_against_scipy():
    from scipy.stats import combine_pvalues

    from cevns.alerts.server import fisher_combined
    for ps in ([0.01], [0.2, 0.03], [0.5, 0.5, 1e-4, 0.9]):
        assert fisher_combined(ps) == pytest.approx(combine_pvalues(ps, method="fisher").pvalue, rel=1e-10)


def test_restart_cost_bounded_after_heartbeat_flood(keys, tmp_path, monkeypatch):
    """An archive holding 20,000 heartbeats of one detector: the restart reads at most max_beats of them."""
    import time as _time

    from cevns.alerts.heartbeats import HeartbeatMonitor
    calls = []
    real_add = HeartbeatMonitor.add
    monkeypatch.setattr(HeartbeatMonitor, "add", lambda self, m, r: (calls.append(1), real_add(self, m, r)))

    from cevns.alerts.timeutil import UTCTime
    path = tmp_path / "flood.sqlite"
    arch = Archive(path)
    now = UTCTime.now().elapsed_ns
    arch.begin()
    for k in range(20_000):
        hb = heartbeat_message("JUNO", sent_time=UTCTime(now - (20_000 - k) * NS))
        arch.add_message(hb.uuid, "JUNO", "Heartbeat", hb.channel, now - (20_000 - k) * NS, hb.to_json(), "active")
    arch.commit()
    arch.close()
    t0 = _time.perf_counter()
    srv = AlertServer(memory_broker("hbflood"), keys, Archive(path))
    dt = _time.perf_counter() - t0
    print(f"\nRESTART after 20,000 archived heartbeats: {dt:.2f} s, {len(srv.hearts.beats['JUNO'])} kept")
    assert len(srv.hearts.beats["JUNO"]) == srv.hearts.max_beats and dt < 5.0
    assert len(calls) <= srv.hearts.max_beats + 1  # read: bounded by max_beats, not by the archive
