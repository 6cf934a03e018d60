"""Feed a scenario file (format of ``data/snews/coincidence_scenarios.json``) through the coincidence engine."""
from __future__ import annotations

import json
import uuid as _uuid
from pathlib import Path

from cevns.errors import DataError

from .coincidence import CoincidenceEngine
from .messages import MessageRejected, coincidence_message
from .timeutil import NS, UTCTime

_NS = _uuid.UUID("6b1f9a52-5a43-4d7e-9a57-2f1d1c0e5e11")


def load_scenarios(path) -> list[dict]:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"scenario file {p}: cannot read JSON ({exc})") from None
    if not isinstance(data, list):
        raise DataError(f"scenario file {p}: expected a JSON list of scenarios, got {type(data).__name__}")
    for k, sc in enumerate(data):
        if not isinstance(sc, dict) or not isinstance(sc.get("id"), str) or not isinstance(sc.get("events"), list):
            raise DataError(f"scenario #{k} in {p}: needs 'id' (string) and 'events' (list)")
        for j, ev in enumerate(sc["events"]):
            if not isinstance(ev, dict) or "detector_name" not in ev or "neutrino_time" not in ev:
                raise DataError(f"scenario {sc['id']!r} event #{j}: needs detector_name and neutrino_time "
                                "(optional p_val, is_test, is_firedrill)")
    return data


def replay_scenario(sc: dict, window_s: float = 10.0) -> tuple[CoincidenceEngine, list]:
    """Messages arrive in file order; arrival order also defines sent times (1 ms apart) for updates."""
    eng = CoincidenceEngine(window_s)
    base = UTCTime.parse("2000-01-01T00:00:00Z")
    alerts = []
    for j, ev in enumerate(sc["events"]):
        try:
            msg = coincidence_message(
                ev["detector_name"], ev["neutrino_time"], ev.get("p_val"), is_test=bool(ev.get("is_test", False)),
                is_firedrill=bool(ev.get("is_firedrill", False)), sent_time=base.add_ns(j * NS // 1000),
                uuid=str(_uuid.uuid5(_NS, f"{sc['id']}/{j}")))
        except MessageRejected as exc:
            raise DataError(f"scenario {sc['id']!r} event #{j}: {exc.reason}") from None
        alerts += eng.add(msg, received_ns=msg.neutrino_time.elapsed_ns)
    return eng, alerts


def replay_file(path, window_s: float = 10.0) -> dict[str, list[list[str]]]:
    """{scenario id: final coincidence groups as lists of detector names (ordered by neutrino time)}."""
    return {sc["id"]: replay_scenario(sc, window_s)[0].group_names() for sc in load_scenarios(path)}
