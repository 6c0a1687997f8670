"""Fixtures of the supervisor tests: TCP ports for probes to find open or closed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest


@pytest.fixture
def closed_port() -> int:
    """Return a port of 127.0.0.1 where nothing listens: a TCP probe of it fails."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
async def open_port() -> AsyncIterator[int]:
    """Yield a port of 127.0.0.1 that accepts (and closes) connections: a TCP probe passes."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
