"""Transport interface shared by the in-memory, loopback and Kafka brokers.

``open_transport(url)`` understands

* ``memory://`` or ``memory://NAME`` : an in-process broker (threads of one process share it; tests, replay);
* ``memory://127.0.0.1:PORT``       : the same in-memory broker hosted by ``cevns alerts serve`` and reached
  over loopback TCP by other processes (the CLI default; see :mod:`.loopback`);
* ``kafka://HOST:PORT[/TOPIC]``     : Kafka through hop-client (:mod:`.kafka`).

A path component names the topic; otherwise the command's default topic is used.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cevns.errors import CevnsError, ConfigError

DEFAULT_OBS_TOPIC = "snews-observations"
DEFAULT_ALERT_TOPIC = "snews-alerts"
SCHEMES = ("memory", "kafka")


class TransportError(CevnsError, ConnectionError):
    """The broker could not be reached or refused an operation."""


@dataclass
class Record:
    payload: bytes
    token: Any = None  # transport-specific position, handed back to ack()


class Subscription(abc.ABC):
    @abc.abstractmethod
    def poll(self, timeout: float, max_records: int = 1000) -> list[Record]:
        """Wait up to ``timeout`` s; return 0..max_records new records."""

    def ack(self, records: list[Record]) -> None:
        """Mark records as processed (their position survives a reconnect of this group)."""

    @abc.abstractmethod
    def close(self) -> None: ...


class Transport(abc.ABC):
    @abc.abstractmethod
    def publish(self, topic: str, payload: bytes, on_delivery=None) -> None:
        """Send; ``on_delivery(err)`` is called (err None on success) once the broker has acknowledged it."""

    def poll_deliveries(self, timeout: float = 0.0) -> None:
        """Serve pending delivery callbacks (asynchronous transports)."""

    def warm_up(self) -> None:
        """Open the publishing side now, so that the first publish does not pay for connecting (no-op here)."""

    def check(self, topic: str | None = None, timeout: float | None = None) -> None:
        """Raise TransportError unless the broker answers."""

    def flush(self, timeout: float = 10.0) -> int:
        """Wait until queued messages are delivered; returns how many are still queued."""
        return 0

    @abc.abstractmethod
    def subscribe(self, topic: str, group: str | None = None, from_beginning: bool = True) -> Subscription: ...

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass(frozen=True)
class BrokerURL:
    scheme: str
    host: str | None
    port: int | None
    topic: str | None
    name: str = "default"

    @property
    def is_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")

    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_url(url: str) -> BrokerURL:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"broker URL {url!r}; allowed: memory://[NAME | 127.0.0.1:PORT][/TOPIC] or "
                          "kafka://HOST:PORT[/TOPIC]")
    u = urlsplit(url)
    if u.scheme not in SCHEMES:
        raise ConfigError(f"broker URL scheme {u.scheme!r}; allowed: {', '.join(SCHEMES)}")
    topic = u.path.strip("/") or None
    if topic is not None and not all(c.isalnum() or c in "._-" for c in topic):
        raise ConfigError(f"topic {topic!r}; allowed characters: letters, digits, '.', '_', '-'")
    try:
        port = u.port
    except ValueError:
        raise ConfigError(f"broker URL {url!r} has an invalid port") from None
    host = u.hostname
    if u.scheme == "memory":
        if port is None:
            return BrokerURL("memory", None, None, topic, name=host or "default")
        return BrokerURL("memory", host, port, topic)
    if host is None or port is None:
        raise ConfigError(f"kafka URL {url!r} needs host and port: kafka://HOST:PORT[/TOPIC]")
    return BrokerURL("kafka", host, port, topic)


def open_transport(url: str, **kw) -> Transport:
    b = parse_url(url)
    if b.scheme == "memory" and b.host is None:
        from .memory import memory_broker
        return memory_broker(b.name)
    if b.scheme == "memory":
        from .loopback import LoopbackTransport
        return LoopbackTransport(b.host, b.port, **kw)
    from .kafka import KafkaTransport
    return KafkaTransport(b, **kw)
