"""The load client: user requests at a fixed rate that never retry.

Open loop: request `i` is sent at ``i / rate`` seconds whatever happened to the ones before
(a slow shop does not slow the users down). Each request opens its own connection, as
distinct users do, sends one HTTP/1.1 request with ``Connection: close`` and reads the answer,
all within `timeout` seconds; a request that fails is recorded and never sent again. The mix
and its products come from a seeded generator, so both runs send the very same requests.
Only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from urllib.parse import urlencode

# Share of each kind of request (the rest of the mix is product pages).
MIX = (("search", 0.30), ("checkout", 0.20), ("home", 0.05))
QUERIES = ("tent", "boots", "jacket", "alpine", "lantern", "storm mug", "cedar", "rope", "stove")


@dataclass(frozen=True, slots=True)
class Request:
    """One planned user request."""

    index: int
    kind: str
    method: str
    path: str
    body: bytes = b""
    order_id: str | None = None


@dataclass(slots=True)
class Result:
    """What happened to one request.

    Attributes:
        request: The request.
        start: When it was sent, seconds since the load began.
        latency: Seconds until the answer was read or the request failed.
        status: HTTP status, or 0 without an answer.
        ok: Whether the user got what they asked for (200; checkout: 201 or 202).
        pid: The web process that answered (``X-Shop-Pid``), or 0.
        degraded: A product page whose recommendations were the fallback.
        error: Why it failed, if it did.
    """

    request: Request
    start: float
    latency: float
    status: int = 0
    ok: bool = False
    pid: int = 0
    degraded: bool = False
    error: str = ""

    @property
    def end(self) -> float:
        """When the request finished, seconds since the load began."""
        return self.start + self.latency


def plan(count: int, seed: int, run_tag: str, products: int = 200) -> list[Request]:
    """Return `count` requests from `seed` (order ids are unique per run through `run_tag`)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        roll, kind = rng.random(), "product"
        for name, share in MIX:
            if roll < share:
                kind = name
                break
            roll -= share
        product_id = rng.randrange(1, products + 1)
        if kind == "checkout":
            order_id = f"{run_tag}-{i}"
            body = json.dumps(
                {"order_id": order_id, "product_id": product_id, "quantity": 1 + i % 3}
            ).encode()
            out.append(Request(i, kind, "POST", "/checkout", body, order_id))
        elif kind == "search":
            out.append(Request(i, kind, "GET", "/search?" + urlencode({"q": rng.choice(QUERIES)})))
        elif kind == "home":
            out.append(Request(i, kind, "GET", "/"))
        else:
            out.append(Request(i, kind, "GET", f"/product/{product_id}"))
    return out


def _ok(kind: str, status: int) -> bool:
    return status in (201, 202) if kind == "checkout" else status == 200


async def send(port: int, request: Request, patience: float, began: float) -> Result:
    """Send `request` to 127.0.0.1:`port` once, giving up after `patience` s; return the result."""
    start = time.monotonic()
    result = Result(request, start - began, 0.0)
    head = (
        f"{request.method} {request.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Connection: close\r\n"
    )
    if request.body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(request.body)}\r\n"
    writer = None
    try:
        async with asyncio.timeout(patience):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head.encode() + b"\r\n" + request.body)
            raw = await reader.read(-1)  # the server closes after the answer
        _parse(raw, result)
    except TimeoutError:
        result.error = "timeout"
    except OSError as exc:
        result.error = type(exc).__name__
    finally:
        if writer is not None:
            writer.transport.abort()
    result.latency = time.monotonic() - start
    result.ok = _ok(request.kind, result.status) and not result.error
    return result


def _parse(raw: bytes, result: Result) -> None:
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if not sep or len(parts) < 2 or not parts[1].isdigit():
        result.error = "no answer" if not raw else "bad answer"
        return
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if int(headers.get("content-length", len(body))) != len(body):
        result.error = "cut answer"
        return
    result.status = int(parts[1])
    result.pid = int(headers.get("x-shop-pid", "0") or 0)
    result.degraded = headers.get("x-shop-degraded") == "1"


async def run_load(
    port: int, requests: list[Request], rate: float, patience: float, began: float
) -> list[Result]:
    """Send `requests` at `rate` per second from `began` (monotonic); return every result."""
    tasks = []
    for request in requests:
        delay = began + request.index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(port, request, patience, began)))
    return list(await asyncio.gather(*tasks))
