"""Helpers shared by the health tests: checks, bounded waits, servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from selfheal.health import CheckError


class CountingCheck:
    """An async check that counts its calls; its behaviour can be changed between runs."""

    def __init__(self, *, result: Any = None) -> None:
        self.calls = 0
        self.fail: str | None = None
        self.hang = False
        self.result = result
        self.release = asyncio.Event()

    async def __call__(self) -> Any:
        self.calls += 1
        if self.hang:
            await self.release.wait()
        if self.fail is not None:
            raise CheckError(self.fail)
        return self.result


class BlockingCheck:
    """A sync check that blocks its thread until released (a hung driver call)."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = threading.Event()
        self.entered = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.entered.set()
        if not self.gate.wait(10):
            raise RuntimeError("never released")


async def until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Let the loop (and check threads) run until `predicate()` holds; fail after `limit` s."""
    deadline = time.monotonic() + limit
    turns = 0
    while not predicate():
        turns += 1
        if turns < 200:
            await asyncio.sleep(0)
            continue
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {limit} s")
        await asyncio.sleep(0.001)


def wait_until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Block until `predicate()` holds; fail after `limit` seconds."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {limit} s")
        time.sleep(0.002)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """A private redis-server on a free loopback port, stopped by its pid."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed")
        self.exe = exe
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@contextlib.contextmanager
def serving(app: Any, *, lifespan: str = "off") -> Iterator[str]:
    """Serve an ASGI app with a real uvicorn on a free loopback port; yield its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="error",
        lifespan=lifespan,
        timeout_graceful_shutdown=0.2,  # a handler that hangs must not hold the shutdown
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
