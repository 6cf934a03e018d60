"""In-process, in-memory broker: append-only topics, per-group offsets, thread-safe."""
from __future__ import annotations

import threading
import time

from cevns.errors import ConfigError

from .base import Record, Subscription, Transport, TransportError

MAX_RETAINED = 2_000_000  # messages per topic; the oldest are dropped beyond this (bounded memory)
MAX_RETAINED_BYTES = 64 * 1024 * 1024  # bytes per topic; the oldest are dropped beyond this
MAX_MESSAGE_BYTES = 1024 * 1024  # like Kafka's max.message.bytes: larger payloads are refused
_REGISTRY: dict[str, "MemoryBroker"] = {}
_REG_LOCK = threading.Lock()


class MemoryBroker(Transport):
    def __init__(self, max_retained: int = MAX_RETAINED, max_retained_bytes: int = MAX_RETAINED_BYTES,
                 max_message_bytes: int = MAX_MESSAGE_BYTES):
        self._cond = threading.Condition()
        self._topics: dict[str, list[bytes]] = {}
        self._base: dict[str, int] = {}  # offset of _topics[t][0]
        self._bytes: dict[str, int] = {}
        self._groups: dict[tuple[str, str], int] = {}
        self.max_retained, self.max_retained_bytes = max_retained, max_retained_bytes
        self.max_message_bytes = max_message_bytes
        self.dropped = 0

    # -- broker side (also used by the loopback server) ------------------------------------------------
    def publish(self, topic: str, payload: bytes, on_delivery=None) -> int:
        if not isinstance(payload, (bytes, bytearray)):
            raise ConfigError(f"payload must be bytes, got {type(payload).__name__}")
        if len(payload) > self.max_message_bytes:
            raise TransportError(f"message of {len(payload)} bytes refused; allowed: <= {self.max_message_bytes}")
        with self._cond:
            log = self._topics.setdefault(topic, [])
            base = self._base.setdefault(topic, 0)
            log.append(bytes(payload))
            self._bytes[topic] = self._bytes.get(topic, 0) + len(payload)
            drop, freed = 0, 0
            while drop < len(log) - 1 and (len(log) - drop > self.max_retained
                                           or self._bytes[topic] - freed > self.max_retained_bytes):
                freed += len(log[drop])
                drop += 1
            if drop:
                self._bytes[topic] -= freed
                del log[:drop]
                self._base[topic] = base + drop
                self.dropped += drop
            self._cond.notify_all()
            off = self._base[topic] + len(log) - 1
        if on_delivery is not None:
            on_delivery(None)
        return off

    def end_offset(self, topic: str) -> int:
        with self._cond:
            return self._base.get(topic, 0) + len(self._topics.get(topic, []))

    def fetch(self, topic: str, offset: int, max_records: int, timeout: float) -> tuple[list[bytes], int]:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while True:
                base = self._base.get(topic, 0)
                log = self._topics.get(topic, [])
                start = max(offset, base)
                if start < base + len(log):
                    out = log[start - base:start - base + max_records]
                    return out, start + len(out)
                left = deadline - time.monotonic()
                if left <= 0:
                    return [], start
                self._cond.wait(left)

    def group_offset(self, topic: str, group: str | None, from_beginning: bool) -> int:
        with self._cond:
            if group is not None and (topic, group) in self._groups:
                return self._groups[(topic, group)]
            return self._base.get(topic, 0) if from_beginning else self.end_offset(topic)

    def commit(self, topic: str, group: str, offset: int) -> None:
        with self._cond:
            self._groups[(topic, group)] = max(offset, self._groups.get((topic, group), 0))

    # -- client side -------------------------------------------------------------------------------------
    def subscribe(self, topic: str, group: str | None = None, from_beginning: bool = True) -> Subscription:
        return _MemSub(self, topic, group, from_beginning)


class _MemSub(Subscription):
    def __init__(self, broker: MemoryBroker, topic, group, from_beginning):
        self.b, self.topic, self.group = broker, topic, group
        self.offset = broker.group_offset(topic, group, from_beginning)

    def poll(self, timeout: float, max_records: int = 1000) -> list[Record]:
        data, nxt = self.b.fetch(self.topic, self.offset, max_records, timeout)
        first = nxt - len(data)
        self.offset = nxt
        return [Record(d, first + i + 1) for i, d in enumerate(data)]

    def ack(self, records) -> None:
        if self.group is not None and records:
            self.b.commit(self.topic, self.group, max(r.token for r in records))

    def close(self) -> None:
        pass


def memory_broker(name: str = "default") -> MemoryBroker:
    """The process-wide in-memory broker called ``name`` (created on first use)."""
    with _REG_LOCK:
        if name not in _REGISTRY:
            _REGISTRY[name] = MemoryBroker()
        return _REGISTRY[name]


def reset_memory_brokers() -> None:
    with _REG_LOCK:
        _REGISTRY.clear()
