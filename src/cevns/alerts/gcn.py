"""Alerts as GCN unified-schema JSON notices (nasa-gcn/gcn-schema, npm ``@nasa-gcn/schema`` 7.2.3).

:func:`to_gcn_notice` maps one of our alert objects (the JSON body the server signs and archives) to a notice
following the GCN *neutrino alert* schema (``gcn/notices/neutrino/Alert.schema.json``: the core Event, Alert,
Reporter, Statistics, Localization and DateTime schemas) plus the core AdditionalInfo schema; the notice's
``$schema`` names that GCN schema.  :func:`validate_notice` checks a notice against the vendored schema files
(``gcn_schema/``, listed with their provenance in ``gcn_schema/SOURCE.md``), resolved from a local
``referencing`` registry: no network.  The GCN core schemas require no field, so a cevns profile
(``gcn_schema/cevns/snews_coincidence_notice.schema.json``) adds which fields must be present, the types of our
extra fields and no unknown fields.

Mapping (physics and naming choices; see docs/alerts.md):

* ``mission`` the service name (default ``cevns-alerts``), ``instrument`` ``SNEWS-style coincidence``,
  ``messenger`` ``Neutrino``, ``id`` our ``alert_id``;
* ``alert_datetime`` the server time the alert was made; ``trigger_time`` the earliest neutrino time of the group
  (the first arrival at any detector, no light-travel-time correction; ns precision, ``Z``);
* ``alert_tense`` ``test`` for the test and fire-drill channels, else ``current``; ``alert_type`` ``initial``
  (NEW), ``update`` (UPDATE, and a RETRACTION after which two or more detectors still coincide), ``retraction``
  (a RETRACTION that leaves fewer than two detectors: the coincidence is withdrawn); ``alert_state`` keeps ours;
* ``far`` [Hz] the rate of accidental coincidences of any k of the N online detectors (our
  ``false_alarm_rate_per_year`` / Julian year), only for groups of >= 2 detectors;
* ``ra``/``dec`` [deg] the triangulated best direction, ``ra_dec_error`` [deg] the radius of the circle with the
  area of the 90 % region, ``containment_probability`` 0.9; only when the alert carries a pointing estimate that
  is physically consistent.  Frame: equatorial of date through the Earth Rotation Angle (no precession or
  nutation, <= 0.4 deg from ICRS J2000 for 2000-2030, far below the region size);
* ``detectors``, ``neutrino_times``, ``message_uuids``, ``previous_detectors``, ``channel``, ``online_detectors``,
  ``far_per_year``, ``combined_p_value``/``combined_sigma``: our fields, typed by the profile; ``additional_info``
  says the same in words.
"""
from __future__ import annotations

import functools
import json
import math
from importlib import resources

from cevns.errors import ConfigError, DataError

from .far import SECONDS_PER_JULIAN_YEAR

GCN_SCHEMA_VERSION = "7.2.3"
GCN_NEUTRINO_SCHEMA = f"https://gcn.nasa.gov/schema/v{GCN_SCHEMA_VERSION}/gcn/notices/neutrino/Alert.schema.json"
PROFILE_ID = "urn:cevns:schema:gcn-notice:snews-coincidence:1"
VENDORED = ("gcn/notices/neutrino/Alert.schema.json", "gcn/notices/core/Alert.schema.json",
            "gcn/notices/core/DateTime.schema.json", "gcn/notices/core/Event.schema.json",
            "gcn/notices/core/Localization.schema.json", "gcn/notices/core/Reporter.schema.json",
            "gcn/notices/core/Statistics.schema.json", "gcn/notices/core/AdditionalInfo.schema.json",
            "cevns/snews_coincidence_notice.schema.json")
_TYPES = {"NEW": "initial", "UPDATE": "update"}


def _schema_text(rel: str) -> str:
    """Text of one shipped schema file (path relative to ``cevns/alerts/gcn_schema``)."""
    try:
        return resources.files("cevns.alerts").joinpath("gcn_schema", *rel.split("/")).read_text("utf-8")
    except OSError as exc:  # pragma: no cover - packaging error
        raise DataError(f"cannot read cevns/alerts/gcn_schema/{rel}: {exc}") from exc


@functools.lru_cache(maxsize=1)
def _validator():
    """The profile validator, with every $ref resolved from the vendored files (a lookup elsewhere fails)."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource

    def refuse(uri: str):
        raise NoSuchResource(ref=uri)
    resources_ = [Resource.from_contents(json.loads(_schema_text(rel))) for rel in VENDORED]
    registry = Registry(retrieve=refuse).with_resources((r.id(), r) for r in resources_)
    profile = registry.contents(PROFILE_ID)
    cls = jsonschema.validators.validator_for(profile)
    cls.check_schema(profile)
    return cls(profile, registry=registry)


def notice_errors(notice: object) -> list[str]:
    """Every schema violation of ``notice`` as 'path: message' lines (empty when it validates).

    A failing GCN sub-schema drops its annotations, so jsonschema then also calls that sub-schema's fields
    "unevaluated"; those follow-on lines are left out while other errors exist (a real unknown field shows once
    the rest is fixed)."""
    errs = list(_validator().iter_errors(notice))
    if any(e.validator != "unevaluatedProperties" for e in errs):
        errs = [e for e in errs if e.validator != "unevaluatedProperties"]
    lines = [f"{'/'.join(str(p) for p in e.absolute_path) or '(notice)'}: {e.message}"
             for e in sorted(errs, key=lambda e: list(map(str, e.absolute_path)))]
    return list(dict.fromkeys(lines))  # the profile and a GCN schema may both word the same violation


def validate_notice(notice: object) -> None:
    """Raise DataError unless ``notice`` validates against the GCN neutrino alert schema and the cevns profile."""
    errs = notice_errors(notice)
    if errs:
        raise DataError(f"GCN notice does not validate against {GCN_NEUTRINO_SCHEMA} + the cevns profile: "
                        + "; ".join(errs[:8]) + (f" (+{len(errs) - 8} more)" if len(errs) > 8 else ""))


def _radius_deg(area_deg2: float) -> float:
    """Angular radius [deg] of the spherical cap of solid angle ``area_deg2`` [deg^2]: A = 2 pi (1 - cos r)."""
    sr = area_deg2 * (math.pi / 180.0) ** 2
    return 180.0 if sr >= 4 * math.pi else math.degrees(math.acos(1.0 - sr / (2 * math.pi)))


def to_gcn_notice(alert: dict, mission: str = "cevns-alerts") -> dict:
    """GCN notice (JSON object, validated) for one alert object as the server publishes it (``Alert.to_dict``
    plus the server's fields); times UTC ISO 8601, ``far`` in Hz, angles in deg."""
    if not isinstance(alert, dict) or alert.get("kind") != "snews-coincidence-alert":
        raise ConfigError("to_gcn_notice takes an alert object (kind 'snews-coincidence-alert'), got "
                          f"{str(alert)[:80]}")
    try:
        n = _notice(alert, mission)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ConfigError(f"alert object lacks or mistypes field {exc}; needs the fields the server publishes "
                          "(alert_id, state, channel, detectors, neutrino_times_utc, uuids, previous_detectors, "
                          "server_time_utc; FAR, significance and pointing fields when present)") from None
    validate_notice(n)
    return n


def _notice(alert: dict, mission: str) -> dict:
    """The notice fields of :func:`to_gcn_notice` (unvalidated); KeyError/TypeError on a malformed alert."""
    state, dets = alert["state"], list(alert["detectors"])
    n = {"$schema": GCN_NEUTRINO_SCHEMA, "mission": mission, "instrument": "SNEWS-style coincidence",
         "messenger": "Neutrino", "id": alert["alert_id"], "alert_datetime": alert["server_time_utc"],
         "alert_tense": "test" if {"test", "firedrill"} & set(alert["channel"].split("+")) else "current",
         "alert_type": _TYPES.get(state, "update" if len(dets) >= 2 else "retraction"),
         "alert_state": state, "channel": alert["channel"], "detectors": dets,
         "neutrino_times": list(alert["neutrino_times_utc"]), "message_uuids": list(alert["uuids"]),
         "previous_detectors": list(alert["previous_detectors"])}
    words = [f"SNEWS-style coincidence ({state}) of {len(dets)} detector(s) in channel {alert['channel']}: "
             + (", ".join(dets) or "none left")]
    if state != "NEW" and n["previous_detectors"]:
        words.append("previously " + ", ".join(n["previous_detectors"]))
    if n["neutrino_times"]:
        n["trigger_time"] = min(n["neutrino_times"])  # ISO strings of one format sort as times
    if alert.get("false_alarm_rate_per_year") is not None:
        n["far"] = alert["false_alarm_rate_per_year"] / SECONDS_PER_JULIAN_YEAR
        n["far_per_year"] = alert["false_alarm_rate_per_year"]
        n["online_detectors"] = alert["false_alarm_online_detectors"]
        words.append(f"false-alarm rate: {alert.get('false_alarm_assumption', '')}")
    sig = alert.get("combined_significance")
    if isinstance(sig, dict) and "p_value" in sig:
        n["combined_p_value"], n["combined_sigma"] = sig["p_value"], sig["sigma"]
        words.append("combined significance: " + sig.get("method", "") + " of " + ", ".join(sig["detectors"]))
    pt = alert.get("pointing")
    if isinstance(pt, dict) and "ra_deg" in pt:
        if pt.get("consistent", True):
            n["ra"], n["dec"] = pt["ra_deg"], pt["dec_deg"]
            n["ra_dec_error"] = _radius_deg(pt["area_deg2_90"])
            n["containment_probability"] = 0.9
            words.append(f"localisation: triangulation of {', '.join(pt['detectors'])}; ra_dec_error is the radius "
                         f"of the circle with the area of the 90 % region ({pt['area_deg2_90']:.4g} deg2), which "
                         "need not be circular; frame: equatorial of date (Earth Rotation Angle)")
        else:
            words.append("no localisation: " + pt.get("warning", "arrival times inconsistent"))
    n["additional_info"] = "; ".join(words)
    return n
