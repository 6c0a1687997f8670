"""`selfheal chaos proxy` as a real process: serving, SIGTERM, bad input, the dead-man switch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from health_helpers import RedisServer, port_open, redis_server
from proxy_helpers import ProxyProcess, address, connect, poll_until, proxy_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis_upstream() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def test_runs_serves_and_stops_on_sigterm(tmp_path: Path, redis_upstream: RedisServer) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps([{"name": "redis", "upstream": f"127.0.0.1:{redis_upstream.port}"}])
    )
    process = ProxyProcess("--config", str(config))
    process.start()
    try:
        assert "(1 proxies)" in process.banner
        proxy = process.client().get_proxy("redis")
        assert proxy is not None
        assert proxy.enabled is True
        sock = connect(proxy.listen)
        sock.sendall(b"PING\r\n")
        assert sock.recv(100) == b"+PONG\r\n"
    finally:
        assert process.stop() == 0
    assert sock.recv(100) == b""  # its connections were closed
    sock.close()
    assert not port_open(process.api_port)
    assert not port_open(address(proxy.listen)[1])


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "selfheal", "chaos", "proxy", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{not json", "not JSON"),
        ('{"name": "x"}', "expected a JSON list of proxies, got dict"),
        ('[{"name": "x"}]', "missing required field: upstream at proxy 1"),
        ('[{"name": "x", "upstream": "h:1", "enabled": 1}]', "enabled must be true or false"),
    ],
)
def test_a_bad_config_is_one_line_and_exit_2(tmp_path: Path, content: str, error: str) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(content)
    done = run_cli("--listen", "127.0.0.1:0", "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: --config {config}: ")
    assert error in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_off_loopback_without_token_is_refused() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SELFHEAL_PROXY_TOKEN"}
    done = run_cli("--listen", "0.0.0.0:0", env=env)
    assert done.returncode == 2
    assert "not a loopback address, so the API needs a token" in done.stderr
    assert "SELFHEAL_PROXY_TOKEN" in done.stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--listen", "nowhere"], "--listen must be host:port"),
        (["--max-fault-duration", "0"], "--max-fault-duration must be > 0"),
        (["--token-file", "/nonexistent/token"], "--token-file /nonexistent/token: "),
    ],
)
def test_bad_options_are_one_line_errors(args: list[str], error: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 2
    assert error in done.stderr
    assert "Traceback" not in done.stderr


def test_a_taken_api_port_is_reported() -> None:
    with proxy_process() as first:
        done = run_cli("--listen", f"127.0.0.1:{first.api_port}")
    assert done.returncode == 2
    assert f"--listen 127.0.0.1:{first.api_port}: " in done.stderr
    assert "in use" in done.stderr


INJECTOR = textwrap.dedent(
    """
    import sys, time
    from toxiproxy import Toxiproxy
    client = Toxiproxy()
    client.update_api_consumer("127.0.0.1", int(sys.argv[1]))
    client.get_proxy("redis").add_toxic(
        type="timeout", attributes={"timeout": 0, "time_limit": 1500}
    )
    print("added", flush=True)
    time.sleep(120)
    """
)


def test_a_toxic_outlives_its_killed_injector_only_until_its_time_limit(
    redis_upstream: RedisServer,
) -> None:
    with proxy_process() as process:
        client = process.client()
        proxy = client.create(upstream=f"127.0.0.1:{redis_upstream.port}", name="redis")
        injector = subprocess.Popen(
            [sys.executable, "-c", INJECTOR, str(process.api_port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert injector.stdout is not None
            assert injector.stdout.readline() == "added\n"
            added = time.monotonic()
            os.kill(injector.pid, signal.SIGKILL)
            injector.wait(5)
        finally:
            if injector.poll() is None:
                injector.kill()
                injector.wait(5)
            if injector.stdout is not None:
                injector.stdout.close()
        assert list(proxy.toxics()) == ["timeout_downstream"]
        sock = connect(proxy.listen, timeout=0.3)
        sock.sendall(b"PING\r\n")
        with pytest.raises(TimeoutError):
            sock.recv(100)  # the fault is in place, with nobody left to remove it
        poll_until(lambda: not proxy.toxics(), 10)
        assert time.monotonic() - added >= 1.4
        assert sock.recv(100) == b""  # the stalled connection was closed with the toxic
        sock.close()
        again = connect(proxy.listen)
        again.sendall(b"PING\r\n")
        assert again.recv(100) == b"+PONG\r\n"
        again.close()


def test_port_0_is_reported_on_stdout_and_in_the_ready_file(
    tmp_path: Path, redis_upstream: RedisServer
) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps(
            [{"name": "redis", "upstream": f"127.0.0.1:{redis_upstream.port}", "listen": ":0"}]
        )
    )
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "selfheal",
            "chaos",
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--config",
            str(config),
            "--json",
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        line = proc.stdout.readline()  # blocks until it serves (or exits: then "")
        info = json.loads(line)
        assert info["port"] > 0
        assert info["url"] == f"http://127.0.0.1:{info['port']}"
        assert info["host"] == "127.0.0.1"
        assert info["pid"] == proc.pid
        assert json.loads(ready.read_text()) == info
        assert proc.stderr.readline() == f"fault proxy API on {info['url']} (1 proxies)\n"
        with urllib.request.urlopen(f"{info['url']}/version", timeout=5) as answer:
            assert "version" in json.loads(answer.read())
        sock = connect(info["proxies"]["redis"])  # the proxy's own port 0, resolved too
        sock.sendall(b"PING\r\n")
        assert sock.recv(100) == b"+PONG\r\n"
        sock.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert not ready.exists()  # removed at exit: a stale file would point at nothing
