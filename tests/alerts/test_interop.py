"""SNEWS 2.0 interoperability: messages built with the snews-data-formats models go through a running server;
our messages validate with those models (all five tiers)."""
from __future__ import annotations

import json
import warnings

import pytest

# snews-data-formats pins numpy<2 (it works with numpy 2), so the README's test command installs it with --no-deps
models = pytest.importorskip("snews.models.messages", reason="install snews-data-formats: pip install --no-deps "
                             "'snews-data-formats==1.1.1' (the README's test command does)")

from cevns.alerts.archive import Archive
from cevns.alerts.auth import sign
from cevns.alerts.interop import from_snews, to_snews
from cevns.alerts.messages import (MessageRejected, coincidence_message, heartbeat_message, retraction_message,
                                   significance_message, timing_message)
from cevns.alerts.server import AlertServer
from cevns.alerts.timeutil import NS
from cevns.alerts.transport import memory_broker

from helpers import recent


def _theirs(cls, **kw):
    with warnings.catch_warnings():  # their numpy datetime64 parsing warns about time zones
        warnings.simplefilter("ignore")
        return cls(**kw)


def _validate(cls, obj):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls.model_validate_json(json.dumps(obj))


def test_their_messages_through_our_server(keys, tmp_path):
    """Built with snews-data-formats models, sent as JSON in our signed envelope: all five tiers accepted;
    the coincidence gives a NEW alert with a combined significance and a pointing estimate."""
    from cevns.alerts.pointing import predicted_times, radec_to_direction, site
    srv = AlertServer(memory_broker("interop"), keys, Archive(tmp_path / "i.sqlite"))
    t0 = recent(0.5)
    dets = ["Super-K", "IceCube", "JUNO"]
    tt = predicted_times(dets, radec_to_direction(83.6, 22.0), t0)
    iso = {d: t0.add_ns(tt[d] - t0.elapsed_ns + int(round(site(d).bias_s * NS))).isoformat() for d in dets}
    sent = recent(0.0).isoformat()
    msgs = [_theirs(models.HeartbeatMessage, detector_name=d, detector_status="ON", sent_time_utc=sent)
            for d in dets]
    msgs += [_theirs(models.SignificanceTierMessage, detector_name=d, p_values=[0.3, 0.002], t_bin_width_sec=0.5,
                     sent_time_utc=sent) for d in dets]
    msgs += [_theirs(models.CoincidenceTierMessage, detector_name=d, neutrino_time_utc=iso[d], p_val=0.01,
                     sent_time_utc=sent) for d in dets]
    msgs += [_theirs(models.TimingTierMessage, detector_name=d, neutrino_time_utc=iso[d], start_time_utc=iso[d],
                     timing_series=[0, 2000, 9000], sent_time_utc=sent) for d in dets]
    outs = [srv.handle(sign(m.model_dump_json(), m.detector_name, keys[m.detector_name])) for m in msgs]
    assert [o.status for o in outs] == ["accepted"] * len(msgs), [o.reason for o in outs]
    alerts = srv.archive.alerts()
    assert alerts[0]["state"] == "NEW" and sorted(alerts[-1]["detectors"]) == sorted(dets)
    assert alerts[-1]["combined_significance"]["detectors"] == sorted(dets)
    assert alerts[-1]["pointing"]["detectors"] == sorted(dets) and alerts[-1]["pointing"]["consistent"]
    # a retraction built with their model removes our stored copy of their message
    r = _theirs(models.RetractionMessage, detector_name="JUNO", retract_message_uuid=msgs[8].uuid,
                sent_time_utc=sent)
    out = srv.handle(sign(r.model_dump_json(), "JUNO", keys["JUNO"]))
    assert out.status == "accepted" and [a.state for a in out.alerts] == ["RETRACTION"]


def test_our_messages_validate_with_their_models():
    t = recent(0.5)
    pairs = [(coincidence_message("XENONnT", t, 0.5), models.CoincidenceTierMessage),
             (heartbeat_message("JUNO", "OFF"), models.HeartbeatMessage),
             (significance_message("DUNE", [0.1, 0.9], 0.5), models.SignificanceTierMessage),
             (timing_message("Super-K", t, [0, 1500, 2_000_000_000]), models.TimingTierMessage),
             (timing_message("IceCube", t, [3, 0, 7], time_bin_width_ns=1_000_000), models.TimingTierMessage)]
    pairs.append((retraction_message("XENONnT", retract_uuid=pairs[0][0].uuid, reason="noise"),
                  models.RetractionMessage))
    for ours, cls in pairs:
        obj = to_snews(ours)
        theirs = _validate(cls, obj)
        assert theirs.uuid == ours.uuid and theirs.detector_name == ours.detector_name
        assert theirs.tier.value == ours.tier
        back = json.loads(theirs.model_dump_json())
        again = from_snews(back)  # and back: their dump of our message is accepted by us, unchanged in meaning
        assert again.uuid == ours.uuid and again.tier == ours.tier
        for k in ("neutrino_time_utc", "p_val", "p_values", "timing_series", "retract_message_uuid"):
            if k in ours.data:
                if k.endswith("_utc"):
                    assert again.time(k) == ours.time(k)
                else:
                    assert again.data[k] == ours.data[k]


def test_legacy_names_mapped_and_conflicts_refused():
    t = recent(0.5).isoformat()
    m = from_snews({"which_tier": "CoincidenceTierMessage", "detector_name": "JUNO", "neutrino_time": t,
                    "p_value": 0.2, "uuid": "0b7a6a3e-37a4-4f0e-9a63-3e7bd3b1a8f0"})
    assert m.tier == "CoincidenceTier" and m.data["neutrino_time_utc"] == t and m.data["p_val"] == 0.2
    with pytest.raises(MessageRejected, match="both"):
        from_snews({"tier": "CoincidenceTier", "neutrino_time": t, "neutrino_time_utc": t, "detector_name": "JUNO"})
