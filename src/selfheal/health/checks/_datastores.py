"""Checks of datastores: Redis answers PING, PostgreSQL and SQLite answer a query.

Each opens a new connection per run: a check must see whether a connection can be made, not
reuse one that happens to be open. Client libraries are imported when a check is created.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from selfheal._redact import redact
from selfheal.errors import CheckError
from selfheal.health._results import Check
from selfheal.health.checks._worker import Worker

__all__ = ["postgres_check", "redis_check", "sqlite_check"]


def redis_check(url: str = "redis://127.0.0.1:6379/0") -> Check:
    """Return a check that passes when the Redis server at `url` answers ``PING``.

    Requires the ``redis`` extra (redis-py's asyncio client). A new connection per run: a
    check must see whether a connection can be made, not reuse one that happens to be open.

    Args:
        url: A ``redis://`` or ``rediss://`` URL (a password in it never appears in output).
    """
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "redis_check needs the redis extra: pip install 'selfheal[redis]'"
        ) from exc
    shown = redact(url)

    async def check() -> Mapping[str, Any]:
        client = aioredis.from_url(url)
        try:
            pong = await client.ping()
        finally:
            await client.aclose()
        if pong is not True:
            raise CheckError(f"PING to {shown} answered {pong!r}")
        return {"componentType": "datastore"}

    check.__qualname__ = f"redis_check({shown})"
    return check


def postgres_check(conninfo: str = "postgresql://postgres@127.0.0.1:5432/postgres") -> Check:
    """Return a check that passes when PostgreSQL answers ``SELECT 1`` on a new connection.

    Requires the ``postgres`` extra (psycopg 3). The query is a constant: nothing from outside
    is ever put into SQL.

    Args:
        conninfo: A libpq connection string or URL (passwords never appear in output).
    """
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "postgres_check needs the postgres extra: pip install 'selfheal[postgres]'"
        ) from exc
    shown = redact(conninfo)

    async def check() -> Mapping[str, Any]:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        try:
            cursor = await conn.execute("SELECT 1")
            row = await cursor.fetchone()
        finally:
            await conn.close()
        if row != (1,):
            raise CheckError(f"SELECT 1 on {shown} returned {row!r}")
        return {"componentType": "datastore"}

    check.__qualname__ = f"postgres_check({shown})"
    return check


def sqlite_check(
    path: str | os.PathLike[str], *, query: str = "SELECT count(*) FROM sqlite_master"
) -> Check:
    """Return a check that passes when the SQLite database at `path` opens and answers `query`.

    The database is opened read-only and never created: a missing file is a failure. The
    default query reads the schema, so a file that is not a database fails too.

    Args:
        path: The database file.
        query: A read-only statement that must return a row; for ``PRAGMA quick_check`` and
            ``PRAGMA integrity_check`` the row must say ``ok``.
    """
    file = Path(path)
    uri = f"file:{quote(str(file.absolute()))}?mode=ro"
    integrity = query.strip().lower().startswith(("pragma quick_check", "pragma integrity_check"))

    import sqlite3

    worker = Worker(f"sqlite_check({file.name})")

    def probe() -> Mapping[str, Any]:
        try:
            # A short busy timeout: a locked database answers late, the caller's timeout
            # decides how late is too late.
            conn = sqlite3.connect(uri, uri=True, timeout=1.0)
            try:
                row = conn.execute(query).fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise CheckError(f"{query!r} on {file} failed: {exc}") from None
        if row is None:
            raise CheckError(f"{query!r} on {file} returned no row")
        if integrity and row[0] != "ok":
            raise CheckError(f"{query!r} on {file}: {row[0]}")
        return {"componentType": "datastore"}

    async def check() -> Mapping[str, Any]:
        return await worker.run(probe)

    check.__qualname__ = f"sqlite_check({file})"
    return check
