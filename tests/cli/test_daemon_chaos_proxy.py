"""``[chaos.proxy]``: the daemon runs the fault proxy, driven by the stock toxiproxy client.

A real ``selfheal run`` daemon, a private redis-server behind the proxy, real toxics: the
proxy is there from the start, latency added through the API is what redis-py sees, and
``selfheal chaos stop`` on the daemon's state dir rolls the toxic back.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis
from click.testing import CliRunner
from toxiproxy import Toxiproxy

from cli_helpers import StartDaemon, cli
from health_helpers import RedisServer, free_port, port_open, redis_server
from selfheal.cli import main
from supervisor_helpers import wait_until


def _config(tmp_path: Path, api: int, listen: int, upstream: int) -> Path:
    config = tmp_path / "selfheal.toml"
    config.write_text(
        f"""
[control]
state_dir = "state"

[chaos.proxy]
listen = "127.0.0.1:{api}"
max_fault_duration = 60

[[chaos.proxy.proxies]]
name = "redis"
listen = "127.0.0.1:{listen}"
upstream = "127.0.0.1:{upstream}"
"""
    )
    return config


def _ping_ms(client: redis.Redis) -> float:
    began = time.perf_counter()
    assert client.ping()
    return (time.perf_counter() - began) * 1000


def test_the_daemon_serves_the_fault_proxy_and_its_kill_switch_rolls_toxics_back(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    with redis_server() as server:
        _drive(tmp_path, start_daemon, server)


def _drive(tmp_path: Path, start_daemon: StartDaemon, redis_server: RedisServer) -> None:
    api, listen = free_port(), free_port()
    config = _config(tmp_path, api, listen, redis_server.port)
    daemon = start_daemon(config)
    assert wait_until(lambda: port_open(api) and port_open(listen), 20)
    client = redis.Redis(host="127.0.0.1", port=listen, socket_timeout=5)
    assert _ping_ms(client) < 100  # through the proxy, no toxic yet

    toxiproxy = Toxiproxy()
    toxiproxy.update_api_consumer("127.0.0.1", api)
    proxy = toxiproxy.get_proxy("redis")
    assert proxy is not None
    proxy.add_toxic(type="latency", attributes={"latency": 300})
    assert _ping_ms(client) >= 300

    code, out = cli("chaos", "stop", "-c", str(config))
    assert code == 0, out
    # The switch file is looked at every second (the proxy's poll interval).
    assert wait_until(lambda: not toxiproxy.get_proxy("redis").toxics(), 10)
    assert _ping_ms(client) < 100
    assert daemon.poll() is None
    client.close()


def test_a_fault_proxy_off_loopback_is_refused_by_check(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text('[chaos.proxy]\nlisten = "0.0.0.0:8474"\n')
    result = CliRunner().invoke(main, ["check", str(config)])
    assert result.exit_code == 2
    assert "chaos.proxy.listen" in result.output
    assert "not a loopback address" in result.output
