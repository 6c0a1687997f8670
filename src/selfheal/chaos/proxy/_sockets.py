"""The proxy's own sockets: a listener bound to ``host:port``, a connection to an upstream."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from typing import Any

from selfheal.chaos.proxy._model import ProxyError, split_address

__all__ = ["bind", "dial", "nodelay"]


async def bind(loop: asyncio.AbstractEventLoop, listen: str) -> tuple[socket.socket, str]:
    """Return a listening non-blocking socket for `listen` and the address it got.

    The address is shown as Toxiproxy shows it, ``host:port`` with the real port.

    Raises:
        ProxyError: 400 for a malformed address, 500 when it cannot be bound (in use...).
    """
    host, port = split_address(listen, "listen")
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(256)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        raise ProxyError(f"listen {listen}: {exc.strerror or exc}", 500) from None
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
    return sock, f"{shown}:{bound[1]}"


async def dial(loop: asyncio.AbstractEventLoop, upstream: str) -> socket.socket:
    """Return a connected non-blocking socket to `upstream` (``host:port``), NODELAY set.

    Raises:
        OSError: The upstream cannot be reached.
    """
    host, port = split_address(upstream, "upstream")
    family, address = await _resolve(loop, host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    nodelay(sock)
    return sock


def nodelay(sock: socket.socket) -> None:
    """Send small writes at once: a proxy must not add Nagle's delay to a request."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _resolve(
    loop: asyncio.AbstractEventLoop, host: str, port: int
) -> tuple[int, tuple[Any, ...]]:
    """Return the family and address to connect to (no lookup for an IP literal)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        return family, address
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), (host, port)
