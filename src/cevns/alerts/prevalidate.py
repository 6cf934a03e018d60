"""Verification and validation of received payloads, in process or in a worker process.

:func:`validate` is the whole receive-side check of one payload (signed envelope, strict parsing and schema,
impersonation, plausibility against the server clock ``now``) and depends on nothing but its arguments, so the
server runs the same function either in its own thread (small batches, no worker) or in a persistent worker
process (:class:`Prevalidator`; large batches on a multi-core machine), where it costs the server thread nothing.
A worker only ever sees bytes and returns validated, plain data (pickled by :mod:`multiprocessing` *from* the
worker, never from the network); results come back in the order of the payloads.  Nothing a payload holds can
make :func:`validate` raise (every failure becomes a rejection), so a hostile message cannot stop the worker;
should the worker die nevertheless, the server logs it and validates in process (:class:`Prevalidator`
restarts its worker later).
"""
from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import sys
import threading
import time

from .auth import open_envelope
from .messages import Message, MessageRejected, parse_message
from .timeutil import NS, UTCTime

log = logging.getLogger("cevns.alerts.server")

OK, REJECTED, LOCAL = 0, 1, 2


def check_plausible(msg: Message, now: int, max_age_ns: int, skew_ns: int) -> None:
    """Plausibility against the server clock (see the server's module docstring)."""
    sent = msg.sent_time
    if sent is not None and sent.elapsed_ns > now + skew_ns:
        raise MessageRejected("future-sent-time", f"sent_time_utc {sent.isoformat()} is later than the server "
                                                  f"clock ({UTCTime(now).isoformat()}) + {skew_ns / NS:g} s")
    if msg.is_test:
        return  # SNEWS exempts test messages from the time window
    for key in ("neutrino_time_utc", "start_time_utc"):
        if msg.data.get(key) is None:
            continue
        t = msg.time(key).elapsed_ns
        if not (now - max_age_ns <= t <= now + skew_ns):
            raise MessageRejected(
                "implausible-time", f"{key} {msg.data[key]} is outside the allowed window "
                f"[server time - {max_age_ns / NS / 3600:g} h, server time + {skew_ns / NS:g} s] "
                f"(server time {UTCTime(now).isoformat()}); test messages (is_test) are exempt")


def validate(raw, keyring: dict, max_bytes: int, now: int, max_age_ns: int, skew_ns: int) -> Message:
    """One payload to a validated :class:`Message` (its canonical JSON text cached), or MessageRejected."""
    try:
        det, text = open_envelope(raw, keyring, max_bytes)
        msg = parse_message(text, max_bytes=max_bytes)
        if msg.detector_name != det:
            raise MessageRejected("impersonation", f"signed by {det!r} but detector_name is "
                                                   f"{msg.detector_name!r}; a detector may only publish, "
                                                   "retract or heartbeat under its own name")
        check_plausible(msg, now, max_age_ns, skew_ns)
        msg.to_json()  # cached: the archive body, computed where it costs the server thread nothing
    except MessageRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - any surprise in validation is a rejection, not a crash
        raise MessageRejected("invalid", f"{type(exc).__name__}: {str(exc)[:160]}") from None
    return msg


def validate_many(payloads: list, keyring: dict, max_bytes: int, now: int, max_age_ns: int, skew_ns: int) -> list:
    """Worker entry point: per payload (OK, tier, canonical JSON text of the validated message, {time field:
    elapsed ns} of the times it parsed) | (REJECTED, code, reason) | (LOCAL,) for a non-bytes item (left to the
    server thread, which handles it exactly as without a worker).  The text (sorted keys) is cheaper to move
    than the pickled Message and is what the archive stores; :func:`message_from` turns it back into the Message
    (``data`` equal; only its key order is the sorted one, and the server reads ``data`` by key only), with its
    times already parsed."""
    out = []
    for raw in payloads:
        if raw is None:
            out.append((LOCAL,))
            continue
        try:
            msg = validate(raw, keyring, max_bytes, now, max_age_ns, skew_ns)
            times = {k: t.elapsed_ns for k, t in msg.__dict__.get("_times", {}).items() if t is not None}
            out.append((OK, msg.tier, msg.to_json(), times))
        except MessageRejected as exc:
            out.append((REJECTED, str(exc.code), str(exc.reason)))
        except BaseException as exc:  # noqa: BLE001 - never let one payload end the worker
            out.append((REJECTED, "invalid", f"{type(exc).__name__}: {str(exc)[:160]}"))
    return out


def message_from(tier: str, text: str, times: dict[str, int]) -> Message:
    """The validated Message of an (OK, tier, text, times) worker result (it came from our own worker)."""
    msg = Message(tier, json.loads(text))
    msg.__dict__["_json"] = text
    msg.__dict__["_times"] = {k: UTCTime(ns) for k, ns in times.items()}
    return msg


def _init_worker() -> None:
    """Ctrl-C at a terminal reaches the whole process group: the server decides when its worker stops.  A server
    that dies without stopping it (SIGKILL, out of memory) must not leave it behind: the worker holds both ends of
    its task queue's pipe, so it would wait for work forever; it exits when its parent's sentinel closes."""
    import os
    import signal
    from multiprocessing.connection import wait

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (wait([parent.sentinel]), os._exit(0)), name="parent-watch",
                         daemon=True).start()


def _warm() -> int:
    """Worker initialisation check: imports done, schemas compiled (first message is not slower)."""
    from .messages import TIERS, _fast_validator, known_detectors
    known_detectors()
    for t in TIERS:
        _fast_validator(t)
    return 1


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _bare_main():
    """Spawn without re-running the caller's main script in the worker (``spawn`` imports ``__main__`` from its
    file unless guarded by ``if __name__ == "__main__"``; a script that starts a server unguarded would start
    another one in the worker).  The worker needs nothing from ``__main__``: it runs this module's functions."""
    main = sys.modules.get("__main__")
    with _MAIN_LOCK:
        saved = {k: main.__dict__.pop(k) for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
        if main is not None:
            main.__spec__ = None
        try:
            yield
        finally:
            if main is not None:
                main.__dict__.update(saved)


class Prevalidator:
    """A persistent worker process that validates chunks of a batch ahead of the server thread.

    ``submit`` sends a batch (in chunks) and returns an iterator of per-payload results, in order; the server
    thread applies chunk k while the worker validates chunk k+1; the first chunk is small (``first_chunk``
    payloads), so that the server thread waits ~5 ms, not ~25 ms, before it starts on a batch.  Worker failure (killed, out of memory, pool
    broken) yields ``None`` results for what was not validated and the server validates those in process; the
    worker is restarted at most every ``restart_s`` seconds.  The worker is spawned (never forked: the server
    process holds librdkafka and SQLite threads)."""

    def __init__(self, chunk: int = 250, first_chunk: int = 50, restart_s: float = 10.0, timeout_s: float = 30.0):
        self.chunk, self.first_chunk = chunk, first_chunk
        self.timeout_s = timeout_s
        self.restart_s = restart_s
        self._pool = None
        self._ready = None
        self._failed_at = -1e9
        self.failures = 0

    def start(self) -> None:
        """Start the worker in the background (spawn and imports take ~1 s; it is used once ready)."""
        if self._pool is not None or time.monotonic() - self._failed_at < self.restart_s:
            return
        from concurrent.futures import ProcessPoolExecutor
        try:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker)
            with _bare_main():  # the worker is spawned at the first submit
                self._ready = self._pool.submit(_warm)
        except Exception as exc:  # noqa: BLE001
            self._fail(f"could not start: {type(exc).__name__}: {exc}")

    @property
    def ready(self) -> bool:
        if self._pool is None:
            self.start()
            return False
        if not self._ready.done():
            return False
        try:
            self._ready.result(0)
        except Exception as exc:  # noqa: BLE001
            self._fail(f"did not start: {type(exc).__name__}: {exc}")
            return False
        return True

    def wait_ready(self, timeout: float = 60.0) -> bool:
        if self._pool is None:
            self.start()
        if self._ready is not None:
            try:
                self._ready.result(timeout)
            except Exception:  # noqa: BLE001
                pass
        return self.ready

    def _fail(self, why: str) -> None:
        self.failures += 1
        self._failed_at = time.monotonic()
        log.error("validation worker process failed (%s); validating in the server process meanwhile "
                  "(worker restart in >= %.0f s)", why, self.restart_s)
        pool, self._pool, self._ready = self._pool, None, None
        if pool is not None:
            for p in list((getattr(pool, "_processes", None) or {}).values()):
                try:
                    p.kill()  # a hung worker must not linger
                except Exception:  # noqa: BLE001
                    pass
            try:
                pool.shutdown(wait=False, cancel_futures=True)
            except Exception:  # noqa: BLE001
                pass

    def submit(self, payloads: list, keyring: dict, max_bytes: int, now: int, max_age_ns: int, skew_ns: int):
        """Hand the batch to the worker now (its chunks queue behind any earlier batch's) and return an iterator of
        per-payload results in order: (OK, tier, text, times) | (REJECTED, code, reason) | (LOCAL,) | None (worker
        failed: validate in process)."""
        items = [bytes(p) if isinstance(p, (bytes, bytearray)) else None for p in payloads]
        futs = []
        try:
            cuts = [0, *range(min(self.first_chunk, len(items)), len(items), self.chunk), len(items)]
            for a, b in zip(cuts, cuts[1:]):
                if a < b:
                    futs.append(self._pool.submit(validate_many, items[a:b], keyring, max_bytes, now, max_age_ns,
                                                  skew_ns))
        except Exception as exc:  # noqa: BLE001 - broken pool at submit time
            self._fail(f"{type(exc).__name__}: {exc}")
        return self._results(futs, len(items))

    def _results(self, futs: list, n: int):
        done = 0
        for f in futs:
            if self._pool is None:  # failed on an earlier chunk
                break
            try:
                res = f.result(timeout=self.timeout_s)
            except Exception as exc:  # noqa: BLE001 - BrokenProcessPool, pickling, ...
                self._fail(f"{type(exc).__name__}: {exc}")
                break
            yield from res
            done += len(res)
        for f in futs:
            f.cancel()
        for _ in range(n - done):
            yield None

    def close(self, timeout: float = 3.0) -> None:
        """Stop the worker (killed if it has not exited within ``timeout`` s: stopping must stay quick)."""
        pool, self._pool, self._ready = self._pool, None, None
        if pool is None:
            return
        procs = list((getattr(pool, "_processes", None) or {}).values())
        # the executor's manager thread tells the worker to exit and joins (reaps) it; joining the process here as
        # well raced with that join (the loser's waitpid fails and the live-looking process was "killed" with a
        # warning, although it had exited), so this waits for the manager thread and only then looks at the worker
        manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
        pool.shutdown(wait=False, cancel_futures=True)
        if manager is not None:
            manager.join(timeout)
        for p in procs:
            if manager is None or not manager.is_alive():  # nobody else joins it now: safe to wait here
                p.join(timeout if manager is None else 0.1)
            if p.exitcode is None:  # still running (a manager still alive after the timeout is stuck with it)
                log.warning("validation worker did not exit within %.0f s; killed", timeout)
                p.kill()
                p.join(1.0)
