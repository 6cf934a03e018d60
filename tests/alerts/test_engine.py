"""Coincidence engine: reference scenarios, order independence, updates, retractions, expiry, channels."""
from __future__ import annotations

import json
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cevns.alerts.coincidence import CoincidenceEngine, maximal_groups
from cevns.alerts.messages import coincidence_message, retraction_message
from cevns.alerts.replay import replay_file
from cevns.alerts.timeutil import NS, UTCTime
from cevns.errors import ConfigError

SCEN = resources.files("cevns.data.snews").joinpath("coincidence_scenarios.json")

# Derived by hand from the rule "maximal sets of distinct detectors within one inclusive 10 s window; a repeat
# from a detector updates its entry" (neutrino times in seconds after 12:30:00 / 12:34:00 given in comments).
EXPECTED = {
    "simple-coincidence": [{"XENONnT", "DS-20K"}],                        # 45.68, 47.68
    "exact-10s-coincidence": [{"XENONnT", "DUNE"}],                       # 45.68, 55.68: exactly 10 s, inclusive
    "two-coincidences": [{"Baksan", "JUNO"}, {"XENONnT", "DS-20K"}],      # 12:30:52/55 and 12:34:45/47
    "same-message-submitted-twice": [{"XENONnT"}],                        # update, no coincidence
    "same-detector-submits-within-1sec": [{"JUNO"}],                      # update, no coincidence
    "three-coincident-messages-out-of-order": [{"DUNE", "DS-20K", "XENONnT"}],  # 55, 47, 45
    # 10 B, 18 J, 19 I, 20 H, 21 N, 22 D, 29 X: windows [10,20], [18,28], [19,29] are the maximal ones
    "msg-at-10-19-21-22-20-29-18-seconds": [{"Borexino", "JUNO", "IceCube", "HALO"},
                                            {"JUNO", "IceCube", "HALO", "NOvA", "DS-20K"},
                                            {"IceCube", "HALO", "NOvA", "DS-20K", "XENONnT"}],
}


def test_seven_reference_scenarios():
    got = replay_file(SCEN)
    assert set(got) == set(EXPECTED)
    for sid, groups in got.items():
        assert [set(g) for g in groups] == EXPECTED[sid], sid


def test_window_is_inclusive_at_ns_precision():
    t = UTCTime.parse("2030-01-01T00:00:00Z")
    for dt, together in ((10 * NS, True), (10 * NS + 1, False)):
        eng = CoincidenceEngine()
        eng.add(coincidence_message("XENONnT", t))
        alerts = eng.add(coincidence_message("JUNO", t.add_ns(dt)))
        assert (len(alerts) == 1) is together
        assert len(eng.groups(min_size=2)) == (1 if together else 0)


def test_window_across_leap_second():
    """23:59:55 -> 00:00:04 across the 2016 leap second is 10 SI seconds: inside a 10 s window."""
    eng = CoincidenceEngine()
    eng.add(coincidence_message("XENONnT", "2016-12-31T23:59:55Z"))
    eng.add(coincidence_message("JUNO", "2017-01-01T00:00:04Z"))
    assert eng.group_names(min_size=2) == [["XENONnT", "JUNO"]]
    eng2 = CoincidenceEngine()
    eng2.add(coincidence_message("XENONnT", "2016-12-31T23:59:55Z"))
    eng2.add(coincidence_message("JUNO", "2017-01-01T00:00:05Z"))  # 11 SI seconds (10 in POSIX time)
    assert eng2.group_names(min_size=2) == []


def test_alert_states_new_update_retraction():
    t = UTCTime.parse("2030-01-01T00:00:00Z")
    eng = CoincidenceEngine()
    a = coincidence_message("XENONnT", t, sent_time="2030-01-01T00:01:00Z")
    assert eng.add(a) == []
    (n,) = eng.add(coincidence_message("JUNO", t.add_ns(2 * NS), sent_time="2030-01-01T00:01:01Z"))
    assert n.state == "NEW" and set(n.detectors) == {"XENONnT", "JUNO"}
    c = coincidence_message("DUNE", t.add_ns(3 * NS), sent_time="2030-01-01T00:01:02Z")
    (u,) = eng.add(c)
    assert u.state == "UPDATE" and len(u.detectors) == 3
    # a repeat from JUNO updates its entry (new time), still one group of three
    (u2,) = eng.add(coincidence_message("JUNO", t.add_ns(4 * NS), sent_time="2030-01-01T00:01:03Z"))
    assert u2.state == "UPDATE" and sorted(u2.detectors) == ["DUNE", "JUNO", "XENONnT"]
    removed, (r,) = eng.retract(retraction_message("DUNE", retract_uuid=c.uuid))
    assert removed == [c.uuid] and r.state == "RETRACTION" and sorted(r.detectors) == ["JUNO", "XENONnT"]
    assert len({x.alert_id for x in (n, u, u2, r)}) == 4


def test_alert_cause_is_the_groups_own_change_however_the_batches_fall():
    """cause_uuid (and with it alert_id) names the message that made the group's alert: the burst's later message,
    or the retraction; never another message that happened to share the batch (before: the batch's last one)."""
    t0 = UTCTime.parse("2030-01-01T00:00:00Z")
    dets = ["XENONnT", "JUNO", "DUNE", "HALO", "LVD", "KamLAND"]
    bursts = [(coincidence_message(dets[k % 6], t0.add_ns(14 * k * NS)),
               coincidence_message(dets[(k + 1) % 6], t0.add_ns(14 * k * NS + NS // 4))) for k in range(6)]
    msgs = [m for b in bursts for m in b]

    def run(cuts):
        eng, out = CoincidenceEngine(), []
        for a, b in zip([0, *cuts], [*cuts, len(msgs)]):
            with eng.batch() as alerts:
                for m in msgs[a:b]:
                    eng.add(m)
            out += alerts
        return eng, out
    _, single = run(list(range(1, len(msgs))))
    assert [a.cause for a in single] == [b.uuid for _, b in bursts]  # independent reference: who completed it
    for cuts in ([], [3, 7], [2, 4, 6, 8, 10]):
        eng, got = run(cuts)
        assert sorted((a.alert_id, a.cause) for a in got) == sorted((a.alert_id, a.cause) for a in single), cuts
    far = coincidence_message("DUNE", t0.add_ns(3600 * NS))
    r = retraction_message(bursts[2][0].detector_name, retract_uuid=bursts[2][0].uuid)
    with eng.batch() as alerts:
        eng.retract(r)
        eng.add(far)
    assert [(a.state, a.cause) for a in alerts] == [("RETRACTION", r.uuid)]
    # a group of three that loses one: the alert for the two left names the retraction, not the unrelated message
    trio = [coincidence_message(d, t0.add_ns(7200 * NS + k * NS)) for k, d in enumerate(("SNO+", "LVD", "Super-K"))]
    for m in trio:
        eng.add(m)
    r2 = retraction_message("LVD", retract_uuid=trio[1].uuid)
    with eng.batch() as alerts:
        eng.retract(r2)
        eng.add(coincidence_message("DUNE", t0.add_ns(9000 * NS)))
    assert [(a.state, a.cause) for a in alerts] == [("RETRACTION", r2.uuid)] and alerts[0].detectors == ("SNO+",
                                                                                                       "Super-K")


def test_retraction_removes_only_named_message():
    eng = CoincidenceEngine()
    t = UTCTime.parse("2030-01-01T00:00:00Z")
    mine = [coincidence_message("XENONnT", t.add_ns(k * 3600 * NS), sent_time=t.add_ns(k * NS)) for k in range(3)]
    for m in mine:
        eng.add(m)
    eng.add(coincidence_message("JUNO", t.add_ns(NS)))
    removed, _ = eng.retract(retraction_message("XENONnT", retract_uuid=mine[1].uuid))
    assert removed == [mine[1].uuid]
    assert mine[0].uuid in eng and mine[2].uuid in eng and len(eng) == 3
    removed, alerts = eng.retract(retraction_message("XENONnT", latest_n=1))
    assert removed == [mine[2].uuid] and mine[0].uuid in eng
    # another detector cannot retract XENONnT's message
    removed, _ = eng.retract(retraction_message("JUNO", retract_uuid=mine[0].uuid))
    assert removed == [] and mine[0].uuid in eng


def test_expiry_runs_and_drops_only_old():
    eng = CoincidenceEngine(expiry_s=3600)
    t = UTCTime.parse("2030-01-01T00:00:00Z")
    old = coincidence_message("XENONnT", t)
    new = coincidence_message("JUNO", t.add_ns(2 * NS))
    eng.add(old, received_ns=t.elapsed_ns)
    eng.add(new, received_ns=t.elapsed_ns + 1800 * NS)
    assert eng.expire(t.elapsed_ns + 3000 * NS) == []
    assert eng.expire(t.elapsed_ns + 3601 * NS) == [old.uuid]
    assert old.uuid not in eng and new.uuid in eng


def test_test_and_firedrill_never_mix_with_real():
    t = UTCTime.parse("2030-01-01T00:00:00Z")
    eng = CoincidenceEngine()
    assert eng.add(coincidence_message("XENONnT", t)) == []
    assert eng.add(coincidence_message("JUNO", t, is_test=True)) == []
    assert eng.add(coincidence_message("DUNE", t, is_firedrill=True)) == []
    assert eng.groups(min_size=2) == []
    (a,) = eng.add(coincidence_message("HALO", t, is_test=True))
    assert a.channel == "test" and sorted(a.detectors) == ["HALO", "JUNO"]


def test_bad_config():
    with pytest.raises(ConfigError, match="window"):
        CoincidenceEngine(window_s=0)
    with pytest.raises(ConfigError, match="expiry"):
        CoincidenceEngine(expiry_s=-1)


def _brute_force(times: list[tuple[str, int]], w: int) -> set[frozenset]:
    """Definition: maximal subsets (of message ids) fitting in one window, checked over all window starts."""
    cands = {frozenset(u for u, t in times if s <= t <= s + w) for _, s in times}
    return {c for c in cands if not any(c < o for o in cands)}


events = st.lists(st.tuples(st.sampled_from(["XENONnT", "JUNO", "DUNE", "HALO", "LVD", "Baksan", "KamLAND"]),
                            st.integers(0, 40), st.integers(0, 999)), min_size=1, max_size=9)


@settings(max_examples=60, deadline=None)
@given(events, st.randoms(use_true_random=False))
def test_any_arrival_order_gives_same_final_groups(evs, rnd):
    t0 = UTCTime.parse("2030-01-01T00:00:00Z")
    msgs = [coincidence_message(d, t0.add_ns(s * NS + ms * 1_000_000), sent_time=t0.add_ns(k * 1000))
            for k, (d, s, ms) in enumerate(evs)]
    e1 = CoincidenceEngine()
    for m in msgs:
        e1.add(m)
    shuffled = msgs[:]
    rnd.shuffle(shuffled)
    e2 = CoincidenceEngine()
    for m in shuffled:
        e2.add(m)
    g1 = {frozenset(e.uuid for e in g) for g in e1.groups()}
    g2 = {frozenset(e.uuid for e in g) for g in e2.groups()}
    assert g1 == g2
    # and they are the maximal-window sets of the active (latest-per-detector-within-window) messages
    act = e1.active_messages()
    assert g1 == _brute_force([(e.uuid, e.t_ns) for e in act], e1.window_ns)
    # the active set: no detector has two active messages within one window
    for a in act:
        assert not any(b.detector == a.detector and b.uuid != a.uuid and abs(b.t_ns - a.t_ns) <= e1.window_ns
                       for b in act)
    for g in e1.groups():  # distinct detectors per group
        assert len({e.detector for e in g}) == len(g)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 10**12), min_size=1, max_size=30), st.integers(1, 10**11))
def test_maximal_groups_matches_definition(ts, w):
    from cevns.alerts.coincidence import Entry
    es = [Entry(f"u{i}", f"d{i}", t, (0, f"u{i}"), 0) for i, t in enumerate(ts)]
    got = {frozenset(e.uuid for e in g) for g in maximal_groups(es, w)}
    cands = {frozenset(e.uuid for e in es if s.t_ns <= e.t_ns <= s.t_ns + w) for s in es}
    assert got == {c for c in cands if not any(c < o for o in cands)}


def test_replay_cli_writes_groups(tmp_path):
    from cevns.cli import main
    out = tmp_path / "groups.json"
    assert main(["alerts", "replay", str(SCEN), "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert {k: [set(g) for g in v] for k, v in got.items()} == EXPECTED


@settings(max_examples=150, deadline=None)
@given(events, st.lists(st.tuples(st.integers(0, 8), st.integers(-12, 12), st.integers(-1, 1)), min_size=1, max_size=6))
def test_groups_near_many_is_the_union_of_neighbourhoods(evs, touched):
    """One pass per cluster of touched times gives exactly the groups (>= 2) whose start lies within
    [t - 3W, t + 2W] of some touched t.  Touched times sit at half-window steps (+-1 ns) from the messages, so
    groups start right at the edges of the ranges read; clusters both join and stay apart."""
    t0 = UTCTime.parse("2030-01-01T00:00:00Z")
    eng = CoincidenceEngine(window_s=0.3)
    times = []
    for k, (d, s, ms) in enumerate(evs):
        times.append(t0.add_ns(s * NS // 10 + ms * 1_000_000))
        eng.add(coincidence_message(d, times[-1], sent_time=t0.add_ns(k * 1000)))
    w = eng.window_ns
    ts = [times[i % len(times)].elapsed_ns + h * w // 2 + eps for i, h, eps in touched]
    for ch in eng.channels.values():
        act = [ch.by_uuid[u] for u in ch.active]
        start = {e.uuid: e.t_ns for e in act}
        want = {g for g in _brute_force([(e.uuid, e.t_ns) for e in act], w)
                if len(g) >= 2 and any(t - 3 * w <= min(start[u] for u in g) <= t + 2 * w for t in ts)}
        assert set(ch.groups_near_many(ts)) == want


def test_groups_near_many_at_the_edges():
    """Starts exactly at t - 3W and t + 2W: the group at t - 3W is not maximal (an entry 0.1 s earlier shares
    its end), and the group at t + 2W reaches to t + 3W; both need the full range read."""
    t0 = UTCTime.parse("2030-01-01T00:00:00Z")
    eng = CoincidenceEngine(window_s=0.3)
    dets = ["JUNO", "DUNE", "HALO"]
    for k, (d, dt) in enumerate(zip(dets, (0, 100_000_000, 200_000_000))):
        eng.add(coincidence_message(d, t0.add_ns(dt), sent_time=t0.add_ns(k)))
    ch, w = eng.channels["real"], eng.window_ns
    full = {frozenset(ch.by_uuid)}
    assert set(ch.groups_near_many([t0.elapsed_ns + 100_000_000 + 3 * w])) == set()  # only the non-maximal one
    assert set(ch.groups_near_many([t0.elapsed_ns + 2 * w])) == full              # t - 3W = the first entry
    assert set(ch.groups_near_many([t0.elapsed_ns - 2 * w])) == full              # t + 2W = the first entry


def _all_groups(ch) -> dict:
    """Every group (>= 2 detectors) of a channel, keyed like the engine's batch snapshots."""
    act = [ch.by_uuid[u] for _, u in ch.active_times]
    return {frozenset(e.uuid for e in g): g for g in maximal_groups(act, ch.w) if len(g) >= 2}


grid_events = st.lists(st.tuples(st.sampled_from(["XENONnT", "JUNO", "DUNE", "HALO", "LVD"]), st.integers(0, 24),
                                 st.integers(-1, 1)), min_size=1, max_size=10)


@settings(max_examples=300, deadline=None)
@given(grid_events, grid_events, st.lists(st.integers(0, 20), max_size=3), st.integers(-3, 3))
def test_batch_alerts_are_the_diff_of_all_groups(first, later, retract, sent_shift):
    """A batch snapshots only the groups near the times it touches (not those an earlier touch covered); its
    alerts must equal the diff of *all* groups before and after the batch (adds with earlier and later sent
    times, named retractions).  Neutrino times on a W/4 grid (+-1 ns) put group starts at the range edges."""
    from cevns.alerts.coincidence import _diff
    t0 = UTCTime.parse("2030-01-01T00:00:00Z")
    eng = CoincidenceEngine(window_s=0.3)
    w = eng.window_ns

    def msg(k, d, q, eps):
        return coincidence_message(d, t0.add_ns(q * w // 4 + eps), sent_time=t0.add_ns(1000 * k + sent_shift * 1500))
    held = [msg(k, *ev) for k, ev in enumerate(first)]
    for m in held:
        eng.add(m)
    before = {n: _all_groups(ch) for n, ch in eng.channels.items()}
    ops = [msg(len(first) + k, *ev) for k, ev in enumerate(later)]
    ops += [retraction_message(held[i % len(held)].detector_name, retract_uuid=held[i % len(held)].uuid)
            for i in retract]
    with eng.batch() as out:
        for m in ops:
            if m.tier == "Retraction":
                eng.retract(m)
            else:
                eng.add(m)
    want = []
    for n, ch in sorted(eng.channels.items()):
        want += _diff(n, before.get(n, {}), _all_groups(ch), [], w, ch.alive)
    assert [(a.state, a.uuids, a.previous_detectors) for a in out] == \
           [(a.state, a.uuids, a.previous_detectors) for a in want]


@settings(max_examples=150, deadline=None)
@given(grid_events, st.lists(st.integers(0, 9), max_size=10), st.lists(st.integers(0, 20), max_size=3),
       st.lists(st.integers(0, 12), min_size=1, max_size=3))
def test_expiry_drops_exactly_the_old_ones(evs, receipts, retract, nows):
    """Expiry by the receipt-time heap drops exactly the held messages received more than ``expiry`` ago (any
    receipt order, retracted ones skipped), and leaves the groups of an engine fed only the survivors."""
    t0 = UTCTime.parse("2030-01-01T00:00:00Z")
    eng = CoincidenceEngine(window_s=0.3, expiry_s=5)
    msgs, rec = [], {}
    for k, (d, q, eps) in enumerate(evs):
        m = coincidence_message(d, t0.add_ns(q * eng.window_ns // 4 + eps), sent_time=t0.add_ns(1000 * k))
        rec[m.uuid] = t0.elapsed_ns + receipts[k % len(receipts)] * NS if receipts else t0.elapsed_ns
        eng.add(m, received_ns=rec[m.uuid])
        msgs.append(m)
    for i in retract:
        eng.retract(retraction_message(msgs[i % len(msgs)].detector_name, retract_uuid=msgs[i % len(msgs)].uuid))
    for s in sorted(nows):
        now = t0.elapsed_ns + s * NS
        held = {m.uuid for m in msgs if m.uuid in eng}
        gone = eng.expire(now)
        assert sorted(gone) == sorted(u for u in held if now - rec[u] > eng.expiry_ns)
        fresh = CoincidenceEngine(window_s=0.3, expiry_s=5)
        for m in msgs:
            if m.uuid in eng:
                fresh.add(m, received_ns=rec[m.uuid])
        assert {frozenset(e.uuid for e in g) for g in eng.groups()} == \
               {frozenset(e.uuid for e in g) for g in fresh.groups()}
