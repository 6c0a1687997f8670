"""Helpers of the fault proxy tests: a server on its own loop, an echo server, raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from toxiproxy import Toxiproxy

from health_helpers import free_port
from selfheal.chaos import FaultProxy, FaultProxyServer

T = TypeVar("T")


class ThreadedProxy:
    """A `FaultProxyServer` on an event loop of its own thread.

    ``toxiproxy-python`` is a blocking client; the server must not share the test's thread.
    """

    def __init__(self, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.fault_proxy = FaultProxy(**options)
        self.server = FaultProxyServer(self.fault_proxy, port=0)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self) -> None:
        self._thread.start()
        self.call(self.server.start())

    def stop(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    @property
    def port(self) -> int:
        assert self.server.url is not None
        return int(self.server.url.rsplit(":", 1)[1])

    def client(self) -> Toxiproxy:
        """Return a toxiproxy-python client pointed at this server."""
        client = Toxiproxy()
        client.update_api_consumer("127.0.0.1", self.port)
        return client


@contextlib.contextmanager
def threaded_proxy(**options: Any) -> Iterator[ThreadedProxy]:
    proxy = ThreadedProxy(**options)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def connect(listen: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(address(listen), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, limit: float = 5.0) -> bytes:
    """Read everything until the peer closes; fail after `limit` seconds."""
    sock.settimeout(limit)
    chunks = []
    while data := sock.recv(65536):
        chunks.append(data)
    return b"".join(chunks)


def poll_until(predicate: Any, limit: float, interval: float = 0.05) -> None:
    """Ask `predicate` every `interval` s (an HTTP call, say) until true; fail after `limit` s."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {limit} s")
        time.sleep(interval)


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


class EchoServer:
    """An asyncio echo server on a free loopback port (in the test's own loop)."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0

    async def __aenter__(self) -> EchoServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.write_eof()
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


class ProxyProcess:
    """``selfheal chaos proxy`` in a process of its own, stopped by its pid."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.api_port = free_port()
        self.args = ["--listen", f"127.0.0.1:{self.api_port}", *args]
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.banner = ""

    def start(self, limit: float = 20.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "selfheal", "chaos", "proxy", *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        assert self.proc.stderr is not None
        deadline = time.monotonic() + limit
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stderr, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(deadline - time.monotonic()):
                    self.banner = self.proc.stderr.readline()
                    break
        assert self.banner.startswith("fault proxy API on "), self.banner

    def client(self) -> Toxiproxy:
        client = Toxiproxy()
        client.update_api_consumer("127.0.0.1", self.api_port)
        return client

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return self.proc.returncode


@contextlib.contextmanager
def proxy_process(*args: str) -> Iterator[ProxyProcess]:
    process = ProxyProcess(*args)
    process.start()
    try:
        yield process
    finally:
        process.stop()
