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


def _open(args):
    from .transport import open_transport
    return open_transport(_broker(args), hop_auth=getattr(args, "hop_auth", None))


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
    try:
        Publisher(t, det, key, _topic(args, DEFAULT_OBS_TOPIC)).send(msg)
        left = t.flush(10.0)
        if left:
            raise ConfigError(f"{left} message(s) not delivered within 10 s")
    finally:
        t.close()
    print(json.dumps({"published": msg.tier, "uuid": msg.uuid, "detector": det}))
    return 0


# ---------------------------------------------------------------------------------------------- commands
def cmd_keygen(args) -> int:
    from .auth import keygen
    keygen(args.detector, args.keyring, args.credentials_out)
    print(f"added key for {args.detector} to {args.keyring}; credentials written to {args.credentials_out} (0600)")
    return 0


def cmd_serve(args) -> int:
    from .archive import Archive
    from .auth import load_keyring
    from .server import AlertServer
    from .transport import DEFAULT_ALERT_TOPIC, DEFAULT_OBS_TOPIC, parse_url
    from .transport.loopback import LoopbackBrokerServer
    from .transport.memory import MemoryBroker

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keyring = load_keyring(args.keyring)
    url = parse_url(_broker(args))
    hosted = None
    if url.scheme == "memory" and url.host is not None:
        broker = MemoryBroker()
        hosted = LoopbackBrokerServer(broker, url.host, url.port).start()
        transport = broker
        where = hosted.url
    else:
        transport = _open(args)
        where = _broker(args)
    archive = Archive(args.archive)
    srv = AlertServer(transport, keyring, archive, obs_topic=url.topic or DEFAULT_OBS_TOPIC,
                      alert_topic=args.alert_topic or DEFAULT_ALERT_TOPIC, window_s=args.window,
                      expiry_s=args.expiry_hours * 3600.0)
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
            if hosted is not None:
                hosted.stop()
            archive.close()
    return 0


def cmd_publish(args) -> int:
    from .messages import MessageRejected, coincidence_message, parse_message

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
            data.setdefault("sent_time_utc", UTCTime.now().isoformat())
            return parse_message(data)
        if not args.neutrino_time:
            raise ConfigError("publish needs --neutrino-time ISO (CoincidenceTier) or --file MESSAGE.json")
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
    from .server import AlertCollector
    from .transport import DEFAULT_ALERT_TOPIC

    t = _open(args)
    col = AlertCollector(t, _topic(args, DEFAULT_ALERT_TOPIC), from_beginning=args.from_beginning)
    deadline = time.monotonic() + args.timeout if args.timeout else None
    n = 0
    try:
        while (deadline is None or time.monotonic() < deadline) and (not args.count or n < args.count):
            for a in col.poll(0.5):
                if a.get("kind") == "connection-test-ack":
                    continue
                print(json.dumps(a), flush=True)
                n += 1
    except KeyboardInterrupt:
        pass
    finally:
        col.close()
        t.close()
    return 0


def cmd_test_connection(args) -> int:
    from .auth import load_credentials
    from .messages import heartbeat_message
    from .server import AlertCollector, Publisher
    from .transport import DEFAULT_ALERT_TOPIC, DEFAULT_OBS_TOPIC

    det, key = load_credentials(args.credentials)
    nonce = _uuid.uuid4().hex
    t = _open(args)
    try:
        # read from the beginning with a fresh group: a LATEST reset could miss an ack sent during group join
        col = AlertCollector(t, args.alert_topic or DEFAULT_ALERT_TOPIC, from_beginning=True)
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
    from .pointing import plot_skymap, triangulate
    try:
        times = json.loads(Path(args.times).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{args.times}: cannot read JSON {{detector: ISO time}} ({exc})") from None
    r = triangulate(times, n_grid=args.grid)
    if args.png:
        plot_skymap(r, args.png)
    print(json.dumps({"ra_deg": r.ra_deg, "dec_deg": r.dec_deg, "chi2_min": r.chi2_min,
                      "area_deg2_68": r.area_deg2[0.68], "area_deg2_90": r.area_deg2[0.90]}))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("alerts", help="SNEWS-style supernova early-warning coincidence service")
    sub = p.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    s = sub.add_parser("keygen", help="admin: create a detector key (server keyring + detector credentials)")
    s.add_argument("detector")
    s.add_argument("--keyring", required=True)
    s.add_argument("--credentials-out", required=True)
    s.set_defaults(func=cmd_keygen)

    s = sub.add_parser("serve", help="run the coincidence server")
    _add_broker(s, "the observation topic")
    s.add_argument("--keyring", help="server keyring (default $CEVNS_ALERTS_KEYRING)")
    s.add_argument("--archive", default=DEFAULT_ARCHIVE, help=f"SQLite archive (default {DEFAULT_ARCHIVE})")
    s.add_argument("--alert-topic", default=None)
    s.add_argument("--window", type=float, default=10.0, help="coincidence window in s (default 10)")
    s.add_argument("--expiry-hours", type=float, default=48.0, help="message expiry (default 48 h)")
    s.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("publish", help="publish a CoincidenceTier message (or any tier from --file)")
    _add_broker(s, "the observation topic")
    _add_creds(s)
    s.add_argument("--neutrino-time", help="ISO 8601 UTC time of the first neutrino")
    s.add_argument("--p-val", type=float, default=None)
    s.add_argument("--file", help="message JSON (CoincidenceTier, SignificanceTier or TimingTier)")
    _flags(s)
    s.set_defaults(func=cmd_publish)

    s = sub.add_parser("heartbeat", help="send a heartbeat")
    _add_broker(s, "the observation topic")
    _add_creds(s)
    s.add_argument("--status", choices=["ON", "OFF"], default="ON")
    _flags(s)
    s.set_defaults(func=cmd_heartbeat)

    s = sub.add_parser("retract", help="retract own message(s) by uuid or the latest N")
    _add_broker(s, "the observation topic")
    _add_creds(s)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--uuid")
    g.add_argument("--latest", type=int)
    s.add_argument("--reason")
    _flags(s)
    s.set_defaults(func=cmd_retract)

    s = sub.add_parser("subscribe", help="print alerts as JSON lines")
    _add_broker(s, "the alert topic")
    s.add_argument("--count", type=int, default=0, help="stop after N alerts")
    s.add_argument("--timeout", type=float, default=0, help="stop after S seconds (0: never)")
    s.add_argument("--from-beginning", action="store_true")
    s.set_defaults(func=cmd_subscribe)

    s = sub.add_parser("test-connection", help="round trip: test heartbeat -> server -> acknowledgement")
    _add_broker(s, "the observation topic")
    _add_creds(s)
    s.add_argument("--alert-topic", default=None)
    s.add_argument("--timeout", type=float, default=10.0)
    s.set_defaults(func=cmd_test_connection)

    s = sub.add_parser("replay", help="feed a scenario file through the engine; write final groups")
    s.add_argument("file")
    s.add_argument("--json", help="output JSON file (default: stdout)")
    s.add_argument("--window", type=float, default=10.0)
    s.set_defaults(func=cmd_replay)

    s = sub.add_parser("pointing", help="triangulate from a JSON {detector: ISO arrival time}; sky map PNG")
    s.add_argument("times")
    s.add_argument("--png")
    s.add_argument("--grid", type=int, default=49152)
    s.set_defaults(func=cmd_pointing)


def main(argv=None) -> int:  # pragma: no cover - convenience
    from cevns.cli import main as top
    return top(["alerts", *(argv if argv is not None else sys.argv[1:])])
