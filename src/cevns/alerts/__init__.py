"""SNEWS 2.0-style supernova early-warning coincidence service (issue 5).

Modules: :mod:`.timeutil` (UTC ns, leap seconds), :mod:`.messages` (five tiers, strict JSON validation),
:mod:`.coincidence` (pure engine), :mod:`.heartbeats`, :mod:`.far` (false-alarm rates), :mod:`.pointing`
(triangulation, sky map), :mod:`.auth` (signed envelopes), :mod:`.transport` (memory / loopback / Kafka),
:mod:`.archive` (SQLite), :mod:`.server`, :mod:`.interop` (snews-data-formats JSON), :mod:`.replay`,
:mod:`.cli`.  See docs/alerts.md.
"""
from .coincidence import Alert, CoincidenceEngine, maximal_groups
from .messages import (TIERS, Message, MessageRejected, coincidence_message, heartbeat_message, parse_message,
                       retraction_message, significance_message, timing_message)
from .timeutil import UTCTime

__all__ = ["Alert", "CoincidenceEngine", "maximal_groups", "TIERS", "Message", "MessageRejected",
           "coincidence_message", "heartbeat_message", "parse_message", "retraction_message",
           "significance_message", "timing_message", "UTCTime"]
