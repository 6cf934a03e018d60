"""The coincidence server: consume signed observations, run the engine, publish alerts.

Processing of a batch is one SQLite transaction (archive + alerts); broker offsets are acknowledged only after
it commits, so a crash or broker outage can cause redelivery but never loss, and redelivered messages are
recognised by uuid (exactly-once processing).  Every refused message is logged (``cevns.alerts.server`` logger,
WARNING) with its reason and recorded in the archive; nothing received is ever unpickled or evaluated.
"""
from __future__ import annotations

import collections
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field

from cevns.errors import CevnsError

from . import far
from .archive import Archive
from .auth import open_envelope, sign
from .coincidence import Alert, CoincidenceEngine
from .heartbeats import HeartbeatMonitor
from .messages import MAX_PAYLOAD_BYTES, Message, MessageRejected, parse_message
from .timeutil import UTCTime
from .transport import DEFAULT_ALERT_TOPIC, DEFAULT_OBS_TOPIC, Transport, TransportError

log = logging.getLogger("cevns.alerts.server")


@dataclass
class Outcome:
    status: str  # accepted | duplicate | rejected
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

    def send(self, msg: Message) -> bytes:
        if msg.detector_name != self.detector:
            raise MessageRejected("impersonation", f"credentials are for {self.detector!r}; cannot publish as "
                                                   f"{msg.detector_name!r}")
        env = self.envelope(msg)
        self.t.publish(self.topic, env)
        return env


class AlertServer:
    def __init__(self, transport: Transport, keyring: dict[str, bytes], archive: Archive | None = None, *,
                 obs_topic: str = DEFAULT_OBS_TOPIC, alert_topic: str = DEFAULT_ALERT_TOPIC,
                 window_s: float = 10.0, expiry_s: float = 48 * 3600.0, max_bytes: int = MAX_PAYLOAD_BYTES,
                 imitation_rate_hz: float = 1.0 / far.SECONDS_PER_WEEK, clock=None):
        self.t, self.keyring = transport, keyring
        self.archive = archive or Archive(":memory:")
        self.obs_topic, self.alert_topic = obs_topic, alert_topic
        self.engine = CoincidenceEngine(window_s, expiry_s)
        self.hearts = HeartbeatMonitor()
        self.max_bytes = max_bytes
        self.imitation_rate_hz = imitation_rate_hz
        self.clock = clock or (lambda: UTCTime.now().elapsed_ns)
        self.stats = collections.Counter()
        self.rejected_codes = collections.Counter()
        self._pending_acks: list[bytes] = []
        self._rebuild()

    # -- persistence --------------------------------------------------------------------------------
    def _rebuild(self) -> None:
        n = 0
        for uuid, det, tier, chan, rec_ns, body, state in self.archive.messages():
            if state != "active":
                continue
            msg = Message(tier, json.loads(body))
            if tier == "CoincidenceTier":
                self.engine.add(msg, rec_ns)
            elif tier == "Heartbeat" and "connection_test" not in (msg.data.get("meta") or {}):
                self.hearts.add(msg, rec_ns)
            n += 1
        if n:
            log.info("rebuilt state from archive: %d active message(s)", n)

    # -- processing ---------------------------------------------------------------------------------
    def _reject(self, raw: bytes, now: int, exc: MessageRejected) -> Outcome:
        digest = hashlib.sha256(raw if isinstance(raw, (bytes, bytearray)) else repr(raw).encode()).hexdigest()
        size = len(raw) if isinstance(raw, (bytes, bytearray)) else -1
        log.warning("rejected message (sha256 %s, %d bytes) [%s]: %s", digest[:16], size, exc.code, exc.reason)
        self.archive.add_rejection(now, exc.code, exc.reason, digest, size)
        self.stats["rejected"] += 1
        self.rejected_codes[exc.code] += 1
        return Outcome("rejected", code=exc.code, reason=exc.reason)

    def _handle(self, raw: bytes, now: int) -> Outcome:
        try:
            det, text = open_envelope(raw, self.keyring, self.max_bytes)
            msg = parse_message(text, max_bytes=self.max_bytes)
            if msg.detector_name != det:
                raise MessageRejected("impersonation", f"signed by {det!r} but detector_name is "
                                                       f"{msg.detector_name!r}; a detector may only publish, "
                                                       "retract or heartbeat under its own name")
        except MessageRejected as exc:
            return self._reject(raw, now, exc)
        except Exception as exc:  # noqa: BLE001 - any surprise in validation is a rejection, not a crash
            return self._reject(raw, now, MessageRejected("invalid", f"{type(exc).__name__}: {str(exc)[:160]}"))
        state = "active" if msg.tier in ("CoincidenceTier", "Heartbeat") else "stored"
        if msg.uuid in self.engine or not self.archive.add_message(msg.uuid, msg.detector_name, msg.tier,
                                                                   msg.channel, now, msg.to_json(), state):
            self.archive.bump("duplicates")
            self.stats["duplicates"] += 1
            return Outcome("duplicate", uuid=msg.uuid)
        alerts: list[Alert] = []
        if msg.tier == "CoincidenceTier":
            alerts = self.engine.add(msg, now)
        elif msg.tier == "Retraction":
            removed, alerts = self.engine.retract(msg)
            self.archive.set_state(removed, "retracted")
            log.info("retraction %s by %s removed %s", msg.uuid, msg.detector_name, removed)
        elif msg.tier == "Heartbeat":
            meta = msg.data.get("meta") or {}
            if "connection_test" not in meta:
                self.hearts.add(msg, now)
            else:
                self._pending_acks.append(json.dumps(
                    {"kind": "connection-test-ack", "detector": msg.detector_name,
                     "nonce": str(meta["connection_test"])[:64], "uuid": msg.uuid}).encode())
        for a in alerts:
            self.archive.add_alert(a.alert_id, now, self._alert_body(a, now))
        self.stats["accepted"] += 1
        self.stats["alerts"] += len(alerts)
        return Outcome("accepted", uuid=msg.uuid, alerts=alerts)

    def _alert_body(self, a: Alert, now: int) -> dict:
        body = a.to_dict()
        body["server_time_utc"] = UTCTime(now).isoformat()
        if len(a.detectors) >= 2:
            rate = far.set_rate([self.imitation_rate_hz] * len(a.detectors), self.engine.window_ns / 1e9)
            body["false_alarm_rate_per_year"] = far.per_year(rate)
            body["false_alarm_assumption"] = f"each detector imitates a burst at {self.imitation_rate_hz:.3g}/s"
        return body

    def process_batch(self, payloads: list[bytes]) -> list[Outcome]:
        """Process payloads in one transaction, then publish new alerts. Pure w.r.t. the broker input."""
        now = self.clock()
        outs = []
        self.archive.begin()
        try:
            for raw in payloads:
                outs.append(self._handle(raw, now))
            self._expire(now)
            self.archive.commit()
        except BaseException:
            self.archive.rollback()
            raise
        self.publish_pending()
        return outs

    def handle(self, raw: bytes) -> Outcome:
        return self.process_batch([raw])[0]

    def _expire(self, now: int) -> None:
        gone = self.engine.expire(now)
        if gone:
            self.archive.set_state(gone, "expired")
            self.stats["expired"] += len(gone)
            log.info("expired %d message(s)", len(gone))

    def housekeeping(self) -> None:
        now = self.clock()
        self.archive.begin()
        try:
            self._expire(now)
            self.archive.commit()
        except BaseException:
            self.archive.rollback()
            raise
        heal = getattr(self.t, "heal", None)
        if heal is not None:
            heal()
        self.publish_pending()

    def publish_pending(self) -> int:
        n = 0
        acks, self._pending_acks = self._pending_acks, []
        try:
            for a in acks:
                self.t.publish(self.alert_topic, a)
            for alert_id, body in self.archive.unpublished_alerts():
                self.t.publish(self.alert_topic, body.encode())
                self.archive.mark_published(alert_id)
                n += 1
        except TransportError as exc:
            log.warning("alert publishing deferred: %s", exc)
        return n

    # -- loop ---------------------------------------------------------------------------------------
    def run(self, stop: threading.Event, poll_s: float = 0.2, group: str = "cevns-coincidence-server",
            batch: int = 2000) -> None:
        sub = None
        backoff = 0.2
        last_house = 0.0
        seen_reconnects = 0
        try:
            while not stop.is_set():
                try:
                    if sub is None:
                        sub = self.t.subscribe(self.obs_topic, group=group, from_beginning=True)
                        backoff = 0.2
                    recs = sub.poll(poll_s, batch)
                    rc = getattr(sub, "reconnects", 0)
                    if rc != seen_reconnects:  # the broker went away: our recent alerts may be lost with it
                        seen_reconnects = rc
                        note = getattr(self.t, "note_outage", None)
                        if note is not None:
                            note()
                        last_house = 0.0
                    if recs:
                        self.process_batch([r.payload for r in recs])
                        sub.ack(recs)
                    if time.monotonic() - last_house > 1.0:
                        self.housekeeping()
                        last_house = time.monotonic()
                except TransportError as exc:
                    log.warning("transport error: %s; retrying in %.1f s", exc, backoff)
                    if sub is not None:
                        try:
                            sub.close()
                        except Exception:  # noqa: BLE001
                            pass
                    sub = None
                    stop.wait(backoff)
                    backoff = min(2 * backoff, 5.0)
        finally:
            if sub is not None:
                sub.close()

    def status(self) -> dict:
        now = self.clock()
        return {"accepted": self.stats["accepted"], "duplicates": self.stats["duplicates"],
                "rejected": self.stats["rejected"], "alerts": self.stats["alerts"],
                "active_messages": len(self.engine), "missing_detectors": self.hearts.missing(now),
                "online_detectors": self.hearts.online(now)}


class AlertCollector:
    """Subscriber helper: reads the alert topic and deduplicates by alert_id."""

    def __init__(self, transport: Transport, topic: str = DEFAULT_ALERT_TOPIC, group: str | None = None,
                 from_beginning: bool = True):
        self.sub = transport.subscribe(topic, group=group, from_beginning=from_beginning)
        self.alerts: dict[str, dict] = {}
        self.acks: list[dict] = []
        self.wire_count = 0
        self.bad = 0

    def poll(self, timeout: float = 0.2) -> list[dict]:
        new = []
        recs = self.sub.poll(timeout, 5000)
        for r in recs:
            self.wire_count += 1
            try:
                body = json.loads(r.payload)
            except ValueError:
                self.bad += 1
                continue
            if not isinstance(body, dict):
                self.bad += 1
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
