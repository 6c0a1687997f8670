"""The article's circuit breaker example, moved onto selfheal's API.

The article wrote::

    db_circuit = CircuitBreaker(failure_threshold=3, recovery_timeout=60)

    def get_product(product_id):
        try:
            return db_circuit.execute(
                database.query, f"SELECT * FROM products WHERE id = {product_id}"
            )
        except CircuitBreakerError:
            return get_cached_product(product_id)  # Fallback mechanism

Here the call shape is the same, the database is a real SQLite file, and the query is
parameterised instead of built with an f-string. Time is a `FakeClock`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from selfheal import BreakerState, CircuitBreaker, CircuitBreakerError
from selfheal.testing import FakeClock


class Database:
    """A tiny database client that can lose its server (the file's connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.queries = 0
        self.conn = sqlite3.connect(path)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self.queries += 1
        return self.conn.execute(sql, params).fetchall()

    def go_down(self) -> None:
        self.conn.close()  # every query now raises sqlite3.ProgrammingError

    def come_back(self) -> None:
        self.conn = sqlite3.connect(self.path)


@pytest.fixture
def database(tmp_path: Path) -> Any:
    db = Database(tmp_path / "shop.db")
    db.conn.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT)")
    db.conn.executemany("INSERT INTO products VALUES (?, ?)", [(1, "lamp"), (2, "desk")])
    db.conn.commit()
    yield db
    db.conn.close()


def test_article_breaker_example(database: Database, clock: FakeClock) -> None:
    db_circuit = CircuitBreaker(failure_threshold=3, recovery_timeout=60, clock=clock)
    cache: dict[int, list[tuple[Any, ...]]] = {}

    def get_cached_product(product_id: int) -> list[tuple[Any, ...]]:
        return cache.get(product_id, [])

    def get_product(product_id: int) -> list[tuple[Any, ...]]:
        try:
            rows = db_circuit.execute(
                database.query, "SELECT * FROM products WHERE id = ?", (product_id,)
            )
        except CircuitBreakerError:
            return get_cached_product(product_id)  # fallback mechanism
        cache[product_id] = rows
        return rows

    assert get_product(1) == [(1, "lamp")]
    # The parameter is data, never SQL: the classic injection finds nothing.
    assert get_product("1 OR 1=1") == []  # type: ignore[arg-type]

    database.go_down()
    for _ in range(3):
        with pytest.raises(sqlite3.ProgrammingError):
            get_product(1)
    assert db_circuit.state is BreakerState.OPEN

    # Open: served from the cache without touching the database.
    queries = database.queries
    assert get_product(1) == [(1, "lamp")]
    assert get_product(2) == []
    assert database.queries == queries
    with pytest.raises(CircuitBreakerError) as info:
        db_circuit.execute(database.query, "SELECT 1")
    assert info.value.remaining == pytest.approx(60.0)

    database.come_back()
    clock.advance(60)
    assert get_product(2) == [(2, "desk")]  # the trial call succeeds...
    assert db_circuit.state is BreakerState.CLOSED  # ...and closes the circuit
    assert database.queries == queries + 1
