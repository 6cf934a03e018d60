"""SQLite archive of the coincidence server (what is persisted, and where).

One SQLite file (``--archive PATH``, default ``~/.cache/cevns/alerts/archive.sqlite``; WAL mode) holds:

* ``messages``   every accepted message (uuid unique, full JSON, tier, channel, receipt time, state
  active / retracted / expired / stored).  The uuid key makes processing idempotent: a redelivered message is
  recognised and counted as a duplicate, never processed twice.
* ``alerts``     every alert (alert_id unique, JSON, ``published`` flag).  Unpublished alerts are re-sent after a
  restart or broker outage; subscribers deduplicate by alert_id.
* ``rejections`` refused messages: time, code, reason, SHA-256 and size of the payload (the hostile payload
  itself is not stored).
* ``counters``   duplicate counts etc.
* ``dead_letters`` messages that passed validation but failed in processing: time, reason, SHA-256 and the
  (validated, signed) envelope text, so that they can be inspected and re-sent; the server moved on.

Message states: ``active`` (coincidence messages in the engine, heartbeats inside their retention window),
``stored`` (significance / timing tiers, applied retractions), ``pending`` (a retraction that arrived before its
target), ``retracted``, ``expired``.

The coincidence state is *derived*: on start, the engine is rebuilt by re-adding the active messages in their
original processing order (alerts from the rebuild are suppressed; they are already in ``alerts``).
Broker offsets are committed only after a batch's transaction (at-least-once delivery + idempotent processing by uuid).
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from cevns.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages(seq INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT UNIQUE NOT NULL,
  detector TEXT NOT NULL, tier TEXT NOT NULL, channel TEXT NOT NULL, received_ns INTEGER NOT NULL,
  body TEXT NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts(seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT UNIQUE NOT NULL,
  created_ns INTEGER NOT NULL, body TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rejections(id INTEGER PRIMARY KEY AUTOINCREMENT, received_ns INTEGER NOT NULL,
  code TEXT NOT NULL, reason TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters(id INTEGER PRIMARY KEY AUTOINCREMENT, received_ns INTEGER NOT NULL,
  reason TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, payload TEXT);
CREATE INDEX IF NOT EXISTS messages_state ON messages(state);
CREATE INDEX IF NOT EXISTS messages_tier_state ON messages(tier, state, received_ns);
CREATE INDEX IF NOT EXISTS alerts_pub ON alerts(published);
"""


class Archive:
    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self.path = str(Path(self.path).expanduser())
        try:
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DataError(f"archive {self.path} is not a usable SQLite database: {exc}") from exc
        self.lock = threading.RLock()

    # transactions --------------------------------------------------------------------------------
    def begin(self):
        self.lock.acquire()
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self):
        try:
            self.db.execute("COMMIT")
        finally:
            self.lock.release()

    def rollback(self):
        try:
            self.db.execute("ROLLBACK")
        finally:
            self.lock.release()

    def savepoint(self):
        self.db.execute("SAVEPOINT msg")

    def release(self):
        self.db.execute("RELEASE SAVEPOINT msg")

    def rollback_savepoint(self):
        self.db.execute("ROLLBACK TO SAVEPOINT msg")
        self.db.execute("RELEASE SAVEPOINT msg")

    # messages ------------------------------------------------------------------------------------
    def has_message(self, uuid: str) -> bool:
        return self.db.execute("SELECT 1 FROM messages WHERE uuid=?", (uuid,)).fetchone() is not None

    def add_message(self, uuid, detector, tier, channel, received_ns, body, state) -> bool:
        """Insert; False (and no change) if the uuid is already archived."""
        cur = self.db.execute("INSERT OR IGNORE INTO messages(uuid,detector,tier,channel,received_ns,body,state) "
                              "VALUES(?,?,?,?,?,?,?)", (uuid, detector, tier, channel, received_ns, body, state))
        return cur.rowcount == 1

    def message_row(self, uuid: str):
        """(detector, tier, state, body) of an archived message, or None."""
        return self.db.execute("SELECT detector, tier, state, body FROM messages WHERE uuid=?", (uuid,)).fetchone()

    def expire_rows(self, tier: str, state: str, before_ns: int) -> list[str]:
        """Set state 'expired' on rows of ``tier`` in ``state`` received before ``before_ns``; returns uuids."""
        rows = [u for (u,) in self.db.execute("SELECT uuid FROM messages WHERE tier=? AND state=? AND received_ns<?",
                                              (tier, state, before_ns))]
        self.set_state(rows, "expired")
        return rows

    def messages_since(self, tier: str, state: str, since_ns: int):
        return self.db.execute("SELECT uuid,detector,tier,channel,received_ns,body,state FROM messages "
                               "WHERE tier=? AND state=? AND received_ns>=? ORDER BY seq",
                               (tier, state, since_ns)).fetchall()

    def latest_per_detector(self, tier: str, state: str, since_ns: int, limit: int):
        """Rows of ``tier`` in ``state`` received since ``since_ns``: the last ``limit`` per detector, in order."""
        return self.db.execute(
            "SELECT uuid,detector,tier,channel,received_ns,body,state FROM (SELECT *, ROW_NUMBER() OVER "
            "(PARTITION BY detector ORDER BY seq DESC) AS rn FROM messages WHERE tier=? AND state=? AND "
            "received_ns>=?) WHERE rn<=? ORDER BY seq", (tier, state, since_ns, limit)).fetchall()

    def set_state(self, uuids, state: str) -> None:
        self.db.executemany("UPDATE messages SET state=? WHERE uuid=?", [(state, u) for u in uuids])

    def messages(self, state: str | None = None, tier: str | None = None):
        q, a = "SELECT uuid,detector,tier,channel,received_ns,body,state FROM messages", []
        cond = []
        if state:
            cond.append("state=?")
            a.append(state)
        if tier:
            cond.append("tier=?")
            a.append(tier)
        if cond:
            q += " WHERE " + " AND ".join(cond)
        return self.db.execute(q + " ORDER BY seq", a).fetchall()

    def count_messages(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    # alerts --------------------------------------------------------------------------------------
    def add_alert(self, alert_id: str, created_ns: int, body: dict) -> bool:
        cur = self.db.execute("INSERT OR IGNORE INTO alerts(alert_id,created_ns,body) VALUES(?,?,?)",
                              (alert_id, created_ns, json.dumps(body, sort_keys=True)))
        return cur.rowcount == 1

    def add_alert_text(self, alert_id: str, created_ns: int, text: str) -> bool:
        """add_alert with the body already as JSON text (sorted keys); False if the alert_id exists."""
        cur = self.db.execute("INSERT OR IGNORE INTO alerts(alert_id,created_ns,body) VALUES(?,?,?)",
                              (alert_id, created_ns, text))
        return cur.rowcount == 1

    def unpublished_alerts(self) -> list[tuple[str, str]]:
        return self.db.execute("SELECT alert_id, body FROM alerts WHERE published=0 ORDER BY seq").fetchall()

    def mark_published(self, alert_ids) -> None:
        """Set the published flag of one alert_id or of a list of them (one transaction)."""
        ids = [alert_ids] if isinstance(alert_ids, str) else list(alert_ids)
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany("UPDATE alerts SET published=1 WHERE alert_id=?", [(i,) for i in ids])
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def alerts(self) -> list[dict]:
        return [json.loads(b) for (b,) in self.db.execute("SELECT body FROM alerts ORDER BY seq")]

    # rejections / counters -----------------------------------------------------------------------
    def add_rejection(self, received_ns, code, reason, sha256, size) -> None:
        self.db.execute("INSERT INTO rejections(received_ns,code,reason,sha256,size) VALUES(?,?,?,?,?)",
                        (received_ns, code, reason, sha256, size))

    def add_dead_letter(self, received_ns, reason, sha256, size, payload: str | None) -> None:
        self.db.execute("INSERT INTO dead_letters(received_ns,reason,sha256,size,payload) VALUES(?,?,?,?,?)",
                        (received_ns, reason, sha256, size, payload))

    def dead_letters(self) -> list[tuple[str, str]]:
        return self.db.execute("SELECT reason, sha256 FROM dead_letters ORDER BY id").fetchall()

    def rejections(self) -> list[tuple[str, str]]:
        return self.db.execute("SELECT code, reason FROM rejections ORDER BY id").fetchall()

    def bump(self, key: str, n: int = 1) -> None:
        self.db.execute("INSERT INTO counters(key,value) VALUES(?,?) "
                        "ON CONFLICT(key) DO UPDATE SET value=value+excluded.value", (key, n))

    def counter(self, key: str) -> int:
        r = self.db.execute("SELECT value FROM counters WHERE key=?", (key,)).fetchone()
        return r[0] if r else 0

    def close(self) -> None:
        with self.lock:
            self.db.close()
