"""The in-memory broker shared across processes over loopback TCP (the CLI default).

Two terminals share no memory, so "in-memory broker" for ``cevns alerts serve`` + ``cevns alerts publish`` means:
the *serve* process owns a :class:`~.memory.MemoryBroker` and exposes it on ``127.0.0.1:PORT`` (only loopback
addresses are allowed); other commands reach it as ``memory://127.0.0.1:PORT``.  Messages live in the serve
process's RAM and vanish when it exits (the server's own archive is in SQLite regardless).

Protocol: one JSON object per line, payloads base64-encoded (the broker never interprets them):
``{"op":"pub","topic":T,"data":B64}`` -> ``{"ok":true,"offset":N}``;
``{"op":"fetch","topic":T,"offset":N,"max":M,"wait":S}`` -> ``{"ok":true,"data":[B64...],"next":N}``;
``{"op":"offset","topic":T,"group":G|null,"begin":bool}`` / ``{"op":"commit",...}`` / ``{"op":"ping"}``.
Lines are limited to 8 MiB; malformed requests get ``{"ok":false,"error":...}``.
"""
from __future__ import annotations

import base64
import json
import socket
import socketserver
import threading
import time

from cevns.errors import ConfigError

from .base import Record, Subscription, Transport, TransportError
from .memory import MemoryBroker

MAX_LINE = 8 * 1024 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        broker: MemoryBroker = self.server.broker  # type: ignore[attr-defined]
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                return
            try:
                if len(line) > MAX_LINE:
                    raise ValueError("request line too long")
                req = json.loads(line)
                op = req.get("op")
                if op == "pub":
                    resp = {"ok": True, "offset": broker.publish(str(req["topic"]), base64.b64decode(req["data"]))}
                elif op == "fetch":
                    data, nxt = broker.fetch(str(req["topic"]), int(req["offset"]), min(int(req["max"]), 5000),
                                             min(float(req["wait"]), 5.0))
                    resp = {"ok": True, "data": [base64.b64encode(d).decode() for d in data], "next": nxt}
                elif op == "offset":
                    resp = {"ok": True, "offset": broker.group_offset(str(req["topic"]), req.get("group"),
                                                                      bool(req.get("begin", True)))}
                elif op == "commit":
                    broker.commit(str(req["topic"]), str(req["group"]), int(req["offset"]))
                    resp = {"ok": True}
                elif op == "ping":
                    resp = {"ok": True, "broker": "cevns-memory"}
                else:
                    raise ValueError(f"unknown op {str(op)[:20]!r}; allowed: pub, fetch, offset, commit, ping")
            except Exception as exc:  # noqa: BLE001 - report any bad request, keep serving
                resp = {"ok": False, "error": str(exc)[:200]}
            try:
                self.wfile.write(json.dumps(resp).encode() + b"\n")
            except OSError:
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class LoopbackBrokerServer:
    """Host ``broker`` on host:port (loopback only). ``port=0`` picks a free port."""

    def __init__(self, broker: MemoryBroker, host: str = "127.0.0.1", port: int = 0):
        if host not in LOOPBACK:
            raise ConfigError(f"embedded broker host {host!r}; allowed: {', '.join(LOOPBACK)} (loopback only)")
        self.broker = broker
        try:
            self._srv = _Server((host if host != "localhost" else "127.0.0.1", port), _Handler)
        except OSError as exc:
            raise TransportError(f"cannot listen on {host}:{port}: {exc}") from exc
        self._srv.broker = broker  # type: ignore[attr-defined]
        self.host, self.port = self._srv.server_address[:2]
        self._t = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def url(self) -> str:
        return f"memory://{self.host}:{self.port}"

    def start(self) -> "LoopbackBrokerServer":
        self._t.start()
        return self

    def stop(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()


class _Conn:
    def __init__(self, host, port, timeout):
        self.addr, self.timeout = (host, port), timeout
        self.sock = None
        self.lock = threading.Lock()

    def call(self, req: dict, extra_wait: float = 0.0) -> dict:
        with self.lock:
            for attempt in range(2):
                try:
                    if self.sock is None:
                        self.sock = socket.create_connection(self.addr, timeout=self.timeout)
                        self.f = self.sock.makefile("rwb")
                    self.sock.settimeout(self.timeout + extra_wait)
                    self.f.write(json.dumps(req).encode() + b"\n")
                    self.f.flush()
                    line = self.f.readline(MAX_LINE + 1)
                    if not line:
                        raise OSError("connection closed by broker")
                    resp = json.loads(line)
                    break
                except OSError as exc:
                    self.close()
                    if attempt == 1:
                        raise TransportError(f"embedded broker at memory://{self.addr[0]}:{self.addr[1]} "
                                             f"unreachable ({exc}); is `cevns alerts serve` running?") from None
        if not resp.get("ok"):
            raise TransportError(f"broker refused request: {resp.get('error')}")
        return resp

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None


class LoopbackTransport(Transport):
    def __init__(self, host: str, port: int, timeout: float = 5.0, **_):
        if host not in LOOPBACK:
            raise ConfigError(f"memory:// broker host {host!r}; allowed: loopback only ({', '.join(LOOPBACK)})")
        self.host, self.port, self.timeout = host, port, timeout
        self._pub = _Conn(host, port, timeout)

    def ping(self) -> dict:
        return self._pub.call({"op": "ping"})

    def publish(self, topic: str, payload: bytes) -> None:
        self._pub.call({"op": "pub", "topic": topic, "data": base64.b64encode(payload).decode()})

    def subscribe(self, topic: str, group: str | None = None, from_beginning: bool = True) -> Subscription:
        return _LoopSub(self, topic, group, from_beginning)

    def close(self) -> None:
        self._pub.close()


class _LoopSub(Subscription):
    def __init__(self, t: LoopbackTransport, topic, group, from_beginning):
        self.c = _Conn(t.host, t.port, t.timeout)
        self.topic, self.group = topic, group
        self.offset = self.c.call({"op": "offset", "topic": topic, "group": group, "begin": from_beginning})["offset"]

    def poll(self, timeout: float, max_records: int = 1000) -> list[Record]:
        t0 = time.monotonic()
        r = self.c.call({"op": "fetch", "topic": self.topic, "offset": self.offset, "max": max_records,
                         "wait": min(timeout, 5.0)}, extra_wait=timeout)
        data = [base64.b64decode(d) for d in r["data"]]
        first = r["next"] - len(data)
        self.offset = r["next"]
        del t0
        return [Record(d, first + i + 1) for i, d in enumerate(data)]

    def ack(self, records) -> None:
        if self.group is not None and records:
            self.c.call({"op": "commit", "topic": self.topic, "group": self.group,
                         "offset": max(r.token for r in records)})

    def close(self) -> None:
        self.c.close()
