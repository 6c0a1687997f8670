"""The journal commands on SQLite files that are not (quite) a selfheal journal: no traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfheal import EventBus
from selfheal.cli import main
from selfheal.store import Journal, JournalFormatError, SqliteJournalStore

FOREIGN = {
    # Tables of the same names with other columns (another tool's database).
    "other-columns": [
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, payload TEXT)",
        "INSERT INTO events VALUES (1, 'x')",
        "CREATE TABLE incidents (id INTEGER PRIMARY KEY)",
        "INSERT INTO incidents VALUES (1)",
    ],
    # The right columns, wrong values (hand-edited, or written by an older bug).
    "odd-values": [
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, type TEXT,"
        " source TEXT, severity TEXT, subject TEXT, ts REAL, data TEXT)",
        "INSERT INTO events (id, type, source, severity, subject, ts, data)"
        " VALUES ('a', 'x.y.z', 's', 'info', 'y', 'yesterday', 42)",
        "INSERT INTO events (id, type, source, severity, subject, ts, data)"
        " VALUES ('b', 'x.y.z', 's', 'info', 'y', NULL, NULL)",
    ],
}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
@pytest.mark.parametrize("command", [("events",), ("events", "--json"), ("incidents",)])
def test_foreign_sqlite_file_is_a_clear_error(
    tmp_path: Path, kind: str, command: tuple[str, ...]
) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        for statement in FOREIGN[kind]:
            conn.execute(statement)
    conn.close()
    result = CliRunner().invoke(main, [*command, "--db", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 1, 2)
    if result.exit_code != 0:
        assert "journal" in result.stderr


def test_the_readonly_store_names_the_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE events (seq INTEGER PRIMARY KEY, payload TEXT);")
    conn.close()
    store = SqliteJournalStore(path, readonly=True)
    with pytest.raises(sqlite3.DatabaseError, match=r"events.*type"):
        store.events()


def test_a_real_journal_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    bus = EventBus()
    with Journal(bus, path):
        bus.emit("health.db.failed", "health", "error")
    store = SqliteJournalStore(path, readonly=True)
    assert [e.type for e in store.events()] == ["health.db.failed"]
    assert store.incidents()[0].subject == "db"


def test_the_writer_refuses_a_foreign_file_at_open(tmp_path: Path) -> None:
    # Before, CREATE TABLE IF NOT EXISTS kept the foreign table and every batch failed to
    # write and was dropped, for as long as the daemon ran.
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE events (seq INTEGER PRIMARY KEY, payload TEXT);")
    conn.close()
    with pytest.raises(JournalFormatError, match="not a selfheal journal"):
        SqliteJournalStore(path)


def test_the_writer_names_a_directory_or_a_non_database_file(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a directory"):
        SqliteJournalStore(tmp_path)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalFormatError, match=r"garbage\.db is not a selfheal journal"):
        SqliteJournalStore(garbage)


@pytest.mark.parametrize("command", ["events", "incidents"])
def test_a_huge_limit_is_a_clear_error(tmp_path: Path, command: str) -> None:
    # SQLite integers are 64-bit: --limit 10**20 ended in an OverflowError traceback.
    path = tmp_path / "j.db"
    bus = EventBus()
    with Journal(bus, path):
        bus.emit("health.db.failed", "health", "error")
    result = CliRunner().invoke(main, [command, "--db", str(path), "--limit", str(10**20)])
    assert result.exit_code == 2, result.output
    assert "--limit" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
