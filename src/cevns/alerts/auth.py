"""Publisher authentication: every message travels in a signed envelope.

Wire format (UTF-8 JSON, nothing else)::

    {"alg": "HMAC-SHA256", "detector": "<name>", "message": "<message JSON text>", "mac": "<hex>"}

``mac = HMAC-SHA256(key_detector, b"snews-v1\\n" + detector + b"\\n" + message_text)`` (RFC 2104).  The secret
key never travels; the server holds a *keyring* {detector: key} and accepts a message only if the MAC verifies
with that detector's key **and** the message's ``detector_name`` equals the envelope's detector, so a detector can
only publish, retract or heartbeat under its own name.  Replays are harmless: the server deduplicates by the
message uuid (persisted in SQLite).

Credentials live outside the repository: a detector credentials file (``{"detector":..., "key":...}``) and the
server keyring (``{"keys": {...}}``), both created by ``cevns alerts keygen`` with mode 0600; files readable by
group/others are refused.  Paths come from ``--credentials``/``--keyring`` or the environment variables
``CEVNS_ALERTS_CREDENTIALS`` / ``CEVNS_ALERTS_KEYRING``.  Holding the keyring is the admin credential (serve,
keygen).  Kafka-level credentials are separate and come from hop's own mechanism (``hop auth add``).

Alerts travel the other way signed by the server with Ed25519 (RFC 8032, through the ``cryptography``
package), so that subscribers can verify them without being able to forge them::

    {"alg": "Ed25519", "signer": "cevns-alerts", "alert": "<alert JSON text>", "sig": "<hex>"}

``sig = Ed25519(private, b"snews-alert-v1\n" + alert_text)``.  The private key (32-byte seed) lives in the server
keyring (``alert_signing_key``); ``keygen`` creates it once and writes the public key into every detector
credentials file (``alert_public_key``), which ``subscribe`` uses (or ``--alert-key FILE``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path

from cevns.errors import ConfigError

from .messages import MAX_PAYLOAD_BYTES, MessageRejected, loads_strict

ALG = "HMAC-SHA256"
_ENVELOPE_KEYS = {"alg", "detector", "message", "mac"}
ALERT_ALG = "Ed25519"
ALERT_SIGNER = "cevns-alerts"
_ALERT_KEYS = {"alg", "signer", "alert", "sig"}
_ALERT_PREFIX = b"snews-alert-v1\n"
MAX_ALERT_BYTES = 1024 * 1024


class CredentialError(ConfigError):
    """Missing, unreadable or insecure credentials."""


def _mac(key: bytes, detector: str, text: str) -> str:
    return hmac.new(key, b"snews-v1\n" + detector.encode() + b"\n" + text.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(message_text: str, detector: str, key: bytes) -> bytes:
    return json.dumps({"alg": ALG, "detector": detector, "message": message_text,
                       "mac": _mac(key, detector, message_text)}, separators=(",", ":")).encode()


def open_envelope(raw: bytes, keyring: dict[str, bytes], max_bytes: int = MAX_PAYLOAD_BYTES) -> tuple[str, str]:
    """Verify an envelope; returns (detector, message_text) or raises MessageRejected."""
    env = loads_strict(raw, max_bytes, "envelope")
    if not isinstance(env, dict) or set(env) != _ENVELOPE_KEYS:
        got = sorted(env) if isinstance(env, dict) else type(env).__name__
        raise MessageRejected("no-envelope", f"expected a signed envelope with keys {sorted(_ENVELOPE_KEYS)}, "
                                             f"got {str(got)[:120]}")
    if env["alg"] != ALG:
        raise MessageRejected("bad-signature", f"alg {str(env['alg'])[:20]!r}; allowed: {ALG}")
    det, text, mac = env["detector"], env["message"], env["mac"]
    if not (isinstance(det, str) and isinstance(text, str) and isinstance(mac, str)):
        raise MessageRejected("no-envelope", "envelope detector, message and mac must be strings")
    key = keyring.get(det)
    if key is None:
        raise MessageRejected("unknown-signer", f"no key for detector {det[:40]!r} in the server keyring")
    if not hmac.compare_digest(_mac(key, det, text), mac):
        raise MessageRejected("bad-signature", f"MAC does not verify for detector {det[:40]!r}")
    return det, text


# ------------------------------------------------------------------------------------------------ alerts
def _ed25519():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise CredentialError("signed alerts need the 'alerts' extra: pip install 'cevns[alerts]'") from exc
    return ed25519, InvalidSignature


def alert_public_key(seed: bytes) -> bytes:
    """Raw 32-byte Ed25519 public key of a 32-byte private seed."""
    ed, _ = _ed25519()
    from cryptography.hazmat.primitives import serialization as ser
    return ed.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(ser.Encoding.Raw,
                                                                                   ser.PublicFormat.Raw)


class AlertSigner:
    """Server side: signs alert texts with the Ed25519 seed from the keyring."""

    def __init__(self, seed: bytes):
        if not isinstance(seed, (bytes, bytearray)) or len(seed) != 32:
            raise CredentialError("alert signing key must be a 32-byte Ed25519 seed")
        ed, _ = _ed25519()
        self._key = ed.Ed25519PrivateKey.from_private_bytes(bytes(seed))
        self.public_key = alert_public_key(bytes(seed))

    def sign(self, alert_text: str) -> bytes:
        sig = self._key.sign(_ALERT_PREFIX + alert_text.encode("utf-8")).hex()
        return json.dumps({"alg": ALERT_ALG, "signer": ALERT_SIGNER, "alert": alert_text, "sig": sig},
                          separators=(",", ":")).encode()


def open_alert(raw: bytes, public_key: bytes) -> dict:
    """Verify a signed alert; returns the alert object or raises MessageRejected (forged, unsigned, malformed)."""
    env = loads_strict(raw, MAX_ALERT_BYTES, "alert")
    if not isinstance(env, dict) or set(env) != _ALERT_KEYS:
        raise MessageRejected("unsigned-alert", "not a signed alert envelope (keys alg, signer, alert, sig)")
    if env["alg"] != ALERT_ALG or not isinstance(env["alert"], str) or not isinstance(env["sig"], str):
        raise MessageRejected("unsigned-alert", f"alert alg {str(env['alg'])[:20]!r}; allowed: {ALERT_ALG}")
    ed, invalid = _ed25519()
    try:
        ed.Ed25519PublicKey.from_public_bytes(public_key).verify(bytes.fromhex(env["sig"]),
                                                                  _ALERT_PREFIX + env["alert"].encode("utf-8"))
    except (invalid, ValueError):
        raise MessageRejected("bad-alert-signature", "alert signature does not verify with the server's "
                                                     "public key (forged or altered)") from None
    body = loads_strict(env["alert"].encode("utf-8"), MAX_ALERT_BYTES, "alert body")
    if not isinstance(body, dict):
        raise MessageRejected("unsigned-alert", "alert body is not a JSON object")
    return body


# ------------------------------------------------------------------------------------------------ files
def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialError(f"{path} is accessible by group/others (mode {oct(mode & 0o777)}); "
                              f"allowed: 0600 (chmod 600 {path})")


def _write_private(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
    os.chmod(path, 0o600)


def _resolve(path, env: str, what: str) -> Path:
    p = path or os.environ.get(env)
    if not p:
        raise CredentialError(f"no {what} given: pass --{what} PATH or set ${env}")
    return Path(p).expanduser()


def _read_private_json(p: Path, what: str, missing_hint: str, expected: str, parse):
    """Parse a private (0600) JSON key file with ``parse``; clear CredentialErrors when missing or malformed."""
    if not p.is_file():
        raise CredentialError(f"{what} {p} not found; {missing_hint}")
    _check_private(p)
    try:
        return parse(json.loads(p.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialError(f"{what} {p} is malformed ({exc}); expected {expected}") from None


def load_keyring(path=None) -> dict[str, bytes]:
    p = _resolve(path, "CEVNS_ALERTS_KEYRING", "keyring")
    return _read_private_json(p, "keyring", f"create it with `cevns alerts keygen DETECTOR --keyring {p}`",
                              "{'keys': {detector: base64}}",
                              lambda obj: {d: base64.b64decode(k) for d, k in obj["keys"].items()})


def load_alert_signing_key(path=None) -> bytes:
    """The server's Ed25519 seed from the keyring (created by keygen)."""
    p = _resolve(path, "CEVNS_ALERTS_KEYRING", "keyring")
    seed = _read_private_json(p, "keyring", f"create it with `cevns alerts keygen DETECTOR --keyring {p}`",
                              "{'keys': {...}, 'alert_signing_key': base64}",
                              lambda obj: obj.get("alert_signing_key"))
    if not seed:
        raise CredentialError(f"keyring {p} has no alert_signing_key (made by an older version); run "
                              f"`cevns alerts keygen DETECTOR --keyring {p} ...` once to add one")
    return base64.b64decode(seed)


def load_alert_public_key(path=None) -> bytes:
    """The server's alert public key from a credentials file or a public-key file (``alert_public_key``)."""
    p = path or os.environ.get("CEVNS_ALERTS_PUBLIC_KEY") or os.environ.get("CEVNS_ALERTS_CREDENTIALS")
    if not p:
        raise CredentialError("no alert public key: pass --alert-key FILE (a detector credentials file or the "
                              "public key file written by keygen), or set $CEVNS_ALERTS_PUBLIC_KEY")
    p = Path(p).expanduser()
    if not p.is_file():
        raise CredentialError(f"alert public key file {p} not found")
    try:
        key = base64.b64decode(json.loads(p.read_text())["alert_public_key"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialError(f"{p} holds no alert_public_key ({exc}); use a credentials or public key file "
                              "written by `cevns alerts keygen`") from None
    if len(key) != 32:
        raise CredentialError(f"{p}: alert_public_key must be 32 bytes (Ed25519)")
    return key


def load_credentials(path=None) -> tuple[str, bytes]:
    p = _resolve(path, "CEVNS_ALERTS_CREDENTIALS", "credentials")
    return _read_private_json(p, "credentials file", "create it with `cevns alerts keygen`",
                              "{'detector': ..., 'key': ...}", lambda obj: (obj["detector"], base64.b64decode(obj["key"])))


def keygen(detector: str, keyring_path, credentials_path, public_key_out=None) -> None:
    """Create a fresh 256-bit key for ``detector``; add it to the keyring and write its credentials file.

    The keyring also gets the server's Ed25519 alert signing seed if it has none; its public key is written
    into the credentials file (and to ``public_key_out`` if given) so that subscribers can verify alerts."""
    from .messages import known_detectors
    from cevns.errors import UnknownNameError

    if detector not in known_detectors():
        raise UnknownNameError("detector", detector, known_detectors())
    kr = Path(keyring_path).expanduser()
    obj = {}
    if kr.is_file():
        _check_private(kr)
        obj = json.loads(kr.read_text())
    keys = obj.get("keys", {})
    seed_b64 = obj.get("alert_signing_key") or base64.b64encode(secrets.token_bytes(32)).decode()
    pub = base64.b64encode(alert_public_key(base64.b64decode(seed_b64))).decode()
    key = secrets.token_bytes(32)
    keys[detector] = base64.b64encode(key).decode()
    _write_private(kr, {"keys": keys, "alert_signing_key": seed_b64})
    _write_private(Path(credentials_path).expanduser(), {"detector": detector, "key": base64.b64encode(key).decode(),
                                                         "alert_public_key": pub})
    if public_key_out:
        po = Path(public_key_out).expanduser()
        po.parent.mkdir(parents=True, exist_ok=True)
        po.write_text(json.dumps({"alert_public_key": pub, "alg": ALERT_ALG}) + "\n")
