"""Bad input: >= 20 kinds of malformed or hostile messages, each rejected with a logged reason, none executed."""
from __future__ import annotations

import json
import logging
import os
import pickle
import uuid

import pytest

from cevns.alerts.archive import Archive
from cevns.alerts.auth import sign
from cevns.alerts.messages import coincidence_message, heartbeat_message
from cevns.alerts.server import AlertServer
from cevns.alerts.transport import memory_broker


class _Boom:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):  # would create a file if anyone ever unpickled it
        return (open, (self.path, "w"))


def _good(**over):
    d = json.loads(coincidence_message("XENONnT", "2030-01-01T00:00:00Z", 0.5).to_json())
    d.update(over)
    return d


def _cases(keys, sentinel):
    k = keys["XENONnT"]

    def s(obj, det="XENONnT", key=k):
        text = obj if isinstance(obj, str) else json.dumps(obj)
        return sign(text, det, key)
    no_uuid = _good()
    del no_uuid["uuid"]
    no_time = _good()
    del no_time["neutrino_time_utc"]
    return {
        "pickle": pickle.dumps(_Boom(sentinel)),
        "pickle-protocol0": pickle.dumps({"a": 1}, protocol=0),
        "empty": b"",
        "not-utf8": b"\xff\xfe\x00garbage",
        "not-json": b"{'tier': 'CoincidenceTier'}",
        "oversized": b"{" + b'"a":' + b'"' + b"x" * 300_000 + b'"}',
        "no-envelope": json.dumps(_good()).encode(),
        "array-envelope": b"[1,2,3]",
        "bad-signature": sign(json.dumps(_good()), "XENONnT", b"0" * 32),
        "unknown-signer": sign(json.dumps(_good(detector_name="Nonexistent")), "Nonexistent", k),
        "impersonation": s(_good(detector_name="JUNO")),
        "nan": s('{"tier":"CoincidenceTier","detector_name":"XENONnT","neutrino_time_utc":"2030-01-01T00:00:00Z",'
                 '"p_val":NaN,"uuid":"%s"}' % uuid.uuid4()),
        "duplicate-key": s('{"tier":"CoincidenceTier","tier":"Heartbeat","detector_name":"XENONnT",'
                           '"neutrino_time_utc":"2030-01-01T00:00:00Z","uuid":"%s"}' % uuid.uuid4()),
        "too-deep": s(_good(meta=json.loads("[" * 40 + "]" * 40) and {"a": json.loads("[" * 40 + "]" * 40)})),
        "huge-int": s('{"tier":"CoincidenceTier","detector_name":"XENONnT","p_val":' + "9" * 5000 + "}"),
        "unknown-tier": s(_good(tier="Supernova")),
        "missing-field": s(no_time),
        "missing-uuid": s(no_uuid),
        "bad-uuid": s(_good(uuid="'; DROP TABLE messages; --")),
        "bad-time": s(_good(neutrino_time_utc="yesterday")),
        "bad-leap-second": s(_good(neutrino_time_utc="2030-01-01T23:59:60Z")),
        "non-utc-offset": s(_good(neutrino_time_utc="2030-01-01T00:00:00+05:00")),
        "p-value-above-1": s(_good(p_val=1.5)),
        "p-value-negative": s(_good(p_val=-0.1)),
        "wrong-type": s(_good(is_test="yes")),
        "unknown-field": s(_good(__reduce__="os.system('touch x')")),
        "unknown-detector": sign(json.dumps(_good(detector_name="Kamiokande-II")), "Kamiokande-II", k),
        "timing-iso-strings": s({"tier": "TimingTier", "detector_name": "XENONnT", "uuid": str(uuid.uuid4()),
                                 "start_time_utc": "2030-01-01T00:00:00Z",
                                 "timing_series": ["2030-01-01T00:00:00Z"]}),
        "timing-negative-offset": s({"tier": "TimingTier", "detector_name": "XENONnT", "uuid": str(uuid.uuid4()),
                                     "start_time_utc": "2030-01-01T00:00:00Z", "timing_series": [5, -3]}),
        "retraction-without-target": s({"tier": "Retraction", "detector_name": "XENONnT",
                                        "uuid": str(uuid.uuid4())}),
        "significance-p-values": s({"tier": "SignificanceTier", "detector_name": "XENONnT",
                                    "uuid": str(uuid.uuid4()), "p_values": [0.5, 3.0], "t_bin_width_sec": 1}),
        "heartbeat-bad-status": s({"tier": "Heartbeat", "detector_name": "XENONnT", "uuid": str(uuid.uuid4()),
                                   "detector_status": "$(reboot)"}),
    }


def test_hostile_messages_rejected_logged_not_executed(keys, tmp_path, caplog):
    sentinel = tmp_path / "PWNED"
    cases = _cases(keys, str(sentinel))
    assert len(cases) >= 20
    broker = memory_broker("hostile")
    srv = AlertServer(broker, keys, Archive(tmp_path / "h.sqlite"))
    caplog.set_level(logging.WARNING, logger="cevns.alerts.server")
    codes = {}
    for name, raw in cases.items():
        caplog.clear()
        out = srv.handle(raw)
        assert out.status == "rejected", f"{name} was not rejected"
        assert out.reason and len(out.reason) > 10
        assert any("rejected message" in r.getMessage() and out.code in r.getMessage() for r in caplog.records), name
        codes[name] = out.code
    assert not sentinel.exists() and not os.path.exists("x")
    assert codes["pickle"] == "pickle" and codes["impersonation"] == "impersonation"
    assert codes["bad-signature"] == "bad-signature" and codes["oversized"] == "oversized"
    assert len(set(codes.values())) >= 15
    assert srv.stats["rejected"] == len(cases) and srv.stats["accepted"] == 0
    assert len(srv.archive.rejections()) == len(cases)
    # still answering: a valid message and a connection test are processed afterwards
    ok = coincidence_message("XENONnT", "2030-01-01T00:00:00Z")
    assert srv.handle(sign(ok.to_json(), "XENONnT", keys["XENONnT"])).status == "accepted"
    ping = heartbeat_message("JUNO", is_test=True, meta={"connection_test": "n1"})
    assert srv.handle(sign(ping.to_json(), "JUNO", keys["JUNO"])).status == "accepted"
    sub = broker.subscribe("snews-alerts")
    assert any(b"connection-test-ack" in r.payload and b"n1" in r.payload for r in sub.poll(0.5))


def test_duplicate_is_processed_once(keys, tmp_path):
    srv = AlertServer(memory_broker("dup"), keys, Archive(tmp_path / "d.sqlite"))
    m = coincidence_message("XENONnT", "2030-01-01T00:00:00Z")
    env = sign(m.to_json(), "XENONnT", keys["XENONnT"])
    assert [srv.handle(env).status for _ in range(3)] == ["accepted", "duplicate", "duplicate"]
    assert srv.archive.count_messages() == 1


def test_server_restart_rebuilds_from_archive(keys, tmp_path):
    """State persisted in SQLite: a restarted server continues the coincidence and ignores replays."""
    path = tmp_path / "r.sqlite"
    a = coincidence_message("XENONnT", "2030-01-01T00:00:00Z")
    srv = AlertServer(memory_broker("r1"), keys, Archive(path))
    srv.handle(sign(a.to_json(), "XENONnT", keys["XENONnT"]))
    srv.archive.close()
    srv2 = AlertServer(memory_broker("r2"), keys, Archive(path))
    assert srv2.handle(sign(a.to_json(), "XENONnT", keys["XENONnT"])).status == "duplicate"
    b = coincidence_message("JUNO", "2030-01-01T00:00:05Z")
    out = srv2.handle(sign(b.to_json(), "JUNO", keys["JUNO"]))
    assert [x.state for x in out.alerts] == ["NEW"] and set(out.alerts[0].detectors) == {"XENONnT", "JUNO"}


@pytest.mark.parametrize("tier_msg", ["retract_other"])
def test_cannot_retract_other_detectors_message(keys, tmp_path, tier_msg):
    from cevns.alerts.messages import retraction_message
    srv = AlertServer(memory_broker("ret"), keys, Archive(tmp_path / "x.sqlite"))
    a = coincidence_message("XENONnT", "2030-01-01T00:00:00Z")
    b = coincidence_message("JUNO", "2030-01-01T00:00:01Z")
    for m in (a, b):
        srv.handle(sign(m.to_json(), m.detector_name, keys[m.detector_name]))
    r = retraction_message("JUNO", retract_uuid=a.uuid)
    srv.handle(sign(r.to_json(), "JUNO", keys["JUNO"]))
    assert a.uuid in srv.engine and b.uuid in srv.engine
    r2 = retraction_message("JUNO", latest_n=1)
    out = srv.handle(sign(r2.to_json(), "JUNO", keys["JUNO"]))
    assert b.uuid not in srv.engine and a.uuid in srv.engine
    assert [x.state for x in out.alerts] == ["RETRACTION"]
