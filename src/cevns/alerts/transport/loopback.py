"""The in-memory broker shared across processes over loopback TCP (the CLI default): a DEVELOPMENT transport.

Two terminals share no memory, so "in-memory broker" for ``cevns alerts serve`` + ``cevns alerts publish`` means:
the *serve* process owns a :class:`~.memory.MemoryBroker` and exposes it on ``127.0.0.1:PORT`` (only loopback
addresses are allowed); other commands reach it as ``memory://127.0.0.1:PORT``.  Messages live in the serve
process's RAM and vanish when it exits (the server's own archive is in SQLite regardless).  Kafka is the
production transport; this one has no durability.

Access: ``serve`` writes a random 256-bit token to a 0600 file (default
``~/.cache/cevns/alerts/loopback-PORT.token``, or ``$CEVNS_ALERTS_LOOPBACK_TOKEN``); a client proves it can read
that file by answering the broker's challenge with ``HMAC-SHA256(token, nonce)`` before any other request.  Other
local users (who cannot read the file) get nothing.

Protocol: one JSON object per line, payloads base64-encoded (the broker never interprets them).  The broker sends
``{"hello":"cevns-memory","nonce":HEX}``; the client answers ``{"op":"auth","mac":HEX}``; then
``{"op":"pub","topic":T,"data":B64}`` -> ``{"ok":true,"offset":N}``;
``{"op":"fetch","topic":T,"offset":N,"max":M,"wait":S}`` -> ``{"ok":true,"data":[B64...],"next":N}``;
``{"op":"offset","topic":T,"group":G|null,"begin":bool}`` / ``{"op":"commit",...}`` / ``{"op":"ping"}``.
Limits: a request line of more than ``MAX_LINE`` bytes gets one error reply and the connection is closed (the
rest of the line is never read as a request); at most ``MAX_CONNECTIONS`` connections (more are refused with an
error line); a connection idle for ``IDLE_S`` is closed; the broker itself bounds message size and retained bytes.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import socketserver
import threading
from pathlib import Path

from cevns.errors import ConfigError

from .base import Record, Subscription, Transport, TransportError
from .memory import MemoryBroker

MAX_LINE = 2 * 1024 * 1024  # base64 of a 1 MiB message plus the JSON around it
MAX_CONNECTIONS = 32
IDLE_S = 120.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def token_path(port: int) -> Path:
    env = os.environ.get("CEVNS_ALERTS_LOOPBACK_TOKEN")
    return Path(env).expanduser() if env else Path(f"~/.cache/cevns/alerts/loopback-{port}.token").expanduser()


def write_token(port: int) -> tuple[bytes, Path]:
    """A fresh access token in a 0600 file (for ``serve``)."""
    tok = secrets.token_bytes(32)
    p = token_path(port)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(tok.hex())
    os.chmod(p, 0o600)
    return tok, p


def read_token(port: int) -> bytes:
    p = token_path(port)
    try:
        return bytes.fromhex(p.read_text().strip())
    except (OSError, ValueError):
        raise TransportError(f"no access token for memory://127.0.0.1:{port} at {p}; is `cevns alerts serve` "
                             "running as this user (or set $CEVNS_ALERTS_LOOPBACK_TOKEN)?") from None


def _mac(token: bytes, nonce: str) -> str:
    return hmac.new(token, b"cevns-loopback-v1\n" + nonce.encode(), hashlib.sha256).hexdigest()


class _Handler(socketserver.StreamRequestHandler):
    def _send(self, obj) -> bool:
        try:
            self.wfile.write(json.dumps(obj).encode() + b"\n")
            self.wfile.flush()
            return True
        except OSError:
            return False

    def handle(self):
        srv = self.server
        with srv.conn_lock:  # type: ignore[attr-defined]
            srv.n_conns += 1  # type: ignore[attr-defined]
            over = srv.n_conns > srv.max_conns  # type: ignore[attr-defined]
        try:
            if over:
                self._send({"ok": False, "error": f"too many connections; allowed: {srv.max_conns}"})
                return
            self._serve()
        finally:
            with srv.conn_lock:  # type: ignore[attr-defined]
                srv.n_conns -= 1  # type: ignore[attr-defined]

    def _serve(self):
        broker: MemoryBroker = self.server.broker  # type: ignore[attr-defined]
        self.request.settimeout(self.server.idle_s)  # type: ignore[attr-defined]
        nonce = secrets.token_hex(16)
        if not self._send({"hello": "cevns-memory", "nonce": nonce}):
            return
        authed = False
        while True:
            try:
                line = self.rfile.readline(MAX_LINE + 1)
            except OSError:  # idle timeout or reset
                return
            if not line:
                return
            if len(line) > MAX_LINE or not line.endswith(b"\n"):
                self._send({"ok": False, "error": f"request line longer than {MAX_LINE} bytes; connection closed"})
                return  # never read the rest of it as a request
            try:
                req = json.loads(line)
                if not isinstance(req, dict):
                    raise ValueError("request must be a JSON object")
                op = req.get("op")
                if not authed:
                    if op != "auth" or not isinstance(req.get("mac"), str) or not hmac.compare_digest(
                            req["mac"], _mac(self.server.token, nonce)):  # type: ignore[attr-defined]
                        self._send({"ok": False, "error": "authentication failed; the access token is in the "
                                                          "file written by `cevns alerts serve`"})
                        return
                    authed = True
                    resp = {"ok": True}
                elif op == "pub":
                    resp = {"ok": True, "offset": broker.publish(str(req["topic"]), base64.b64decode(req["data"]))}
                elif op == "fetch":
                    data, nxt = broker.fetch(str(req["topic"]), int(req["offset"]), max(1, min(int(req["max"]), 5000)),
                                             max(0.0, min(float(req["wait"]), 5.0)))
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
            if not self._send(resp):
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class LoopbackBrokerServer:
    """Host ``broker`` on host:port (loopback only). ``port=0`` picks a free port; ``token`` None: a fresh one."""

    def __init__(self, broker: MemoryBroker, host: str = "127.0.0.1", port: int = 0, token: bytes | None = None,
                 max_conns: int = MAX_CONNECTIONS, idle_s: float = IDLE_S):
        if host not in LOOPBACK:
            raise ConfigError(f"embedded broker host {host!r}; allowed: {', '.join(LOOPBACK)} (loopback only)")
        self.broker = broker
        try:
            self._srv = _Server((host if host != "localhost" else "127.0.0.1", port), _Handler)
        except OSError as exc:
            raise TransportError(f"cannot listen on {host}:{port}: {exc}") from exc
        self.token = token if token is not None else secrets.token_bytes(32)
        self._srv.broker = broker  # type: ignore[attr-defined]
        self._srv.token = self.token  # type: ignore[attr-defined]
        self._srv.max_conns, self._srv.idle_s = max_conns, idle_s  # type: ignore[attr-defined]
        self._srv.n_conns, self._srv.conn_lock = 0, threading.Lock()  # type: ignore[attr-defined]
        self.host, self.port = self._srv.server_address[:2]
        self._t = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def url(self) -> str:
        return f"memory://{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        return self._srv.n_conns  # type: ignore[attr-defined]

    def start(self) -> "LoopbackBrokerServer":
        self._t.start()
        return self

    def stop(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()


class _Conn:
    def __init__(self, host, port, timeout, token: bytes):
        self.addr, self.timeout, self.token = (host, port), timeout, token
        self.sock = None
        self.lock = threading.Lock()

    def _open(self):
        self.sock = socket.create_connection(self.addr, timeout=self.timeout)
        self.f = self.sock.makefile("rwb")
        hello = json.loads(self.f.readline(4096) or b"{}")
        if "nonce" not in hello:
            raise OSError(f"broker refused the connection: {hello.get('error', 'no greeting')}")
        self.f.write(json.dumps({"op": "auth", "mac": _mac(self.token, str(hello["nonce"]))}).encode() + b"\n")
        self.f.flush()
        r = json.loads(self.f.readline(4096) or b"{}")
        if not r.get("ok"):
            raise TransportError(f"embedded broker at memory://{self.addr[0]}:{self.addr[1]} refused: "
                                 f"{r.get('error', 'connection closed')}")

    def call(self, req: dict, extra_wait: float = 0.0) -> dict:
        with self.lock:
            for attempt in range(2):
                try:
                    if self.sock is None:
                        self._open()
                    self.sock.settimeout(self.timeout + extra_wait)
                    self.f.write(json.dumps(req).encode() + b"\n")
                    self.f.flush()
                    line = self.f.readline(MAX_LINE + 1)
                    if not line:
                        raise OSError("connection closed by broker")
                    resp = json.loads(line)
                    break
                except (OSError, ValueError) as exc:
                    self.close()
                    if attempt == 1:
                        raise TransportError(f"embedded broker at memory://{self.addr[0]}:{self.addr[1]} "
                                             f"unreachable ({exc}); is `cevns alerts serve` running?") from None
                except TransportError:
                    self.close()
                    raise
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
    """Client of a :class:`LoopbackBrokerServer`; ``token`` None reads the token file of ``port``."""

    def __init__(self, host: str, port: int, timeout: float = 5.0, token: bytes | None = None, **_):
        if host not in LOOPBACK:
            raise ConfigError(f"memory:// broker host {host!r}; allowed: loopback only ({', '.join(LOOPBACK)})")
        self.host, self.port, self.timeout = host, port, timeout
        self.token = token if token is not None else read_token(port)
        self._pub = _Conn(host, port, timeout, self.token)

    def ping(self) -> dict:
        return self._pub.call({"op": "ping"})

    def publish(self, topic: str, payload: bytes, on_delivery=None) -> None:
        self._pub.call({"op": "pub", "topic": topic, "data": base64.b64encode(payload).decode()})
        if on_delivery is not None:
            on_delivery(None)

    def check(self, topic: str | None = None, timeout: float | None = None) -> None:
        self.ping()

    def subscribe(self, topic: str, group: str | None = None, from_beginning: bool = True) -> Subscription:
        return _LoopSub(self, topic, group, from_beginning)

    def close(self) -> None:
        self._pub.close()


class _LoopSub(Subscription):
    def __init__(self, t: LoopbackTransport, topic, group, from_beginning):
        self.c = _Conn(t.host, t.port, t.timeout, t.token)
        self.topic, self.group = topic, group
        self.offset = self.c.call({"op": "offset", "topic": topic, "group": group, "begin": from_beginning})["offset"]

    def poll(self, timeout: float, max_records: int = 1000) -> list[Record]:
        r = self.c.call({"op": "fetch", "topic": self.topic, "offset": self.offset, "max": max_records,
                         "wait": min(timeout, 5.0)}, extra_wait=timeout)
        data = [base64.b64decode(d) for d in r["data"]]
        first = r["next"] - len(data)
        self.offset = r["next"]
        return [Record(d, first + i + 1) for i, d in enumerate(data)]

    def ack(self, records) -> None:
        if self.group is not None and records:
            self.c.call({"op": "commit", "topic": self.topic, "group": self.group,
                         "offset": max(r.token for r in records)})

    def close(self) -> None:
        self.c.close()
