"""``cevns alerts ...`` commands: serve, publish, heartbeat, retract, subscribe, test-connection, replay, keygen."""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import uuid as _uuid
from pathlib import Path

from cevns.errors import ConfigError

DEFAULT_BROKER = "memory://127.0.0.1:9099"
DEFAULT_ARCHIVE = "~/.cache/cevns/alerts/archive.sqlite"


def _broker(args) -> str:
    return args.broker or os.environ.get("CEVNS_ALERTS_BROKER") or DEFAULT_BROKER


def _topic(args, default: str) -> str:
    from .transport import parse_url
    return parse_url(_broker(args)).topic or default


def _add_broker(p, topic_help: str):
    p.add_argument("--broker", help=f"broker URL (default $CEVNS_ALERTS_BROKER or {DEFAULT_BROKER}); "
                                    f"kafka://HOST:PORT[/TOPIC]; the topic part names {topic_help}")
    p.add_argument("--hop-auth", help="hop auth.toml for non-loopback Kafka (default: hop's configured auth)")


def _add_creds(p):
    p.add_argument("--credentials", help="detector credentials file (default $CEVNS_ALERTS_CREDENTIALS)")


def _open(args, connect_timeout: float = 10.0):
    from .transport import open_transport
    return open_transport(_broker(args), hop_auth=getattr(args, "hop_auth", None), connect_timeout=connect_timeout,
                          timeout=min(connect_timeout, 5.0))


def _flags(p):
    p.add_argument("--test", action="store_true", help="mark as a test message (never mixes with real ones)")
    p.add_argument("--firedrill", action="store_true", help="mark as a fire-drill message")


def _send(args, build):
    from .auth import load_credentials
    from .server import Publisher
    from .transport import DEFAULT_OBS_TOPIC

    det, key = load_credentials(args.credentials)
    msg = build(det)
    t = _open(args)
    errors = []
    try:
        Publisher(t, det, key, _topic(args, DEFAULT_OBS_TOPIC)).send(
            msg, on_delivery=lambda err: errors.append(err) if err is not None else None)
        left = t.flush(10.0)
        if left or errors:
            from .transport import TransportError
            raise TransportError(f"message {msg.uuid} not acknowledged by the broker within 10 s"
                                 + (f": {errors[0]}" if errors else "") + "; it may not have been delivered")
    finally:
        t.close()
    print(json.dumps({"published": msg.tier, "uuid": msg.uuid, "detector": det}))
    return 0


# ---------------------------------------------------------------------------------------------- commands
def cmd_keygen(args) -> int:
    from .auth import keygen
    keygen(args.detector, args.keyring, args.credentials_out, args.public_key_out)
    print(f"added key for {args.detector} to {args.keyring}; credentials written to {args.credentials_out} (0600)"
          + (f"; alert public key written to {args.public_key_out}" if args.public_key_out else ""))
    return 0


def _fresh_archive(path: str) -> str | None:
    """Move an existing archive (and its WAL files) aside; returns the new name."""
    p = Path(path).expanduser()
    if not p.exists():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S")
    dest = p.with_name(f"{p.name}.{stamp}.bak")
    for suffix in ("", "-wal", "-shm"):
        q = Path(str(p) + suffix)
        if q.exists():
            q.rename(Path(str(dest) + suffix))
    return str(dest)


def cmd_serve(args) -> int:
    from .archive import Archive
    from .auth import load_alert_signing_key, load_keyring
    from .server import AlertServer
    from .transport import DEFAULT_ALERT_TOPIC, DEFAULT_OBS_TOPIC, parse_url
    from .transport.kafka import client_log
    from .transport.loopback import LoopbackBrokerServer, write_token
    from .transport.memory import MemoryBroker

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    client_log.propagate = bool(args.verbose)
    keyring = load_keyring(args.keyring)
    alert_key = load_alert_signing_key(args.keyring)
    url = parse_url(_broker(args))
    hosted = token_file = None
    if args.fresh:
        moved = _fresh_archive(args.archive)
        if moved:
            print(f"--fresh: earlier archive moved to {moved}", flush=True)
    archive = Archive(args.archive)
    srv = None
    try:
        if url.scheme == "memory" and url.host is not None:
            broker = MemoryBroker()
            tok, token_file = write_token(url.port)
            hosted = LoopbackBrokerServer(broker, url.host, url.port, token=tok).start()
            transport = broker
            where = f"{hosted.url} (development transport: in memory, lost when serve exits; token {token_file})"
        else:
            transport = _open(args)
            transport.check(url.topic or DEFAULT_OBS_TOPIC)
            where = _broker(args)
        srv = AlertServer(transport, keyring, archive, obs_topic=url.topic or DEFAULT_OBS_TOPIC,
                          alert_topic=args.alert_topic or DEFAULT_ALERT_TOPIC, window_s=args.window,
                          expiry_s=args.expiry_hours * 3600.0, alert_key=alert_key,
                          max_age_s=args.max_age_hours * 3600.0)
        stop = threading.Event()
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, lambda *_: stop.set())
        timer = None
        if args.duration:
            timer = threading.Timer(args.duration, stop.set)
            timer.daemon = True
            timer.start()
        print(f"cevns alerts server: broker {where}, topics {srv.obs_topic} -> {srv.alert_topic}, "
              f"archive {archive.path}, keyring {len(keyring)} detector(s)", flush=True)
        prior = srv.carried_over()
        if prior["archived_messages"]:
            print(f"archive {archive.path} carries over an earlier session: {prior['archived_messages']} message(s), "
                  f"{prior['alerts']} alert(s), {prior['active_messages']} still active in the coincidence window, "
                  f"{prior['pending_retractions']} held retraction(s) (rebuilt in {srv.rebuild_s:.2f} s); "
                  "use --fresh to start empty", flush=True)
        try:
            srv.run(stop)
        finally:
            if timer is not None:
                timer.cancel()
            print(json.dumps({"server_stopped": srv.status()}), flush=True)
            try:
                transport.flush(5.0)
            finally:
                transport.close()
    finally:
        if hosted is not None:
            hosted.stop()
        if token_file is not None:
            try:
                token_file.unlink()
            except OSError:
                pass
        archive.close()
    return 0


def cmd_publish(args) -> int:
    from .messages import MessageRejected, coincidence_message

    def build(det):
        kw = dict(is_test=args.test, is_firedrill=args.firedrill)
        if args.file:
            try:
                data = json.loads(Path(args.file).read_text())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"--file {args.file}: cannot read JSON ({exc})") from None
            data.setdefault("uuid", str(_uuid.uuid4()))
            data.setdefault("detector_name", det)
            from .timeutil import UTCTime
            if data.get("sent_time_utc") is None:
                data["sent_time_utc"] = UTCTime.now().isoformat()
            from .interop import from_snews
            return from_snews(data)  # our JSON, or the JSON of a snews-data-formats model (snews_pt)
        if not args.neutrino_time:
            raise ConfigError("publish needs --neutrino-time ISO (CoincidenceTier) or --file MESSAGE.json")
        if not args.test:  # the server's plausibility window: say so here instead of publishing into a rejection
            from .timeutil import UTCTime, diff_seconds
            ahead = diff_seconds(UTCTime.parse(args.neutrino_time, "--neutrino-time"), UTCTime.now())
            if ahead > 1.0:
                raise ConfigError(f"--neutrino-time {args.neutrino_time} is {ahead:.3g} s in the future: servers reject "
                                  "it (add --test for a drill, which is exempt)")
            if ahead < -48 * 3600:
                print(f"cevns: warning: --neutrino-time is {-ahead / 3600:.3g} h old; a server with the default "
                      "--max-age-hours 48 rejects it (add --test for a drill)", file=sys.stderr)
        try:
            return coincidence_message(det, args.neutrino_time, args.p_val, **kw)
        except MessageRejected as exc:
            raise ConfigError(exc.reason) from None
    return _send(args, build)


def cmd_heartbeat(args) -> int:
    from .messages import heartbeat_message
    return _send(args, lambda det: heartbeat_message(det, args.status, is_test=args.test,
                                                     is_firedrill=args.firedrill))


def cmd_retract(args) -> int:
    from .messages import MessageRejected, retraction_message

    def build(det):
        try:
            return retraction_message(det, args.uuid, args.latest or 0, args.reason, is_test=args.test,
                                      is_firedrill=args.firedrill)
        except MessageRejected as exc:
            raise ConfigError(f"retract: {exc.reason}") from None
    return _send(args, build)


def cmd_subscribe(args) -> int:
    from cevns.errors import CevnsError

    from .auth import load_alert_public_key
    from .gcn import to_gcn_notice
    from .server import AlertCollector
    from .transport import DEFAULT_ALERT_TOPIC

    if args.count < 0 or args.timeout < 0:
        raise ConfigError(f"--count {args.count}, --timeout {args.timeout}; allowed: >= 0 (0: no limit)")
    _topic(args, DEFAULT_ALERT_TOPIC)  # a malformed broker URL is reported first
    pub = load_alert_public_key(args.alert_key)
    t0 = time.monotonic()
    deadline = t0 + args.timeout if args.timeout else None
    t = _open(args, connect_timeout=min(args.timeout, 10.0) if args.timeout else 10.0)
    n = 0
    try:
        col = AlertCollector(t, _topic(args, DEFAULT_ALERT_TOPIC), from_beginning=args.from_beginning,
                             public_key=pub)
        try:
            while deadline is None or time.monotonic() < deadline:
                left = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
                for a in col.poll(left, max_records=(args.count - n) if args.count else 5000):
                    if a.get("kind") == "connection-test-ack":
                        continue
                    if args.gcn:
                        try:
                            a = to_gcn_notice(a)
                        except CevnsError as exc:  # a conversion bug must not stop a supernova subscriber
                            print(f"cevns: warning: alert {a.get('alert_id')}: no GCN notice ({exc})", file=sys.stderr,
                                  flush=True)
                            continue
                    print(json.dumps(a), flush=True)
                    n += 1
                    if args.count and n >= args.count:
                        return 0
        except KeyboardInterrupt:
            pass
        finally:
            col.close()
    finally:
        t.close()
    if args.count and n < args.count:
        print(f"cevns: subscribe: {n} of {args.count} alert(s) within {args.timeout:g} s", file=sys.stderr)
        return 1
    return 0


def cmd_test_connection(args) -> int:
    from .auth import load_alert_public_key, load_credentials
    from .messages import heartbeat_message
    from .server import AlertCollector, Publisher
    from .transport import DEFAULT_ALERT_TOPIC, DEFAULT_OBS_TOPIC

    det, key = load_credentials(args.credentials)
    pub = load_alert_public_key(args.alert_key or args.credentials)
    nonce = _uuid.uuid4().hex
    t = _open(args, connect_timeout=min(args.timeout, 10.0))
    try:
        # read from the beginning with a fresh group: a LATEST start could miss an ack sent during the join
        col = AlertCollector(t, args.alert_topic or DEFAULT_ALERT_TOPIC, from_beginning=True, public_key=pub)
        t0 = time.monotonic()
        Publisher(t, det, key, _topic(args, DEFAULT_OBS_TOPIC)).send(
            heartbeat_message(det, "ON", is_test=True, meta={"connection_test": nonce}))
        t.flush(5.0)
        while time.monotonic() - t0 < args.timeout:
            col.poll(0.3)
            if any(a.get("nonce") == nonce for a in col.acks):
                print(json.dumps({"connection": "ok", "detector": det, "round_trip_s":
                                  round(time.monotonic() - t0, 3)}))
                return 0
        print(json.dumps({"connection": "failed", "detector": det, "waited_s": args.timeout}))
        return 1
    finally:
        t.close()


def cmd_replay(args) -> int:
    from .replay import replay_file
    res = replay_file(args.file, args.window)
    text = json.dumps(res, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    else:
        print(text)
    return 0


def cmd_pointing(args) -> int:
    from .pointing import consistency, plot_skymap, triangulate
    try:
        times = json.loads(Path(args.times).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{args.times}: cannot read JSON {{detector: ISO time}} ({exc})") from None
    if not isinstance(times, dict):
        raise ConfigError(f"{args.times}: expected a JSON object {{detector: ISO time}}")
    r = triangulate(times, n_grid=args.grid)
    c = consistency(r)
    if args.png:
        plot_skymap(r, args.png)
    print(json.dumps({"ra_deg": r.ra_deg, "dec_deg": r.dec_deg, "area_deg2_68": r.area_deg2[0.68],
                      "area_deg2_90": r.area_deg2[0.90], **c}))
    if not c["consistent"]:
        print(f"cevns: warning: {c['warning']}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    from .transport.base import DEFAULT_ALERT_TOPIC

    p = subparsers.add_parser("alerts", help="SNEWS-style supernova early-warning coincidence service")
    sub = p.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    s = sub.add_parser("keygen", help="admin: create a detector key (server keyring + detector credentials)")
    s.add_argument("detector", help="detector name (e.g. Super-K), as it will appear in messages")
    s.add_argument("--keyring", required=True, help="server keyring file (created if absent; the detector's key is added)")
    s.add_argument("--credentials-out", required=True, help="write the detector's credentials (its key) to this file")
    s.add_argument("--public-key-out", help="also write the server's alert public key here (for subscribers)")
    s.set_defaults(func=cmd_keygen)

    s = sub.add_parser("serve", help="run the coincidence server")
    _add_broker(s, "the observation topic")
    s.add_argument("--keyring", help="server keyring (default $CEVNS_ALERTS_KEYRING)")
    s.add_argument("--archive", default=DEFAULT_ARCHIVE, help=f"SQLite archive (default {DEFAULT_ARCHIVE}); "
                                                                "an earlier session's state is carried over")
    s.add_argument("--fresh", action="store_true", help="move an existing archive aside and start empty")
    s.add_argument("--max-age-hours", type=float, default=48.0,
                   help="accept neutrino times at most this old (default 48; test messages exempt)")
    s.add_argument("--alert-topic", default=None, help=f"topic the alerts are published on (default {DEFAULT_ALERT_TOPIC})")
    s.add_argument("--window", type=float, default=10.0, help="coincidence window in s (default 10)")
    s.add_argument("--expiry-hours", type=float, default=48.0, help="message expiry (default 48 h)")
    s.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    s.add_argument("-v", "--verbose", action="store_true", help="log every message and decision")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("publish", help="publish a CoincidenceTier message (or any tier from --file)")
    _add_broker(s, "the observation topic")
    _add_creds(s)
    s.add_argument("--neutrino-time", help="ISO 8601 UTC time of the first neutrino")
    s.add_argument("--p-val", type=float, default=None, help="p-value of the observation, in (0, 1] (optional)")
    s.add_argument("--file", help="message JSON, ours or a snews-data-formats model's (any tier)")
    _flags(s)
    s.set_defaults(func=cmd_publish)

    s = sub.add_parser("heartbeat", help="send a heartbeat")
    _add_broker(s, "the observation topic")
    _add_creds(s)
    s.add_argument("--status", choices=["ON", "OFF"], default="ON", help="detector status (default ON)")
    _flags(s)
    s.set_defaults(func=cmd_heartbeat)

    s = sub.add_parser("retract", help="retract own message(s) by uuid or the latest N")
    _add_broker(s, "the observation topic")
    _add_creds(s)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--uuid", help="uuid of the message to retract")
    g.add_argument("--latest", type=int, help="retract this detector's latest N messages")
    s.add_argument("--reason", help="free-text reason stored with the retraction")
    _flags(s)
    s.set_defaults(func=cmd_retract)

    s = sub.add_parser("subscribe", help="print alerts as JSON lines")
    _add_broker(s, "the alert topic")
    s.add_argument("--count", type=int, default=0, help="print exactly N alerts, then stop (exit 1 if fewer "
                                                         "arrive before --timeout)")
    s.add_argument("--timeout", type=float, default=0, help="stop after S seconds, connecting included (0: never)")
    s.add_argument("--from-beginning", action="store_true", help="also print alerts already on the topic")
    s.add_argument("--alert-key", help="server alert public key: a credentials file or keygen's --public-key-out "
                                       "file (default $CEVNS_ALERTS_PUBLIC_KEY, then $CEVNS_ALERTS_CREDENTIALS)")
    s.add_argument("--gcn", action="store_true", help="print each alert as a GCN unified-schema JSON notice (GCN "
                                                      "neutrino alert schema 7.2.3, validated) instead of our JSON")
    s.set_defaults(func=cmd_subscribe)

    s = sub.add_parser("test-connection", help="round trip: test heartbeat -> server -> acknowledgement")
    _add_broker(s, "the observation topic")
    _add_creds(s)
    s.add_argument("--alert-topic", default=None, help=f"topic the server publishes alerts on (default {DEFAULT_ALERT_TOPIC})")
    s.add_argument("--alert-key", help="alert public key file (default: the credentials file)")
    s.add_argument("--timeout", type=float, default=10.0, help="give up after this many seconds (default 10)")
    s.set_defaults(func=cmd_test_connection)

    s = sub.add_parser("replay", help="feed a scenario file through the engine; write final groups")
    s.add_argument("file", help="scenario JSON: a list of messages in arrival order")
    s.add_argument("--json", help="output JSON file (default: stdout)")
    s.add_argument("--window", type=float, default=10.0, help="coincidence window in s (default 10)")
    s.set_defaults(func=cmd_replay)

    s = sub.add_parser("pointing", help="triangulate from a JSON {detector: ISO arrival time}; sky map PNG")
    s.add_argument("times", help="JSON file {detector: ISO 8601 arrival time} (at least two known detectors)")
    s.add_argument("--png", help="write the sky map (RA/Dec, 68 and 90 %% regions) to this PNG")
    s.add_argument("--grid", type=int, default=49152, help="number of sky directions tried (default 49152)")
    s.set_defaults(func=cmd_pointing)


def main(argv=None) -> int:  # pragma: no cover - convenience
    from cevns.cli import main as top
    return top(["alerts", *(argv if argv is not None else sys.argv[1:])])
