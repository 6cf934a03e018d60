"""The coincidence server: consume signed observations, run the engine, publish signed alerts.

Processing of a batch is one SQLite transaction (archive + alerts); broker offsets are acknowledged only after
it commits, so a crash or broker outage can cause redelivery but never loss, and redelivered messages are
recognised by uuid (exactly-once processing).  In a flood, the next batch is polled and handed to the validation
worker before the current one is applied; it is acknowledged only after its own transaction.  Inside the batch each message has its own savepoint: a message
that fails *processing* (after it passed validation) is rolled back, written to the ``dead_letters`` table with
its reason, and the server moves on; no single message can stop it.  Every refused message is logged
(``cevns.alerts.server`` logger, WARNING) with its reason and recorded in the archive; nothing received is ever
unpickled or evaluated.

Checks beyond the message schema (``plausibility``): neutrino times within ``[now - max_age, now + skew]`` of the
server clock (SNEWS: 48 h back, none in the future; test-channel messages are exempt, as in SNEWS), no
``sent_time_utc`` later than ``now + skew``, a uuid reused with different content is refused, a retraction of
another detector's message is refused, and a retraction that arrives before its target is held (state
``pending``) until the target arrives (which is then retracted on arrival) or the retraction expires.

Alerts carry the false-alarm rate of "any k of the N detectors online" (N from the heartbeat monitor, at least the
alert's own detectors), the rate of the specific set as a secondary field, a combined significance when group
detectors sent SignificanceTier messages, and a pointing estimate once three or more group detectors with known
locations sent TimingTier messages.
"""
from __future__ import annotations

import collections
import hashlib
import json
import logging
import math
import os
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field

from cevns.errors import CevnsError

from . import far
from .archive import Archive
from .auth import AlertSigner, open_alert, sign
from .coincidence import Alert, CoincidenceEngine, Entry
from .heartbeats import HeartbeatMonitor
from .messages import MAX_PAYLOAD_BYTES, Message, MessageRejected
from .prevalidate import OK, REJECTED, Prevalidator, check_plausible, message_from, validate
from .timeutil import NS, UTCTime
from .transport import DEFAULT_ALERT_TOPIC, DEFAULT_OBS_TOPIC, Transport, TransportError

log = logging.getLogger("cevns.alerts.server")


@dataclass
class Outcome:
    status: str  # accepted | duplicate | rejected | dead-letter
    uuid: str | None = None
    code: str | None = None
    reason: str | None = None
    alerts: list = field(default_factory=list)


class Publisher:
    """Detector-side client: signs messages with the detector's key and publishes them."""

    def __init__(self, transport: Transport, detector: str, key: bytes, topic: str = DEFAULT_OBS_TOPIC):
        self.t, self.detector, self.key, self.topic = transport, detector, key, topic

    def envelope(self, msg: Message) -> bytes:
        return sign(msg.to_json(), self.detector, self.key)

    def send(self, msg: Message, on_delivery=None) -> bytes:
        if msg.detector_name != self.detector:
            raise MessageRejected("impersonation", f"credentials are for {self.detector!r}; cannot publish as "
                                                   f"{msg.detector_name!r}")
        env = self.envelope(msg)
        self.t.publish(self.topic, env, on_delivery=on_delivery)
        return env


def fisher_combined(p_values: list[float]) -> float:
    """Fisher's method: X = -2 sum ln p_i ~ chi2(2k); P(chi2_2k > X) = exp(-X/2) sum_{j<k} (X/2)^j / j!
    (R. A. Fisher, Statistical Methods for Research Workers, 4th ed. 1932, Sec. 21.1)."""
    k = len(p_values)
    if k == 0:
        raise ValueError("no p-values")
    if any(p <= 0 for p in p_values):
        return 0.0
    half = -sum(math.log(p) for p in p_values)  # X / 2
    term, total = 1.0, 1.0
    for j in range(1, k):
        term *= half / j
        total += term
    return min(1.0, math.exp(-half) * total)


def sidak(p_min: float, n_trials: int) -> float:
    """Trials-corrected p of the smallest of n independent p-values: 1 - (1 - p_min)^n (Sidak 1967)."""
    return -math.expm1(n_trials * math.log1p(-p_min)) if p_min < 1 else 1.0


def p_to_sigma(p: float) -> float:
    """One-sided Gaussian equivalent z with P(Z > z) = p."""
    from scipy.special import ndtri
    return float(ndtri(1.0 - p)) if p > 1e-300 else 37.0


class AlertServer:
    def __init__(self, transport: Transport, keyring: dict[str, bytes], archive: Archive | None = None, *,
                 obs_topic: str = DEFAULT_OBS_TOPIC, alert_topic: str = DEFAULT_ALERT_TOPIC,
                 window_s: float = 10.0, expiry_s: float = 48 * 3600.0, max_bytes: int = MAX_PAYLOAD_BYTES,
                 imitation_rate_hz: float = 1.0 / far.SECONDS_PER_WEEK, clock=None, alert_key: bytes | None = None,
                 max_age_s: float = 48 * 3600.0, clock_skew_s: float = 1.0,
                 heartbeat_retention_s: float = 24 * 3600.0, heartbeat_min_interval_s: float = 1.0,
                 heartbeat_stale_s: float = 3600.0, pointing_grid: int = 12288, parallel_min_batch: int = 200):
        if not (max_age_s > 0) or not (clock_skew_s >= 0):
            raise CevnsError(f"max_age_s={max_age_s!r}, clock_skew_s={clock_skew_s!r}; allowed: > 0 and >= 0 s")
        self.t, self.keyring = transport, keyring
        self.archive = archive or Archive(":memory:")
        self.obs_topic, self.alert_topic = obs_topic, alert_topic
        self.engine = CoincidenceEngine(window_s, expiry_s)
        self.hearts = HeartbeatMonitor(retention_s=heartbeat_retention_s, min_interval_s=heartbeat_min_interval_s,
                                       stale_s=heartbeat_stale_s)
        self.max_bytes = max_bytes
        self.imitation_rate_hz = imitation_rate_hz
        self.max_age_ns, self.skew_ns = int(max_age_s * NS), int(clock_skew_s * NS)
        self.pointing_grid = pointing_grid
        self.clock = clock or (lambda: UTCTime.now().elapsed_ns)
        self.signer = AlertSigner(alert_key if alert_key is not None else secrets.token_bytes(32))
        self.alert_public_key = self.signer.public_key
        self.stats = collections.Counter()
        self.rejected_codes = collections.Counter()
        self._pending_acks: list[bytes] = []
        self._pending_retractions: dict[str, tuple[Message, int]] = {}  # target uuid -> (retraction, received)
        self._tiers: dict[tuple[str, str, str], dict[str, tuple[Message, int]]] = {}  # (tier, chan, det) -> msgs
        self._tier_touched: dict = {}
        self._pointing_cache: dict = {}
        self._in_flight: set[str] = set()
        self._published: collections.deque[str] = collections.deque()  # acknowledged alert_ids (any thread)
        self._sender: _AlertSender | None = None  # run(): alerts are signed and published in their own thread
        self._online_cache: tuple = (None, set(), "")  # (now, online detectors, now as ISO text)
        self._far_cache: dict[tuple[int, int], dict] = {}
        self._last_warn: dict[str, float] = {}
        self.rebuild_s = 0.0
        self.ready = threading.Event()  # set by run() once it is subscribed to the observation topic
        # batches of >= parallel_min_batch payloads are verified and validated in a worker process (run() starts
        # it on a multi-core machine; start_workers()); smaller batches, and everything without a worker, in
        # process: same function, same outcomes
        self.parallel_min_batch = parallel_min_batch
        self.prevalidator: Prevalidator | None = None
        self._auto_workers = False  # run(): the worker is started with the server (multi-core only), in the
        # background, so that it is ready before the first burst (spawning it at the first large batch cost that
        # burst ~0.3-1 CPU-s on a 2-core machine, taken from validation: ~15 % of a 20,000-message stream)
        self._rebuild()

    # -- persistence --------------------------------------------------------------------------------
    def _rebuild(self) -> None:
        """Restart: engine from active coincidence messages; only recent heartbeats (cost independent of history)."""
        t0 = time.perf_counter()
        now = self.clock()
        coinc = [(Message(tier, json.loads(body)), rec)
                 for _, _, tier, _, rec, body, _ in self.archive.messages_since("CoincidenceTier", "active", 0)]
        self.engine.load(coinc)
        n_hb = 0
        for _, _, tier, _, rec, body, _ in self.archive.latest_per_detector(
                "Heartbeat", "active", now - self.hearts.retention_ns, self.hearts.max_beats + 1):
            msg = Message(tier, json.loads(body))
            if "connection_test" not in (msg.data.get("meta") or {}):
                self.hearts.add(msg, rec)
                n_hb += 1
        n_t = 0
        for tier in ("SignificanceTier", "TimingTier"):
            for _, _, tr, _, rec, body, _ in self.archive.messages_since(tier, "stored", now - self.engine.expiry_ns):
                self._tier_add(Message(tr, json.loads(body)), rec)
                n_t += 1
        for _, _, tr, _, rec, body, _ in self.archive.messages_since("Retraction", "pending", 0):
            m = Message(tr, json.loads(body))
            self._pending_retractions[m.data["retract_message_uuid"]] = (m, rec)
        self.rebuild_s = time.perf_counter() - t0
        if coinc or n_hb or n_t or self._pending_retractions:
            log.info("rebuilt state from archive in %.2f s: %d active coincidence message(s), %d recent "
                     "heartbeat(s), %d significance/timing message(s), %d pending retraction(s)", self.rebuild_s,
                     len(coinc), n_hb, n_t, len(self._pending_retractions))

    def carried_over(self) -> dict:
        """What an earlier session left in the archive (for the CLI's start-up line)."""
        return {"active_messages": len(self.engine), "archived_messages": self.archive.count_messages(),
                "alerts": len(self.archive.alerts()), "pending_retractions": len(self._pending_retractions)}

    # -- processing ---------------------------------------------------------------------------------
    def _warn(self, key: str, text: str, *args) -> None:
        """WARNING, at most once per second per key (floods must not flood the log)."""
        now = time.monotonic()
        if now - self._last_warn.get(key, 0.0) >= 1.0:
            self._last_warn[key] = now
            log.warning(text, *args)

    def _reject(self, raw: bytes, now: int, exc: MessageRejected) -> Outcome:
        digest = hashlib.sha256(raw if isinstance(raw, (bytes, bytearray)) else repr(raw).encode()).hexdigest()
        size = len(raw) if isinstance(raw, (bytes, bytearray)) else -1
        msg = "rejected message (sha256 %s, %d bytes) [%s]: %s"
        if exc.code == "rate-limited":
            self._warn("rate-limited", msg, digest[:16], size, exc.code, exc.reason)
        else:
            log.warning(msg, digest[:16], size, exc.code, exc.reason)
        self.archive.add_rejection(now, exc.code, exc.reason, digest, size)
        self.stats["rejected"] += 1
        self.rejected_codes[exc.code] += 1
        return Outcome("rejected", code=exc.code, reason=exc.reason)

    def _plausible(self, msg: Message, now: int) -> None:
        check_plausible(msg, now, self.max_age_ns, self.skew_ns)

    def _handle(self, raw: bytes, now: int, pre=None) -> Outcome:
        """``pre``: the worker's validation result for ``raw`` (prevalidate.validate_many), else None."""
        if pre is not None and pre[0] == OK:
            msg = message_from(*pre[1:])
        elif pre is not None and pre[0] == REJECTED:
            return self._reject(raw, now, MessageRejected(pre[1], pre[2]))
        else:
            try:
                msg = validate(raw, self.keyring, self.max_bytes, now, self.max_age_ns, self.skew_ns)
            except MessageRejected as exc:
                return self._reject(raw, now, exc)
        try:
            return self._apply(msg, raw, now)
        except MessageRejected as exc:
            return self._reject(raw, now, exc)

    def _apply(self, msg: Message, raw: bytes, now: int) -> Outcome:
        # 1. refusals that change nothing
        hb_key = None
        if msg.tier == "Heartbeat":
            meta = msg.data.get("meta") or {}
            hb_key = msg.detector_name + ("/connection-test" if "connection_test" in meta else "")
            if not self.hearts.allow(hb_key, now):
                raise MessageRejected("rate-limited", f"heartbeat from {msg.detector_name} less than "
                                                      f"{self.hearts.min_interval_ns / NS:g} s after the previous one")
        target_row = None
        if msg.tier == "Retraction" and msg.data.get("retract_message_uuid") is not None:
            target = msg.data["retract_message_uuid"]
            target_row = self.archive.message_row(target)
            if target_row is not None and target_row[0] != msg.detector_name:
                raise MessageRejected("foreign-retraction", f"{msg.detector_name} tried to retract {target}, a "
                                                            f"message of {target_row[0]}; a detector may only "
                                                            "retract its own messages")
            if target_row is None and target in self._pending_retractions:
                raise MessageRejected("bad-retraction", f"a retraction of {target} is already held")
        # 2. exactly once: the uuid is the key (a redelivery is a duplicate, new content under it is refused)
        body = msg.to_json()
        state = {"CoincidenceTier": "active", "Heartbeat": "active"}.get(msg.tier, "stored")
        if not self.archive.add_message(msg.uuid, msg.detector_name, msg.tier, msg.channel, now, body, state):
            row = self.archive.message_row(msg.uuid)
            if row is not None and row[3] != body:
                raise MessageRejected("uuid-reuse", f"uuid {msg.uuid} was already used by a message with different "
                                                    "content; a new message needs a new uuid")
            self.archive.bump("duplicates")
            self.stats["duplicates"] += 1
            return Outcome("duplicate", uuid=msg.uuid)
        # 3. effects
        pend = self._pending_retractions.get(msg.uuid)
        if pend is not None and pend[0].detector_name != msg.detector_name:
            del self._pending_retractions[msg.uuid]
            self.archive.set_state([pend[0].uuid], "rejected")
            self.rejected_codes["foreign-retraction"] += 1
            log.warning("held retraction %s by %s named %s, which turned out to be a message of %s: refused "
                        "(a detector may only retract its own messages)", pend[0].uuid, pend[0].detector_name,
                        msg.uuid, msg.detector_name)
            pend = None
        if msg.tier == "Heartbeat":
            if hb_key != msg.detector_name:  # connection test: acknowledge, count for the rate limit only
                self.hearts.note(hb_key, now)
                self._pending_acks.append(json.dumps(
                    {"kind": "connection-test-ack", "detector": msg.detector_name,
                     "nonce": str(msg.data["meta"]["connection_test"])[:64], "uuid": msg.uuid}).encode())
            else:
                self.hearts.add(msg, now)
        elif msg.tier == "Retraction":
            if self._retract(msg, now, target_row) == "pending":
                self.archive.set_state([msg.uuid], "pending")
        elif pend is not None:  # its retraction arrived first
            self.archive.set_state([msg.uuid], "retracted")
            self._resolve_pending(msg, now)
        elif msg.tier == "CoincidenceTier":
            self.engine.add(msg, now)
        elif msg.tier in ("SignificanceTier", "TimingTier"):
            self._tier_add(msg, now)
            self._tier_touched[(msg.channel, msg.detector_name)] = msg.uuid
        self.stats["accepted"] += 1
        return Outcome("accepted", uuid=msg.uuid)

    def _resolve_pending(self, target: Message, now: int) -> None:
        r, _ = self._pending_retractions.pop(target.uuid)
        self.archive.set_state([r.uuid], "stored")
        log.info("held retraction %s by %s applied to %s on its arrival", r.uuid, r.detector_name, target.uuid)
        self.stats["pending_resolved"] += 1

    def _retract(self, msg: Message, now: int, row) -> str:
        """Apply a retraction (its target row already checked); returns 'stored' or 'pending'."""
        det, target = msg.detector_name, msg.data.get("retract_message_uuid")
        if target is None:
            removed, _ = self.engine.retract(msg)
            self.archive.set_state(removed, "retracted")
            log.info("retraction %s by %s removed %s", msg.uuid, det, removed)
            return "stored"
        if row is None:
            self._pending_retractions[target] = (msg, now)
            self.stats["pending_retractions"] += 1
            log.info("retraction %s by %s names unknown message %s: held until it arrives or expires",
                     msg.uuid, det, target)
            return "pending"
        _, ttier, tstate, _ = row
        if ttier == "CoincidenceTier":
            removed, _ = self.engine.retract(msg)
            self.archive.set_state(removed, "retracted")
        elif ttier in ("SignificanceTier", "TimingTier"):
            if self._tier_remove(target):
                self._tier_touched[(msg.channel, det)] = msg.uuid
            self.archive.set_state([target], "retracted")
        log.info("retraction %s by %s removed %s (%s, was %s)", msg.uuid, det, target, ttier, tstate)
        return "stored"

    # -- significance / timing tiers -----------------------------------------------------------------
    def _tier_add(self, msg: Message, received: int) -> None:
        self._tiers.setdefault((msg.tier, msg.channel, msg.detector_name), {})[msg.uuid] = (msg, received)

    def _tier_remove(self, uuid: str) -> bool:
        for d in self._tiers.values():
            if d.pop(uuid, None) is not None:
                return True
        return False

    def _significance(self, channel: str, group: tuple[Entry, ...]) -> dict | None:
        """Fisher combination of the group detectors' latest SignificanceTier p-values (Sidak per detector)."""
        per = {}
        for e in group:
            msgs = self._tiers.get(("SignificanceTier", channel, e.detector))
            if not msgs:
                continue
            m, _ = max(msgs.values(), key=lambda mr: mr[1])
            pv = m.data["p_values"]
            per[e.detector] = sidak(min(pv), len(pv))
        if not per:
            return None
        p = fisher_combined(list(per.values()))
        return {"p_value": p, "sigma": p_to_sigma(p), "detectors": sorted(per), "per_detector_p": per,
                "method": "Fisher combination of per-detector minimum p-values, Sidak-corrected for the number of "
                          "time bins"}

    def _pointing(self, channel: str, group: tuple[Entry, ...]) -> dict | None:
        """Triangulation from TimingTier neutrino times of group detectors (>= 3 with known locations)."""
        if sum(1 for e in group if self._tiers.get(("TimingTier", channel, e.detector))) < 3:
            return None  # the common case, decided before any import or scan
        from cevns.errors import UnknownNameError

        from .pointing import consistency, site, triangulate
        times, uuids = {}, []
        for e in group:
            msgs = self._tiers.get(("TimingTier", channel, e.detector), {})
            near = [(m, r) for m, r in msgs.values()
                    if abs(m.neutrino_time.elapsed_ns - e.t_ns) <= self.engine.window_ns]
            if not near:
                continue
            try:
                site(e.detector)
            except UnknownNameError:
                continue
            m, _ = max(near, key=lambda mr: mr[1])
            times[e.detector] = m.neutrino_time.elapsed_ns
            uuids.append(m.uuid)
        if len(times) < 3:
            return None
        key = frozenset(uuids)
        if key not in self._pointing_cache:
            r = triangulate(times, n_grid=self.pointing_grid)
            c = consistency(r)
            self._pointing_cache[key] = {"ra_deg": r.ra_deg, "dec_deg": r.dec_deg,
                                         "area_deg2_68": r.area_deg2[0.68], "area_deg2_90": r.area_deg2[0.90],
                                         "detectors": sorted(times), "timing_uuids": sorted(uuids), **c}
        return self._pointing_cache[key]

    def _tier_alerts(self, engine_alerts: list[Alert]) -> list[Alert]:
        """UPDATE alerts for groups whose significance/pointing changed through tier messages of this batch."""
        touched, self._tier_touched = self._tier_touched, {}
        covered = {frozenset(a.uuids) for a in engine_alerts}
        out, seen = [], set()
        for (chan, det), cause in touched.items():
            ch = self.engine.channels.get(chan)
            if ch is None:
                continue
            for _, u in list(ch.det_active.get(det, ())):
                for g in self.engine.groups_with(u):
                    k = frozenset(x.uuid for x in g)
                    if k in covered or k in seen:
                        continue
                    seen.add(k)
                    dets = tuple(x.detector for x in g)
                    out.append(Alert("UPDATE", chan, dets, tuple(x.uuid for x in g),
                                     tuple(UTCTime(x.t_ns).isoformat() for x in g), tuple(x.p_val for x in g),
                                     cause, dets))
        return out

    def _far_fields(self, k: int, n_online: int) -> dict:
        """FAR fields [1/yr] of a k-fold alert with n_online detectors online (all detectors share one imitation
        rate, so they depend on (k, n_online) only: computed once per pair)."""
        key = (k, n_online)
        if key not in self._far_cache:
            w = self.engine.window_ns / NS
            rates = [self.imitation_rate_hz] * n_online
            self._far_cache[key] = {
                "false_alarm_rate_per_year": far.per_year(far.r_fold_rate(rates, w, k)),
                "false_alarm_rate_per_year_this_set": far.per_year(far.set_rate(rates[:k], w)),
                "false_alarm_online_detectors": n_online,
                "false_alarm_assumption": (f"any {k} of the {n_online} detectors online (heartbeats within "
                                           f"{self.hearts.stale_ns / NS:g} s, plus this alert's), each imitating "
                                           f"a burst at {self.imitation_rate_hz:.3g}/s, window {w:g} s")}
        return self._far_cache[key]

    def _alert_body(self, a: Alert, now: int) -> dict:
        """The alert object as archived and published: the engine's fields, server time, FAR, enrichments."""
        body = a.to_dict()
        if self._online_cache[0] != now:  # once per batch: the online set and the server time text
            self._online_cache = (now, set(self.hearts.online(now)), UTCTime(now).isoformat())
        body["server_time_utc"] = self._online_cache[2]
        k = len(a.detectors)
        if k >= 2:
            online = self._online_cache[1] | set(a.detectors)
            body.update(self._far_fields(k, len(online)))
            group = tuple(self.engine.entry(u) for u in a.uuids)
            if all(e is not None for e in group):
                for name, fn in (("combined_significance", self._significance), ("pointing", self._pointing)):
                    try:
                        v = fn(a.channel, group)
                    except Exception as exc:  # noqa: BLE001 - an enrichment failure never blocks the alert
                        log.error("alert %s: %s failed: %s", a.alert_id, name, exc)
                        v = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
                    if v is not None:
                        body[name] = v
        return body

    def prepare_batch(self, payloads: list[bytes]) -> tuple:
        """The receipt time of a batch, and the worker's results for it (validation starts now, in the worker
        process; None: the batch is small or there is no worker, so it is validated in process)."""
        now = self.clock()
        pv = self.prevalidator  # run() starts it with the server; until it is ready, batches are validated here
        if pv is not None and len(payloads) >= self.parallel_min_batch and pv.ready:
            return now, pv.submit(payloads, self.keyring, self.max_bytes, now, self.max_age_ns, self.skew_ns)
        return now, None

    def process_batch(self, payloads: list[bytes], prepared: tuple | None = None) -> list[Outcome]:
        """Process payloads in one transaction, then publish new alerts. Pure w.r.t. the broker input.
        ``prepared``: prepare_batch(payloads), made earlier (run() hands the next batch to the worker while it
        applies this one)."""
        now, pres = self.prepare_batch(payloads) if prepared is None else prepared
        outs = []
        self._online_cache = (None, set(), "")  # heartbeats of this batch count (even under a frozen test clock)
        self.archive.begin()
        try:
            with self.engine.batch() as eng_alerts:
                for raw in payloads:
                    pre = next(pres, None) if pres is not None else None
                    self.archive.savepoint()
                    try:
                        out = self._handle(raw, now, pre)
                    except Exception as exc:  # noqa: BLE001 - one message never stops the server
                        self.archive.rollback_savepoint()
                        out = self._dead_letter(raw, now, exc)
                    else:
                        self.archive.release()
                    outs.append(out)
            alerts = list(eng_alerts) + self._tier_alerts(eng_alerts)
            new = []
            for a in alerts:
                text = json.dumps(self._alert_body(a, now), sort_keys=True)
                if self.archive.add_alert_text(a.alert_id, now, text):
                    new.append((a.alert_id, text))
            self.stats["alerts"] += len(alerts)
            self._expire(now)
            self.archive.commit()
        except BaseException:
            self.archive.rollback()
            raise
        acc = [o for o in outs if o.status == "accepted"]
        if acc:
            acc[-1].alerts = alerts
        # with the sender thread, this batch's alerts go out directly (the archive scan for unpublished ones
        # runs in housekeeping, every second); without it, as always: every unpublished alert
        self.publish_pending(new if self._sender is not None else None)
        return outs

    def _dead_letter(self, raw: bytes, now: int, exc: Exception) -> Outcome:
        reason = f"{type(exc).__name__}: {str(exc)[:300]}"
        digest = hashlib.sha256(bytes(raw)).hexdigest() if isinstance(raw, (bytes, bytearray)) else ""
        log.error("message (sha256 %s) failed in processing and went to the dead-letter table: %s",
                  digest[:16], reason)
        try:
            text = bytes(raw).decode("utf-8") if len(raw) <= self.max_bytes else None
        except (UnicodeDecodeError, TypeError):
            text = None
        self.archive.add_dead_letter(now, reason, digest, len(raw) if raw is not None else -1, text)
        self.stats["dead_letters"] += 1
        return Outcome("dead-letter", code="dead-letter", reason=reason)

    def start_workers(self, wait: bool = False) -> bool:
        """Start the validation worker process (used for batches of >= parallel_min_batch payloads)."""
        if self.prevalidator is None:
            self.prevalidator = Prevalidator()
        return self.prevalidator.wait_ready() if wait else (self.prevalidator.start() or False)

    def stop_workers(self) -> None:
        pv, self.prevalidator = self.prevalidator, None
        if pv is not None:
            pv.close()

    @property
    def workers_ready(self) -> bool:
        """Whether the validation worker process is up (large batches are then validated there)."""
        return self.prevalidator is not None and self.prevalidator.ready

    def handle(self, raw: bytes) -> Outcome:
        return self.process_batch([raw])[0]

    def _expire(self, now: int) -> None:
        gone = self.engine.expire(now)
        if gone:
            self.archive.set_state(gone, "expired")
            self.stats["expired"] += len(gone)
            log.info("expired %d message(s)", len(gone))
        cutoff = now - self.engine.expiry_ns
        for tier in ("SignificanceTier", "TimingTier"):
            for u in self.archive.expire_rows(tier, "stored", cutoff):
                self._tier_remove(u)
        for u in self.archive.expire_rows("Retraction", "pending", cutoff):
            for target, (m, _) in list(self._pending_retractions.items()):
                if m.uuid == u:
                    del self._pending_retractions[target]
                    log.info("held retraction %s expired; its target %s never arrived", u, target)
        if self.hearts.prune(now):
            self.archive.expire_rows("Heartbeat", "active", now - self.hearts.retention_ns)

    def housekeeping(self) -> None:
        now = self.clock()
        self.archive.begin()
        try:
            self._expire(now)
            self.archive.commit()
        except BaseException:
            self.archive.rollback()
            raise
        self.publish_pending()

    def publish_pending(self, new: list[tuple[str, str]] | None = None) -> int:
        """Sign and publish the unpublished alerts (``new``: just these (alert_id, text), else every unpublished
        alert in the archive) and pending connection-test acknowledgements, in order; an alert is marked
        published when the broker acknowledged it.  Returns how many alerts were handed on."""
        acks, self._pending_acks = self._pending_acks, []
        items: list[tuple[str | None, str]] = [(None, a.decode()) for a in acks]
        self._mark_published()  # before the scan: an alert acknowledged meanwhile is not sent again
        for alert_id, body in (self.archive.unpublished_alerts() if new is None else new):
            if alert_id not in self._in_flight:
                self._in_flight.add(alert_id)
                items.append((alert_id, body))
        if items:
            if self._sender is not None:
                self._sender.put(items)
            else:
                self._send(items)
        self._mark_published()
        return sum(1 for a, _ in items if a is not None)

    def _send(self, items: list[tuple[str | None, str]]) -> None:
        """Sign and publish (server thread, or the sender thread in run()); on a transport error the alerts not
        handed to the broker are left unpublished in the archive (the next scan re-sends them)."""
        k = 0
        try:
            for k, (alert_id, text) in enumerate(items):
                if alert_id is None:
                    self.t.publish(self.alert_topic, self.signer.sign(text))
                    continue

                def done(err, alert_id=alert_id):
                    # acknowledged first, then out of flight: a scan in the server thread that no longer sees the
                    # alert in flight finds it acknowledged (publish_pending marks before it scans), never re-sends
                    if err is None:
                        self._published.append(alert_id)
                    self._in_flight.discard(alert_id)
                self.t.publish(self.alert_topic, self.signer.sign(text), on_delivery=done)
            self.t.poll_deliveries(0)
        except TransportError as exc:
            log.warning("alert publishing deferred: %s", exc)
            for alert_id, _ in items[k:]:
                self._in_flight.discard(alert_id)

    def _mark_published(self) -> None:
        """Record the broker's acknowledgements (one transaction for all of them)."""
        done = []
        while self._published:
            done.append(self._published.popleft())
        if done:
            self.archive.mark_published(done)

    # -- loop ---------------------------------------------------------------------------------------
    def run(self, stop: threading.Event, poll_s: float = 0.2, group: str = "cevns-coincidence-server",
            batch: int = 2000) -> None:
        """Consume until ``stop`` is set (checked between batches of at most ``batch`` records)."""
        sub = None
        backoff = 0.2
        last_house = 0.0
        self._auto_workers = self.parallel_min_batch > 0 and (os.cpu_count() or 1) > 1
        if self._auto_workers:
            self.start_workers()  # spawned in the background; batches are validated in process until it is up
            if self._sender is None:
                self._sender = _AlertSender(self)
        try:
            self.t.warm_up()  # the first alert must not wait for the producer to connect
        except TransportError as exc:
            log.warning("alert producer not ready yet: %s", exc)
        ahead = None  # (records, payloads, prepare_batch of them): with the worker, applied after the current batch
        try:
            while not stop.is_set():
                try:
                    if sub is None:
                        ahead = None  # not acknowledged: the new subscription delivers it again
                        sub = self.t.subscribe(self.obs_topic, group=group, from_beginning=True)
                        backoff = 0.2
                        self.ready.set()
                    if ahead is None:
                        recs = sub.poll(poll_s, batch)
                        payloads = [r.payload for r in recs]
                        prep = self.prepare_batch(payloads) if recs else None
                    else:
                        (recs, payloads, prep), ahead = ahead, None
                    if recs:
                        if prep[1] is not None:
                            # a flood: what the consumer already holds goes to the worker now, so that it is
                            # validated while this batch is applied and committed (the worker idled there)
                            nxt = sub.poll(0, batch)
                            if nxt:
                                nxt_payloads = [r.payload for r in nxt]
                                ahead = (nxt, nxt_payloads, self.prepare_batch(nxt_payloads))
                        self._process_until_done(payloads, stop, prep)
                        sub.ack(recs)
                    if time.monotonic() - last_house > 1.0:
                        self.housekeeping()
                        last_house = time.monotonic()
                    else:
                        self.t.poll_deliveries(0)
                        self._mark_published()
                except TransportError as exc:
                    log.warning("transport error: %s; retrying in %.1f s", exc, backoff)
                    ahead = None
                    if sub is not None:
                        try:
                            sub.close()
                        except Exception:  # noqa: BLE001
                            pass
                    sub = None
                    stop.wait(backoff)
                    backoff = min(2 * backoff, 5.0)
        finally:
            self._auto_workers = False
            sender, self._sender = self._sender, None
            try:
                if sender is not None:
                    sender.close()  # what is queued is signed and handed to the broker first
                self._mark_published()
                self.stop_workers()
            finally:
                if sub is not None:
                    sub.close()

    def _process_until_done(self, payloads: list, stop: threading.Event, prepared: tuple | None = None) -> None:
        """A batch that fails as a whole (archive unavailable, ...) is retried, never acknowledged unprocessed."""
        wait = 0.5
        while True:
            try:
                self.process_batch(payloads, prepared)
                return
            except Exception as exc:  # noqa: BLE001
                log.error("batch of %d failed (%s: %s); retrying in %.1f s", len(payloads), type(exc).__name__, exc,
                          wait)
                prepared = None  # its worker results were (partly) consumed: the retry validates afresh
                if stop.wait(wait):
                    raise TransportError("stopped while retrying a failed batch") from exc
                wait = min(2 * wait, 10.0)

    def status(self) -> dict:
        now = self.clock()
        return {"accepted": self.stats["accepted"], "duplicates": self.stats["duplicates"],
                "rejected": self.stats["rejected"], "dead_letters": self.stats["dead_letters"],
                "alerts": self.stats["alerts"], "active_messages": len(self.engine),
                "pending_retractions": len(self._pending_retractions),
                "missing_detectors": self.hearts.missing(now), "online_detectors": self.hearts.online(now)}


class _AlertSender:
    """Signs and publishes alerts in its own thread: Ed25519 signing releases the GIL, so it overlaps the server
    thread's next batch on a multi-core machine.  One FIFO queue: alerts leave in the order they were made.
    Delivery acknowledgements are recorded by the server thread (``_mark_published``)."""

    def __init__(self, server: "AlertServer"):
        self.server = server
        self.q: queue.SimpleQueue = queue.SimpleQueue()
        self.th = threading.Thread(target=self._loop, name="cevns-alert-sender", daemon=True)
        self.th.start()

    def put(self, items) -> None:
        self.q.put(items)

    def _loop(self) -> None:
        while True:
            items = self.q.get()
            if items is None:
                return
            try:
                self.server._send(items)
            except Exception as exc:  # noqa: BLE001 - the sender must outlive any one failure
                log.error("alert sender: %s: %s; the alerts stay unpublished and are re-sent", type(exc).__name__,
                          exc)
                for alert_id, _ in items:
                    self.server._in_flight.discard(alert_id)

    def close(self, timeout: float = 10.0) -> None:
        self.q.put(None)
        self.th.join(timeout)
        if self.th.is_alive():
            log.warning("alert sender still busy after %.0f s; unsent alerts are re-sent on the next start", timeout)


class AlertCollector:
    """Subscriber helper: reads the alert topic, verifies the server's signature, deduplicates by alert_id."""

    def __init__(self, transport: Transport, topic: str = DEFAULT_ALERT_TOPIC, group: str | None = None,
                 from_beginning: bool = True, public_key: bytes | None = None):
        if public_key is None:
            raise CevnsError("AlertCollector needs the server's alert public key (alerts are signed)")
        self.public_key = public_key
        self.sub = transport.subscribe(topic, group=group, from_beginning=from_beginning)
        self.alerts: dict[str, dict] = {}
        self.acks: list[dict] = []
        self.wire_count = 0
        self.bad = 0
        self.forged = 0

    def poll(self, timeout: float = 0.2, max_records: int = 5000) -> list[dict]:
        new = []
        recs = self.sub.poll(timeout, max_records)
        for r in recs:
            self.wire_count += 1
            try:
                body = open_alert(r.payload, self.public_key)
            except MessageRejected as exc:
                self.forged += 1
                log.warning("ignored an alert-topic record that is not a valid signed alert [%s]: %s",
                            exc.code, exc.reason)
                continue
            if body.get("kind") == "connection-test-ack":
                self.acks.append(body)
                new.append(body)
            elif body.get("alert_id") and body["alert_id"] not in self.alerts:
                self.alerts[body["alert_id"]] = body
                new.append(body)
        self.sub.ack(recs)
        return new

    def close(self) -> None:
        self.sub.close()


def check_publish_rights(detector: str, msg: Message) -> None:
    if msg.detector_name != detector:
        raise CevnsError(f"credentials are for {detector!r}; cannot act as {msg.detector_name!r}")
