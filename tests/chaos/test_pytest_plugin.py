"""The pytest plugin, run by pytest's own ``pytester`` as users' suites would run it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from health_helpers import redis_server
from selfheal.chaos._toxi_client import FaultProxyError, ToxiproxyClient
from toxiapi_stub import serve

pytest_plugins = ("pytester",)

SRC = Path(__file__).resolve().parents[2] / "src"
STUB = Path(__file__).resolve().parents[1] / "toxiapi_stub.py"
PLUGIN = "selfheal.testing.pytest_plugin"

USER_TESTS = """
import pytest
from selfheal.chaos import FaultPoint, InjectedFaultError, inject

@FaultPoint("svc.call")
def call():
    return "ok"

def test_faults_fire(fault_injector, fake_clock):
    fault_injector.error("svc.call")
    with pytest.raises(InjectedFaultError):
        call()
    fault_injector.latency("svc.slow", 3.0)
    inject("svc.slow")
    assert fake_clock.monotonic() == 3.0

def test_faults_of_the_previous_test_are_gone():
    assert call() == "ok"
    inject("svc.slow")

def test_clock_is_fresh(fake_clock):
    assert fake_clock.monotonic() == 0.0
"""


@pytest.fixture
def by_name(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Arguments loading the plugin by module name, with entry points off.

    Once selfheal is installed with its entry point, pytest registers the plugin as
    ``selfheal`` by itself; loading the same module again under its module name would be
    refused, so these runs switch entry points off, and run in a process of their own: in
    this one the plugin is already imported (autoloaded), so it could not be rewritten again.
    """
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return ["-p", PLUGIN]


@pytest.fixture
def stub() -> Iterator[str]:
    server = serve()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def stub_log(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/_log", timeout=5) as resp:
        log: list[dict[str, Any]] = json.loads(resp.read())
    return log


def with_entry_point(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put a distribution on the path declaring the entry point as pyproject.toml does."""
    site = pytester.mkdir("site")
    info = site / "selfheal_probe-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: selfheal-probe\nVersion: 0\n")
    (info / "entry_points.txt").write_text(f"[pytest11]\nselfheal = {PLUGIN}\n")
    monkeypatch.setenv("PYTHONPATH", f"{site}:{SRC}")


def test_fixtures_with_the_plugin_loaded_by_name(
    pytester: pytest.Pytester, by_name: list[str]
) -> None:
    pytester.makepyfile(USER_TESTS)
    result = pytester.runpytest_subprocess(*by_name, "-W", "error")
    result.assert_outcomes(passed=3)


def test_the_entry_point_loads_it_under_warnings_as_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_entry_point(pytester, monkeypatch)
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=3)
    result.stdout.no_fnmatch_line("*Warning*")


def test_with_autoload_off_dash_p_selfheal_loads_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_entry_point(pytester, monkeypatch)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "selfheal", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_pyproject_declares_the_entry_point() -> None:
    import tomllib

    pyproject = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["pytest11"] == {"selfheal": PLUGIN}


def test_importing_the_plugin_costs_only_the_standard_library() -> None:
    code = (
        "import sys, pytest\n"
        "before = set(sys.modules)\n"
        f"import {PLUGIN}\n"
        "new = set(sys.modules) - before\n"
        "ours = sorted(m for m in new if m.startswith('selfheal'))\n"
        "heavy = ('selfheal.supervisor', 'selfheal.health', 'selfheal.policies', 'selfheal.web')\n"
        "assert not [m for m in ours if m.startswith(heavy)], ours\n"
        "other = {m.split('.')[0] for m in new} - set(sys.stdlib_module_names) - {'selfheal'}\n"
        "assert not other, other\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC)})


def test_fault_proxy_on_a_given_api(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, stub: str, by_name: list[str]
) -> None:
    monkeypatch.setenv("SELFHEAL_FAULT_PROXY_URL", stub)
    pytester.makepyfile(
        """
        def test_proxy(fault_proxy, fault_proxy_server):
            proxy = fault_proxy("127.0.0.1:6379")
            assert proxy.host == "127.0.0.1" and proxy.port > 0
            proxy.add_toxic("latency", latency=100, jitter=5)
            proxy.add_toxic("reset_peer", stream="upstream", toxicity=0.5, timeout=0)
            assert [t["name"] for t in proxy.toxics()] == ["latency_downstream",
                                                           "reset_peer_upstream"]
            proxy.remove_toxic("latency_downstream")
            proxy.disable()
            assert not fault_proxy_server.proxies()[proxy.name].enabled
            proxy.enable()
            named = fault_proxy("127.0.0.1:5432", name="pg", listen="127.0.0.1:25432")
            assert named.listen == "127.0.0.1:25432"
            named.destroy()  # gone already: the fixture's cleanup must not mind
        """
    )
    result = pytester.runpytest_subprocess(*by_name, "-W", "error")
    result.assert_outcomes(passed=1)
    calls = [(c["method"], c["path"]) for c in stub_log(stub)]
    assert calls[0] == ("POST", "/proxies")
    assert ("POST", "/proxies/test_proxy-0/toxics") in calls
    assert ("DELETE", "/proxies/test_proxy-0/toxics/latency_downstream") in calls
    assert calls[-2:] == [("DELETE", "/proxies/test_proxy-0"), ("DELETE", "/proxies/pg")]
    assert ToxiproxyClient(stub).proxies() == {}  # cleaned up after the test


def test_fault_proxy_starts_the_configured_server_for_the_session(
    pytester: pytest.Pytester, by_name: list[str]
) -> None:
    pytester.makeini(f"[pytest]\nselfheal_fault_proxy_command = {{python}} {STUB} {{port}}\n")
    pytester.makepyfile(
        """
        def test_one(fault_proxy, fault_proxy_server):
            fault_proxy("127.0.0.1:1")
            assert list(fault_proxy_server.proxies()) == ["test_one-0"]

        def test_two(fault_proxy, fault_proxy_server):
            assert fault_proxy_server.proxies() == {}  # test_one's proxy was deleted
            assert fault_proxy_server.version() == "2.5.0-stub"
        """
    )
    result = pytester.runpytest_subprocess(*by_name, "-W", "error")
    result.assert_outcomes(passed=2)


def test_a_server_that_does_not_start_fails_with_its_output(
    pytester: pytest.Pytester, by_name: list[str]
) -> None:
    crash = "import sys; print('boom: no such option', file=sys.stderr); sys.exit(3)"
    pytester.makeini(f'[pytest]\nselfheal_fault_proxy_command = {{python}} -c "{crash}"\n')
    pytester.makepyfile("def test_x(fault_proxy):\n    pass\n")
    result = pytester.runpytest_subprocess(*by_name)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*did not answer*exit code 3*", "*boom: no such option*"])


def test_client_speaks_like_toxiproxy_python(stub: str) -> None:
    import toxiproxy  # the reference client (dev extra)

    host, port = stub.removeprefix("http://").split(":")
    reference = toxiproxy.Toxiproxy()
    reference.update_api_consumer(host, int(port))
    theirs = reference.create(upstream="127.0.0.1:6379", name="ref")
    theirs.add_toxic(type="latency", attributes={"latency": 100})
    theirs.disable()
    theirs.destroy()
    ours = ToxiproxyClient(stub).create("ref", upstream="127.0.0.1:6379")
    ours.add_toxic("latency", latency=100)
    ours.disable()
    ours.destroy()
    log = [(c["method"], c["path"], c["body"]) for c in stub_log(stub)]
    mutations = [entry for entry in log if entry[0] != "GET"]
    half = len(mutations) // 2
    theirs_sent, ours_sent = mutations[:half], mutations[half:]
    # Same requests; ours also says enabled=true on create, which is the API's default.
    assert ours_sent[0][2] == {**theirs_sent[0][2], "enabled": True}
    assert ours_sent[1:] == theirs_sent[1:]


def test_client_errors_name_the_request() -> None:
    with pytest.raises(FaultProxyError, match=r"GET http://127\.0\.0\.1:9/version") as info:
        ToxiproxyClient("http://127.0.0.1:9", timeout=1).version()
    assert info.value.status == 0


REDIS_TESTS = """
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

UPSTREAM = "127.0.0.1:{port}"


def client(proxy):
    # No retries: a fault must surface at once, not after redis-py's reconnects.
    return redis.Redis(host=proxy.host, port=proxy.port, retry=Retry(NoBackoff(), 0),
                       socket_timeout=5)


def timed_ping(r):
    start = time.perf_counter()
    assert r.ping() is True
    return time.perf_counter() - start


def test_latency_is_seen_by_a_redis_client(fault_proxy):
    proxy = fault_proxy(UPSTREAM)
    r = client(proxy)
    r.set("k", "v")
    assert timed_ping(r) < 0.3
    proxy.add_toxic("latency", latency=300)
    assert timed_ping(r) >= 0.3
    assert r.get("k") == b"v"
    proxy.remove_toxic("latency_downstream")
    assert timed_ping(r) < 0.3
    r.close()


def test_reset_peer_breaks_the_redis_connection(fault_proxy):
    proxy = fault_proxy(UPSTREAM)
    r = client(proxy)
    assert r.ping() is True
    proxy.add_toxic("reset_peer", stream="upstream", timeout=0)
    with pytest.raises(redis.ConnectionError):
        r.ping()
    proxy.remove_toxic("reset_peer_upstream")
    assert client(proxy).ping() is True  # a new connection passes again


def test_the_proxies_of_the_previous_tests_are_gone(fault_proxy_server):
    assert fault_proxy_server.proxies() == {}
"""


def test_fault_proxy_with_the_real_proxy_in_front_of_a_real_redis(
    pytester: pytest.Pytester, by_name: list[str]
) -> None:
    # The default command: `python -m selfheal chaos proxy` on a port it picks, found
    # through its ready file; redis is a private redis-server.
    with redis_server() as redis:
        pytester.makepyfile(REDIS_TESTS.replace("{port}", str(redis.port)))
        result = pytester.runpytest_subprocess(*by_name, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
