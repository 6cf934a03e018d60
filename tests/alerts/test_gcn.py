"""Alerts as GCN unified-schema notices: every alert kind validates against the vendored GCN schemas (no
network), broken notices fail, values round-trip, the vendored files are the package's, `subscribe --gcn`."""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import re
from importlib import resources

import pytest

from cevns.alerts.archive import Archive
from cevns.alerts.far import SECONDS_PER_JULIAN_YEAR
from cevns.alerts.gcn import GCN_NEUTRINO_SCHEMA, notice_errors, to_gcn_notice, validate_notice
from cevns.alerts.messages import coincidence_message, retraction_message, significance_message, timing_message
from cevns.alerts.server import AlertServer
from cevns.alerts.timeutil import NS, UTCTime
from cevns.alerts.transport import memory_broker
from cevns.errors import ConfigError, DataError

from helpers import envelope, recent, sky_arrivals


def _server(keys, tmp_path, name):
    """A server on a private in-memory broker with a fresh archive."""
    return AlertServer(memory_broker(f"gcn-{name}"), keys, Archive(tmp_path / f"{name}.sqlite"))


def _check_round_trip(alert: dict, n: dict) -> None:
    """The notice carries the alert's values: ids, times, FAR, detectors, uuids."""
    assert n["$schema"] == GCN_NEUTRINO_SCHEMA and n["messenger"] == "Neutrino"
    assert n["id"] == alert["alert_id"] and n["alert_state"] == alert["state"]
    assert n["detectors"] == alert["detectors"] and n["message_uuids"] == alert["uuids"]
    assert n["previous_detectors"] == alert["previous_detectors"] and n["channel"] == alert["channel"]
    assert UTCTime.parse(n["alert_datetime"]) == UTCTime.parse(alert["server_time_utc"])
    assert [UTCTime.parse(t) for t in n["neutrino_times"]] == [UTCTime.parse(t) for t in alert["neutrino_times_utc"]]
    if alert["neutrino_times_utc"]:
        first = min(UTCTime.parse(t).elapsed_ns for t in alert["neutrino_times_utc"])
        assert UTCTime.parse(n["trigger_time"]).elapsed_ns == first
    if "false_alarm_rate_per_year" in alert:
        assert n["far"] * SECONDS_PER_JULIAN_YEAR == pytest.approx(alert["false_alarm_rate_per_year"], rel=1e-12)
        assert n["online_detectors"] == alert["false_alarm_online_detectors"]
    else:
        assert "far" not in n
    for d in alert["detectors"]:
        assert d in n["additional_info"]
    assert json.loads(json.dumps(n)) == n  # plain JSON


def test_new_update_retraction_validate_and_round_trip(keys, tmp_path):
    """NEW (2 detectors), UPDATE (a third joins), RETRACTION keeping 2 (GCN 'update') and RETRACTION leaving 1
    (GCN 'retraction'): each notice validates and carries the alert's values; test channel -> 'test' tense."""
    srv = _server(keys, tmp_path, "kinds")
    t = recent(0.5)
    a, b, c = (coincidence_message(d, t.add_ns(k * NS // 2), 0.01) for k, d in enumerate(["XENONnT", "DS-20K", "JUNO"]))
    for m in (a, b, c):
        srv.handle(envelope(m, keys))
    srv.handle(envelope(retraction_message("JUNO", c.uuid), keys))
    srv.handle(envelope(retraction_message("DS-20K", b.uuid), keys))
    alerts = srv.archive.alerts()
    assert [x["state"] for x in alerts] == ["NEW", "UPDATE", "RETRACTION", "RETRACTION"]
    notices = [to_gcn_notice(x) for x in alerts]
    for x, n in zip(alerts, notices):
        validate_notice(n)
        _check_round_trip(x, n)
        assert n["alert_tense"] == "current" and "ra" not in n
    assert [n["alert_type"] for n in notices] == ["initial", "update", "update", "retraction"]
    assert notices[1]["detectors"] == ["XENONnT", "DS-20K", "JUNO"]
    assert UTCTime.parse(notices[0]["trigger_time"]).elapsed_ns == a.neutrino_time.elapsed_ns
    assert notices[3]["detectors"] == ["XENONnT"] and "far" not in notices[3]

    drill = _server(keys, tmp_path, "drill")
    for d in ("XENONnT", "DS-20K"):
        drill.handle(envelope(coincidence_message(d, t, is_test=True), keys))
    (n,) = [to_gcn_notice(x) for x in drill.archive.alerts()]
    assert n["alert_tense"] == "test" and n["channel"] == "test" and n["alert_type"] == "initial"


def test_pointing_and_significance_in_notice(keys, tmp_path):
    """Three TimingTier detectors: ra/dec are the alert's, ra_dec_error the radius of the 90 % area's circle."""
    srv = _server(keys, tmp_path, "pointing")
    dets = ["Super-K", "IceCube", "JUNO"]
    arrival, timed = sky_arrivals(dets, recent(1.0))
    for d in dets:
        srv.handle(envelope(significance_message(d, [0.2, 0.01], 1.0), keys))
        srv.handle(envelope(coincidence_message(d, arrival[d]), keys))
    for d in dets:
        srv.handle(envelope(timing_message(d, timed[d], [0, 1000, 5000]), keys))
    alert = srv.archive.alerts()[-1]
    pt = alert["pointing"]
    n = to_gcn_notice(alert)
    validate_notice(n)
    _check_round_trip(alert, n)
    assert n["alert_type"] == "update" and n["containment_probability"] == 0.9
    assert (n["ra"], n["dec"]) == (pt["ra_deg"], pt["dec_deg"])
    r = math.radians(n["ra_dec_error"])
    assert 2 * math.pi * (1 - math.cos(r)) * (180 / math.pi) ** 2 == pytest.approx(pt["area_deg2_90"], rel=1e-9)
    assert n["combined_p_value"] == alert["combined_significance"]["p_value"]
    assert n["combined_sigma"] == alert["combined_significance"]["sigma"]

    inconsistent = copy.deepcopy(alert)
    inconsistent["pointing"].update(consistent=False, warning="arrival times are physically inconsistent")
    n2 = to_gcn_notice(inconsistent)
    assert "ra" not in n2 and "ra_dec_error" not in n2 and "physically inconsistent" in n2["additional_info"]


@pytest.fixture
def good_notice(keys, tmp_path):
    srv = _server(keys, tmp_path, "good")
    t = recent(0.5)
    for d in ("XENONnT", "DS-20K"):
        srv.handle(envelope(coincidence_message(d, t), keys))
    return to_gcn_notice(srv.archive.alerts()[0])


@pytest.mark.parametrize("field, value, expect", [
    ("id", None, "'id' is a required property"),            # None: remove the field
    ("alert_datetime", None, "'alert_datetime' is a required property"),
    ("far", "1e-8", "far: '1e-8' is not of type 'number'"),  # GCN Statistics: number
    ("alert_type", "first", "alert_type: 'first' is not one of"),  # GCN Alert: enum
    ("ra_dec_error", [1, 2, 3, 4], "ra_dec_error"),          # GCN Localization: at most 3 numbers
    ("messenger", "EM", "messenger: 'Neutrino' was expected"),
    ("trigger_time", "2024-01-01 00:00:00", "trigger_time: '2024-01-01 00:00:00' does not match"),
    ("$schema", "https://example.org/x.json", "$schema: '" + GCN_NEUTRINO_SCHEMA + "' was expected"),
    ("detectors", "XENONnT", "detectors: 'XENONnT' is not of type 'array'"),
    ("surprise", 1, "'surprise' was unexpected"),
])
def test_broken_notices_fail(good_notice, field, value, expect):
    """Missing required fields, wrong types, bad enums, unknown fields: refused with the field named."""
    validate_notice(good_notice)
    bad = copy.deepcopy(good_notice)
    if value is None:
        del bad[field]
    else:
        bad[field] = value
    errs = notice_errors(bad)
    assert any(expect in e for e in errs), errs
    with pytest.raises(DataError, match="does not validate"):
        validate_notice(bad)


def test_bad_alert_input():
    with pytest.raises(ConfigError, match="alert object"):
        to_gcn_notice({"kind": "connection-test-ack"})
    with pytest.raises(ConfigError, match="lacks or mistypes"):
        to_gcn_notice({"kind": "snews-coincidence-alert", "alert_id": "0" * 32})


def test_malformed_enrichment_is_a_clear_error(keys, tmp_path):
    """A pointing object without its area (an alert from another version) is refused with a ConfigError."""
    srv = _server(keys, tmp_path, "malformed")
    t = recent(0.5)
    for d in ("XENONnT", "DS-20K"):
        srv.handle(envelope(coincidence_message(d, t), keys))
    alert = srv.archive.alerts()[0]
    alert["pointing"] = {"ra_deg": 10.0, "dec_deg": 5.0, "detectors": ["XENONnT"]}
    with pytest.raises(ConfigError, match="area_deg2_90"):
        to_gcn_notice(alert)


def test_vendored_files_are_the_packages():
    """Each vendored schema's SHA-256 is the one SOURCE.md records for @nasa-gcn/schema 7.2.3 (never edited),
    and the $refs resolve offline: validating needs every referenced file."""
    root = resources.files("cevns.alerts").joinpath("gcn_schema")
    table = dict(re.findall(r"\| `([^`]+\.json)` \| `([0-9a-f]{64})` \|", root.joinpath("SOURCE.md").read_text()))
    assert len(table) == 8
    for rel, digest in table.items():
        assert hashlib.sha256(root.joinpath(*rel.split("/")).read_bytes()).hexdigest() == digest, rel
        obj = json.loads(root.joinpath(*rel.split("/")).read_text())
        assert obj["$id"].startswith("https://gcn.nasa.gov/schema/v7.2.3/") and obj["$id"].endswith(rel)


def test_subscribe_gcn_prints_notices(keys, tmp_path, capsys):
    """`cevns alerts subscribe --gcn` (in process, in-memory broker) prints one validated notice per alert."""
    from cevns.alerts.auth import AlertSigner
    from cevns.cli import main
    seed = b"\x07" * 32
    srv = AlertServer(memory_broker("gcn-cli"), keys, Archive(tmp_path / "cli.sqlite"), alert_key=seed)
    t = recent(0.5)
    for d in ("XENONnT", "DS-20K"):
        srv.handle(envelope(coincidence_message(d, t), keys))
    pub = tmp_path / "alerts.pub.json"
    pub.write_text(json.dumps({"alert_public_key": base64.b64encode(AlertSigner(seed).public_key).decode()}))
    rc = main(["alerts", "subscribe", "--broker", "memory://gcn-cli", "--from-beginning", "--count", "1",
               "--timeout", "5", "--alert-key", str(pub), "--gcn"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and len(out) == 1
    n = json.loads(out[0])
    validate_notice(n)
    _check_round_trip(srv.archive.alerts()[0], n)
