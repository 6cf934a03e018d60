"""Kafka transport through hop-client (``kafka://HOST:PORT[/TOPIC]``).

* Credentials: hop's own mechanism (``hop auth add`` -> ``~/.config/hop/auth.toml``, or ``--hop-auth FILE``);
  none for loopback brokers (127.0.0.1 / localhost), where ``auth=False`` is used.
* Only raw bytes are produced and consumed (``write_raw`` / ``read_raw``): hop's payload deserialisers (Avro,
  BSON, external-message fetching) are never invoked on received data; hop's large-message offload is off.
* Reconnection: the consumer runs in a thread; when librdkafka reports all brokers down, the consumer is stopped,
  closed and re-opened with exponential backoff (0.2 s doubling to 5 s) once the broker answers a metadata
  request listing the topic.  The group offset is only committed after the caller :meth:`ack`-s records that it
  has durably processed (at-least-once; the server deduplicates by uuid, so processing is exactly-once).
* Publishing keeps a journal of recent payloads; after a broker outage ends, payloads of the last
  ``resend_window`` seconds are published again, so messages that a broker with volatile storage lost (e.g. a
  restarted in-memory Tansu) are not lost.  Receivers must therefore deduplicate (the server does, by uuid;
  alert subscribers do, by alert_id).
"""
from __future__ import annotations

import collections
import datetime as _dt
import logging
import queue
import socket
import threading
import time

from cevns.errors import ConfigError

from .base import BrokerURL, Record, Subscription, Transport, TransportError

log = logging.getLogger("cevns.alerts.kafka")
_DOWN_CODES = {"_ALL_BROKERS_DOWN", "_TRANSPORT", "_RESOLVE"}


def _hop():
    try:
        import hop  # noqa: F401
        from hop import Stream
        from hop.io import StartPosition
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise ConfigError("kafka:// needs hop-client (pip install 'hop-client>=0.10,<1' six)") from exc
    return Stream, StartPosition


def _err_name(err) -> str:
    try:
        return err.name()
    except Exception:  # noqa: BLE001
        return str(err)


def broker_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class KafkaTransport(Transport):
    def __init__(self, url: BrokerURL, hop_auth: str | None = None, resend_window: float = 600.0,
                 journal_max: int = 200_000, **_):
        self.url = url
        self.resend_window = float(resend_window)
        if url.is_loopback:
            self._auth = False
        elif hop_auth:
            from hop.auth import load_auth
            self._auth = load_auth(hop_auth)
        else:
            self._auth = True  # hop's configured credentials
        self._producers: dict[str, object] = {}
        self._lock = threading.RLock()
        self._journal: collections.deque = collections.deque(maxlen=journal_max)  # (t, topic, payload)
        self._down_since: float | None = None
        self._failed: list[tuple[str, bytes]] = []
        self.delivered = 0
        self.resent = 0

    def _kurl(self, topic: str) -> str:
        return f"kafka://{self.url.address()}/{topic}"

    # -- producing -------------------------------------------------------------------------------------
    def _on_error(self, err) -> None:
        if _err_name(err) in _DOWN_CODES and self._down_since is None:
            log.warning("kafka producer: broker down (%s)", err)
            self._down_since = time.monotonic()

    def _producer(self, topic: str):
        p = self._producers.get(topic)
        if p is None:
            Stream, _ = _hop()
            try:
                p = Stream(auth=self._auth).open(self._kurl(topic), "w", automatic_offload=False,
                                                 error_callback=self._on_error)
            except Exception as exc:  # noqa: BLE001
                raise TransportError(f"cannot open producer for {self._kurl(topic)}: {exc}") from exc
            self._producers[topic] = p
        return p

    def _send(self, topic: str, payload: bytes) -> None:
        def cb(err, msg, topic=topic, payload=payload):
            if err is None:
                self.delivered += 1
            else:
                log.warning("delivery to %s failed (%s); will retry", topic, err)
                with self._lock:
                    self._failed.append((topic, payload))
                    if self._down_since is None:
                        self._down_since = time.monotonic()
        self._producer(topic).write_raw(payload, headers=[("_format", b"json")], delivery_callback=cb, topic=topic)

    def publish(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self.heal()
            self._journal.append((time.monotonic(), topic, bytes(payload)))
            try:
                self._send(topic, payload)
            except BufferError:  # local queue full: drain and retry once
                self.flush(5.0)
                self._send(topic, payload)

    def note_outage(self) -> None:
        """Declare an outage seen elsewhere (e.g. a consumer had to reconnect): re-publish on the next heal()."""
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()

    def heal(self) -> bool:
        """After an outage, once the broker answers again, re-publish the recent journal. True if healthy."""
        with self._lock:
            if self._down_since is None:
                return True
            if not broker_reachable(self.url.host, self.url.port):
                return False
            since = self._down_since - self.resend_window
            self._down_since = None
            again = [(tp, pl) for (t, tp, pl) in self._journal if t >= since]
            failed, self._failed = self._failed, []
            seen = set()
            for tp, pl in failed + again:
                if (tp, pl) in seen:
                    continue
                seen.add((tp, pl))
                self._send(tp, pl)
                self.resent += 1
            log.warning("kafka: broker back; re-published %d recent message(s)", len(seen))
            return True

    def flush(self, timeout: float = 10.0) -> int:
        left = 0
        for p in list(self._producers.values()):
            left += p.flush(_dt.timedelta(seconds=timeout))
        return left

    # -- consuming -------------------------------------------------------------------------------------
    def subscribe(self, topic: str, group: str | None = None, from_beginning: bool = True) -> Subscription:
        return _KafkaSub(self, topic, group, from_beginning)

    def close(self) -> None:
        for p in list(self._producers.values()):
            try:
                p.flush(_dt.timedelta(seconds=5))
                p.produce_timeout = _dt.timedelta(seconds=5)
                p.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing producer: %s", exc)
        self._producers.clear()


class _KafkaSub(Subscription):
    def __init__(self, t: KafkaTransport, topic: str, group: str | None, from_beginning: bool):
        import uuid

        self.t, self.topic = t, topic
        self.group = group or f"cevns-{uuid.uuid4().hex[:12]}"
        self.from_beginning = from_beginning
        self.q: queue.Queue = queue.Queue(maxsize=100_000)
        self._stop = threading.Event()
        self._consumer = None
        self._incarnation = 0
        self.reconnects = 0
        self._ready = threading.Event()
        self._acks: list = []
        self._down = False
        self._ack_lock = threading.Lock()
        self._th = threading.Thread(target=self._run, name=f"kafka-consumer-{topic}", daemon=True)
        self._th.start()
        if not self._ready.wait(30):
            log.warning("kafka consumer for %s not ready after 30 s; still retrying", topic)

    def _on_error(self, err) -> None:
        name = _err_name(err)
        if name == "_ALL_BROKERS_DOWN" and self._consumer is not None:
            log.warning("kafka consumer %s: all brokers down; reconnecting", self.topic)
            self._down = True
            try:
                self._consumer.stop()
            except Exception:  # noqa: BLE001
                pass

    def _wait_for_topic(self) -> bool:
        """Metadata probe: is the broker up and does it list the topic?"""
        if not broker_reachable(self.t.url.host, self.t.url.port):
            return False
        try:
            from confluent_kafka.admin import AdminClient

            conf = {"bootstrap.servers": self.t.url.address(), "socket.timeout.ms": 2000,
                    "logger": logging.getLogger("cevns.alerts.kafka.admin")}
            if self.t._auth is not False:
                return True  # authenticated brokers: let the consumer itself find out
            md = AdminClient(conf).list_topics(timeout=2.0)
            return self.topic in md.topics and md.topics[self.topic].error is None
        except Exception:  # noqa: BLE001
            return False

    def _run(self) -> None:
        Stream, StartPosition = _hop()
        backoff = 0.2
        first = True
        while not self._stop.is_set():
            if not first:
                if not self._wait_for_topic():
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                self.reconnects += 1
                log.warning("kafka consumer %s: reconnected (attempt backoff %.1fs)", self.topic, backoff)
            self._down = False
            try:
                start = StartPosition.EARLIEST if self.from_beginning else StartPosition.LATEST
                c = Stream(auth=self.t._auth, start_at=start).open(
                    self.t._kurl(self.topic), "r", group_id=self.group, ignoretest=False,
                    error_callback=self._on_error, offset_commit_interval=_dt.timedelta(seconds=1))
                self._consumer = c
                with self._ack_lock:
                    self._acks = []
                self._incarnation += 1
                inc = self._incarnation
                self._ready.set()
                first = False
                for payload, md in c.read_raw(metadata=True, autocommit=False,
                                              batch_timeout=_dt.timedelta(seconds=0.1)):
                    backoff = 0.2
                    self._store_acks(c)
                    self.q.put(Record(payload if payload is not None else b"", (inc, md)))
                    if self._stop.is_set() or self._down:
                        break
            except Exception as exc:  # noqa: BLE001
                log.warning("kafka consumer %s failed: %s", self.topic, exc)
                first = False
            finally:
                c, self._consumer = self._consumer, None
                if c is not None:
                    try:
                        if not self._down:
                            self._store_acks(c)
                        c.close()
                    except Exception:  # noqa: BLE001
                        pass
            if not self._stop.is_set():
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def poll(self, timeout: float, max_records: int = 1000) -> list[Record]:
        out = []
        try:
            out.append(self.q.get(timeout=timeout))
        except queue.Empty:
            return out
        while len(out) < max_records:
            try:
                out.append(self.q.get_nowait())
            except queue.Empty:
                break
        return out

    def ack(self, records) -> None:
        """Queue offsets for commit; the consumer thread stores them (librdkafka calls stay in one thread)."""
        last = {}
        for r in records:
            inc, md = r.token
            if inc == self._incarnation:
                last[md.partition] = md
        with self._ack_lock:
            self._acks.extend(last.values())

    def _store_acks(self, c) -> None:
        with self._ack_lock:
            acks, self._acks = self._acks, []
        for md in acks:
            try:
                c.mark_done(md)
            except Exception as exc:  # noqa: BLE001
                log.info("offset store failed (%s); records will be re-read and deduplicated", exc)

    def close(self) -> None:
        self._stop.set()
        c = self._consumer
        if c is not None:
            try:
                c.stop()
            except Exception:  # noqa: BLE001
                pass
        self._th.join(timeout=15)
