"""The default journal store: one SQLite file in WAL mode.

WAL lets the CLI read (``selfheal events --follow``) while the daemon writes, and a committed
transaction survives the writing process being killed (``synchronous=NORMAL`` only risks the
last transactions on a power loss or OS crash, not on a process crash; use ``FULL`` for that).
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Literal

from selfheal._redact import MASK, is_secret_key, redact
from selfheal.errors import JournalError
from selfheal.events import Event, matches, subject_of
from selfheal.interfaces import Incident, MttrSummary, RecoveryRecord, StoredEvent

__all__ = [
    "DEFAULT_PATH",
    "JournalFormatError",
    "JournalNotFoundError",
    "SqliteJournalStore",
    "path_from_url",
]

#: Where the journal lives unless configured otherwise (relative to the working directory).
DEFAULT_PATH = Path(".selfheal") / "journal.db"

_SCHEMA = """
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
_COLUMNS = {
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

_INSERT_EVENT = (
    "INSERT INTO events (id, type, source, severity, subject, ts, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# Many rows per statement: a quarter to a third faster than one row per step in executemany
# (fewer statement steps, and the GIL changes hands once per chunk instead of once per row).
_CHUNK = 100


@functools.cache
def _insert_rows(count: int) -> str:
    values = ",".join(["(?, ?, ?, ?, ?, ?, ?)"] * count)
    # Placeholders only; the values are bound.
    return f"INSERT INTO events (id, type, source, severity, subject, ts, data) VALUES {values}"  # noqa: S608


_UPSERT_INCIDENT = "INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_RECOVERY = "INSERT OR REPLACE INTO recoveries VALUES (?, ?, ?, ?, ?, ?, ?)"


def _repr(value: Any) -> str:
    # What JSON cannot hold is stored as its repr, which may hold a secret too.
    return redact(repr(value))


_SLOW_ENCODE = json.JSONEncoder(default=_repr, ensure_ascii=False, separators=(",", ":")).encode
# json.dumps builds a C encoder on every call, which is most of its cost on a small dict; the
# journal encodes every event's data, so it builds one once (a stdlib detail, hence the
# fallback to the public encoder when it is missing or fails).
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE: Any = (
    _c_make_encoder(None, _repr, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    if _c_make_encoder is not None
    else None
)


def _ENCODE(data: Any, original: Any = None) -> str:  # noqa: N802 - reads as a constant
    if _C_ENCODE is not None:
        try:
            return "".join(_C_ENCODE(data, 0))
        except (ValueError, TypeError, RecursionError):
            pass
    try:
        return _SLOW_ENCODE(data)
    except (ValueError, TypeError, RecursionError):
        # Keys JSON cannot have, or a cycle: keep what it looked like rather than lose it.
        shown = data if original is None else original
        return _SLOW_ENCODE({"unencodable": _repr(shown)[:2000]})


class JournalNotFoundError(JournalError, FileNotFoundError):
    """Raised when a read-only store is opened on a path with no journal."""


class JournalFormatError(JournalError, sqlite3.DatabaseError):
    """Raised when a SQLite file's tables are not those of a selfheal journal."""


def _check_schema(conn: sqlite3.Connection, path: Path, *, require: bool) -> None:
    """Raise `JournalFormatError` unless every journal table has the journal's columns.

    Args:
        conn: An open connection to the file.
        path: The file (for the message).
        require: Whether a missing table is an error too (reading); a writer creates them.
    """
    for table, expected in _COLUMNS.items():
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


def path_from_url(url: str) -> Path:
    """Return the file of a ``sqlite:///relative/path`` or ``sqlite:////absolute`` URL.

    A plain path is returned as it is.

    Raises:
        ValueError: For a URL of another scheme (only SQLite is built in).
    """
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ValueError(
            f"journal url {url!r}: scheme {scheme!r} is not supported; use "
            "'sqlite:///.selfheal/journal.db' or a file path"
        )
    return Path(url)


# Keys seen before and found harmless: checking a dict's keys against it is one C call.
_SCALARS = frozenset({str, int, float, bool, type(None)})
_SAFE_KEYS: set[object] = set()
# Every pattern `redact` hides needs one of these characters ("@" of a URL's userinfo, "="
# or ":" of key=value, whitespace of "--password x" and "Bearer x"): a string without any
# of them cannot hold a secret it would find, and is not scanned.
_SUSPECT = re.compile(r"[@=:\s]").search
# Strings seen before without any of them: event values repeat (hosts, names, statuses), and
# a set lookup costs a third of the search.
_PLAIN: set[str] = set()


def _plain(value: str) -> bool:
    if _SUSPECT(value):
        return False
    if len(_PLAIN) >= 10_000:  # never let odd values grow it unbounded
        _PLAIN.clear()
    if len(value) <= 100:
        _PLAIN.add(value)
    return True


def _encode(data: Any) -> str:
    """Return `data` as JSON text with secrets hidden, non-JSON values as repr.

    Values under secret-looking keys are masked at any depth, and strings that may hold a
    secret (a program's log tail, an error's text) go through `selfheal._redact.redact`.
    """
    if not data:
        return "{}"
    if type(data) is not dict:
        data = dict(data)
    values = data.values()
    if _SAFE_KEYS.issuperset(data) and _SCALARS.issuperset(map(type, values)):
        for value in values:
            if type(value) is str and value not in _PLAIN and not _plain(value):
                break
        else:
            return _ENCODE(data)  # flat, known keys, no string worth scanning
    try:
        cleaned = _clean(data, frozenset())
    except RecursionError:
        # Too deep to check for secrets is too deep to store: one bad event must not
        # cost the batch it came in.
        return _SLOW_ENCODE({"unencodable": "data nested too deeply to store"})
    if len(_SAFE_KEYS) < 10_000:  # keys are few; never let odd ones grow it unbounded
        _SAFE_KEYS.update(k for k in data if isinstance(k, str) and not is_secret_key(k))
    return _ENCODE(cleaned, data)


def _clean(value: Any, path: frozenset[int]) -> Any:
    """Return `value` with secret-keyed values masked and suspect strings redacted.

    Keys are kept as they are (JSON's encoder then decides what it cannot hold), and a
    container that contains itself is left as it is below the repeat (the encoder reports it).
    """
    if type(value) is str:
        return redact(value) if _SUSPECT(value) else value
    if not isinstance(value, Mapping | list | tuple) or id(value) in path:
        return value
    path = path | {id(value)}
    if isinstance(value, Mapping):
        return {
            k: MASK if isinstance(k, str) and is_secret_key(k) else _clean(v, path)
            for k, v in value.items()
        }
    return [_clean(v, path) for v in value]


class SqliteJournalStore:
    """A `JournalStore` in one SQLite file.

    Args:
        path: The database file; its directory is created when writing.
        readonly: Open for queries only (the CLI): never creates or changes the file.
        synchronous: SQLite's ``synchronous`` pragma for the writer: NORMAL survives process
            crashes, FULL also power loss (slower).

    Raises:
        JournalNotFoundError: If `readonly` and the file does not exist.
    """

    def __init__(
        self,
        path: str | Path = DEFAULT_PATH,
        *,
        readonly: bool = False,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._synchronous = synchronous
        self._lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._schema_ok = False
        if readonly:
            if not self.path.is_file():
                raise JournalNotFoundError(f"no journal at {self.path}")
        else:
            self._connect_writer()

    def __repr__(self) -> str:
        return f"SqliteJournalStore({str(self.path)!r}, readonly={self.readonly})"

    def _connect_writer(self) -> sqlite3.Connection:
        if self._writer is None:
            if self.path.is_dir():
                # sqlite3 would only say "unable to open database file".
                raise IsADirectoryError(
                    f"journal path {self.path} is a directory; give a file, such as "
                    f"{self.path / 'journal.db'}"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # The journal's writer thread owns it; the lock guards the rare other callers.
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            try:
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                except sqlite3.DatabaseError as exc:
                    raise JournalFormatError(
                        f"{self.path} is not a selfheal journal ({exc})"
                    ) from None
                conn.execute(f"PRAGMA synchronous={self._synchronous}")
                conn.execute("PRAGMA busy_timeout=5000")
                # Checked before and after: CREATE IF NOT EXISTS keeps a foreign table, and
                # every write to it would fail (and be dropped) for as long as the daemon ran.
                _check_schema(conn, self.path, require=False)
                conn.executescript(_SCHEMA)
                _check_schema(conn, self.path, require=True)
            except BaseException:
                conn.close()
                raise
            self._writer = conn
        return self._writer

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        # A fresh connection per query: safe from any thread, and in read-only mode it never
        # writes (mode=ro), so the CLI can read while the daemon writes.
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            conn.execute("PRAGMA busy_timeout=5000")
            if not self._schema_ok:
                _check_schema(conn, self.path, require=True)
                self._schema_ok = True
            yield conn

    # ----------------------------------------------------------------- writing

    def write(
        self,
        events: Sequence[Event],
        incidents: Sequence[Incident],
        recoveries: Sequence[RecoveryRecord],
        *,
        now: float,
    ) -> None:
        """Store one batch in one transaction (see `JournalStore.write`)."""
        with self._lock:
            conn = self._connect_writer()
            conn.execute("BEGIN")
            try:
                self._insert_events(conn, events, now)
                if incidents:
                    conn.executemany(_UPSERT_INCIDENT, [_incident_row(i) for i in incidents])
                if recoveries:
                    conn.executemany(_UPSERT_RECOVERY, [_recovery_row(r) for r in recoveries])
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _insert_events(self, conn: sqlite3.Connection, events: Sequence[Event], now: float) -> None:
        flat: list[Any] = []
        add = flat.extend
        subject, encode = subject_of, _encode
        for e in events:
            add(
                (
                    e.id,
                    e.type,
                    e.source,
                    str(e.severity),
                    subject(e.type, e.source),
                    e.timestamp or now,
                    encode(e.data),
                )
            )
        width = 7 * _CHUNK
        full = len(flat) // width * width
        if full:
            chunks = [flat[i : i + width] for i in range(0, full, width)]
            conn.executemany(_insert_rows(_CHUNK), chunks)
        if full < len(flat):
            conn.execute(_insert_rows((len(flat) - full) // 7), flat[full:])

    def prune(self, *, before: float | None, max_rows: int | None) -> int:
        """Delete old events, closed incidents and ended recoveries; return events deleted."""
        deleted = 0
        with self._lock:
            conn = self._connect_writer()
            if before is not None:
                deleted += conn.execute("DELETE FROM events WHERE ts < ?", (before,)).rowcount
                conn.execute(
                    "DELETE FROM incidents WHERE closed_at IS NOT NULL AND closed_at < ?",
                    (before,),
                )
                # One still "running" after the whole retention period was left so by a
                # process that died mid-recovery: it will never end.
                conn.execute(
                    "DELETE FROM recoveries WHERE COALESCE(ended_at, started_at) < ?",
                    (before,),
                )
            if max_rows is not None:
                deleted += conn.execute(
                    "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?",
                    (max_rows,),
                ).rowcount
        return deleted

    def open_incidents(self) -> list[Incident]:
        """Return the open incidents."""
        return self.incidents(open_only=True)

    def next_incident_id(self) -> int:
        """Return one more than the highest incident id."""
        with self._reader() as conn:
            (top,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM incidents").fetchone()
        return int(top) + 1

    def close(self) -> None:
        """Close the writer connection (queries open their own)."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    # ----------------------------------------------------------------- queries

    def events(
        self,
        *,
        since: float | None = None,
        type: str | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> list[StoredEvent]:
        """Return up to `limit` matching events, oldest first (see `JournalStore.events`)."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        # Only fixed clause strings are joined; every value is a bound parameter.
        where: list[str] = []
        args: list[Any] = []
        if since is not None:
            where.append("ts >= ?")
            args.append(since)
        if after_seq is not None:
            where.append("seq > ?")
            args.append(after_seq)
        prefix = type.split("*", 1)[0] if type else ""
        if prefix:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("type LIKE ? ESCAPE '\\'")
            args.append(escaped + "%")
        order = "ASC" if after_seq is not None else "DESC"
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT * FROM events{clause} ORDER BY seq {order}"  # noqa: S608 - values bound
        out: list[StoredEvent] = []
        with self._reader() as conn:
            for row in conn.execute(sql, args):
                if type and not matches(type, row[2]):
                    continue
                seq, eid, etype, source, severity, subject, ts, data = row
                event = StoredEvent(
                    seq,
                    str(eid),
                    str(etype),
                    str(source),
                    str(severity),
                    str(subject),
                    _ts(ts),
                    _dec(data),
                )
                out.append(event)
                if len(out) >= limit:
                    break
        if order == "DESC":
            out.reverse()
        return out

    def incidents(self, *, open_only: bool = False, limit: int | None = None) -> list[Incident]:
        """Return incidents, newest first."""
        sql = "SELECT * FROM incidents"
        if open_only:
            sql += " WHERE closed_at IS NULL"
        sql += " ORDER BY id DESC"
        args: list[Any] = []
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._reader() as conn:
            return [Incident(*row) for row in conn.execute(sql, args)]

    def recoveries(self, *, limit: int = 100) -> list[RecoveryRecord]:
        """Return recoveries, newest first."""
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT * FROM recoveries ORDER BY started_at DESC LIMIT ?", (limit,)
            ).fetchall()
        return [RecoveryRecord(*row) for row in rows]

    def mttr_by_subject(self) -> list[MttrSummary]:
        """Return incident statistics per subject."""
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT subject, COUNT(*), SUM(closed_at IS NULL), AVG(ttr), MAX(ttr), AVG(ttd),"
                " MAX(opened_at) FROM incidents GROUP BY subject ORDER BY subject"
            ).fetchall()
        return [MttrSummary(*row) for row in rows]


def _dec(text: object) -> dict[str, Any]:
    if text is None:
        return {}
    if not isinstance(text, str | bytes):
        return {"value": text}  # a row not written by the journal: show what it holds
    try:
        value = json.loads(text)
    except ValueError:
        return {"raw": text if isinstance(text, str) else text.decode(errors="replace")}
    return value if isinstance(value, dict) else {"value": value}


def _ts(value: object) -> float:
    # The journal writes numbers; anything else (a row written by hand) reads as "unknown".
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return 0.0


def _incident_row(i: Incident) -> tuple[Any, ...]:
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


def _recovery_row(r: RecoveryRecord) -> tuple[Any, ...]:
    return (r.id, r.subject, r.rule, r.started_at, r.ended_at, r.outcome, r.error)
