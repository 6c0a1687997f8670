"""Secrets inside string values (a program's log tail, an error's text) stay out of the journal."""

from __future__ import annotations

from pathlib import Path

from selfheal import EventBus
from selfheal.store import Journal, SqliteJournalStore

DSN = "postgresql://app:hunter2@db.internal:5432/app"


def test_secrets_in_string_values_are_redacted(tmp_path: Path) -> None:
    # The journal masked secret-looking keys only: the supervisor's log tail of a program
    # that printed its DSN, or a retry's error text, went to disk as they were.
    db = tmp_path / "j.db"
    bus = EventBus()
    with Journal(bus, db) as journal:
        bus.emit("process.web.exited", "supervisor", "error", exit_code=1, tail=[f"using {DSN}"])
        bus.emit("retry.db.attempt", "db", error=f"OperationalError('{DSN}')", attempt=1)
        bus.emit("retry.db.attempt", "db", error="PGPASSWORD=hunter2 psql", attempt=2)
        bus.emit("app.login", "app", header="Authorization: Bearer hunter2")
        bus.emit("app.tick", "app", host="web-1", n=3, at="2026-11-27 08:00:00")
        assert journal.flush(timeout=10)
    events = SqliteJournalStore(db, readonly=True).events(limit=10)
    text = repr([e.data for e in events])
    assert "hunter2" not in text
    assert events[0].data == {
        "exit_code": 1,
        "tail": ["using postgresql://app:***@db.internal:5432/app"],
    }
    assert events[-1].data == {"host": "web-1", "n": 3, "at": "2026-11-27 08:00:00"}


def test_values_json_cannot_hold_are_stored_as_a_redacted_repr(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    bus = EventBus()
    with Journal(bus, db) as journal:
        bus.emit("app.failed", "app", exc=ConnectionError(f"cannot reach {DSN}"))
        assert journal.flush(timeout=10)
    (event,) = SqliteJournalStore(db, readonly=True).events()
    assert event.data == {
        "exc": "ConnectionError('cannot reach postgresql://app:***@db.internal:5432/app')"
    }
