"""Built-in health checks: async callables that raise `CheckError` or return what they observed.

A check is any zero-argument callable, sync or async, that raises when the thing it checks is
unhealthy and otherwise returns observed values (a mapping) or None. Checks do not enforce
their own deadline: the caller (the health monitor, a supervisor probe) runs them under a
timeout, so a hanging dependency can never hang the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias

__all__ = ["Check", "CheckError", "command_check", "http_check", "tcp_check"]

#: What every check is: called with no arguments; raises when unhealthy.
Check: TypeAlias = Callable[[], Awaitable[Mapping[str, Any] | None]]


class CheckError(Exception):
    """Raised by a check whose target answered, but wrongly (the message says how)."""


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
        return {"host": host, "port": port}

    check.__qualname__ = f"tcp_check({host}:{port})"
    return check


def http_check(
    url: str,
    *,
    method: str = "GET",
    expect_status: Sequence[int] | range = range(200, 400),
    body_contains: str | None = None,
) -> Check:
    """Return a check that passes when `url` answers with an expected status (and body).

    Requires the ``server`` extra (httpx).

    Args:
        url: The URL to request.
        method: The HTTP method.
        expect_status: Statuses that count as healthy (default: 2xx and 3xx).
        body_contains: If given, text the response body must contain.
    """
    import httpx

    async def check() -> Mapping[str, Any]:
        # No client-side timeout: the caller's deadline cancels the request.
        async with httpx.AsyncClient(timeout=None, follow_redirects=False) as client:  # noqa: S113
            response = await client.request(method, url)
        if response.status_code not in expect_status:
            raise CheckError(f"HTTP {response.status_code} from {method} {url}")
        if body_contains is not None and body_contains not in response.text:
            raise CheckError(f"response body of {method} {url} lacks {body_contains!r}")
        return {"status": response.status_code}

    check.__qualname__ = f"http_check({url})"
    return check


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
            tail = out.decode(errors="replace").strip()[-200:]
            raise CheckError(f"{args[0]} exited with {proc.returncode}: {tail}")
        return {"exit_code": 0}

    check.__qualname__ = f"command_check({args[0]})"
    return check
