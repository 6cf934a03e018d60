"""Hostile and malformed observation payloads, each with the refusal code the server must give (shared by the
in-process test and the end-to-end battery)."""
from __future__ import annotations

import json
import pickle
import uuid

from cevns.alerts.auth import sign
from cevns.alerts.messages import coincidence_message
from cevns.alerts.timeutil import NS, UTCTime

from helpers import recent


class _Boom:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):  # would create a file if anyone ever unpickled it
        return (open, (self.path, "w"))


def good(det: str = "XENONnT", **over) -> dict:
    d = json.loads(coincidence_message(det, recent(1.0), 0.5).to_json())
    d.update(over)
    return d


def _u() -> str:
    return str(uuid.uuid4())


def cases(keys, sentinel: str) -> dict[str, tuple[bytes, str]]:
    """{name: (payload bytes, expected rejection code)}: 48 kinds."""
    k = keys["XENONnT"]

    def s(obj, det="XENONnT", key=k):
        text = obj if isinstance(obj, str) else json.dumps(obj)
        return sign(text, det, key)
    no_uuid = good()
    del no_uuid["uuid"]
    no_time = good()
    del no_time["neutrino_time_utc"]
    now = UTCTime.now()
    t_recent = recent(1.0).isoformat()
    sig_base = {"tier": "SignificanceTier", "detector_name": "XENONnT", "p_values": [0.5], "t_bin_width_sec": 1.0}
    tim_base = {"tier": "TimingTier", "detector_name": "XENONnT", "start_time_utc": t_recent, "timing_series": [1]}
    return {
        # --- wire format
        "pickle": (pickle.dumps(_Boom(sentinel)), "pickle"),
        "pickle-protocol0": (pickle.dumps({"a": 1}, protocol=0), "pickle"),
        "signed-pickle": (s(pickle.dumps({"a": 1}, protocol=0).decode("latin-1")), "pickle"),
        "empty": (b"", "empty"),
        "not-utf8": (b"\xff\xfe\x00garbage", "not-utf8"),
        "not-json": (b"{'tier': 'CoincidenceTier'}", "not-json"),
        "oversized": (b"{" + b'"a":' + b'"' + b"x" * 300_000 + b'"}', "oversized"),
        "no-envelope": (json.dumps(good()).encode(), "no-envelope"),
        "array-envelope": (b"[1,2,3]", "no-envelope"),
        "envelope-extra-key": (json.dumps({"alg": "HMAC-SHA256", "detector": "XENONnT", "message": "{}",
                                           "mac": "00", "x": 1}).encode(), "no-envelope"),
        "alg-none": (json.dumps({"alg": "none", "detector": "XENONnT", "message": json.dumps(good()),
                                 "mac": ""}).encode(), "bad-signature"),
        "bad-signature": (sign(json.dumps(good()), "XENONnT", b"0" * 32), "bad-signature"),
        "unsigned-truncated-mac": (json.dumps({"alg": "HMAC-SHA256", "detector": "XENONnT",
                                               "message": json.dumps(good()), "mac": "ab"}).encode(), "bad-signature"),
        "unknown-signer": (sign(json.dumps(good(detector_name="Nonexistent")), "Nonexistent", k), "unknown-signer"),
        "impersonation": (s(good(detector_name="JUNO")), "impersonation"),
        "unicode-lookalike-detector": (s(good(detector_name="XEN\u039fNnT")), "unknown-detector"),
        "nan": (s('{"tier":"CoincidenceTier","detector_name":"XENONnT","neutrino_time_utc":"%s",'
                  '"p_val":NaN,"uuid":"%s"}' % (t_recent, _u())), "non-finite"),
        "infinity-literal": (s('{"tier":"CoincidenceTier","detector_name":"XENONnT","neutrino_time_utc":"%s",'
                               '"p_val":Infinity,"uuid":"%s"}' % (t_recent, _u())), "non-finite"),
        # issue 10, item 1: 1e400 overflows to inf inside JSON parsing; it used to crash the server
        "1e400-in-meta": (s(json.dumps(good())[:-1] + ',"meta":{"x":1e400}}'), "non-finite"),
        "1e400-t-bin-width": (s(json.dumps({**sig_base, "uuid": _u()}).replace('"t_bin_width_sec": 1.0',
                                                                               '"t_bin_width_sec": 1e400')),
                              "non-finite"),
        "-1e400-p-val": (s(json.dumps(good(p_val=0.5)).replace('"p_val": 0.5', '"p_val": -1e400')), "non-finite"),
        "huge-int-in-meta": (s(json.dumps(good(meta={"n": 10 ** 30}))), "out-of-range"),
        "huge-int": (s('{"tier":"CoincidenceTier","detector_name":"XENONnT","p_val":' + "9" * 5000 + "}"),
                     "out-of-range"),
        "duplicate-key": (s('{"tier":"CoincidenceTier","tier":"Heartbeat","detector_name":"XENONnT",'
                            '"neutrino_time_utc":"%s","uuid":"%s"}' % (t_recent, _u())), "duplicate-key"),
        "too-deep": (s(good(meta={"a": json.loads("[" * 40 + "]" * 40)})), "too-deep"),
        "unknown-tier": (s(good(tier="Supernova")), "unknown-tier"),
        "missing-field": (s(no_time), "schema"),
        "missing-uuid": (s(no_uuid), "bad-uuid"),
        "bad-uuid-sql": (s(good(uuid="'; DROP TABLE messages; --")), "bad-uuid"),
        "bad-time": (s(good(neutrino_time_utc="yesterday")), "bad-time"),
        "bad-leap-second": (s(good(neutrino_time_utc="2030-01-01T23:59:60Z")), "bad-time"),
        "non-utc-offset": (s(good(neutrino_time_utc="2030-01-01T00:00:00+05:00")), "bad-time"),
        "fullwidth-digits-time": (s(good(neutrino_time_utc="２０３０-01-01T00:00:00Z")), "bad-time"),
        # issue 10, item 6: implausible times
        "neutrino-year-9999": (s(good(neutrino_time_utc="9999-12-31T23:59:59Z")), "implausible-time"),
        "neutrino-year-1972": (s(good(neutrino_time_utc="1972-01-01T00:00:00Z")), "implausible-time"),
        "neutrino-3-days-old": (s(good(neutrino_time_utc=now.add_ns(-72 * 3600 * NS).isoformat())),
                                "implausible-time"),
        "neutrino-in-future": (s(good(neutrino_time_utc=now.add_ns(600 * NS).isoformat())), "implausible-time"),
        "future-sent-time": (s(good(sent_time_utc="2099-01-01T00:00:00Z")), "future-sent-time"),
        "future-sent-time-test-channel": (s(good(sent_time_utc="2099-01-01T00:00:00Z", is_test=True)),
                                          "future-sent-time"),
        "p-value-above-1": (s(good(p_val=1.5)), "schema"),
        "p-value-negative": (s(good(p_val=-0.1)), "schema"),
        "wrong-type": (s(good(is_test="yes")), "schema"),
        "unknown-field": (s(good(__reduce__="os.system('touch x')")), "unknown-field"),
        "unknown-detector": (sign(json.dumps(good(detector_name="Kamiokande-II")), "Kamiokande-II", k),
                             "unknown-signer"),
        "timing-iso-strings": (s({**tim_base, "uuid": _u(), "timing_series": [t_recent]}), "timing-format"),
        "timing-negative-offset": (s({**tim_base, "uuid": _u(), "timing_series": [5, -3]}), "schema"),
        "timing-span-1e15-ns": (s({**tim_base, "uuid": _u(), "timing_series": [0, 10 ** 15]}), "out-of-range"),
        "timing-empty": (s({**tim_base, "uuid": _u(), "timing_series": []}), "out-of-range"),
        "significance-p-values": (s({**sig_base, "uuid": _u(), "p_values": [0.5, 3.0]}), "schema"),
        "significance-zero-width": (s({**sig_base, "uuid": _u(), "t_bin_width_sec": 0}), "out-of-range"),
        "retraction-without-target": (s({"tier": "Retraction", "detector_name": "XENONnT", "uuid": _u()}),
                                      "bad-retraction"),
        "retraction-latest-1e9": (s({"tier": "Retraction", "detector_name": "XENONnT", "uuid": _u(),
                                     "retract_latest_n": 10 ** 9}), "out-of-range"),
        "heartbeat-bad-status": (s({"tier": "Heartbeat", "detector_name": "XENONnT", "uuid": _u(),
                                    "detector_status": "$(reboot)"}), "schema"),
    }
