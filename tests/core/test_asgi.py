"""`start_asgi_server` within bounds: connections, request read time, header size, EMFILE.

Real sockets over 127.0.0.1; the read timeout and the pause after a failed accept run on a
FakeClock, so nothing here waits for a timer.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from selfheal._asgi import AsgiServer, ServerLimits, start_asgi_server, stop_asgi_server
from selfheal.testing import FakeClock
from supervisor_helpers import descriptors_exhausted

pytestmark = pytest.mark.anyio
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


RELEASE = asyncio.Event()  # what requests for /slow wait for
SLOW: list[None] = []  # one item per request for /slow under way
ALL_SLOW = asyncio.Event()  # set when three are


async def ok_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/echo":  # answers with the body it was sent
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    if scope["path"] == "/slow":
        SLOW.append(None)
        if len(SLOW) == 3:
            ALL_SLOW.set()
        await RELEASE.wait()
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


class Served:
    def __init__(self, server: AsgiServer, port: int, clock: FakeClock) -> None:
        self.server, self.port, self.clock = server, port, clock

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    limits = getattr(request, "param", ServerLimits(max_connections=3, read_timeout=5.0))
    clock = FakeClock()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    server = await start_asgi_server(ok_app, sock, limits=limits, clock=clock, name="test API")
    try:
        yield Served(server, sock.getsockname()[1], clock)
    finally:
        await stop_asgi_server(server)
        sock.close()


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(REQUEST)
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
        return head + await reader.readexactly(2)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(10):
        return await reader.read() == b""


async def test_a_connection_that_sends_no_whole_request_in_time_is_closed(served: Served) -> None:
    idle_r, idle_w = await served.connect()
    slow_r, slow_w = await served.connect()
    slow_w.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers begun, never ended
    busy_r, busy_w = await served.connect()
    assert (await answer(busy_r, busy_w)).endswith(b"ok")
    await served.clock.wait_for_sleepers(3)
    served.clock.advance(5.0)
    assert await closed_by_server(idle_r)
    assert await closed_by_server(slow_r)
    for w in (idle_w, slow_w, busy_w):
        w.close()


async def test_headers_larger_than_the_limit_are_refused(served: Served) -> None:
    big = b"X-Big: " + b"a" * 20_000 + b"\r\n"
    whole_r, whole_w = await served.connect()
    whole_w.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    arriving_r, arriving_w = await served.connect()
    arriving_w.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + big)  # and more to come
    async with asyncio.timeout(10):
        assert (await whole_r.read()).startswith(b"HTTP/1.1 431")
        assert (await arriving_r.read()).startswith(b"HTTP/1.1 400")
    for w in (whole_w, arriving_w):
        w.close()


@pytest.mark.parametrize(
    "served", [ServerLimits(max_body_bytes=4096, read_timeout=5.0)], indirect=True
)
async def test_a_body_larger_than_the_limit_is_refused_before_the_app_reads_it(
    served: Served,
) -> None:
    declared_r, declared_w = await served.connect()
    declared_w.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
    chunked_r, chunked_w = await served.connect()
    chunked_w.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(5):  # 5 x 1000 bytes, no end: the server must stop at its limit
        chunked_w.write(b"3e8\r\n" + b"a" * 1000 + b"\r\n")
    fits_r, fits_w = await served.connect()
    fits_w.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    fits_w.write(b"3e8\r\n" + b"b" * 1000 + b"\r\n0\r\n\r\n")
    async with asyncio.timeout(10):
        declared = await declared_r.read()
        chunked = await chunked_r.read()
        head = await fits_r.readuntil(b"\r\n\r\n")
        echoed = await fits_r.readexactly(1000)
    assert declared.startswith(b"HTTP/1.1 413")
    assert declared.endswith(b"request body over 4096 bytes\n")
    assert chunked.startswith(b"HTTP/1.1 413")
    assert head.startswith(b"HTTP/1.1 200")
    assert echoed == b"b" * 1000  # a body within the limit reaches the app whole
    for w in (declared_w, chunked_w, fits_w):
        w.close()


async def test_past_max_connections_a_new_client_takes_the_place_of_the_idlest(
    served: Served,
) -> None:
    held = [await served.connect() for _ in range(3)]
    await served.clock.wait_for_sleepers(3)
    assert served.server.acceptor.open == 3
    late_r, late_w = await served.connect()
    assert (await answer(late_r, late_w)).endswith(b"ok")
    assert await closed_by_server(held[0][0])  # the one idle the longest
    assert (await answer(*held[1])).endswith(b"ok")
    assert served.server.acceptor.open == 3
    for _, w in [*held, (late_r, late_w)]:
        w.close()


async def test_with_every_connection_busy_a_new_client_waits_its_turn(served: Served) -> None:
    RELEASE.clear()
    busy = [await served.connect() for _ in range(3)]
    for _, w in busy:
        w.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    late_r, late_w = await served.connect()
    late_w.write(REQUEST)
    async with asyncio.timeout(10):
        await ALL_SLOW.wait()
    assert served.server.acceptor.open == 3  # the late one is in the listen backlog
    RELEASE.set()
    async with asyncio.timeout(10):
        assert (await late_r.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    for _, w in [*busy, (late_r, late_w)]:
        w.close()


async def test_out_of_descriptors_it_says_so_once_and_accepts_again(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "selfheal.web")
    with descriptors_exhausted(spare=1):  # the client's socket; none left for accept()
        client = socket.create_connection(("127.0.0.1", served.port))
        for _ in range(5):
            await served.clock.wait_for_sleepers()
            served.clock.advance(1.0)
    shortages = [r for r in caplog.records if "cannot accept" in r.getMessage()]
    assert len(shortages) == 1
    assert "Too many open files" in shortages[0].getMessage()
    assert shortages[0].exc_info is None
    await served.clock.wait_for_sleepers()
    served.clock.advance(1.0)
    reader, writer = await asyncio.open_connection(sock=client)
    assert (await answer(reader, writer)).endswith(b"ok")
    assert any("accepting connections again" in r.getMessage() for r in caplog.records)
    writer.close()
