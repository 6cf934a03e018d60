"""SNEWS 2.0 interoperability: the JSON form of the ``snews-data-formats`` message models (PyPI package
``snews-data-formats`` 1.1.1, module ``snews.models.messages``; used by snews_pt), both ways.

snews_pt publishes pickled model objects, which this service never accepts; the common ground is the models'
JSON (``model.model_dump_json()``), carried as the ``message`` text of our HMAC envelope (the signature travels
beside the message, :mod:`.auth`).

Field mapping (ours <-> snews-data-formats 1.1.1):

* all five tiers share the names of the schema files in ``data/snews/schema`` (``uuid``, ``tier``,
  ``detector_name``, ``sent_time_utc``, ``machine_time_utc``, ``is_test``, ``is_firedrill``, ``is_pre_sn``,
  ``meta``, ``schema_version``, ``id``, ``p_val``, ``neutrino_time_utc``, ``detector_status``,
  ``retract_message_uuid``, ``retract_latest_n``, ``retraction_reason``, ``p_values``, ``t_bin_width_sec``);
* TimingTier: theirs requires ``neutrino_time_utc`` and ``start_time_utc``, ``timing_series`` as integer ns offsets
  (or binned counts when ``time_bin_width_ns`` is set), and has ``background_rate_Hz`` and ``detection_channel``;
  ours accepts all of these and fills ``neutrino_time_utc`` when absent;
* the older snews_pt names (``neutrino_time``, ``machine_time``, ``sent_time``, ``p_value``, ``t_bin_width``,
  ``retract_latest``, ``retraction_uuid``, ``which_tier``) are mapped to these on input (:data:`LEGACY_NAMES`);
* their ``id`` (human-readable) is kept as is; ``null`` values of optional fields are accepted;
* theirs has no nanosecond-exact leap-second time type on the wire: times are ISO strings on both sides.

:func:`from_snews` turns their JSON object into ours (then validated strictly by :func:`.messages.parse_message`);
:func:`to_snews` gives the JSON object their models accept for one of our messages.
"""
from __future__ import annotations

import json

from .messages import Message, MessageRejected, parse_message

LEGACY_NAMES = {"neutrino_time": "neutrino_time_utc", "machine_time": "machine_time_utc",
                "sent_time": "sent_time_utc", "p_value": "p_val", "t_bin_width": "t_bin_width_sec",
                "retract_latest": "retract_latest_n", "retraction_uuid": "retract_message_uuid",
                "which_tier": "tier"}
_TIER_ALIASES = {"CoincidenceTierMessage": "CoincidenceTier", "SignificanceTierMessage": "SignificanceTier",
                 "TimingTierMessage": "TimingTier", "HeartbeatMessage": "Heartbeat",
                 "RetractionMessage": "Retraction", "Retraction": "Retraction"}


def from_snews(obj: dict | str | bytes) -> Message:
    """Validate a snews-data-formats message (its JSON form) as one of ours."""
    if not isinstance(obj, dict):
        from .messages import loads_strict
        obj = loads_strict(obj, what="snews message")
    if not isinstance(obj, dict):
        raise MessageRejected("not-object", "snews message must be a JSON object")
    out = {}
    for k, v in obj.items():
        key = LEGACY_NAMES.get(k, k)
        if key in out:
            raise MessageRejected("duplicate-key", f"snews message has both {k!r} and {key!r}")
        out[key] = v
    if isinstance(out.get("tier"), str):
        out["tier"] = _TIER_ALIASES.get(out["tier"], out["tier"])
    return parse_message(out)


def to_snews(msg: Message) -> dict:
    """The JSON object of ``msg`` as snews-data-formats 1.1.1 models expect it (all fields they define)."""
    d = json.loads(msg.to_json())
    d.setdefault("id", f"{msg.detector_name}_{msg.tier}_{d.get('machine_time_utc')}")
    d.setdefault("schema_version", "0.2")
    return d
