"""What the journal stores of an event's data: JSON, secrets hidden at any depth and inside
strings (a program's log tail, an error's text), what JSON cannot hold as redacted text."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from selfheal import EventBus
from selfheal.store import Journal, SqliteJournalStore
from selfheal.testing import FakeClock

DSN = "postgresql://app:hunter2@db.internal:5432/app"


def test_secrets_in_string_values_are_redacted(db: Path) -> None:
    # The journal masked secret-looking keys only: the supervisor's log tail of a program
    # that printed its DSN, or a retry's error text, went to disk as they were.
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


def test_values_json_cannot_hold_are_stored_as_a_redacted_repr(db: Path) -> None:
    bus = EventBus()
    with Journal(bus, db) as journal:
        bus.emit("app.failed", "app", exc=ConnectionError(f"cannot reach {DSN}"))
        assert journal.flush(timeout=10)
    (event,) = SqliteJournalStore(db, readonly=True).events()
    assert event.data == {
        "exc": "ConnectionError('cannot reach postgresql://app:***@db.internal:5432/app')"
    }


def test_secrets_nested_under_known_keys_are_hidden_every_time(db: Path, clock: FakeClock) -> None:
    # The encoder learns harmless top-level keys; a secret nested under one must still be hidden.
    bus = EventBus(clock=clock)
    with Journal(bus, db, clock=clock) as journal:
        bus.emit("app.call", "app", request={"path": "/"})
        bus.emit("app.call", "app", request={"path": "/", "Authorization": "Bearer abc"})
        bus.emit("app.call", "app", request=[{"db_password": "pw"}])
        assert journal.flush(timeout=10)
        data = [e.data for e in journal.events(type="app.*", limit=10)]
    assert data == [
        {"request": {"path": "/"}},
        {"request": {"path": "/", "Authorization": "***"}},
        {"request": [{"db_password": "***"}]},
    ]


def test_data_json_cannot_hold_is_kept_as_text(db: Path) -> None:
    bus = EventBus()
    cycle: dict[str, object] = {}
    cycle["self"] = cycle
    with Journal(bus, db) as journal:
        bus.emit("a.b.ok", "t", n=1)
        bus.emit("a.b.tuple", "t", weird={(1, 2): 3})
        bus.emit("a.b.cycle", "t", cycle=cycle)
        assert journal.flush(timeout=10)
        events = {e.type: e.data for e in journal.events()}
    assert events["a.b.ok"] == {"n": 1}
    assert events["a.b.tuple"] == {"unencodable": "{'weird': {(1, 2): 3}}"}
    assert events["a.b.cycle"]["unencodable"].startswith("{'cycle': {'self': {...}}}")


def test_data_too_deep_to_check_is_replaced_without_losing_the_batch(db: Path) -> None:
    bus = EventBus()
    deep: dict[str, object] = {}
    node = deep
    for _ in range(5000):
        node["next"] = node = {}
    with Journal(bus, db) as journal:
        bus.emit("a.b.before", "t", n=1)
        bus.emit("a.b.deep", "t", deep=deep)
        bus.emit("a.b.after", "t", n=2)
        assert journal.flush(timeout=10)
        events = {e.type: e.data for e in journal.events()}
    assert events["a.b.before"] == {"n": 1}
    assert events["a.b.after"] == {"n": 2}
    assert "unencodable" in events["a.b.deep"]


def _strict(text: str) -> object:
    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_nan_and_infinity_are_stored_as_null_so_sqlite_can_read_them(db: Path) -> None:
    nan, inf = float("nan"), float("inf")
    bus = EventBus()
    with Journal(bus, db) as journal:
        bus.emit("app.flat", "app", ratio=nan, peak=inf)
        bus.emit("app.deep", "app", samples=[1.5, -inf, {"x": nan}])
        assert journal.flush(timeout=10)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT json_extract(data, '$.ratio'), json_extract(data, '$.samples[1]'), data "
            "FROM events ORDER BY seq"
        ).fetchall()
    assert [row[:2] for row in rows] == [(None, None), (None, None)]
    assert [_strict(row[2]) for row in rows] == [
        {"ratio": None, "peak": None},
        {"samples": [1.5, None, {"x": None}]},
    ]


def test_a_password_named_by_a_word_is_hidden_in_the_journal(db: Path) -> None:
    bus = EventBus()
    with Journal(bus, db) as journal:
        bus.emit("health.db.failed", "health", error="login (password hunter2) refused")
        assert journal.flush(timeout=10)
    (event,) = SqliteJournalStore(db, readonly=True).events(limit=1)
    assert event.data == {"error": "login (password ***) refused"}
