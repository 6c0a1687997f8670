"""The journal's SQLite schema: its tables, the statements that write them, rows to records.

Rows are read positionally, so `check_schema` refuses a file whose tables merely share the
names (another tool's database, an incompatible version) before anything is read or written.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from selfheal.interfaces import Incident, RecoveryRecord, StoredEvent
from selfheal.store._encoding import decode_data
from selfheal.store._errors import JournalFormatError

__all__ = [
    "CHUNK",
    "COLUMNS",
    "INSERT_EVENT",
    "SCHEMA",
    "UPSERT_INCIDENT",
    "UPSERT_RECOVERY",
    "check_schema",
    "incident_row",
    "insert_rows",
    "recovery_row",
    "stored_event",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    severity TEXT NOT NULL,
    subject TEXT NOT NULL,
    ts REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    opened_at REAL NOT NULL,
    opened_by TEXT NOT NULL,
    opened_event TEXT NOT NULL,
    ttd REAL,
    ttd_source TEXT,
    closed_at REAL,
    closed_by TEXT,
    ttr REAL,
    signals INTEGER NOT NULL,
    recoveries INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents (closed_at);
CREATE TABLE IF NOT EXISTS recoveries (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    rule TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    outcome TEXT NOT NULL,
    error TEXT NOT NULL
);
"""

# The columns of each table, in order: rows are read positionally, so a file whose tables
# merely share the names (another tool's database, an incompatible version) is refused.
COLUMNS = {
    "events": ("seq", "id", "type", "source", "severity", "subject", "ts", "data"),
    "incidents": (
        "id",
        "subject",
        "opened_at",
        "opened_by",
        "opened_event",
        "ttd",
        "ttd_source",
        "closed_at",
        "closed_by",
        "ttr",
        "signals",
        "recoveries",
    ),
    "recoveries": ("id", "subject", "rule", "started_at", "ended_at", "outcome", "error"),
}

INSERT_EVENT = (
    "INSERT INTO events (id, type, source, severity, subject, ts, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# Many rows per statement: a quarter to a third faster than one row per step in executemany
# (fewer statement steps, and the GIL changes hands once per chunk instead of once per row).
CHUNK = 100


@functools.cache
def insert_rows(count: int) -> str:
    """Return an INSERT of `count` events (7 values each) in one statement."""
    values = ",".join(["(?, ?, ?, ?, ?, ?, ?)"] * count)
    # Placeholders only; the values are bound.
    return f"INSERT INTO events (id, type, source, severity, subject, ts, data) VALUES {values}"  # noqa: S608


UPSERT_INCIDENT = "INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
UPSERT_RECOVERY = "INSERT OR REPLACE INTO recoveries VALUES (?, ?, ?, ?, ?, ?, ?)"


def check_schema(conn: sqlite3.Connection, path: Path, *, require: bool) -> None:
    """Raise `JournalFormatError` unless every journal table has the journal's columns.

    Args:
        conn: An open connection to the file.
        path: The file (for the message).
        require: Whether a missing table is an error too (reading); a writer creates them.
    """
    for table, expected in COLUMNS.items():
        # The table name is one of our constants, never outside input.
        found = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))
        if not found and not require:
            continue
        if found != expected:
            what = f"has columns ({', '.join(found)})" if found else "has no such table"
            raise JournalFormatError(
                f"{path} is not a selfheal journal: table {table!r} {what}; "
                f"a journal's has ({', '.join(expected)})"
            )


def stored_event(row: Sequence[Any]) -> StoredEvent:
    """Return the `StoredEvent` of a row of the events table (columns in `COLUMNS` order)."""
    seq, eid, etype, source, severity, subject, ts, data = row
    return StoredEvent(
        seq,
        str(eid),
        str(etype),
        str(source),
        str(severity),
        str(subject),
        _ts(ts),
        decode_data(data),
    )


def _ts(value: object) -> float:
    # The journal writes numbers; anything else (a row written by hand) reads as "unknown".
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return 0.0


def incident_row(i: Incident) -> tuple[Any, ...]:
    """Return the row of `i` in the incidents table."""
    return (
        i.id,
        i.subject,
        i.opened_at,
        i.opened_by,
        i.opened_event,
        i.ttd,
        i.ttd_source,
        i.closed_at,
        i.closed_by,
        i.ttr,
        i.signals,
        i.recoveries,
    )


def recovery_row(r: RecoveryRecord) -> tuple[Any, ...]:
    """Return the row of `r` in the recoveries table."""
    return (r.id, r.subject, r.rule, r.started_at, r.ended_at, r.outcome, r.error)
