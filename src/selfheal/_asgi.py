"""Serve an ASGI app with uvicorn on a bound socket, without uvicorn's main loop, within bounds.

uvicorn's ``Server.serve`` runs a loop that wakes every 100 ms; a daemon that should cost no
wake-ups when idle starts the server's parts itself instead: ``startup``, one ``on_tick`` to
set the default headers, and ``shutdown`` to stop. Needs the ``server`` extra.

It also accepts the connections itself, within `ServerLimits`: idle, slow or hostile clients
must not take the descriptors a daemon needs to restart its programs. At most
``max_connections`` are open at once: then a new one takes the place of the connection idle
the longest, or waits in the kernel's backlog while every one has a request under way. A
connection that has not sent a whole request within ``read_timeout`` is closed, and a
request whose headers pass ``max_header_bytes`` is refused. asyncio's own accept loop is not
used: out of descriptors, it logs a traceback for every attempt (thousands a second); here one
line says so and accepting pauses for a second.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock

__all__ = ["ServerLimits", "start_asgi_server", "stop_asgi_server"]

logger = logging.getLogger("selfheal.web")

# What accept(2) fails with when the process or the system is short of something.
_SHORTAGES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_RETRY = 1.0
_ACCEPT_BATCH = 64  # per wake-up, so that a flood of connections cannot hog the loop


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What clients may hold of a server, so that idle, slow or hostile ones cannot starve it.

    Attributes:
        max_connections: Connections open at once. Past it a new connection replaces the
            one idle the longest; with none idle, it waits in the listen backlog.
        read_timeout: Seconds a connection has to send a whole request (line, headers and
            body), counted from when it was accepted or its last response was sent; then it
            is closed.
        max_header_bytes: The request line and headers together; a larger request is
            answered 431 (or 400 while it is still arriving) and closed.
        max_body_bytes: A request's body; a larger one is answered 413 and closed, before
            the app reads it (a chunked body is taken in up to this size first).
        keep_alive: Seconds an idle connection is kept open between requests.
    """

    max_connections: int = 64
    read_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 1024 * 1024
    keep_alive: float = 5.0

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections}")
        for name in ("read_timeout", "keep_alive"):
            value = getattr(self, name)
            if not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        for name in ("max_header_bytes", "max_body_bytes"):
            if getattr(self, name) < 1024:
                raise ValueError(f"{name} must be at least 1024, got {getattr(self, name)}")


@dataclass(slots=True)
class AsgiServer:
    """A server `start_asgi_server` started: uvicorn's parts and the accepting of connections."""

    server: Any
    acceptor: _Acceptor


async def start_asgi_server(
    app: Any,
    sock: socket.socket,
    *,
    limits: ServerLimits | None = None,
    clock: Clock = SYSTEM_CLOCK,
    name: str = "HTTP server",
) -> AsgiServer:
    """Start serving `app` on `sock` (bound, listening, non-blocking) within `limits`.

    Args:
        app: The ASGI app.
        sock: The listening socket; the caller closes it after `stop_asgi_server`.
        limits: Connections, request read time and header size (default `ServerLimits()`).
        clock: Times the read timeout and the pause after a failed accept.
        name: What the server is, in log lines (``"control API"``).

    Returns:
        The running server, for `stop_asgi_server`.
    """
    import uvicorn

    limits = limits if limits is not None else ServerLimits()
    acceptor = _Acceptor(sock, limits.max_connections, clock, name)
    config = uvicorn.Config(
        _bounded_app(app, limits.max_header_bytes, limits.max_body_bytes),
        lifespan="off",
        log_level="warning",
        access_log=False,
        date_header=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=max(1, round(limits.keep_alive)),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        http=_bounded_protocol(limits, clock, acceptor),
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[])  # uvicorn's state; the connections come from `acceptor`
    await server.on_tick(0)  # sets the default headers once
    protocol = config.http_protocol_class
    acceptor.start(
        asyncio.get_running_loop(),
        lambda: protocol(  # type: ignore[call-arg]
            config=config, server_state=server.server_state, app_state=server.lifespan.state
        ),
    )
    return AsgiServer(server, acceptor)


async def stop_asgi_server(server: AsgiServer) -> None:
    """Stop a server `start_asgi_server` returned (open connections get 5 s to finish)."""
    server.acceptor.close()
    server.server.should_exit = True
    await server.server.shutdown()


class _Acceptor:
    """Accepts connections while fewer than `limit` are open; pauses when out of descriptors."""

    def __init__(self, sock: socket.socket, limit: int, clock: Clock, name: str) -> None:
        self.sock = sock
        self.limit = limit
        self.open = 0
        self._clock = clock
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._factory: Callable[[], asyncio.Protocol] | None = None
        self._reading = False
        self._closed = False
        self._short = False  # told once per shortage, not at each retry
        self._tasks: set[asyncio.Future[Any]] = set()
        # Connections waiting for a request, the longest-waiting first.
        self._idle: dict[Any, None] = {}

    def start(
        self, loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol]
    ) -> None:
        self._loop, self._factory = loop, factory
        self._read(True)

    def _read(self, on: bool) -> None:
        loop = self._loop
        if loop is None or on == self._reading or (on and self._closed):
            return
        if on:
            loop.add_reader(self.sock.fileno(), self._accept)
        else:
            loop.remove_reader(self.sock.fileno())
        self._reading = on

    def _accept(self) -> None:
        if self.open >= self.limit:  # readable: someone waits in the backlog
            if self._idle:
                # The connection idle the longest makes room (its close frees the place
                # before the loop comes back here): idle clients cannot lock others out.
                oldest = next(iter(self._idle))
                self.idle(oldest, False)
                oldest.transport.abort()
            else:
                self._read(False)  # every one has a request under way; `released` reads
            return
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                self._pause(exc)
                return
            if self._short:
                self._short = False
                logger.warning("%s: accepting connections again", self._name)
            self.open += 1
            conn.setblocking(False)
            self._spawn(self._connect(conn))
            if self.open >= self.limit:
                return

    def _pause(self, exc: OSError) -> None:
        self._read(False)
        if not self._short:
            self._short = True
            what = "out of resources" if exc.errno in _SHORTAGES else "failing"
            logger.error(
                "%s: cannot accept connections (%s: %s); trying again every %g s",
                self._name,
                what,
                exc,
                _ACCEPT_RETRY,
            )
        self._spawn(self._retry())

    async def _retry(self) -> None:
        await self._clock.asleep(_ACCEPT_RETRY)
        self._read(True)

    async def _connect(self, conn: socket.socket) -> None:
        loop, factory = self._loop, self._factory
        assert loop is not None
        assert factory is not None
        try:
            await loop.connect_accepted_socket(factory, conn)
        except BaseException:
            conn.close()
            self.released()
            raise

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("%s: a connection failed to set up: %s", self._name, task.exception())

    def idle(self, protocol: Any, waiting: bool) -> None:
        """Note that `protocol`'s connection waits for a request (or no longer does)."""
        self._idle.pop(protocol, None)
        if waiting:
            self._idle[protocol] = None
            if not self._short:
                self._read(True)  # it may make room for one waiting in the backlog

    def released(self) -> None:
        """A connection closed: its place is free for the next one."""
        self.open -= 1
        self._read(True)  # also when short of descriptors: one was just freed

    def close(self) -> None:
        """Stop accepting; safe to call twice."""
        self._read(False)
        self._closed = True
        for task in list(self._tasks):
            task.cancel()


def _bounded_app(app: Any, max_header_bytes: int, max_body_bytes: int) -> Any:
    """Return `app` behind checks of the request's size: 431 for the head, 413 for the body.

    h11 bounds a head that is still arriving; one that came whole in a single read is
    measured here, before the app sees it. A declared body length is checked at once; a
    chunked body is read here up to the limit and handed to the app from memory.
    """

    async def bounded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = scope["headers"]
        size = len(scope["raw_path"]) + len(scope["query_string"])
        size += sum(len(name) + len(value) + 4 for name, value in headers)
        if size > max_header_bytes:
            await _refuse(send, 431, f"request headers over {max_header_bytes} bytes")
            return
        declared = next((v for n, v in headers if n == b"content-length"), None)
        if declared is not None:  # h11 already refused one that is not a number
            if int(declared) > max_body_bytes:
                await _refuse(send, 413, f"request body over {max_body_bytes} bytes")
                return
        elif any(n == b"transfer-encoding" for n, _ in headers):
            taken, received = [], 0
            while True:
                message = await receive()
                taken.append(message)
                received += len(message.get("body", b""))
                if received > max_body_bytes:
                    await _refuse(send, 413, f"request body over {max_body_bytes} bytes")
                    return
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
            receive = _replay(taken, receive)
        await app(scope, receive, send)

    return bounded


def _replay(taken: list[dict[str, Any]], receive: Any) -> Any:
    """Return a `receive` that gives the messages already `taken`, then reads on."""
    pending = collections.deque(taken)

    async def replayed() -> dict[str, Any]:
        if pending:
            return pending.popleft()
        message: dict[str, Any] = await receive()
        return message

    return replayed


async def _refuse(send: Any, status: int, text: str) -> None:
    body = f"{text}\n".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _bounded_protocol(limits: ServerLimits, clock: Clock, acceptor: _Acceptor) -> type[Any]:
    """Return uvicorn's h11 protocol, closing connections that take too long to send a request."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class BoundedH11Protocol(H11Protocol):
        _deadline: asyncio.Future[None] | None = None
        _armed_for: object = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            try:
                super().connection_lost(exc)
            finally:
                acceptor.released()

        def handle_events(self) -> None:
            super().handle_events()
            cycle = self.cycle
            if cycle is not self._armed_for and cycle is not None and not cycle.more_body:
                self._disarm()  # the whole request is in: the app takes it from here

        def on_response_complete(self) -> None:
            super().on_response_complete()
            cycle = self.cycle  # a pipelined request may be under way already
            if not self.transport.is_closing() and (cycle is None or cycle.response_complete):
                self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._armed_for = self.cycle
            self._deadline = asyncio.ensure_future(self._expire())
            acceptor.idle(self, True)

        def _disarm(self) -> None:
            acceptor.idle(self, False)
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        async def _expire(self) -> None:
            await clock.asleep(limits.read_timeout)
            self._deadline = None
            with contextlib.suppress(Exception):
                self.transport.close()

    return BoundedH11Protocol
