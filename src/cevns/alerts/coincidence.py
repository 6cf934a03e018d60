"""Coincidence engine: pure logic, no I/O, no clock (the caller passes ``now``).

Rule (issue 5; SNEWS 2.0 coincidence logic, arXiv:2011.00035 Sec. 4 and arXiv:2406.17743 Sec. 4, made
order-independent):

* Messages meet only messages of the same *channel* (real / test / firedrill / pre-SN never mix).
* A detector's message is **active** unless another message of the *same detector* with a later
  ``(sent_time_utc, uuid)`` has a neutrino time within the window of it ("a repeat from the same detector updates
  its entry").  This depends only on the set of messages, not on their arrival order.
* The coincidence **groups** are the maximal sets of active messages whose neutrino times fit inside one window
  ``[t, t + W]`` (inclusive, integer nanoseconds).  Two active messages of one detector are > W apart, so a
  group always holds distinct detectors.  For 1-D times the maximal sets are the windows starting at an active
  message whose member set is not contained in the window of the previous message (standard sweep).
* A retraction removes exactly the named message (by uuid) or the latest ``n`` active messages (by sent time) of
  the retracting detector in that channel; nothing else.  A message it had superseded becomes active again.
* Messages expire ``expiry`` after their receipt time (:meth:`CoincidenceEngine.expire`, run by the server on
  every message and on a timer; expiry emits no alert).
* Every change that alters a group with >= 2 detectors yields an :class:`Alert` (NEW / UPDATE / RETRACTION).
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from heapq import heappop, heappush

from cevns.errors import ConfigError

from .messages import Message
from .timeutil import NS, UTCTime

DEFAULT_WINDOW_NS = 10 * NS
DEFAULT_EXPIRY_NS = 48 * 3600 * NS


@dataclass(frozen=True)
class Entry:
    """One coincidence-tier message as the engine sees it."""

    uuid: str
    detector: str
    t_ns: int  # neutrino time, elapsed ns (leap-second aware)
    order: tuple  # (sent elapsed ns or -1, uuid): defines "later" for updates and retract_latest_n
    received_ns: int
    p_val: float | None = None

    @classmethod
    def from_message(cls, msg: Message, received_ns: int | None = None) -> "Entry":
        if msg.tier != "CoincidenceTier":
            raise ConfigError(f"coincidence engine takes CoincidenceTier messages, got {msg.tier}")
        t = msg.neutrino_time.elapsed_ns
        sent = msg.sent_time
        return cls(msg.uuid, msg.detector_name, t, (sent.elapsed_ns if sent else -1, msg.uuid),
                   t if received_ns is None else int(received_ns), msg.data.get("p_val"))


@dataclass(frozen=True)
class Alert:
    state: str  # NEW | UPDATE | RETRACTION
    channel: str
    detectors: tuple[str, ...]  # ordered by neutrino time
    uuids: tuple[str, ...]
    neutrino_times: tuple[str, ...]
    p_vals: tuple
    cause: str  # uuid of the message that triggered it
    previous_detectors: tuple[str, ...] = ()
    alert_id: str = field(default="")

    def __post_init__(self):
        if not self.alert_id:
            h = hashlib.sha256("|".join([self.state, self.channel, ",".join(self.uuids), self.cause,
                                         ",".join(self.previous_detectors)]).encode()).hexdigest()[:32]
            object.__setattr__(self, "alert_id", h)

    def to_dict(self) -> dict:
        return {"kind": "snews-coincidence-alert", "alert_id": self.alert_id, "state": self.state,
                "channel": self.channel, "detectors": list(self.detectors), "uuids": list(self.uuids),
                "neutrino_times_utc": list(self.neutrino_times), "p_vals": list(self.p_vals),
                "cause_uuid": self.cause, "previous_detectors": list(self.previous_detectors)}


def maximal_groups(entries: list[Entry], window_ns: int) -> list[tuple[Entry, ...]]:
    """Maximal sets of entries (sorted by time) fitting in one inclusive window. O(n)."""
    es = sorted(entries, key=lambda e: (e.t_ns, e.detector, e.uuid))
    out, j, prev_end = [], 0, -1
    for i, e in enumerate(es):
        j = max(j, i)
        while j + 1 < len(es) and es[j + 1].t_ns - e.t_ns <= window_ns:
            j += 1
        if j != prev_end:  # not contained in the previous start's window
            out.append(tuple(es[i:j + 1]))
        prev_end = j
    return out


class _Channel:
    """Entries of one channel.  The active set is kept explicitly, so the work per change is bounded by the
    entries of *one detector* near the changed time, not by everything stored (a flood from one detector is
    superseded as it arrives: in-order floods cost O(log n) per message)."""

    def __init__(self, window_ns: int):
        self.w = window_ns
        self.by_uuid: dict[str, Entry] = {}
        self.by_det: dict[str, list[tuple[int, str]]] = {}  # detector -> sorted (t_ns, uuid), all stored
        self.det_max: dict[str, tuple] = {}  # detector -> upper bound of the orders stored (fast path)
        self.active: set[str] = set()
        self.active_times: list[tuple[int, str]] = []  # sorted (t_ns, uuid) of active entries
        self.det_active: dict[str, list[tuple[int, str]]] = {}

    def det_entries(self, det: str) -> list[Entry]:
        return [self.by_uuid[u] for _, u in self.by_det.get(det, ())]

    def is_active(self, e: Entry) -> bool:
        return e.uuid in self.active

    def alive(self, uuid: str) -> bool:
        return uuid in self.active

    def _set(self, e: Entry, on: bool) -> None:
        key = (e.t_ns, e.uuid)
        if on and e.uuid not in self.active:
            self.active.add(e.uuid)
            insort(self.active_times, key)
            insort(self.det_active.setdefault(e.detector, []), key)
        elif not on and e.uuid in self.active:
            self.active.discard(e.uuid)
            del self.active_times[bisect_left(self.active_times, key)]
            lst = self.det_active[e.detector]
            del lst[bisect_left(lst, key)]
            if not lst:
                del self.det_active[e.detector]

    def active_between(self, lo: int, hi: int) -> list[Entry]:
        i = bisect_left(self.active_times, (lo, ""))
        j = bisect_right(self.active_times, (hi, "\uffff"))
        return [self.by_uuid[u] for _, u in self.active_times[i:j]]

    def groups_near(self, t: int) -> dict[frozenset, tuple[Entry, ...]]:
        """Groups (>= 2 detectors) whose start lies in [t - 3W, t + 2W]: all a change at t can affect."""
        return self.groups_near_many((t,))

    def groups_near_many(self, ts) -> dict[frozenset, tuple[Entry, ...]]:
        """The union of groups_near(t) over the times ts (ns), with one :meth:`groups_starting` pass per cluster
        of times less than 5W apart (their start ranges [t - 3W, t + 2W] then join into one)."""
        w = self.w
        ts = sorted(ts)
        out: dict[frozenset, tuple[Entry, ...]] = {}
        i = 0
        while i < len(ts):
            j = i
            while j + 1 < len(ts) and ts[j + 1] - ts[j] <= 5 * w:
                j += 1
            out.update(self.groups_starting(ts[i] - 3 * w, ts[j] + 2 * w))
            i = j + 1
        return out

    def groups_starting(self, lo: int, hi: int) -> dict[frozenset, tuple[Entry, ...]]:
        """Groups (>= 2 detectors) whose start (earliest time, ns) lies in [lo, hi].

        Exact: whether a maximal group starts at s, and its members, follow from the active entries in
        [s - W, s + W] alone (an entry more than W before s cannot share its window, one more than W after it
        cannot be in the group), so reading [lo - W, hi + W] suffices."""
        w = self.w
        es = self.active_between(lo - w, hi + w)
        if len(es) < 2:  # no group (the common case of a touch in an in-order stream)
            return {}
        return {frozenset(x.uuid for x in g): g for g in maximal_groups(es, w) if lo <= g[0].t_ns <= hi and len(g) >= 2}

    def _dominated(self, e: Entry) -> bool:
        """Is there a later (order) message of e's detector within one window of e?  Early exit."""
        lst = self.by_det.get(e.detector, ())
        i = bisect_left(lst, (e.t_ns - self.w, ""))
        while i < len(lst) and lst[i][0] <= e.t_ns + self.w:
            if self.by_uuid[lst[i][1]].order > e.order:
                return True
            i += 1
        return False

    def add(self, e: Entry) -> None:
        self.by_uuid[e.uuid] = e
        insort(self.by_det.setdefault(e.detector, []), (e.t_ns, e.uuid))
        bound = self.det_max.get(e.detector)
        if bound is None or e.order > bound:  # later than everything of this detector: active (fast path)
            self.det_max[e.detector] = e.order
            on = True
        else:
            on = not self._dominated(e)
        # e supersedes the (at most a few) active messages of its detector within one window that are older
        lst = self.det_active.get(e.detector, [])
        i = bisect_left(lst, (e.t_ns - self.w, ""))
        j = bisect_right(lst, (e.t_ns + self.w, "\uffff"))
        for _, u in lst[i:j]:
            if self.by_uuid[u].order < e.order:
                self._set(self.by_uuid[u], False)
        if on:
            self._set(e, True)

    def remove(self, uuid: str, recompute: bool = True) -> Entry:
        e = self.by_uuid[uuid]
        self._set(e, False)
        del self.by_uuid[uuid]
        lst = self.by_det[e.detector]
        del lst[bisect_left(lst, (e.t_ns, e.uuid))]
        if not lst:
            del self.by_det[e.detector]
            self.det_max.pop(e.detector, None)
        elif recompute:
            self.recompute(e.detector, e.t_ns - self.w, e.t_ns + self.w)
        return e

    def recompute(self, det: str, lo: int, hi: int) -> None:
        """Re-derive the active flag of det's entries with t in [lo, hi] (sliding-window maximum, O(k))."""
        lst = self.by_det.get(det)
        if not lst:
            return
        w = self.w
        seg = lst[bisect_left(lst, (lo - w, "")):bisect_right(lst, (hi + w, "\uffff"))]
        times = [t for t, _ in seg]
        orders = [self.by_uuid[u].order for _, u in seg]
        dq: collections.deque = collections.deque()
        right = 0
        for k, (t, u) in enumerate(seg):
            while right < len(seg) and times[right] <= t + w:
                while dq and orders[dq[-1]] <= orders[right]:
                    dq.pop()
                dq.append(right)
                right += 1
            while times[dq[0]] < t - w:
                dq.popleft()
            if lo <= t <= hi:
                self._set(self.by_uuid[u], orders[dq[0]] == orders[k])


def _uncovered(touched: list[int], lo: int, hi: int, r: int) -> tuple[int, int] | None:
    """Hull [lo', hi'] (ns) of the points of [lo, hi] farther than r from every time in the sorted list
    ``touched``; None if there are none."""
    i = bisect_left(touched, lo - r)
    while i < len(touched) and touched[i] - r <= lo:
        lo = max(lo, touched[i] + r + 1)
        i += 1
    j = bisect_right(touched, hi + r) - 1
    while j >= 0 and touched[j] + r >= hi:
        hi = min(hi, touched[j] - r - 1)
        j -= 1
    return (lo, hi) if lo <= hi else None


def _cause_of(touches: list[tuple[int, str]], w: int):
    """The cause of a group's alert: the last change (in processing order) of one of its members (a touch at a
    member's neutrino time: the member added, or the retraction that removed it), else the last change that can
    have altered the group (a touch within 2W of its start; see CoincidenceEngine._touch).  ``touches``:
    [(t_ns, uuid)] of a batch's changes in one channel, in processing order.  With one change per batch this is
    that message; in a batch it does not depend on unrelated messages (the batch's last message was named before,
    which made cause_uuid and alert_id depend on where the broker split the batches)."""
    last_at = {t: i for i, (t, _) in enumerate(touches)}

    def cause(g: tuple[Entry, ...]) -> str:
        if not touches:
            return ""
        i = max(last_at.get(x.t_ns, -1) for x in g)
        if i < 0:  # a group changed by losing a member (retraction, supersession): the last touch near its start
            near = [k for k, (t, _) in enumerate(touches) if abs(t - g[0].t_ns) <= 2 * w]
            i = near[-1] if near else len(touches) - 1
        return touches[i][1]
    return cause


def _diff(channel: str, before: dict, after: dict, touches: list[tuple[int, str]], w: int, alive) -> list[Alert]:
    """Alerts for groups (>= 2 detectors) that appeared, changed or lost members."""
    cause = _cause_of(touches, w)
    gone = {k: g for k, g in before.items() if k not in after}
    new = {k: g for k, g in after.items() if k not in before}

    def related(a: tuple[Entry, ...], b: tuple[Entry, ...]) -> bool:
        ua, ub = {x.uuid for x in a}, {x.uuid for x in b}
        if ua & ub:
            return True
        da = {x.detector: x.t_ns for x in a}
        return any(x.detector in da and abs(da[x.detector] - x.t_ns) <= w for x in b)

    def mk(state, g, prev=()):
        return Alert(state, channel, tuple(x.detector for x in g), tuple(x.uuid for x in g),
                     tuple(UTCTime(x.t_ns).isoformat() for x in g), tuple(x.p_val for x in g), cause(g),
                     tuple(prev))

    alerts = []
    matched_gone = set()
    for k, g in sorted(new.items(), key=lambda kv: (kv[1][0].t_ns, sorted(kv[0]))):
        olds = [(ko, go) for ko, go in gone.items() if related(g, go)]
        if not olds:
            alerts.append(mk("NEW", g))
            continue
        matched_gone.update(ko for ko, _ in olds)
        prev = sorted({x.detector for _, go in olds for x in go})
        cur = {x.detector for x in g}
        old_sets = [{x.uuid for x in go} for _, go in olds]
        shrunk = any({x.uuid for x in g} < s for s in old_sets) and not (cur - set(prev))
        alerts.append(mk("RETRACTION" if shrunk else "UPDATE", g, prev))
    for ko, go in sorted(gone.items(), key=lambda kv: (kv[1][0].t_ns, sorted(kv[0]))):
        if ko in matched_gone:
            continue
        # a group that fell below two detectors (or was superseded by nothing): retraction
        remaining = tuple(x for x in go if alive(x.uuid))
        alerts.append(Alert("RETRACTION", channel, tuple(x.detector for x in remaining),
                            tuple(x.uuid for x in remaining),
                            tuple(UTCTime(x.t_ns).isoformat() for x in remaining),
                            tuple(x.p_val for x in remaining), cause(go), tuple(x.detector for x in go)))
    return alerts


class CoincidenceEngine:
    """Holds the active coincidence-tier messages of every channel; returns alerts on each change.

    Changes made inside ``with engine.batch() as out:`` are diffed once at the end (``out`` then holds the
    alerts): a burst of updates to one group gives one alert per batch instead of one per message.
    """

    def __init__(self, window_s: float = 10.0, expiry_s: float = 48 * 3600.0):
        if not (window_s > 0) or window_s > 3600:
            raise ConfigError(f"coincidence window {window_s!r} s; allowed: 0 < window <= 3600 s")
        if not (expiry_s > 0):
            raise ConfigError(f"expiry {expiry_s!r} s; allowed: > 0")
        self.window_ns = int(round(window_s * NS))
        self.expiry_ns = int(round(expiry_s * NS))
        self.channels: dict[str, _Channel] = {}
        self._chan_of: dict[str, str] = {}
        self._by_receipt: list[tuple[int, str]] = []  # heap of (received_ns, uuid); stale items are skipped
        self._batch: dict | None = None

    def _ch(self, name: str) -> _Channel:
        if name not in self.channels:
            self.channels[name] = _Channel(self.window_ns)
        return self.channels[name]

    def __contains__(self, uuid: str) -> bool:
        return uuid in self._chan_of

    def __len__(self) -> int:
        return len(self._chan_of)

    def entry(self, uuid: str) -> Entry | None:
        name = self._chan_of.get(uuid)
        return None if name is None else self.channels[name].by_uuid.get(uuid)

    def is_active(self, uuid: str) -> bool:
        name = self._chan_of.get(uuid)
        return name is not None and uuid in self.channels[name].active

    # -- batching -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self):
        """Collect the changes of a block; the alerts (diffed once) are appended to the yielded list."""
        if self._batch is not None:
            raise ConfigError("engine batches do not nest")
        out: list[Alert] = []
        self._batch = {"before": {}, "affected": {}, "times": {}, "causes": {}}
        try:
            yield out
        finally:
            b, self._batch = self._batch, None
        for name in sorted(b["times"]):
            ch = self.channels[name]
            after = ch.groups_near_many(b["times"][name])  # nearby touches share one pass
            out += _diff(name, b["before"].get(name, {}), after, b["causes"][name], self.window_ns, ch.alive)

    def _touch(self, name: str, t: int, cause: str) -> None:
        """Before changing channel ``name`` at time t: remember the groups as they were at the batch start.

        A change at t can only alter groups starting in [t - 2W, t + 2W]; groups_near(t) covers [t - 3W, t + 2W].
        So a group seen now whose start is not within 2W of an earlier touched time is still as it was; one whose
        start is within 2W of one was snapshotted then, so only the starts in [t - 3W, t + 2W] not covered by
        earlier touches are read (in an in-order stream: next to none)."""
        b = self._batch
        if b is None or b.get("quiet"):
            return
        b["causes"].setdefault(name, []).append((t, cause))
        ch = self._ch(name)
        touched = b["affected"].setdefault(name, [])  # sorted touched times
        before = b["before"].setdefault(name, {})
        w = self.window_ns
        w2 = 2 * w
        span = _uncovered(touched, t - 3 * w, t + 2 * w, w2)  # starts not yet covered by an earlier touch
        for k, g in (ch.groups_starting(*span) if span else {}).items():
            s0 = g[0].t_ns
            i = bisect_left(touched, s0 - w2)
            if k not in before and not (i < len(touched) and touched[i] <= s0 + w2):
                before[k] = g
        insort(touched, t)
        b["times"].setdefault(name, []).append(t)

    def load(self, msgs_with_receipt) -> None:
        """Rebuild from archived messages [(msg, received_ns)] without computing alerts (server restart)."""
        if self._batch is not None:
            raise ConfigError("load() inside a batch")
        self._batch = {"quiet": True}
        try:
            for msg, rec in msgs_with_receipt:
                self.add(msg, rec)
        finally:
            self._batch = None

    def _single(self, fn):
        if self._batch is not None:
            fn()
            return []
        with self.batch() as out:
            fn()
        return out

    # -- changes ----------------------------------------------------------------------------------
    def add(self, msg: Message, received_ns: int | None = None) -> list[Alert]:
        """Add a CoincidenceTier message. A uuid already held is ignored (idempotent)."""
        if msg.uuid in self._chan_of:
            return []
        e = Entry.from_message(msg, received_ns)
        name = msg.channel

        def do():
            self._touch(name, e.t_ns, e.uuid)
            self._ch(name).add(e)
            self._chan_of[e.uuid] = name
            heappush(self._by_receipt, (e.received_ns, e.uuid))
        return self._single(do)

    def retract(self, msg: Message) -> tuple[list[str], list[Alert]]:
        """Apply a Retraction message; returns (removed uuids, alerts).

        Only messages of the retracting detector, in the retraction's channel, can be removed.
        """
        if msg.tier != "Retraction":
            raise ConfigError(f"retract() takes a Retraction message, got {msg.tier}")
        name, det = msg.channel, msg.detector_name
        ch = self.channels.get(name)
        if ch is None:
            return [], []
        target = msg.data.get("retract_message_uuid")
        if target is not None:
            e = ch.by_uuid.get(target)
            victims = [e] if e is not None and e.detector == det else []
        else:
            mine = sorted((ch.by_uuid[u] for _, u in ch.det_active.get(det, ())), key=lambda e: e.order)
            victims = mine[-int(msg.data["retract_latest_n"]):]

        def do():
            for e in victims:
                self._touch(name, e.t_ns, msg.uuid)
                ch.remove(e.uuid)
                del self._chan_of[e.uuid]
        return [e.uuid for e in victims], self._single(do)

    def expire(self, now_ns: int) -> list[str]:
        """Drop messages received more than ``expiry`` before ``now_ns``; returns the dropped uuids (oldest
        receipt first).  Cost: O(log n) per dropped message (receipt-time heap), not a scan of all held ones.

        Expiry emits no alert (outside a batch; inside one, the groups it ends are diffed with the rest)."""
        dropped = []
        span: dict[tuple[str, str], list[int]] = {}
        heap = self._by_receipt
        while heap and now_ns - heap[0][0] > self.expiry_ns:
            rec, u = heappop(heap)
            name = self._chan_of.get(u)
            e = None if name is None else self.channels[name].by_uuid[u]
            if e is None or e.received_ns != rec:  # retracted meanwhile (or held again, with its own item)
                continue
            self.channels[name].remove(u, recompute=False)
            del self._chan_of[u]
            dropped.append(u)
            span.setdefault((name, e.detector), []).append(e.t_ns)
        for (name, det), ts in span.items():
            self.channels[name].recompute(det, min(ts) - self.window_ns, max(ts) + self.window_ns)
        return dropped

    # -- queries ----------------------------------------------------------------------------------
    def groups(self, channel: str | None = None, min_size: int = 1) -> list[tuple[Entry, ...]]:
        """Final maximal groups (all channels unless one is named), ordered by earliest time."""
        out = []
        for name, ch in sorted(self.channels.items()):
            if channel is not None and name != channel:
                continue
            act = [ch.by_uuid[u] for _, u in ch.active_times]
            out += [g for g in maximal_groups(act, self.window_ns) if len(g) >= min_size]
        return out

    def groups_with(self, uuid: str) -> list[tuple[Entry, ...]]:
        """Current groups (>= 2 detectors) that contain the active message ``uuid``."""
        name = self._chan_of.get(uuid)
        if name is None:
            return []
        ch = self.channels[name]
        t = ch.by_uuid[uuid].t_ns
        return [g for g in ch.groups_near(t).values() if any(x.uuid == uuid for x in g)]

    def group_names(self, channel: str | None = None, min_size: int = 1) -> list[list[str]]:
        return [[e.detector for e in g] for g in self.groups(channel, min_size)]

    def active_messages(self) -> list[Entry]:
        return [ch.by_uuid[u] for ch in self.channels.values() for u in ch.active]
