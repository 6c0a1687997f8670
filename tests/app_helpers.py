"""Helpers of the app tests: small real services, and stand-ins with the article's shapes.

The synthetic tester and the chaos monkey are built in their own packages; these stand-ins
have the article's API (`register_scenario`/`register_target`, `start`, `stop`) and record
what the app does with them, including what was true when they were stopped.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class RecordingTester:
    """The article's `SyntheticTester` shape: scenarios registered, started, stopped."""

    def __init__(self, log: list[str], app_url: str = "", seen: Callable[[], object] = str) -> None:
        self.log = log
        self.app_url = app_url
        self.scenarios: dict[str, tuple[Callable[..., object], float]] = {}
        self.seen = seen
        self.at_stop: object = None

    def register_scenario(
        self, name: str, test_func: Callable[..., object], frequency: float = 300
    ) -> None:
        self.scenarios[name] = (test_func, frequency)

    def start(self) -> None:
        self.log.append("synthetic.start")

    def stop(self) -> None:
        self.at_stop = self.seen()
        self.log.append("synthetic.stop")

    def get_status(self) -> dict[str, Any]:
        return {name: {"success_count": 0, "failure_count": 0} for name in self.scenarios}


class RecordingMonkey:
    """The article's `ChaosMonkey` shape: targets registered, started, stopped."""

    def __init__(self, log: list[str], seen: Callable[[], object] = str, *, enabled: bool) -> None:
        self.log = log
        self.enabled = enabled
        self.targets: dict[str, float] = {}
        self.seen = seen
        self.at_stop: object = None

    def register_target(
        self,
        name: str,
        disrupt_func: Callable[[], object],
        recovery_func: Callable[[], object],
        frequency: float = 3600,
    ) -> None:
        self.targets[name] = frequency

    def start(self) -> None:
        self.log.append("chaos.start")

    def stop(self) -> None:
        self.at_stop = self.seen()
        self.log.append("chaos.stop")


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def http_service() -> Iterator[tuple[str, Callable[[], None]]]:
    """Serve ``200 ok`` on 127.0.0.1; yield its URL and a function that takes it down."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    up = [True]

    def down() -> None:
        if up[0]:
            up[0] = False
            server.shutdown()
            server.server_close()

    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", down
    finally:
        down()


async def tcp_service() -> asyncio.Server:
    """Return a TCP server on 127.0.0.1 that accepts and closes connections."""
    return await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)


def fetch(base_url: str) -> None:
    """A synthetic scenario (``call = "app_helpers:fetch"``): the home page must answer 200."""
    import urllib.request

    with urllib.request.urlopen(base_url, timeout=5) as response:
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
