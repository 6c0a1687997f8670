"""The article's examples, moved onto selfheal's API (each section is independent)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import selfheal
from selfheal import (
    BreakerState,
    CircuitBreaker,
    CircuitBreakerError,
    ExponentialBackoff,
    FeatureManager,
    RetryError,
)
from selfheal.testing import FakeClock

# --------------------------------------------------------------------------------------------
# Retry mechanisms: tenacity's @retry(stop=stop_after_attempt(5), wait=wait_exponential(...),
# retry=retry_if_exception_type((ConnectionError, TimeoutError))), without the f-string SQL.
# --------------------------------------------------------------------------------------------


class FlakyDatabase:
    """A real (in-memory SQLite) database whose connections fail `failures` times first."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        self.db.execute("INSERT INTO users VALUES (1, 'ada'), (2, 'grace')")

    def get_database_connection(self) -> sqlite3.Connection:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("database is restarting")
        return self.db


def _fetch_user_data_for(
    database: FlakyDatabase, clock: FakeClock
) -> Callable[[Any], list[tuple[int, str]]]:
    @selfheal.retry(
        on=(ConnectionError, TimeoutError),
        attempts=5,
        backoff=ExponentialBackoff(initial=2, multiplier=2, max=30),
        clock=clock,
    )
    def fetch_user_data(user_id: Any) -> list[tuple[int, str]]:
        """Retrieve user data from the database with automatic retries."""
        connection = database.get_database_connection()
        # A parameter, never an f-string: the article's query was open to SQL injection.
        return connection.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchall()

    return fetch_user_data


def test_article_retry_example_recovers_from_transient_failures() -> None:
    clock = FakeClock()
    fetch_user_data = _fetch_user_data_for(FlakyDatabase(failures=2), clock)
    assert fetch_user_data(1) == [(1, "ada")]
    assert clock.sleeps == [2.0, 4.0]
    assert fetch_user_data("1 OR 1=1") == []  # injection attempt is just a non-matching value


def test_article_retry_example_falls_back_after_all_attempts() -> None:
    clock = FakeClock()
    fetch_user_data = _fetch_user_data_for(FlakyDatabase(failures=100), clock)
    processed: list[object] = []
    errors: list[str] = []
    try:
        user_data = fetch_user_data(2)
        processed.append(user_data)
    except RetryError as exc:
        # All retries failed
        errors.append(f"Failed to fetch user data after {exc.attempts} attempts")
        processed.append("fallback_process")
    assert processed == ["fallback_process"]
    assert errors == ["Failed to fetch user data after 5 attempts"]
    assert clock.sleeps == [2.0, 4.0, 8.0, 16.0]


# --------------------------------------------------------------------------------------------
# Graceful degradation: the article's FeatureManager with a recommendation service.
# --------------------------------------------------------------------------------------------


class RecommendationService:
    def __init__(self) -> None:
        self.healthy = True
        self.health_checks = 0

    def is_healthy(self) -> bool:
        self.health_checks += 1
        return self.healthy

    def get_personalized_recommendations(self, user_id: int) -> list[str]:
        return [f"for-{user_id}-a", f"for-{user_id}-b"]


def get_popular_products(user_id: int) -> list[str]:
    return ["bestseller"]


def test_article_feature_manager_example() -> None:
    clock = FakeClock()
    recommendation_service = RecommendationService()
    features = FeatureManager(clock=clock, ttl=5)

    # Register recommendation engine with a fallback
    features.register(
        "recommendations",
        lambda: recommendation_service.is_healthy(),  # noqa: PLW0108 - the article verbatim
        fallback_func=get_popular_products,
    )

    # Using the feature with automatic fallback
    def get_recommendations(user_id: int) -> list[str]:
        return features.use_feature(
            "recommendations", recommendation_service.get_personalized_recommendations, user_id
        )

    assert get_recommendations(7) == ["for-7-a", "for-7-b"]
    recommendation_service.healthy = False
    assert get_recommendations(7) == ["for-7-a", "for-7-b"]  # cached for 5 s, no new check
    clock.advance(5)
    assert get_recommendations(7) == ["bestseller"]
    assert recommendation_service.health_checks == 2
    with pytest.raises(selfheal.FeatureUnavailableError):
        features.use_feature("unregistered", get_popular_products, 7)


# --------------------------------------------------------------------------------------------
# The article's circuit breaker example, moved onto selfheal's API.
#
# The article wrote::
#
#     db_circuit = CircuitBreaker(failure_threshold=3, recovery_timeout=60)
#
#     def get_product(product_id):
#         try:
#             return db_circuit.execute(
#                 database.query, f"SELECT * FROM products WHERE id = {product_id}"
#             )
#         except CircuitBreakerError:
#             return get_cached_product(product_id)  # Fallback mechanism
#
# Here the call shape is the same, the database is a real SQLite file, and the query is
# parameterised instead of built with an f-string. Time is a `FakeClock`.
# --------------------------------------------------------------------------------------------


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
