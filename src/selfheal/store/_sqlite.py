"""The default journal store: one SQLite file in WAL mode.

WAL lets the CLI read (``selfheal events --follow``) while the daemon writes, and a committed
transaction survives the writing process being killed (``synchronous=NORMAL`` only risks the
last transactions on a power loss or OS crash, not on a process crash; use ``FULL`` for that).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Literal

from selfheal.events import Event, matches, pattern_prefix, subject_of
from selfheal.interfaces import Incident, MttrSummary, RecoveryRecord, StoredEvent
from selfheal.store._encoding import encode_data
from selfheal.store._errors import JournalFormatError, JournalNotFoundError
from selfheal.store._schema import (
    CHUNK,
    SCHEMA,
    UPSERT_INCIDENT,
    UPSERT_RECOVERY,
    check_schema,
    incident_row,
    insert_rows,
    recovery_row,
    stored_event,
)

__all__ = ["DEFAULT_PATH", "SqliteJournalStore", "path_from_url"]

#: Where the journal lives unless configured otherwise (relative to the working directory).
DEFAULT_PATH = Path(".selfheal") / "journal.db"


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
                check_schema(conn, self.path, require=False)
                conn.executescript(SCHEMA)
                check_schema(conn, self.path, require=True)
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
                check_schema(conn, self.path, require=True)
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
                    conn.executemany(UPSERT_INCIDENT, [incident_row(i) for i in incidents])
                if recoveries:
                    conn.executemany(UPSERT_RECOVERY, [recovery_row(r) for r in recoveries])
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _insert_events(self, conn: sqlite3.Connection, events: Sequence[Event], now: float) -> None:
        flat: list[Any] = []
        add = flat.extend
        subject, encode = subject_of, encode_data
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
        width = 7 * CHUNK
        full = len(flat) // width * width
        if full:
            chunks = [flat[i : i + width] for i in range(0, full, width)]
            conn.executemany(insert_rows(CHUNK), chunks)
        if full < len(flat):
            conn.execute(insert_rows((len(flat) - full) // 7), flat[full:])

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
        prefix = pattern_prefix(type) if type else ""
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
                out.append(stored_event(row))
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
