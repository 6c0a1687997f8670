"""One HTTP request judged by conditions, in the manner of Gatus: the core of HTTP checks.

`selfheal.health.checks.http_check` and the synthetic HTTP steps both send a request with
`timed_request` and judge the response with `HttpConditions.verify` (status, body text, a
regular expression, JSON fields by dotted path, response headers, response time), so a
condition means the same in both. `json_path` reads a dotted path out of a JSON document, for
conditions and for values a later step reuses.

Standard library only: httpx is imported by whoever makes the client (the ``server`` extra).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._redact import is_secret_key, redact
from selfheal.errors import CheckError

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = ["MISSING", "HttpConditions", "Response", "json_path", "ssl_context", "timed_request"]

#: What `json_path` returns for a path the document does not have.
MISSING: Any = object()
_NONE: Mapping[str, Any] = MappingProxyType({})


class Response(Protocol):
    """What the conditions read of a response (an ``httpx.Response`` has all of it)."""

    @property
    def status_code(self) -> int:
        """Return the HTTP status code."""
        ...

    @property
    def text(self) -> str:
        """Return the decoded body."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Return the headers (looked up case-insensitively)."""
        ...

    def json(self) -> Any:
        """Return the body parsed as JSON; raise ValueError if it is not JSON."""
        ...


def json_path(document: Any, path: str) -> Any:
    """Return the value at a dotted path in a parsed JSON document.

    Args:
        document: The parsed JSON (mappings, lists, scalars).
        path: Keys separated by dots; a list is indexed by a number (``items.0.id``).

    Returns:
        The value, or `MISSING` if the document has no such path.
    """
    value: Any = document
    for key in path.split("."):
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return MISSING
    return value


@dataclass(frozen=True, slots=True)
class HttpConditions:
    """What a response must be like; every condition given must hold.

    Attributes:
        status: Statuses that pass (default: 2xx and 3xx).
        body_contains: Text the body must contain.
        body_matches: A regular expression the body must match (``re.search``).
        json_fields: Dotted paths into the JSON body and the values they must have.
        headers: Response headers and the values they must have (names case-insensitive;
            the values of secret ones, such as ``Set-Cookie``, never appear in a failure).
        max_response_time: Seconds the response may take at most.
    """

    status: Collection[int] = range(200, 400)
    body_contains: str | None = None
    body_matches: re.Pattern[str] | None = None
    json_fields: Mapping[str, Any] = field(default_factory=lambda: _NONE)
    headers: Mapping[str, str] = field(default_factory=lambda: _NONE)
    max_response_time: float | None = None

    def verify(self, response: Response, elapsed: float, what: str) -> None:
        """Check `response` against every condition.

        Args:
            response: The response.
            elapsed: Seconds it took.
            what: The request as messages name it (``GET https://host/path``), redacted.

        Raises:
            CheckError: The first condition that does not hold, said in one line. Values
                from the response are redacted.
        """
        if response.status_code not in self.status:
            raise CheckError(f"HTTP {response.status_code} from {what}")
        if self.body_contains is not None and self.body_contains not in response.text:
            raise CheckError(f"response body of {what} lacks {self.body_contains!r}")
        pattern = self.body_matches
        if pattern is not None and not pattern.search(response.text):
            raise CheckError(f"response body of {what} does not match {pattern.pattern!r}")
        if self.json_fields:
            _verify_json(response, self.json_fields, what)
        for name, expected in self.headers.items():
            value = response.headers.get(name)
            if value is None:
                raise CheckError(f"response of {what} has no {name} header")
            if is_secret_key(name):
                # Cookies, tokens: say which header differs, never what it holds.
                if value != expected:
                    raise CheckError(f"response of {what}: header {name} is not as expected")
            else:
                _expect(value, expected, f"response of {what}: header {name}")
        if self.max_response_time is not None and elapsed > self.max_response_time:
            raise CheckError(
                f"{what} took {elapsed * 1000:.0f} ms "
                f"(more than {self.max_response_time * 1000:.0f} ms)"
            )


def _verify_json(response: Response, fields: Mapping[str, Any], what: str) -> None:
    try:
        document = response.json()
    except ValueError:
        raise CheckError(f"response body of {what} is not JSON") from None
    for path, expected in fields.items():
        value = json_path(document, path)
        if value is MISSING:
            raise CheckError(f"response JSON of {what} has no field {path!r}")
        _expect(value, expected, f"response JSON of {what}: {path}")


def _expect(value: Any, expected: Any, subject: str) -> None:
    if value != expected:
        raise CheckError(f"{subject} is {redact(repr(value))}, expected {redact(repr(expected))}")


async def timed_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    clock: Clock = SYSTEM_CLOCK,
    **kwargs: Any,
) -> tuple[httpx.Response, float]:
    """Send one request and measure how long the response took.

    No timeout of its own: the caller's deadline (the scheduler's, a probe's) cancels it.

    Args:
        client: The client (its cookies and base URL carry over between steps).
        method: The HTTP method.
        url: The URL (absolute, or relative to the client's base URL).
        clock: Measures the response time.
        **kwargs: Passed to ``client.request`` (``headers``, ``json``, ``content``...).

    Returns:
        The response, with its body read, and the seconds it took.
    """
    start = clock.monotonic()
    response = await client.request(method, url, **kwargs)
    return response, clock.monotonic() - start


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """Return one TLS context for the clients of checks and scenarios, made on first use.

    Pass it as ``httpx.AsyncClient(verify=ssl_context())``: httpx otherwise loads the CA
    bundle again for every client, which costs tens to hundreds of milliseconds of CPU per
    check run. Certificates are verified as httpx's default does (``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` are honoured).
    """
    import httpx

    return httpx.create_ssl_context()
