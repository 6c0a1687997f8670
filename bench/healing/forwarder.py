"""A TCP forwarder between the shop and PostgreSQL that the schedule switches off and on.

Off means what a database outage looks like from the shop: the listener is closed (new
connections are refused) and every open connection is cut (reset), in both directions, so
PostgreSQL ends those sessions too. The shared PostgreSQL itself is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib


class Forwarder:
    """Relays 127.0.0.1:`port` to `upstream` (``host:port`` or a unix socket path).

    Args:
        port: Where the shop connects.
        upstream: PostgreSQL's address, ``"127.0.0.1:5432"`` or a socket path such as
            ``"/var/run/postgresql/.s.PGSQL.5432"``.
    """

    def __init__(self, port: int, upstream: str) -> None:
        self.port = port
        self.upstream = upstream
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def on(self) -> bool:
        """Whether the forwarder accepts connections now."""
        return self._server is not None

    async def switch_on(self) -> None:
        """Listen again (a no-op if on)."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve, "127.0.0.1", self.port, reuse_address=True
            )

    async def switch_off(self) -> None:
        """Close the listener and reset every relayed connection (a no-op if off)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        """Switch off and wait for every connection's relay to end."""
        await self.switch_off()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream.startswith("/"):
            return await asyncio.open_unix_connection(self.upstream)
        host, _, port = self.upstream.rpartition(":")
        return await asyncio.open_connection(host, int(port))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._relay(reader, writer)
        finally:
            self._handlers.discard(task)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            writer.transport.abort()
            return
        if not self.on:  # switched off while connecting
            writer.transport.abort()
            up_writer.transport.abort()
            return
        pair = {writer, up_writer}
        self._writers |= pair
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers -= pair
            for w in pair:
                w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    # One side ended: end the other, so neither end waits on a half-open relay.
    writer.transport.abort()
