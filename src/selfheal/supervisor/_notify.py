"""The sd_notify protocol: one unix datagram socket per daemon, given to children as NOTIFY_SOCKET.

Any sd_notify library (``systemd.daemon.notify``, ``sdnotify``, ``systemd-notify``) sends
newline-separated ``KEY=VALUE`` datagrams (``READY=1``, ``WATCHDOG=1``, ``STATUS=...``,
``MAINPID=...``). The socket has SO_PASSCRED set, so the kernel attaches the sender's pid to
every datagram; the daemon attributes it to the program whose process (or session) that pid
is, and drops datagrams it cannot attribute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import struct
from collections.abc import Callable
from pathlib import Path

from selfheal._safepath import bind_private

__all__ = ["NotifySocket", "parse_notify"]

logger = logging.getLogger("selfheal.supervisor")

_UCRED = struct.Struct("3i")
# sockaddr_un.sun_path is 108 bytes with the terminating NUL.
_MAX_PATH = 107


def parse_notify(data: bytes) -> dict[str, str]:
    """Return the ``KEY=VALUE`` assignments of one sd_notify datagram."""
    out: dict[str, str] = {}
    for line in data.decode(errors="replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            out[key.strip()] = value
    return out


class NotifySocket:
    """Receives sd_notify datagrams and hands them, with the sender's pid, to `on_message`.

    Args:
        path: Where to bind; when the path is too long for a unix socket address, an abstract
            address (``@selfheal-...``) is used instead.
        on_message: Called on the loop with ``(pid, fields)``; pid is None if the kernel gave
            no credentials.
    """

    def __init__(self, path: Path, on_message: Callable[[int | None, dict[str, str]], None]):
        self._on_message = on_message
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._path: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if len(os.fsencode(path)) <= _MAX_PATH:
            # Only our user may send: datagrams from others are not even delivered.
            bind_private(self._sock, path)
            self._path = path
            self.address = os.fspath(path)
        else:
            name = f"selfheal-{os.getpid()}-{secrets.token_hex(6)}"
            self._sock.bind("\0" + name)
            self.address = "@" + name
        passcred = getattr(socket, "SO_PASSCRED", None)
        if passcred is not None:
            self._sock.setsockopt(socket.SOL_SOCKET, passcred, 1)
        self._sock.setblocking(False)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start receiving on `loop` (a reader: no wake-up unless a datagram arrives)."""
        self._loop = loop
        loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        scm_creds = getattr(socket, "SCM_CREDENTIALS", None)
        for _ in range(64):
            try:
                data, ancdata, _flags, _addr = self._sock.recvmsg(
                    4096, socket.CMSG_SPACE(_UCRED.size)
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.warning("notify socket: %s", exc)
                return
            pid: int | None = None
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == scm_creds and len(payload) >= 12:
                    pid, _uid, _gid = _UCRED.unpack(payload[: _UCRED.size])
            self._on_message(pid, parse_notify(data))

    def close(self) -> None:
        """Stop receiving and remove the socket file; safe to call twice."""
        if self._loop is not None and self._sock.fileno() >= 0:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
            self._path = None
