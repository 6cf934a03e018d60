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


def load_credentials(path=None) -> tuple[str, bytes]:
    p = _resolve(path, "CEVNS_ALERTS_CREDENTIALS", "credentials")
    return _read_private_json(p, "credentials file", "create it with `cevns alerts keygen`",
                              "{'detector': ..., 'key': ...}", lambda obj: (obj["detector"], base64.b64decode(obj["key"])))


def keygen(detector: str, keyring_path, credentials_path) -> None:
    """Create a fresh 256-bit key for ``detector``; add it to the keyring and write its credentials file."""
    from .messages import known_detectors
    from cevns.errors import UnknownNameError

    if detector not in known_detectors():
        raise UnknownNameError("detector", detector, known_detectors())
    kr = Path(keyring_path).expanduser()
    keys = {}
    if kr.is_file():
        _check_private(kr)
        keys = json.loads(kr.read_text()).get("keys", {})
    key = secrets.token_bytes(32)
    keys[detector] = base64.b64encode(key).decode()
    _write_private(kr, {"keys": keys})
    _write_private(Path(credentials_path).expanduser(), {"detector": detector, "key": base64.b64encode(key).decode()})
