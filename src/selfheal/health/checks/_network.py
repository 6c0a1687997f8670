"""Checks over the network: a TCP connection opens, an HTTP endpoint answers as expected."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._extras import require
from selfheal._httpcheck import HttpConditions, ssl_context, timed_request
from selfheal._redact import redact
from selfheal.health._results import Check

__all__ = ["http_check", "tcp_check"]


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
    require("httpx", feature="http_check")
    import httpx

    conditions = HttpConditions(
        status=expect_status,
        body_contains=body_contains,
        body_matches=re.compile(body_matches) if body_matches is not None else None,
        json_fields=dict(json_fields or {}),
        max_response_time=max_response_time,
    )
    shown = redact(url)
    request_headers = dict(headers or {})

    async def check() -> Mapping[str, Any]:
        # One TLS context per process: httpx would load the CA bundle for every client, tens
        # of milliseconds of CPU holding the GIL on every probe.
        async with httpx.AsyncClient(
            timeout=None,  # noqa: S113 - the caller's deadline cancels the request
            follow_redirects=follow_redirects,
            verify=ssl_context(),
        ) as client:
            response, elapsed = await timed_request(
                client, method, url, clock=clock, headers=request_headers
            )
        conditions.verify(response, elapsed, f"{method} {shown}")
        return {
            "componentType": "component",
            "status": response.status_code,
            "observedValue": round(elapsed * 1000, 3),
            "observedUnit": "ms",
        }

    check.__qualname__ = f"http_check({shown})"
    return check
