"""SNEWS 2.0 message tiers as validated models; JSON on the wire only.

Fields follow the SNEWS data formats (SNEWS2/snews-data-formats, schema_version 0.2, copied to
``cevns/data/snews/schema``; SNEWS 2.0 software: arXiv:2406.17743, Sec. 3).  One deliberate update: TimingTier
``timing_series`` is a list of integer nanosecond offsets from ``start_time_utc`` (optional
``time_bin_width_ns``), the format of the released ``snews-data-formats`` 1.1.1; the schema file we ship is the
older git version with ISO strings, so the TimingTier schema is patched in memory here (the file is unchanged).

Receipt is strict (:func:`parse_message`): size limit, UTF-8 JSON only (pickles and other binary formats are
refused before any decoding; nothing is ever unpickled or evaluated), no duplicate keys, no NaN/Infinity,
bounded nesting, known tier, JSON-Schema validation, no unknown fields, a UUID, a known detector name, valid UTC
times, p-values in [0, 1].  Every refusal raises :class:`MessageRejected` with a machine-readable ``code`` and a
human-readable reason naming what was wrong and what is allowed.
"""
from __future__ import annotations

import copy
import functools
import json
import re
import uuid as _uuid
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jsonschema

from cevns.errors import CevnsError, DataError, UnknownNameError

from .timeutil import TimeFormatError, UTCTime

TIERS = ("Heartbeat", "Retraction", "CoincidenceTier", "SignificanceTier", "TimingTier")
_SCHEMA_FILE = {
    "Heartbeat": "HeartbeatMessage.schema.json",
    "Retraction": "RetractionMessage.schema.json",
    "CoincidenceTier": "CoincidenceTierMessage.schema.json",
    "SignificanceTier": "SignificanceTierMessage.schema.json",
    "TimingTier": "TimingTierMessage.schema.json",
}
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_JSON_DEPTH = 12
MAX_ABS_INT = 2 ** 63 - 1  # every JSON integer must fit a signed 64-bit integer (SQLite, Kafka tools, numpy)
MAX_T_BIN_WIDTH_S = 3600.0  # SignificanceTier t_bin_width_sec: 0 < width <= 1 h
MAX_TIMING_SPAN_NS = 3600 * 10 ** 9  # TimingTier offsets / bin widths: within 1 h of start_time_utc
MAX_BACKGROUND_HZ = 1e9
MAX_RETRACT_N = 1000
DETECTION_CHANNELS = ("Electron Neutrino", "Electron Antineutrino", "Neutral Current", "Other")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class MessageRejected(CevnsError, ValueError):
    """A received message was refused; ``code`` is a short machine-readable category."""

    def __init__(self, code: str, reason: str) -> None:
        self.code, self.reason = code, reason
        super().__init__(f"message rejected [{code}]: {reason}")


# ------------------------------------------------------------------------------------------------ data
def _data_text(name: str) -> str:
    try:
        return resources.files("cevns.data.snews").joinpath(name).read_text()
    except OSError as exc:  # pragma: no cover - packaging error
        raise DataError(f"cannot read cevns/data/snews/{name}: {exc}") from exc


@functools.lru_cache(maxsize=1)
def known_detectors() -> tuple[str, ...]:
    """Detector names accepted by the coincidence server (``detector_properties.json``)."""
    return tuple(sorted(json.loads(_data_text("detector_properties.json"))))


@functools.lru_cache(maxsize=None)
def tier_schema(tier: str) -> dict:
    if tier not in _SCHEMA_FILE:
        raise UnknownNameError("message tier", tier, TIERS)
    schema = json.loads(_data_text("schema/" + _SCHEMA_FILE[tier]))
    if tier == "TimingTier":
        # snews-data-formats 1.1.1: integer ns offsets from start_time_utc (see module docstring).
        schema = copy.deepcopy(schema)
        props = schema["properties"]
        props["timing_series"] = {
            "description": "Neutrino arrival times as integer ns offsets from start_time_utc",
            "type": "array",
            "items": {"type": "integer", "minimum": 0},
            "maxItems": 20000,
        }
        props["start_time_utc"] = {"type": "string", "description": "Reference time of timing_series (UTC)"}
        props["time_bin_width_ns"] = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]}
        # further snews-data-formats 1.1.1 TimingTier fields (their neutrino_time_utc is required there; here it
        # is optional and derived from start_time_utc + the first offset when absent)
        props["neutrino_time_utc"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
        props["background_rate_Hz"] = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}],
                                       "default": None}
        props["detection_channel"] = {"anyOf": [{"enum": list(DETECTION_CHANNELS)}, {"type": "null"}],
                                      "default": None}
        schema["required"] = sorted(set(schema["required"]) | {"start_time_utc"})
    return schema


@functools.lru_cache(maxsize=None)
def _validator(tier: str) -> jsonschema.protocols.Validator:
    schema = tier_schema(tier)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


# Fast path.  The reference jsonschema validator costs ~1 ms per message, too slow for >1000 msg/s on a small
# CI machine, so each tier schema is compiled once into a closure tree that checks the keyword subset these
# schemas use.  It is only a fast *accept*: anything it does not accept, or any schema using a keyword outside
# the subset, goes through the full jsonschema validator (which also words the error).  A hypothesis test checks
# that both agree.
_FAST_KEYS = {"type", "anyOf", "allOf", "$ref", "enum", "minimum", "maximum", "items", "maxItems", "properties",
              "required", "default", "description", "title", "examples", "$schema", "$defs", "schema_author",
              "schema_version"}
_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def _compile(node: dict, root: dict):
    if set(node) - _FAST_KEYS:
        return None
    checks = []
    if "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            return None
        sub = _compile(root["$defs"][ref.split("/")[-1]], root)
        if sub is None:
            return None
        checks.append(sub)
    if "type" in node:
        if node["type"] not in _TYPES:
            return None
        checks.append(_TYPES[node["type"]])
    if "enum" in node:
        allowed = node["enum"]
        checks.append(lambda v: any(v == a and type(v) is type(a) for a in allowed))
    if "minimum" in node:
        lo = node["minimum"]
        checks.append(lambda v: not _TYPES["number"](v) or v >= lo)
    if "maximum" in node:
        hi = node["maximum"]
        checks.append(lambda v: not _TYPES["number"](v) or v <= hi)
    if "maxItems" in node:
        mx = node["maxItems"]
        checks.append(lambda v: not isinstance(v, list) or len(v) <= mx)
    if "items" in node:
        it = _compile(node["items"], root)
        if it is None:
            return None
        checks.append(lambda v: not isinstance(v, list) or all(it(x) for x in v))
    for key, combine in (("anyOf", any), ("allOf", all)):
        if key in node:
            subs = [_compile(x, root) for x in node[key]]
            if any(x is None for x in subs):
                return None
            if combine is any:
                def any_of(v, subs=tuple(subs)):
                    for f in subs:
                        if f(v):
                            return True
                    return False
                checks.append(any_of)
            else:
                def every(v, subs=tuple(subs)):
                    for f in subs:
                        if not f(v):
                            return False
                    return True
                checks.append(every)
    if "properties" in node or "required" in node:
        props = {k: _compile(v, root) for k, v in node.get("properties", {}).items()}
        if any(f is None for f in props.values()):
            return None
        req = tuple(node.get("required", ()))

        def obj(v, props=props, req=req):
            if not isinstance(v, dict):
                return True
            for r in req:
                if r not in v:
                    return False
            for k, x in v.items():
                f = props.get(k)
                if f is not None and not f(x):
                    return False
            return True
        checks.append(obj)
    if len(checks) == 1:
        return checks[0]

    def all_of(v, checks=tuple(checks)):
        for c in checks:
            if not c(v):
                return False
        return True
    return all_of


@functools.lru_cache(maxsize=None)
def _fast_validator(tier: str):
    schema = tier_schema(tier)
    return _compile(schema, schema)


def schema_errors(tier: str, obj: dict) -> list:
    """Schema violations of obj (empty list if valid): fast accept, else the full jsonschema validator."""
    fast = _fast_validator(tier)
    if fast is not None and fast(obj):
        return []
    return sorted(_validator(tier).iter_errors(obj), key=lambda e: list(e.absolute_path))


# ------------------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class Message:
    """A validated SNEWS message. ``data`` is the full JSON object as sent (defaults filled in)."""

    tier: str
    data: dict = field(repr=False)

    @property
    def uuid(self) -> str:
        return self.data["uuid"]

    @property
    def detector_name(self) -> str:
        return self.data["detector_name"]

    @property
    def is_test(self) -> bool:
        return bool(self.data.get("is_test"))

    @property
    def is_firedrill(self) -> bool:
        return bool(self.data.get("is_firedrill"))

    @property
    def is_pre_sn(self) -> bool:
        return bool(self.data.get("is_pre_sn"))

    @functools.cached_property
    def channel(self) -> str:
        """Messages only meet others of the same channel: real, test, firedrill and pre-SN never mix (cached:
        ``data`` is validated once and never changed)."""
        flags = [n for n, on in (("test", self.is_test), ("firedrill", self.is_firedrill),
                                 ("pre_sn", self.is_pre_sn)) if on]
        return "+".join(flags) or "real"

    def time(self, key: str) -> UTCTime | None:
        cache = self.__dict__.setdefault("_times", {})  # data is validated once and never changed
        if key not in cache:
            v = self.data.get(key)
            cache[key] = None if v is None else UTCTime.parse(v, key)
        return cache[key]

    @property
    def neutrino_time(self) -> UTCTime:
        return self.time("neutrino_time_utc")

    @property
    def has_neutrino_time(self) -> bool:
        return self.data.get("neutrino_time_utc") is not None

    @property
    def sent_time(self) -> UTCTime | None:
        return self.time("sent_time_utc")

    def to_json(self) -> str:
        """Canonical JSON text (cached: ``data`` is validated once and never changed)."""
        text = self.__dict__.get("_json")
        if text is None:
            text = self.__dict__["_json"] = json.dumps(self.data, sort_keys=True, separators=(",", ":"),
                                                       allow_nan=False)
        return text


def _fill_defaults(tier: str, data: dict) -> dict:
    out = dict(data)
    for k, spec in tier_schema(tier)["properties"].items():
        if k not in out and "default" in spec:
            out[k] = copy.deepcopy(spec["default"])
    return out


# ------------------------------------------------------------------------------------------------ parsing
def _looks_like_pickle(raw: bytes) -> bool:
    if raw[:1] == b"{":  # a JSON object, the normal case: no pickle starts so
        return False
    if raw[:1] == b"\x80" and raw[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return True
    head = raw[:64]
    return head.startswith((b"(dp", b"(lp", b"cos\n", b"cposix\n", b"c__builtin__", b"(i", b"ccopy_reg"))


def _reject_dupes(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise MessageRejected("duplicate-key", f"JSON object has duplicate key {k!r}; keys must be unique")
        out[k] = v
    return out


def _reject_constant(name):
    raise MessageRejected("non-finite", f"JSON constant {name} is not allowed; numbers must be finite")


def _finite_float(text: str) -> float:
    """A JSON number with a fraction/exponent; ``1e400`` would silently become inf, so refuse it here."""
    x = float(text)
    if x != x or x in (float("inf"), float("-inf")):
        raise MessageRejected("non-finite", f"number {text[:30]} overflows a 64-bit float; numbers must be finite "
                                            "(|x| < 1.8e308)")
    return x


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or abs(int(text)) > MAX_ABS_INT:
        raise MessageRejected("out-of-range", f"integer {text[:30]}... does not fit 64 bits; allowed: "
                                              f"|n| <= {MAX_ABS_INT}")
    return int(text)


def _depth(obj, limit: int, d: int = 0) -> None:
    if d > limit:
        raise MessageRejected("too-deep", f"JSON nesting deeper than {limit} levels")
    if isinstance(obj, dict):
        for v in obj.values():
            _depth(v, limit, d + 1)
    elif isinstance(obj, list):
        for v in obj:
            _depth(v, limit, d + 1)


# one decoder for every strict parse (json.loads with keyword hooks builds a new decoder and scanner per call: ~3.5 µs)
_STRICT_DECODER = json.JSONDecoder(object_pairs_hook=_reject_dupes, parse_constant=_reject_constant,
                                   parse_float=_finite_float, parse_int=_bounded_int)


def loads_strict(raw: bytes | str, max_bytes: int = MAX_PAYLOAD_BYTES, what: str = "payload") -> Any:
    """Decode untrusted bytes as strict JSON (never pickle, never eval)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise MessageRejected("not-bytes", f"{what} must be bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    if len(raw) == 0:
        raise MessageRejected("empty", f"{what} is empty")
    if len(raw) > max_bytes:
        raise MessageRejected("oversized", f"{what} is {len(raw)} bytes; allowed: <= {max_bytes}")
    if _looks_like_pickle(raw):
        raise MessageRejected("pickle", f"{what} is a Python pickle; only JSON is accepted (never unpickled)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageRejected("not-utf8", f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                          "only UTF-8 JSON is accepted") from None
    try:
        obj = _STRICT_DECODER.decode(text)
    except MessageRejected:
        raise
    except RecursionError:
        raise MessageRejected("too-deep", f"{what} JSON nesting too deep") from None
    except ValueError as exc:  # JSONDecodeError, huge integer literals
        raise MessageRejected("not-json", f"{what} is not valid JSON: {str(exc)[:120]}") from None
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH:  # fewer brackets cannot nest deeper: skip the walk
        _depth(obj, MAX_JSON_DEPTH)
    return obj


def _check_numbers(obj, path: str = "") -> None:
    """Every number anywhere (``meta`` included) finite and within 64-bit range (for objects not parsed here)."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise MessageRejected("non-finite", f"{path or 'value'} is {obj}; numbers must be finite")
    elif isinstance(obj, int):
        if abs(obj) > MAX_ABS_INT:
            raise MessageRejected("out-of-range", f"{path or 'value'}: integer does not fit 64 bits")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise MessageRejected("schema", f"{path}: object keys must be strings")
            _check_numbers(v, f"{path}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_numbers(v, f"{path}/{i}")
    else:
        raise MessageRejected("schema", f"{path}: {type(obj).__name__} is not a JSON value")


def _check_ranges(tier: str, data: dict) -> None:
    """Physical ranges the schemas leave open (units in the field names: s, ns, Hz)."""
    if tier == "SignificanceTier":
        w = data["t_bin_width_sec"]
        if not (0 < w <= MAX_T_BIN_WIDTH_S):
            raise MessageRejected("out-of-range", f"SignificanceTier t_bin_width_sec = {w!r} s; allowed: "
                                                  f"0 < width <= {MAX_T_BIN_WIDTH_S:g} s")
        if not data["p_values"]:
            raise MessageRejected("out-of-range", "SignificanceTier p_values is empty; allowed: >= 1 value in [0, 1]")
    if tier == "TimingTier":
        ts, width = data["timing_series"], data.get("time_bin_width_ns")
        if not ts:
            raise MessageRejected("out-of-range", "TimingTier timing_series is empty; allowed: >= 1 entry")
        span = len(ts) * width if width else max(ts)
        if span > MAX_TIMING_SPAN_NS:
            raise MessageRejected("out-of-range", f"TimingTier timing_series spans {span} ns; allowed: <= "
                                                  f"{MAX_TIMING_SPAN_NS} ns (1 h) after start_time_utc")
        bg = data.get("background_rate_Hz")
        if bg is not None and bg > MAX_BACKGROUND_HZ:
            raise MessageRejected("out-of-range", f"background_rate_Hz = {bg!r}; allowed: 0..{MAX_BACKGROUND_HZ:g} Hz")
    if tier == "Retraction" and (data.get("retract_latest_n") or 0) > MAX_RETRACT_N:
        raise MessageRejected("out-of-range", f"retract_latest_n = {data['retract_latest_n']}; allowed: "
                                              f"1..{MAX_RETRACT_N}")


def parse_message(raw: bytes | str | dict, detectors: tuple[str, ...] | None = None,
                  max_bytes: int = MAX_PAYLOAD_BYTES) -> Message:
    """Validate one received message; return a :class:`Message` or raise :class:`MessageRejected`."""
    if isinstance(raw, dict):
        _check_numbers(raw)
        _depth(raw, MAX_JSON_DEPTH)
    obj = raw if isinstance(raw, dict) else loads_strict(raw, max_bytes, "message")
    if not isinstance(obj, dict):
        raise MessageRejected("not-object", f"message must be a JSON object, got {type(obj).__name__}")
    tier = obj.get("tier")
    if tier not in TIERS:
        raise MessageRejected("unknown-tier", f"tier {str(tier)[:40]!r} unknown; allowed: {', '.join(TIERS)}")
    schema = tier_schema(tier)
    unknown = sorted(set(obj) - set(schema["properties"]))
    if unknown:
        raise MessageRejected("unknown-field", f"{tier}: unknown field(s) {unknown[:5]}; allowed: "
                                               f"{', '.join(sorted(schema['properties']))}")
    if tier == "TimingTier" and any(isinstance(x, str) for x in obj.get("timing_series") or []):
        raise MessageRejected("timing-format", "TimingTier timing_series holds ISO strings (pre-1.1.1 format); "
                                               "allowed: integer ns offsets >= 0 from start_time_utc")
    errors = schema_errors(tier, obj)
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        raise MessageRejected("schema", f"{tier} field {where}: {e.message[:160]}")
    data = _fill_defaults(tier, obj)
    u = data.get("uuid")
    if not isinstance(u, str) or not _UUID_RE.match(u):
        raise MessageRejected("bad-uuid", f"{tier}: uuid {str(u)[:40]!r} missing or not an RFC 4122 UUID "
                                          "(the server needs it to deduplicate and retract)")
    dets = known_detectors() if detectors is None else detectors
    if data["detector_name"] not in dets:
        raise MessageRejected("unknown-detector", f"detector {data['detector_name'][:40]!r} unknown; allowed: "
                                                  f"{', '.join(dets)}")
    times = {}  # parsed once: the Message's time cache
    for key in ("sent_time_utc", "machine_time_utc", "neutrino_time_utc", "start_time_utc"):
        if data.get(key) is not None:
            try:
                times[key] = UTCTime.parse(data[key], key)
            except TimeFormatError as exc:
                raise MessageRejected("bad-time", str(exc)) from None
    if tier == "SignificanceTier" and any(p > 1 for p in data["p_values"]):
        raise MessageRejected("schema", "SignificanceTier p_values must lie in [0, 1]")
    if tier == "Retraction":
        has_uuid = data.get("retract_message_uuid") is not None
        n = data.get("retract_latest_n") or 0
        if has_uuid == (n > 0):
            raise MessageRejected("bad-retraction", "Retraction needs exactly one of retract_message_uuid "
                                                    "or retract_latest_n >= 1")
        if has_uuid and not _UUID_RE.match(data["retract_message_uuid"]):
            raise MessageRejected("bad-retraction", "retract_message_uuid is not a UUID")
    if tier == "Heartbeat" and data["detector_status"] not in ("ON", "OFF"):
        raise MessageRejected("schema", f"detector_status {data['detector_status'][:20]!r}; allowed: ON, OFF")
    _check_ranges(tier, data)
    if tier == "TimingTier" and data.get("neutrino_time_utc") is None:
        first = data["start_time_utc"] if data.get("time_bin_width_ns") else None
        t0 = UTCTime.parse(data["start_time_utc"], "start_time_utc")
        data["neutrino_time_utc"] = first or t0.add_ns(min(data["timing_series"])).isoformat()
    msg = Message(tier, data)
    msg.__dict__["_times"] = times
    return msg


# ------------------------------------------------------------------------------------------------ builders
def _base(tier: str, detector_name: str, *, is_test=False, is_firedrill=False, is_pre_sn=False,
          sent_time: UTCTime | str | None = None, uuid: str | None = None, meta: dict | None = None,
          machine_time: str | None = None) -> dict:
    if sent_time is None:
        sent_time = UTCTime.now()
    elif isinstance(sent_time, str):
        sent_time = UTCTime.parse(sent_time, "sent_time_utc")
    d = {
        "tier": tier, "uuid": uuid or str(_uuid.uuid4()), "detector_name": detector_name,
        "sent_time_utc": sent_time.isoformat(), "is_test": bool(is_test), "is_firedrill": bool(is_firedrill),
        "is_pre_sn": bool(is_pre_sn), "schema_version": "0.2",
    }
    if meta is not None:
        d["meta"] = meta
    if machine_time is not None:
        d["machine_time_utc"] = machine_time
    return d


def _build(tier: str, d: dict) -> Message:
    try:
        return parse_message(d)
    except MessageRejected as exc:  # builder misuse is a config error for the caller
        raise MessageRejected(exc.code, exc.reason) from None


def coincidence_message(detector_name: str, neutrino_time: str | UTCTime, p_val: float | None = None,
                        **kw) -> Message:
    d = _base("CoincidenceTier", detector_name, **kw)
    d["neutrino_time_utc"] = neutrino_time.isoformat() if isinstance(neutrino_time, UTCTime) else neutrino_time
    d["p_val"] = p_val
    return _build("CoincidenceTier", d)


def heartbeat_message(detector_name: str, status: str = "ON", **kw) -> Message:
    d = _base("Heartbeat", detector_name, **kw)
    d["detector_status"] = status
    return _build("Heartbeat", d)


def retraction_message(detector_name: str, retract_uuid: str | None = None, latest_n: int = 0,
                       reason: str | None = None, **kw) -> Message:
    d = _base("Retraction", detector_name, **kw)
    d.update(retract_message_uuid=retract_uuid, retract_latest_n=int(latest_n), retraction_reason=reason)
    return _build("Retraction", d)


def significance_message(detector_name: str, p_values: list[float], t_bin_width_sec: float,
                         p_val: float | None = None, **kw) -> Message:
    d = _base("SignificanceTier", detector_name, **kw)
    d.update(p_values=list(p_values), t_bin_width_sec=t_bin_width_sec, p_val=p_val)
    return _build("SignificanceTier", d)


def timing_message(detector_name: str, start_time: str | UTCTime, offsets_ns: list[int],
                   time_bin_width_ns: int | None = None, p_val: float | None = None, **kw) -> Message:
    d = _base("TimingTier", detector_name, **kw)
    st = start_time if isinstance(start_time, UTCTime) else UTCTime.parse(start_time, "start_time_utc")
    offsets = [int(x) for x in offsets_ns]
    d.update(start_time_utc=st.isoformat(), timing_series=offsets, time_bin_width_ns=time_bin_width_ns,
             p_val=p_val, neutrino_time_utc=(st if time_bin_width_ns or not offsets else st.add_ns(min(offsets)))
             .isoformat())
    return _build("TimingTier", d)


def timing_series_times(msg: Message) -> list[UTCTime]:
    """Absolute arrival times of a TimingTier message (start_time_utc + integer ns offsets)."""
    if msg.tier != "TimingTier":
        raise MessageRejected("wrong-tier", f"timing_series_times needs a TimingTier message, got {msg.tier}")
    t0 = UTCTime.parse(msg.data["start_time_utc"], "start_time_utc")
    return [t0.add_ns(x) for x in msg.data["timing_series"]]
