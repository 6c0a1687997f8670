"""selfheal's pytest plugin: test your own service's resilience.

Installed with selfheal (entry point ``pytest11``: ``selfheal``), so pytest loads it in
every run; it imports only the standard library and pytest until a fixture is used.

Fixtures:

- ``fake_clock``: a `selfheal.testing.FakeClock`; give it as ``clock=`` to your policies.
- ``fault_injector``: an `Injector` on ``fake_clock``, seeded with the test's id, whose faults
  are removed after the test. Activate faults on the injection points of the code under
  test: ``fault_injector.error("db.query", times=2)``.
- ``fault_proxy``: a factory of Toxiproxy-compatible TCP fault proxies in front of a real
  service: ``proxy = fault_proxy("127.0.0.1:6379")``, connect to ``proxy.host``/``proxy.port``
  and add toxics (``proxy.add_toxic("latency", latency=100)``). The proxies are deleted
  after the test. The proxy server is started once per session.

Where the proxy server comes from (first that applies):

1. ``SELFHEAL_FAULT_PROXY_URL`` (or the ini option ``selfheal_fault_proxy_url``): an
   already running Toxiproxy-compatible API, e.g. ``http://127.0.0.1:8474`` of a real
   ``toxiproxy-server``;
2. the ini option ``selfheal_fault_proxy_command``: a command started for the session, with
   ``{host}``, ``{port}`` (a free port), ``{python}`` and ``{ready_file}`` filled in, e.g.
   ``toxiproxy-server -host {host} -port {port}``. A command that takes ``{ready_file}``
   writes there, once it serves, a JSON object whose ``url`` is the API's (as
   ``selfheal chaos proxy --ready-file`` does), so it can pick its own port;
3. by default ``{python} -m selfheal chaos proxy --listen {host}:0 --ready-file
   {ready_file}`` (needs the ``server`` extra): the proxy binds a free port itself, so no
   other process can take it between a probe and the start.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selfheal.chaos import Injector, ProxyHandle, ToxiproxyClient
    from selfheal.testing import FakeClock

__all__ = [
    "fake_clock",
    "fault_injector",
    "fault_proxy",
    "fault_proxy_server",
    "pytest_addoption",
]

URL_VARIABLE = "SELFHEAL_FAULT_PROXY_URL"
DEFAULT_COMMAND = "{python} -m selfheal chaos proxy --listen {host}:0 --ready-file {ready_file}"
#: Seconds a started proxy server gets to answer its API.
START_TIMEOUT = 20.0


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the plugin's ini options."""
    parser.addini(
        "selfheal_fault_proxy_url",
        "URL of a running Toxiproxy-compatible API for the fault_proxy fixture",
        default="",
    )
    parser.addini(
        "selfheal_fault_proxy_command",
        "command starting a Toxiproxy-compatible server ({host}, {port}, {python})",
        default=DEFAULT_COMMAND,
    )


@pytest.fixture
def fake_clock() -> FakeClock:
    """A `FakeClock`: time moves only when the test calls ``advance``."""
    from selfheal.testing import FakeClock

    return FakeClock()


@pytest.fixture
def fault_injector(fake_clock: FakeClock, request: pytest.FixtureRequest) -> Iterator[Injector]:
    """An `Injector` on ``fake_clock``, seeded with the test's id; cleared after the test."""
    from selfheal.chaos import Injector

    with Injector(clock=fake_clock, seed=request.node.nodeid) as injector:
        yield injector


@pytest.fixture(scope="session")
def fault_proxy_server(pytestconfig: pytest.Config) -> Iterator[ToxiproxyClient]:
    """A client of the session's Toxiproxy-compatible API (started here unless given)."""
    from selfheal.chaos import ToxiproxyClient

    url = os.environ.get(URL_VARIABLE) or str(pytestconfig.getini("selfheal_fault_proxy_url"))
    if url:
        yield ToxiproxyClient(url)
        return
    host = "127.0.0.1"
    template = str(pytestconfig.getini("selfheal_fault_proxy_command")) or DEFAULT_COMMAND
    with tempfile.TemporaryDirectory(prefix="selfheal-proxy-") as tmp:
        ready = os.path.join(tmp, "ready.json")
        fill = {"host": host, "python": sys.executable, "ready_file": ready}
        says_where = "{ready_file}" in template
        if "{port}" in template or not says_where:
            fill["port"] = str(_free_port())
        argv = [part.format(**fill) for part in shlex.split(template)]
        known = None if says_where else f"http://{host}:{fill['port']}"
        # Output to a file, not a pipe: a pipe nobody reads would block a chatty server.
        with open(os.path.join(tmp, "output"), "w+b") as output:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
            try:
                yield _until_it_answers(proc, argv, known, ready, output)
            finally:
                _stop(proc)


def _until_it_answers(
    proc: subprocess.Popen[bytes], argv: list[str], url: str | None, ready: str, output: IO[bytes]
) -> ToxiproxyClient:
    """Return a client of the started server once it answers; fail the test if it never does."""
    from selfheal.chaos import ToxiproxyClient

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        api = url or _ready_url(ready)
        if api is not None:
            client = ToxiproxyClient(api, timeout=2.0)
            if _answers(client):
                return client
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            output.seek(0)
            tail = output.read()[-2000:].decode(errors="replace")
            where = f"on {url}" if url else f"in time (no URL in its ready file {ready})"
            pytest.fail(
                f"fault_proxy: the proxy server {argv!r} did not answer {where} (exit code "
                f"{proc.returncode}); set {URL_VARIABLE} or the ini option "
                f"selfheal_fault_proxy_command. Its output:\n{tail}",
                pytrace=False,
            )
        time.sleep(0.05)  # waiting for another process to listen, not for a timer


def _ready_url(path: str) -> str | None:
    """Return the ``url`` of a ready file, or None while it is not written."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return None
    url = data.get("url") if isinstance(data, dict) else None
    return url if isinstance(url, str) and url else None


@pytest.fixture
def fault_proxy(
    fault_proxy_server: ToxiproxyClient, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ProxyHandle]]:
    """A factory: ``fault_proxy(upstream, *, name=None, listen="127.0.0.1:0")`` -> a proxy.

    Each proxy is deleted after the test, with its toxics.
    """
    from selfheal.chaos import FaultProxyError

    created: list[ProxyHandle] = []
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60]

    def make(upstream: str, *, name: str | None = None, listen: str = "127.0.0.1:0") -> ProxyHandle:
        proxy = fault_proxy_server.create(
            name or f"{base}-{len(created)}", upstream=upstream, listen=listen
        )
        created.append(proxy)
        return proxy

    yield make
    for proxy in created:
        try:
            proxy.destroy()
        except FaultProxyError as exc:
            if exc.status != 404:  # already deleted by the test itself
                raise


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(client: ToxiproxyClient) -> bool:
    from selfheal.chaos import FaultProxyError

    try:
        client.version()
    except FaultProxyError:
        return False
    return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the server this plugin started (by its own Popen) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
