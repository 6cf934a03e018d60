"""Kafka transport (``kafka://HOST:PORT[/TOPIC]``), through confluent-kafka (librdkafka; installed with hop-client).

Delivery guarantees (what "exactly once" rests on):

* **Producer**: idempotent (``enable.idempotence``), ``acks=all``: a message counts as delivered only when the
  broker has acknowledged it as written (its delivery callback, :attr:`KafkaTransport.delivered`); librdkafka
  retries internally, without duplicates, for up to ``message.timeout.ms``; a message that still fails is
  reported (:attr:`failed`, and the caller's ``on_delivery``), never silently dropped.  Nothing is re-sent from a
  journal: what the broker acknowledged is the broker's to keep.  With a broker whose storage is volatile (Tansu
  with ``memory://`` storage) a broker restart therefore loses what it held; use durable storage (Tansu with
  S3 or PostgreSQL storage, or Kafka itself) in production.
* **Consumer**: partitions are assigned explicitly (no group rebalancing) and start at the group's committed
  offset; offsets are committed synchronously only by :meth:`ack`, which the server calls after the SQLite
  transaction of a batch has committed.  After a crash everything after the committed offset is read again and
  deduplicated by uuid; after a broker restart the consumer continues from its position (or, if the broker
  lost the log, from the beginning of the new log).
* Only raw bytes are produced and consumed: no payload deserialiser ever runs on received data.
* Credentials for non-loopback brokers come from hop's configuration (``hop auth add`` or ``--hop-auth FILE``).
* librdkafka's own log lines go to the logger ``cevns.alerts.kafka.client`` (silent unless enabled), so a
  command against an unreachable broker prints one clear error instead of client noise.
"""
from __future__ import annotations

import logging
import time
import uuid as _uuid

from cevns.errors import ConfigError

from .base import BrokerURL, Record, Subscription, Transport, TransportError

log = logging.getLogger("cevns.alerts.kafka")
client_log = logging.getLogger("cevns.alerts.kafka.client")
client_log.addHandler(logging.NullHandler())
client_log.propagate = False  # librdkafka chatter: enable with ``client_log.propagate = True`` (serve -v)
MAX_MESSAGE_BYTES = 1024 * 1024


def _ck():
    try:
        import confluent_kafka
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise ConfigError("kafka:// needs the 'alerts' extra: pip install 'cevns[alerts]'") from exc
    return confluent_kafka


def _client_error(err) -> None:
    client_log.warning("librdkafka: %s", err)


class KafkaTransport(Transport):
    def __init__(self, url: BrokerURL, hop_auth: str | None = None, connect_timeout: float = 10.0,
                 message_timeout_s: float = 300.0, **_):
        self.url = url
        self.connect_timeout = float(connect_timeout)
        conf = {"bootstrap.servers": url.address(), "logger": client_log, "error_cb": _client_error,
                "socket.connection.setup.timeout.ms": max(1000, int(self.connect_timeout * 1000))}
        if not url.is_loopback:
            try:
                from hop.auth import load_auth, select_matching_auth
                auth = select_matching_auth(load_auth(hop_auth), url.host)
            except Exception as exc:  # noqa: BLE001 - hop raises several kinds
                raise ConfigError(f"no usable Kafka credentials for {url.host} ({exc}); run `hop auth add` or "
                                  "pass --hop-auth FILE") from None
            conf.update(auth())
        self._conf = conf
        self._message_timeout_ms = int(message_timeout_s * 1000)
        self._producer = None
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None

    def _kurl(self, topic: str) -> str:
        return f"kafka://{self.url.address()}/{topic}"

    # -- producing -------------------------------------------------------------------------------------
    def _prod(self):
        if self._producer is None:
            ck = _ck()
            self._producer = ck.Producer({**self._conf, "enable.idempotence": True, "acks": "all",
                                          "linger.ms": 2, "message.max.bytes": MAX_MESSAGE_BYTES + 4096,
                                          "message.timeout.ms": self._message_timeout_ms,
                                          "queue.buffering.max.messages": 500_000})
        return self._producer

    def publish(self, topic: str, payload: bytes, on_delivery=None) -> None:
        if len(payload) > MAX_MESSAGE_BYTES:
            raise TransportError(f"message of {len(payload)} bytes refused; allowed: <= {MAX_MESSAGE_BYTES}")

        def cb(err, msg):
            if err is None:
                self.delivered += 1
            else:
                self.failed += 1
                self.last_error = str(err)
                log.warning("delivery to %s failed: %s", topic, err)
            if on_delivery is not None:
                on_delivery(err)
        p = self._prod()
        deadline = time.monotonic() + 30.0
        while True:
            try:
                p.produce(topic, bytes(payload), on_delivery=cb)
                break
            except BufferError:  # local queue full: serve callbacks until there is room
                if time.monotonic() > deadline:
                    raise TransportError("kafka producer queue full for 30 s; broker unreachable?") from None
                p.poll(0.1)
            except _ck().KafkaException as exc:
                raise TransportError(f"cannot publish to {self._kurl(topic)}: {exc}") from None
        p.poll(0)

    def warm_up(self) -> None:
        """Create the idempotent producer now: it connects and obtains its producer id in the background
        (~0.5 s on Tansu), which would otherwise delay the first published message (the first alert)."""
        self._prod().poll(0)

    def poll_deliveries(self, timeout: float = 0.0) -> None:
        if self._producer is not None:
            self._producer.poll(timeout)

    def flush(self, timeout: float = 10.0) -> int:
        """Wait for the broker's acknowledgements; returns how many messages are still unacknowledged."""
        return 0 if self._producer is None else int(self._producer.flush(timeout))

    def check(self, topic: str | None = None, timeout: float | None = None) -> None:
        """Raise TransportError unless the broker answers (and lists ``topic``) within ``timeout`` s."""
        ck = _ck()
        from confluent_kafka.admin import AdminClient
        t = self.connect_timeout if timeout is None else timeout
        probe = AdminClient(dict(self._conf))
        try:
            md = probe.list_topics(timeout=max(t, 0.1))
        except ck.KafkaException:
            raise TransportError(f"Kafka broker {self.url.address()} unreachable within {t:g} s") from None
        if topic is not None and (topic not in md.topics or md.topics[topic].error is not None):
            raise TransportError(f"topic {topic!r} does not exist on {self.url.address()}; create it first")

    # -- consuming -------------------------------------------------------------------------------------
    def subscribe(self, topic: str, group: str | None = None, from_beginning: bool = True) -> Subscription:
        return _KafkaSub(self, topic, group, from_beginning)

    def close(self) -> None:
        if self._producer is not None:
            left = self._producer.flush(5.0)
            if left:
                log.warning("closing producer with %d unacknowledged message(s)", left)
            self._producer = None


class _KafkaSub(Subscription):
    def __init__(self, t: KafkaTransport, topic: str, group: str | None, from_beginning: bool):
        ck = _ck()
        self.t, self.topic, self.group = t, topic, group
        self.reconnects = 0
        t.check(topic)
        self.c = ck.Consumer({**t._conf, "group.id": group or f"cevns-anon-{_uuid.uuid4().hex[:12]}",
                              "enable.auto.commit": False, "enable.auto.offset.store": False,
                              "auto.offset.reset": "earliest" if from_beginning else "latest",
                              "fetch.max.bytes": 16 * MAX_MESSAGE_BYTES,
                              # 1 MB (default) per fetch is ~2000 observations: a backlog would wait on the broker
                              # every batch; 8 MB keeps the local queue ahead of the server
                              "max.partition.fetch.bytes": 8 * MAX_MESSAGE_BYTES,
                              "fetch.wait.max.ms": 20})  # default 500 ms would be the alert latency at low rates
        try:
            md = self.c.list_topics(topic, timeout=t.connect_timeout)
            parts = sorted(md.topics[topic].partitions)
            tps = [ck.TopicPartition(topic, p) for p in parts]
            if group is not None:
                tps = self.c.committed(tps, timeout=t.connect_timeout)
        except ck.KafkaException as exc:
            self.c.close()
            raise TransportError(f"cannot subscribe to {t._kurl(topic)}: {exc}") from None
        start = ck.OFFSET_BEGINNING if from_beginning else ck.OFFSET_END
        self.c.assign([ck.TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else start)
                       for tp in tps])
        self._commit_failures = 0

    def poll(self, timeout: float, max_records: int = 1000) -> list[Record]:
        """Up to ``max_records`` records, returned as soon as any is there (waiting at most ``timeout`` s).

        ``Consumer.consume(n, timeout)`` alone waits for n records or the whole timeout, which at low rates
        would add up to ``timeout`` to every message's latency; so: what is queued now, else wait for one
        record, then what arrived with it."""
        msgs = self.c.consume(max_records, 0)
        if not msgs and timeout > 0:
            first = self.c.poll(timeout)
            if first is not None:
                msgs = [first] + (self.c.consume(max_records - 1, 0) if max_records > 1 else [])
        out = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != _ck().KafkaError._PARTITION_EOF:
                    client_log.info("consumer %s: %s", self.topic, err)
                continue
            out.append(Record(m.value() or b"", (m.partition(), m.offset())))
        return out

    def ack(self, records) -> None:
        """Commit (synchronously) the position after the given records; anonymous subscriptions commit nothing."""
        if self.group is None or not records:
            return
        ck = _ck()
        last: dict[int, int] = {}
        for r in records:
            p, off = r.token
            last[p] = max(off, last.get(p, -1))
        try:
            self.c.commit(offsets=[ck.TopicPartition(self.topic, p, off + 1) for p, off in last.items()],
                          asynchronous=False)
        except ck.KafkaException as exc:  # broker away: the next ack commits a later position
            self._commit_failures += 1
            log.warning("offset commit failed (%s); records after the last commit would be re-read and "
                        "deduplicated after a restart", exc)

    def close(self) -> None:
        try:
            self.c.close()
        except Exception:  # noqa: BLE001
            pass
