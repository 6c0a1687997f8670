"""The shop's data: a seeded catalog, orders in SQLite or PostgreSQL, and a local outbox.

A checkout is never lost and never recorded twice: the client names each order with an
idempotency key (``order_id``); the web process writes it to the database, and when the
database is down it writes the order to a local outbox (SQLite, WAL, ``fsync``) and answers
202. The worker moves the outbox into the database when it is back; the order table's primary
key is the order id, so a retried checkout or a flush that ran twice changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

WORDS = [
    "alpine",
    "amber",
    "arctic",
    "atlas",
    "birch",
    "cedar",
    "cobalt",
    "coral",
    "delta",
    "ember",
    "falcon",
    "fern",
    "glacier",
    "harbor",
    "indigo",
    "iris",
    "jade",
    "juniper",
    "kestrel",
    "lagoon",
    "lunar",
    "maple",
    "meadow",
    "nova",
    "onyx",
    "orchid",
    "pebble",
    "quartz",
    "raven",
    "river",
    "sable",
    "sierra",
    "solar",
    "spruce",
    "storm",
    "summit",
    "tidal",
    "topaz",
    "tundra",
    "velvet",
    "willow",
    "zephyr",
]
KINDS = [
    "backpack",
    "boots",
    "jacket",
    "lantern",
    "mug",
    "stove",
    "tent",
    "thermos",
    "rope",
    "compass",
]


@dataclass(frozen=True, slots=True)
class Product:
    """One product of the catalog."""

    id: int
    name: str
    kind: str
    price_cents: int
    popularity: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def catalog(size: int = 200, seed: int = 7) -> list[Product]:
    """Return the same `size` products for the same `seed` (every process agrees)."""
    rng = random.Random(seed)
    return [
        Product(
            id=i,
            name=f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()} {kind.title()}",
            kind=kind,
            price_cents=rng.randrange(500, 40_000),
            popularity=rng.randrange(0, 10_000),
        )
        for i, kind in ((i, rng.choice(KINDS)) for i in range(1, size + 1))
    ]


def popular(products: list[Product], n: int = 5) -> list[Product]:
    """Return the `n` most popular products: the fallback of recommendations."""
    return sorted(products, key=lambda p: -p.popularity)[:n]


def search(products: list[Product], query: str, limit: int = 20) -> list[Product]:
    """Return products whose name or kind contains every word of `query`."""
    words = query.lower().split()
    found = [p for p in products if all(w in f"{p.name} {p.kind}".lower() for w in words)]
    return found[:limit]


class OrderStore(Protocol):
    """Where orders are recorded for good."""

    def put(self, order: dict[str, Any]) -> bool:
        """Record `order` once; return False if its ``order_id`` was already recorded."""
        ...

    def get(self, order_id: str) -> dict[str, Any] | None:
        """Return the recorded order, or None."""
        ...

    def count(self) -> int:
        """Return how many orders are recorded."""
        ...

    def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    def prepare(self) -> None:
        """Do the slow once-per-process work (imports) before the process takes requests."""
        ...


class SqliteOrders:
    """Orders in one SQLite file (the demo's default database)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS orders ("
                " order_id TEXT PRIMARY KEY, body TEXT NOT NULL, created REAL NOT NULL)"
            )

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=2.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        yield conn

    def put(self, order: dict[str, Any]) -> bool:
        """Record `order` once (the primary key makes a second write a no-op)."""
        with self._conn() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO orders VALUES (?, ?, ?)",
                (order["order_id"], json.dumps(order), time.time()),
            )
            return cur.rowcount == 1

    def get(self, order_id: str) -> dict[str, Any] | None:
        """Return the recorded order, or None."""
        with self._conn() as conn:
            row = conn.execute("SELECT body FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def count(self) -> int:
        """Return how many orders are recorded."""
        with self._conn() as conn:
            return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])

    def ping(self) -> None:
        """Run ``SELECT 1``."""
        with self._conn() as conn:
            conn.execute("SELECT 1")

    def prepare(self) -> None:
        """Nothing to do: sqlite3 is imported already."""


class PostgresOrders:
    """Orders in PostgreSQL (``SHOP_DB=postgresql://...``); each call bounded by a timeout.

    Nothing connects before the first call: a process started while the database is down
    starts anyway (the web app answers from the outbox, the worker waits), and psycopg is only
    imported by the first call, so a restarted web process serves sooner. The table is
    created on the first connection of each process.
    """

    def __init__(self, dsn: str, timeout: float = 1.0) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self._local = threading.local()
        self._schema_ready = False
        # The health check runs in a new thread each time: it gets one connection of its own
        # rather than a new connection per run.
        self._ping_conn = SimpleNamespace(conn=None)
        self._ping_lock = threading.Lock()

    def _run(self, sql: str, params: tuple[Any, ...] = (), *, slot: Any = None) -> Any:
        import psycopg

        holder = self._local if slot is None else slot
        conn = getattr(holder, "conn", None)
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(
                    self.dsn, autocommit=True, connect_timeout=max(1, int(self.timeout))
                )
                conn.execute(f"SET statement_timeout = {int(self.timeout * 1000)}")
                if not self._schema_ready:
                    _create_orders_table(conn)
                    self._schema_ready = True
                holder.conn = conn
            return conn.execute(sql, params)
        except psycopg.OperationalError:
            # A broken connection is dropped, so the next call reconnects.
            holder.conn = None
            raise

    def prepare(self) -> None:
        """Import the driver now (it takes a new process up to a second on a busy machine)."""
        import psycopg  # noqa: F401

    def put(self, order: dict[str, Any]) -> bool:
        """Record `order` once (``ON CONFLICT DO NOTHING`` on the order id)."""
        cur = self._run(
            "INSERT INTO orders VALUES (%s, %s, %s) ON CONFLICT (order_id) DO NOTHING",
            (order["order_id"], json.dumps(order), time.time()),
        )
        return bool(cur.rowcount == 1)

    def get(self, order_id: str) -> dict[str, Any] | None:
        """Return the recorded order, or None."""
        row = self._run("SELECT body FROM orders WHERE order_id = %s", (order_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def count(self) -> int:
        """Return how many orders are recorded."""
        return int(self._run("SELECT count(*) FROM orders").fetchone()[0])

    def ping(self) -> None:
        """Run ``SELECT 1`` (on a connection kept for this, whichever thread calls)."""
        with self._ping_lock:
            self._run("SELECT 1", slot=self._ping_conn)


def _create_orders_table(conn: Any) -> None:
    import psycopg

    # Another process may create it at the same moment (IF NOT EXISTS is not atomic).
    with contextlib.suppress(psycopg.errors.UniqueViolation):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS orders ("
            " order_id TEXT PRIMARY KEY, body TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)"
        )


def open_orders(url: str) -> OrderStore:
    """Return the order store for ``SHOP_DB`` (``sqlite:///path`` or ``postgresql://...``)."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresOrders(url)
    if url.startswith("sqlite:///"):
        return SqliteOrders(url.removeprefix("sqlite:///"))
    raise ValueError(f"SHOP_DB={url!r}: use sqlite:///PATH or postgresql://...")


class Outbox:
    """Orders accepted while the database was down, kept on local disk until written."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=5.0, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS outbox (order_id TEXT PRIMARY KEY, body TEXT NOT NULL)"
        )

    def add(self, order: dict[str, Any]) -> None:
        """Keep `order` (a second add of the same order id is a no-op)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO outbox VALUES (?, ?)", (order["order_id"], json.dumps(order))
            )

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        """Return up to `limit` kept orders, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT body FROM outbox ORDER BY rowid LIMIT ?", (limit,)
            ).fetchall()
        return [dict(json.loads(body)) for (body,) in rows]

    def remove(self, order_id: str) -> None:
        """Forget an order once the database has it."""
        with self._lock:
            self._conn.execute("DELETE FROM outbox WHERE order_id = ?", (order_id,))

    def size(self) -> int:
        """Return how many orders wait."""
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def flush(self, orders: OrderStore, limit: int = 100) -> int:
        """Write up to `limit` kept orders to `orders`; return how many moved.

        Stops at the first error (the database is still down).
        """
        moved = 0
        for order in self.pending(limit):
            orders.put(order)  # raises while the database is still down
            self.remove(order["order_id"])
            moved += 1
        return moved
