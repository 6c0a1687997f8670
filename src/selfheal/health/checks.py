"""Built-in health checks: async callables that raise `CheckError` or return what they observed.

A check is any zero-argument callable, sync or async, that raises when the thing it checks is
unhealthy and otherwise returns observed values (a mapping) or None. Checks do not enforce
their own deadline: the caller (the health monitor, a supervisor probe) runs them under a
timeout, so a hanging dependency can never hang the caller. Blocking work (SQLite, ``statvfs``
on a dead NFS mount) runs in a daemon thread of its own, so an abandoned run cannot starve a
thread pool.

Observed values are free-form, except for a few keys the health endpoints lift into the IETF
``application/health+json`` fields: ``componentType``, ``measurement`` (default
``responseTime``), ``observedValue`` and ``observedUnit``.

Every client library is imported when its check is created, not when this module is: the
``redis`` and ``postgres`` extras are only needed by those who use those checks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import shutil
import ssl
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias, TypeVar
from urllib.parse import quote

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._redact import redact
from selfheal._threads import start_in_thread
from selfheal.errors import CheckError

__all__ = [
    "Check",
    "CheckError",
    "command_check",
    "disk_space_check",
    "event_loop_lag_check",
    "http_check",
    "memory_check",
    "postgres_check",
    "process_check",
    "redis_check",
    "sqlite_check",
    "tcp_check",
]

_T = TypeVar("_T")

#: What every check is: called with no arguments; raises when unhealthy.
Check: TypeAlias = Callable[[], Awaitable[Mapping[str, Any] | None]]


def tcp_check(host: str, port: int) -> Check:
    """Return a check that passes when a TCP connection to `host`:`port` opens.

    Args:
        host: Name or address.
        port: TCP port.
    """

    async def check() -> Mapping[str, Any]:
        _reader, writer = await asyncio.open_connection(host, port)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return {"componentType": "component", "host": host, "port": port}

    check.__qualname__ = f"tcp_check({host}:{port})"
    return check


def http_check(
    url: str,
    *,
    method: str = "GET",
    expect_status: Sequence[int] | range = range(200, 400),
    body_contains: str | None = None,
    body_matches: str | None = None,
    json_fields: Mapping[str, Any] | None = None,
    max_response_time: float | None = None,
    headers: Mapping[str, str] | None = None,
    follow_redirects: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> Check:
    """Return a check that passes when `url` answers with an expected status (and body).

    Conditions in the manner of Gatus: every one given must hold. Requires the ``server``
    extra (httpx).

    Args:
        url: The URL to request.
        method: The HTTP method.
        expect_status: Statuses that count as healthy (default: 2xx and 3xx).
        body_contains: If given, text the response body must contain.
        body_matches: If given, a regular expression the body must match (``re.search``).
        json_fields: If given, dotted paths into the JSON body and the values they must
            have, e.g. ``{"status": "UP", "components.db.status": "UP"}``.
        max_response_time: If given, seconds the response may take at most.
        headers: Request headers (their values never appear in output).
        follow_redirects: Whether to follow redirects.
        clock: Measures the response time.
    """
    import httpx

    pattern = re.compile(body_matches) if body_matches is not None else None
    shown = redact(url)
    request_headers = dict(headers or {})

    # Loading the certificate store costs ~60 ms of CPU, holding the GIL: once per check, not
    # once per run (a supervisor probing every 250 ms spent a quarter of a core on it), and
    # never for plain HTTP without redirects, which cannot meet a certificate.
    tls: list[ssl.SSLContext | bool] = []
    needs_tls = follow_redirects or not url.lower().startswith("http://")

    async def check() -> Mapping[str, Any]:
        if not tls:
            tls.append(httpx.create_ssl_context() if needs_tls else False)
        start = clock.monotonic()
        # No client-side timeout: the caller's deadline cancels the request.
        async with httpx.AsyncClient(
            timeout=None,  # noqa: S113
            follow_redirects=follow_redirects,
            verify=tls[0],
        ) as client:
            response = await client.request(method, url, headers=request_headers)
        elapsed = clock.monotonic() - start
        if response.status_code not in expect_status:
            raise CheckError(f"HTTP {response.status_code} from {method} {shown}")
        if body_contains is not None and body_contains not in response.text:
            raise CheckError(f"response body of {method} {shown} lacks {body_contains!r}")
        if pattern is not None and not pattern.search(response.text):
            raise CheckError(f"response body of {method} {shown} does not match {body_matches!r}")
        if json_fields:
            _check_json_fields(response, json_fields, f"{method} {shown}")
        if max_response_time is not None and elapsed > max_response_time:
            raise CheckError(
                f"{method} {shown} took {elapsed * 1000:.0f} ms "
                f"(more than {max_response_time * 1000:.0f} ms)"
            )
        return {
            "componentType": "component",
            "status": response.status_code,
            "observedValue": round(elapsed * 1000, 3),
            "observedUnit": "ms",
        }

    check.__qualname__ = f"http_check({shown})"
    return check


_MISSING = object()


def _check_json_fields(response: Any, fields: Mapping[str, Any], what: str) -> None:
    try:
        document = response.json()
    except ValueError:
        raise CheckError(f"response body of {what} is not JSON") from None
    for path, expected in fields.items():
        value: Any = document
        for key in path.split("."):
            if isinstance(value, Mapping) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                value = _MISSING
                break
        if value is _MISSING:
            raise CheckError(f"response JSON of {what} has no field {path!r}")
        if value != expected:
            raise CheckError(
                f"response JSON of {what}: {path} is {redact(repr(value))}, "
                f"expected {redact(repr(expected))}"
            )


def command_check(argv: Sequence[str], *, cwd: str | None = None) -> Check:
    """Return a check that passes when the command `argv` exits with status 0.

    The command runs as an argv list, never through a shell; if the caller's deadline
    cancels the check, the command is killed.

    Args:
        argv: Program and arguments.
        cwd: Working directory.
    """
    args = list(argv)
    if not args:
        raise ValueError("command_check: argv must name a program")

    async def check() -> Mapping[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            tail = redact(out.decode(errors="replace").strip()[-200:])
            raise CheckError(f"{args[0]} exited with {proc.returncode}: {tail}")
        return {"exit_code": 0}

    check.__qualname__ = f"command_check({args[0]})"
    return check


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

    worker = _Worker(f"sqlite_check({file.name})")

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


def disk_space_check(
    path: str | os.PathLike[str] = "/",
    *,
    min_free_ratio: float = 0.05,
    min_free_bytes: int | None = None,
) -> Check:
    """Return a check that passes while the file system holding `path` has enough free space.

    Args:
        path: Any path on the file system to check.
        min_free_ratio: Smallest free fraction of the disk (0 to 1) that passes.
        min_free_bytes: If given, smallest number of free bytes that passes.
    """
    if not 0 <= min_free_ratio < 1:
        raise ValueError(
            f"disk_space_check: min_free_ratio must be from 0 to 1, got {min_free_ratio!r}"
        )
    target = os.fspath(path)
    worker = _Worker("disk_space_check")

    async def check() -> Mapping[str, Any]:
        # statvfs blocks on a hung network mount: in a thread, abandoned at the timeout.
        usage = await worker.run(lambda: shutil.disk_usage(target))
        free_ratio = usage.free / usage.total if usage.total else 0.0
        observed = {
            "componentType": "system",
            "measurement": "utilization",
            "observedValue": round(100 * (1 - free_ratio), 2),
            "observedUnit": "percent",
            "free_bytes": usage.free,
            "total_bytes": usage.total,
        }
        if free_ratio < min_free_ratio:
            raise CheckError(
                f"{target}: {free_ratio:.1%} free, less than {min_free_ratio:.1%} "
                f"({usage.free} of {usage.total} bytes)"
            )
        if min_free_bytes is not None and usage.free < min_free_bytes:
            raise CheckError(f"{target}: {usage.free} bytes free, less than {min_free_bytes}")
        return observed

    check.__qualname__ = f"disk_space_check({target})"
    return check


def memory_check(*, max_percent: float = 90.0, max_rss_bytes: int | None = None) -> Check:
    """Return a check that passes while memory use is below the limits.

    Requires psutil (the ``server`` extra).

    Args:
        max_percent: Highest system memory use (percent of total, as ``psutil`` counts it)
            that passes.
        max_rss_bytes: If given, highest resident set size of this process that passes (a
            leak shows here first).
    """
    import psutil

    if not 0 < max_percent <= 100:
        raise ValueError(f"memory_check: max_percent must be from 0 to 100, got {max_percent!r}")

    async def check() -> Mapping[str, Any]:
        used = psutil.virtual_memory().percent
        rss = psutil.Process().memory_info().rss
        if used > max_percent:
            raise CheckError(f"system memory {used:.1f}% used, more than {max_percent:g}%")
        if max_rss_bytes is not None and rss > max_rss_bytes:
            raise CheckError(f"resident memory {rss} bytes, more than {max_rss_bytes}")
        return {
            "componentType": "system",
            "measurement": "utilization",
            "observedValue": used,
            "observedUnit": "percent",
            "rss_bytes": rss,
        }

    check.__qualname__ = "memory_check"
    return check


def process_check(
    pid: int | Callable[[], int | None] | None = None,
    *,
    pidfile: str | os.PathLike[str] | None = None,
) -> Check:
    """Return a check that passes while a process is alive (and not a zombie).

    Args:
        pid: The process id, or a function returning it (None: not running), e.g. a
            supervisor's view of its child.
        pidfile: Instead of `pid`, a file holding the process id.
    """
    if (pid is None) == (pidfile is None):
        raise ValueError("process_check: give exactly one of pid or pidfile")

    def current_pid() -> int:
        if pidfile is not None:
            try:
                text = Path(pidfile).read_text().strip()
            except OSError as exc:
                raise CheckError(f"cannot read pid file {pidfile}: {exc.strerror}") from None
            if not text.isdigit():
                raise CheckError(f"pid file {pidfile} does not hold a process id: {text[:40]!r}")
            return int(text)
        value = pid() if callable(pid) else pid
        if value is None:
            raise CheckError("no process id: the process is not running")
        return value

    async def check() -> Mapping[str, Any]:
        number = current_pid()
        status = _process_status(number)
        if status is None:
            raise CheckError(f"process {number} does not exist")
        if status in ("zombie", "dead"):
            raise CheckError(f"process {number} has exited ({status}, not yet reaped)")
        return {"componentType": "system", "pid": number, "process_status": status}

    check.__qualname__ = f"process_check({pid if pidfile is None else pidfile})"
    return check


def _process_status(pid: int) -> str | None:
    """Return the process state ('running', 'sleeping', 'zombie'...), None if there is none."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the server extra
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "running"  # exists, owned by someone else
        return "running"
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        return "running"


def event_loop_lag_check(
    loop: asyncio.AbstractEventLoop | None = None,
    *,
    max_lag: float = 0.25,
    clock: Clock = SYSTEM_CLOCK,
) -> Check:
    """Return a check that measures an event loop's lag from outside the loop.

    A thread hands the loop a callback with ``call_soon_threadsafe`` and measures how long
    the loop takes to run it: code blocking the loop delays the callback, so a blocked loop
    fails the check after `max_lag` even though nothing on that loop can run. Best used as a
    liveness check of an application's loop from a monitor on another thread
    (`HealthMonitor.start_monitoring`).

    Args:
        loop: The loop to watch (default: the loop the check runs on).
        max_lag: Seconds of lag above which the check fails.
        clock: Measures the lag. The wait itself is a real wait on a real loop, bounded by
            `max_lag`.
    """
    if not max_lag > 0:
        raise ValueError(f"event_loop_lag_check: max_lag must be > 0 seconds, got {max_lag!r}")

    def measure(target: asyncio.AbstractEventLoop) -> Mapping[str, Any]:
        ran = threading.Event()
        start = clock.monotonic()
        try:
            target.call_soon_threadsafe(ran.set)
        except RuntimeError:
            raise CheckError("the event loop is closed") from None
        if not ran.wait(max_lag):
            raise CheckError(
                f"the event loop did not run a callback within {max_lag * 1000:.0f} ms (blocked)"
            )
        lag = clock.monotonic() - start
        return {
            "componentType": "system",
            "measurement": "lag",
            "observedValue": round(lag * 1000, 3),
            "observedUnit": "ms",
        }

    worker = _Worker("event_loop_lag_check")

    async def check() -> Mapping[str, Any]:
        target = loop if loop is not None else asyncio.get_running_loop()
        return await worker.run(lambda: measure(target))

    check.__qualname__ = "event_loop_lag_check"
    return check


class _Worker:
    """Runs one check's blocking call in a daemon thread, one call at a time.

    Not `asyncio.to_thread`: its pool is shared and joined at exit, so a hung check would
    keep a worker forever and could block the interpreter from exiting. And not a new thread
    per run either: the caller abandons a run at its deadline (cancelling the await), but the
    blocked call keeps its thread, so a mount that stays dead would gain a thread every
    interval. A run that finds the previous call still blocked waits for that one instead.
    """

    __slots__ = ("_lock", "_name", "_pending")

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._pending: concurrent.futures.Future[Any] | None = None

    async def run(self, fn: Callable[[], _T]) -> _T:
        """Return `fn()`, computed in a thread (or the result of the call still running)."""
        with self._lock:
            future = self._pending
            if future is None or future.done():
                future = self._pending = start_in_thread(fn, name=self._name)
        result: _T = await asyncio.wrap_future(future)
        return result
