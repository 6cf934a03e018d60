"""Time, messages, false-alarm rate, heartbeats, pointing, credentials."""
from __future__ import annotations

import json
import math
import os
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cevns.alerts import far
from cevns.alerts.auth import CredentialError, load_credentials, load_keyring, open_envelope, sign
from cevns.alerts.heartbeats import HeartbeatMonitor
from cevns.alerts.messages import (MessageRejected, _validator, coincidence_message, heartbeat_message,
                                   parse_message, schema_errors, significance_message, timing_message,
                                   timing_series_times)
from cevns.alerts.pointing import (plot_skymap, predicted_times, radec_to_direction, site, triangulate)
from cevns.alerts.timeutil import NS, TimeFormatError, UTCTime, diff_seconds
from cevns.errors import ConfigError, UnknownNameError


# ------------------------------------------------------------------------------------------------ time
def test_leap_second_aware_difference():
    assert diff_seconds("2017-01-01T00:00:00Z", "2016-12-31T23:59:59Z") == 2.0
    assert diff_seconds("2016-12-31T23:59:59Z", "2016-12-30T23:59:59Z") == 86400.0
    assert diff_seconds("2030-01-01T00:00:00Z", "2020-01-01T00:00:00Z") == 3653 * 86400  # no leap since 2017
    assert diff_seconds("2017-01-01T00:00:00Z", "1972-01-01T00:00:00Z") == \
        (45 * 365 + 12) * 86400 + 27  # 27 leap seconds 1972-2016 (TAI-UTC 10 s -> 37 s)
    leap = UTCTime.parse("2016-12-31T23:59:60.25Z")
    assert leap.isoformat() == "2016-12-31T23:59:60.250000000Z"
    assert leap - UTCTime.parse("2016-12-31T23:59:59Z") == 1_250_000_000


def test_nanosecond_precision_round_trip():
    t = UTCTime.parse("2030-01-01T12:34:45.123456789Z")
    assert t.isoformat() == "2030-01-01T12:34:45.123456789Z"
    assert t.add_ns(1) - t == 1
    assert UTCTime.from_posix_ns(t.to_posix_ns()) == t


@settings(max_examples=200, deadline=None)
@given(st.integers(63072000, 4102444799), st.integers(0, NS - 1))
def test_parse_agrees_with_datetime(posix_s, frac):
    """Any instant 1972-2099: the ISO text that datetime writes parses to the same instant as from_posix_ns."""
    import datetime
    iso = datetime.datetime.fromtimestamp(posix_s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    t = UTCTime.parse(f"{iso}.{frac:09d}Z")
    assert t == UTCTime.from_posix_ns(posix_s * NS + frac) and t.isoformat() == f"{iso}.{frac:09d}Z"


@pytest.mark.parametrize("bad", ["2030-13-01T00:00:00Z", "2030-01-01T00:00:60Z", "2030-01-01 noon",
                                 "1969-07-20T20:17:00Z", "2030-01-01T00:00:00+02:00", "2030-02-30T00:00:00Z", 17])
def test_bad_times_rejected(bad):
    with pytest.raises(TimeFormatError):
        UTCTime.parse(bad, "neutrino_time_utc")


# ------------------------------------------------------------------------------------------------ messages
def test_all_five_tiers_build_and_reparse():
    t = "2030-01-01T00:00:00.000000001Z"
    msgs = [coincidence_message("XENONnT", t, 0.5), heartbeat_message("JUNO", "OFF"),
            significance_message("DUNE", [0.1, 0.9], 0.5),
            timing_message("Super-K", t, [0, 1500, 2_000_000_000], time_bin_width_ns=100)]
    from cevns.alerts.messages import retraction_message
    msgs.append(retraction_message("XENONnT", retract_uuid=msgs[0].uuid, reason="noise"))
    for m in msgs:
        again = parse_message(m.to_json().encode())
        assert again.data == m.data
    ts = timing_series_times(msgs[3])
    assert ts[2] - ts[0] == 2 * NS and ts[1].isoformat() == "2030-01-01T00:00:00.000001501Z"


def test_fast_validator_agrees_with_jsonschema():
    """The compiled fast path never accepts what the reference jsonschema validator rejects."""
    rnd = random.Random(5)
    base = json.loads(coincidence_message("XENONnT", "2030-01-01T00:00:00Z", 0.5).to_json())
    values = [None, True, 0, -1, 1.5, 0.5, "x", [], {}, [1, "a"], "2030-01-01T00:00:00Z"]
    for tier, obj in [("CoincidenceTier", base),
                      ("TimingTier", json.loads(timing_message("JUNO", "2030-01-01T00:00:00Z", [1]).to_json()))]:
        for _ in range(400):
            o = dict(obj)
            for k in rnd.sample(sorted(o), 2):
                o[k] = rnd.choice(values)
            ref_ok = not list(_validator(tier).iter_errors(o))
            assert (schema_errors(tier, o) == []) == ref_ok


# ------------------------------------------------------------------------------------------------ FAR
def test_far_closed_form_two_detectors_once_a_week():
    r = far.set_rate([1 / far.SECONDS_PER_WEEK] * 2, 10.0)
    assert r == pytest.approx(2 * 10.0 / far.SECONDS_PER_WEEK ** 2, rel=1e-12)
    years = far.mean_years_between(r)
    assert years == pytest.approx(579.55, abs=0.01)  # "about one per 600 years per pair"
    assert 550 < years < 650


def test_far_r_fold_and_errors():
    rates = [1e-5, 2e-5, 3e-5]
    assert far.r_fold_rate(rates, 10, 2) == pytest.approx(2 * 10 * (1e-5 * 2e-5 + 1e-5 * 3e-5 + 2e-5 * 3e-5))
    assert far.r_fold_rate(rates, 10, 3) == pytest.approx(3 * 10 ** 2 * 6e-15)
    with pytest.raises(ConfigError):
        far.set_rate([1e-5], 10)
    with pytest.raises(ConfigError):
        far.set_rate([-1, 1], 10)


def test_far_monte_carlo():
    """Simulated independent Poisson triggers reproduce R = 2 W R1 R2 (within 4 sigma)."""
    rng = np.random.default_rng(1)
    r1 = r2 = 0.01  # 1/s, so R W << 1 still holds for W = 1 s
    w, T = 1.0, 1e7
    a = np.sort(rng.uniform(0, T, rng.poisson(r1 * T)))
    b = np.sort(rng.uniform(0, T, rng.poisson(r2 * T)))
    # pairs with |ta - tb| <= w
    lo = np.searchsorted(b, a - w, "left")
    hi = np.searchsorted(b, a + w, "right")
    n = int(np.sum(hi - lo))
    expect = far.set_rate([r1, r2], w) * T
    assert abs(n - expect) < 4 * math.sqrt(expect)
    assert abs(n - expect / 2) > 10 * math.sqrt(expect)  # the "W R1 R2" units/factor bug would fail


# ------------------------------------------------------------------------------------------------ heartbeats
def test_heartbeat_missing_and_online():
    hb = HeartbeatMonitor()
    t0 = UTCTime.parse("2030-01-01T00:00:00Z")
    for k in range(10):
        sent = t0.add_ns(k * 60 * NS + (k % 3) * NS)
        hb.add(heartbeat_message("JUNO", sent_time=sent), received_ns=sent.elapsed_ns + 200_000_000)
    last = t0.add_ns(9 * 60 * NS).elapsed_ns
    h = hb.health("JUNO", last + 61 * NS)
    assert h.latency_mean_s == pytest.approx(0.2) and h.interval_mean_s == pytest.approx(60, abs=0.5)
    assert not h.missing and hb.online(last + 61 * NS) == ["JUNO"]
    thr = h.threshold_s
    assert thr == pytest.approx(h.interval_mean_s + 3 * h.interval_std_s)
    assert hb.missing(last + int((thr + 1) * NS)) == ["JUNO"]
    assert hb.online(last + int((thr + 1) * NS)) == []
    hb.add(heartbeat_message("JUNO", "OFF", sent_time=t0.add_ns(10 * 60 * NS)), t0.add_ns(10 * 60 * NS).elapsed_ns)
    assert hb.online(t0.add_ns(10 * 60 * NS).elapsed_ns + NS) == []
    assert hb.online(last + NS) == ["JUNO"]  # the set online at an earlier time


# ------------------------------------------------------------------------------------------------ pointing
def test_triangulation_recovers_direction(tmp_path):
    t0 = UTCTime.parse("2030-03-01T04:00:00Z")
    dets = ["Super-K", "IceCube", "JUNO", "KM3NeT", "SNO+"]
    truth = (266.4, -29.0)
    tt = predicted_times(dets, radec_to_direction(*truth), t0)
    obs = {d: tt[d] + int(round(site(d).bias_s * NS)) for d in dets}  # as the detectors would report
    r = triangulate(obs, n_grid=20000)
    sep = math.degrees(math.acos(np.clip(radec_to_direction(r.ra_deg, r.dec_deg) @ radec_to_direction(*truth),
                                         -1, 1)))
    assert sep < 2.0 and r.contains(*truth, 0.68)
    assert 0 < r.area_deg2[0.68] < r.area_deg2[0.90] < 2000
    # without the Earth's rotation (times taken 6 h later) the fit must move by ~90 deg in RA
    t6 = {d: v + 6 * 3600 * NS for d, v in obs.items()}
    r6 = triangulate(t6, n_grid=20000)
    assert abs(((r6.ra_deg - r.ra_deg + 180) % 360) - 180) > 60
    png = tmp_path / "sky.png"
    plot_skymap(r, png, truth)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_pointing_bad_input():
    with pytest.raises(UnknownNameError, match="HALO-1kT"):
        site("HALO-1kT")
    with pytest.raises(ConfigError):
        triangulate({"JUNO": "2030-01-01T00:00:00Z"})


# ------------------------------------------------------------------------------------------------ auth
def test_signature_and_impersonation(keys):
    m = coincidence_message("XENONnT", "2030-01-01T00:00:00Z")
    det, text = open_envelope(sign(m.to_json(), "XENONnT", keys["XENONnT"]), keys)
    assert det == "XENONnT" and parse_message(text).uuid == m.uuid
    with pytest.raises(MessageRejected, match="MAC"):
        open_envelope(sign(m.to_json(), "XENONnT", keys["JUNO"]), keys)


def test_credentials_files(keyfiles, tmp_path):
    kr, creds = keyfiles
    assert set(load_keyring(kr)) == {"XENONnT", "DS-20K", "JUNO"}
    det, key = load_credentials(creds["JUNO"])
    assert det == "JUNO" and len(key) == 32 and load_keyring(kr)["JUNO"] == key
    os.chmod(kr, 0o644)
    with pytest.raises(CredentialError, match="0600"):
        load_keyring(kr)
    with pytest.raises(CredentialError, match="keyring"):
        load_keyring(None) if "CEVNS_ALERTS_KEYRING" not in os.environ else (_ for _ in ()).throw(
            CredentialError("keyring"))


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_never_crash_validation(raw):
    with pytest.raises(MessageRejected):
        parse_message(raw)


@pytest.mark.parametrize("depth", [11, 12, 13, 14, 40])
def test_nesting_limit_exact(depth):
    """Nesting up to MAX_JSON_DEPTH (12) below the top level passes, deeper is refused, whether the text holds
    just enough brackets to nest (the walk is skipped below 13 brackets) or brackets inside strings too."""
    from cevns.alerts.messages import MAX_JSON_DEPTH, MessageRejected, loads_strict
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    for text in ("[" * depth + "]" * depth, '{"s": "[[[[[[[[[[[[[[", "a": ' + inner + "}"):
        if depth - 1 <= MAX_JSON_DEPTH:
            loads_strict(text)
        else:
            with pytest.raises(MessageRejected, match="deeper than 12"):
                loads_strict(text)
