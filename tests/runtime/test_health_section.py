"""The ``[health]`` section: validated with key and line, compiled into the plan, built into a
monitor without pydantic."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from selfheal.config import parse_config
from selfheal.errors import ConfigError
from selfheal.health import CheckKind, HealthStatus
from selfheal.runtime import DaemonPlan, compile_plan, health_monitor_from_plan
from selfheal.testing import FakeClock

GOOD = """
[control]
state_dir = "state"

[programs.web]
command = ["python3", "-m", "http.server"]

[health]
drain_seconds = 3
show_details = "never"

[health.checks.db]
postgres = "postgresql://app:hunter2@127.0.0.1/app"
interval = 5
timeout = 2
failure_threshold = 2
critical = false

[health.checks.web-http]
http = "http://127.0.0.1:8000/healthz"
expect_status = [200]
body_contains = "ok"
kind = "liveness"

[health.checks.files]
sqlite = "data/app.db"

[health.checks.disk]
disk = "data"
min_free_ratio = 0.1

[health.checks.migrations]
command = ["python3", "manage.py", "check"]

[health.checks.port]
tcp = "[::1]:8000"

[health.checks.cache]
redis = "redis://127.0.0.1:6379/0"

[health.checks.mem]
memory = true
max_percent = 95

[health.checks.worker]
process = "run/worker.pid"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "selfheal.toml"
    path.write_text(GOOD)
    return path


def test_checks_compile_into_plain_data_with_paths_resolved(config: Path) -> None:
    plan = compile_plan(config)
    base = str(config.parent.resolve())
    health = plan.extra["health"]
    assert (health["drain_seconds"], health["show_details"]) == (3.0, "never")
    checks = {c["name"]: c for c in health["checks"]}
    assert list(checks) == [
        "db",
        "web-http",
        "files",
        "disk",
        "migrations",
        "port",
        "cache",
        "mem",
        "worker",
    ]
    assert checks["db"]["kind"] == "postgres"
    assert checks["db"]["options"]["failure_threshold"] == 2
    assert checks["web-http"]["args"] == {
        "url": "http://127.0.0.1:8000/healthz",
        "expect_status": [200],
        "body_contains": "ok",
    }
    assert checks["files"]["args"] == {"path": f"{base}/data/app.db"}
    assert checks["disk"]["args"] == {"path": f"{base}/data", "min_free_ratio": 0.1}
    assert checks["migrations"]["args"] == {
        "argv": ["python3", "manage.py", "check"],
        "cwd": base,
    }
    assert checks["port"]["args"] == {"host": "::1", "port": 8000}
    assert checks["worker"]["args"] == {"pidfile": f"{base}/run/worker.pid"}
    assert DaemonPlan.from_json(plan.to_json()) == plan


def test_the_plan_builds_a_monitor_with_the_monitors_options(config: Path) -> None:
    plan = compile_plan(config)
    monitor = health_monitor_from_plan(plan.extra["health"], clock=FakeClock())
    assert monitor.names() == [c["name"] for c in plan.extra["health"]["checks"]]
    db = monitor.options("db")
    assert (db.interval, db.timeout, db.failure_threshold, db.critical) == (5, 2, 2, False)
    assert monitor.options("web-http").kind is CheckKind.LIVENESS
    assert monitor.options("port").timeout == 5.0  # min(5, interval 10)


@pytest.mark.anyio
async def test_a_built_check_checks_the_real_thing(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    path = tmp_path / "selfheal.toml"
    path.write_text(
        f'[health.checks.up]\ntcp = "127.0.0.1:{port}"\n'
        '[health.checks.ok]\ncommand = ["true"]\n[health.checks.no]\ncommand = ["false"]\n'
    )
    monitor = health_monitor_from_plan(compile_plan(path).extra["health"])
    assert await monitor.check_now("up") == HealthStatus.PASS
    assert await monitor.check_now("ok") == HealthStatus.PASS
    assert await monitor.check_now("no") == HealthStatus.FAIL
    server.close()
    await server.wait_closed()
    assert await monitor.check_now("up") == HealthStatus.FAIL


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[health.checks.a]\ntcp = "x:1"\nredis = "redis://x"\n',
            "line 1: health.checks.a: a check has exactly one of http, tcp, redis, postgres, "
            "sqlite, command, disk, memory, process; got tcp, redis",
        ),
        ("[health.checks.a]\ninterval = 5\n", "got none"),
        (
            '[health.checks.a]\ntcp = "x:1"\nbody_contains = "ok"\n',
            "line 1: health.checks.a: body_contains only goes with http",
        ),
        (
            '[health.checks.a]\ntcp = "nohost"\n',
            "line 1: health.checks.a: tcp: must be 'host:port'",
        ),
        (
            '[health.checks.a]\ndisk = "/"\nmin_free_ratio = 1.5\n',
            "line 3: health.checks.a.min_free_ratio: Input should be less than 1",
        ),
        (
            '[health.checks.a]\ntcp = "x:1"\nkind = "sometimes"\n',
            "line 3: health.checks.a.kind: Input should be 'readiness', 'liveness' or 'startup'",
        ),
        (
            '[health.checks.a]\ntcp = "x:1"\ninterval = 10\nmax_age = 3\n',
            "line 1: health.checks.a: max_age must be at least interval * (1 + jitter) + "
            "timeout (16 s)",
        ),
        (
            '[health.checks.a]\nhttp = "http://x/"\nbody_matches = "(("\n',
            "line 1: health.checks.a: http: missing ), unterminated subpattern",
        ),
        (
            "[health.checks.a]\ncommand = []\n",
            "line 1: health.checks.a: command: command_check: argv must name a program",
        ),
        (
            '[health.checks.a]\ntcp = "x:1"\nintervl = 3\n',
            "line 3: health.checks.a.intervl: unknown",
        ),
        ("[health]\ndrain_seconds = -1\n", "line 2: health.drain_seconds: Input should be greater"),
        (
            '[health.checks."a b"]\ntcp = "x:1"\n',
            "line 1: health.checks.a b: a check name is 1-63 letters",
        ),
        (
            '[programs.web]\ncommand = ["x"]\n[health.checks.web]\ntcp = "x:1"\n',
            "line 3: health.checks.web: 'web' is also a program",
        ),
    ],
)
def test_errors_name_the_key_and_line(toml: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(toml)
    assert expected in str(info.value)


def test_secrets_in_checks_are_not_shown_in_errors() -> None:
    toml = (
        '[health.checks.a]\nhttp = "http://x/"\nheaders = { Authorization = 5 }\n'
        '[health.checks.b]\npostgres = "postgresql://u:hunter2@h/db"\nbody_contains = "x"\n'
    )
    with pytest.raises(ConfigError) as info:
        parse_config(toml)
    assert "hunter2" not in str(info.value)
    assert "body_contains only goes with http" in str(info.value)


def test_the_daemon_builds_checks_without_pydantic(config: Path) -> None:
    code = (
        "import sys\n"
        "from selfheal.runtime import DaemonPlan, health_monitor_from_plan\n"
        f"plan = DaemonPlan.from_json(open({str(config) + '.json'!r}).read())\n"
        "monitor = health_monitor_from_plan(plan.extra['health'])\n"
        "print(len(monitor.names()), 'pydantic' in sys.modules)\n"
    )
    Path(str(config) + ".json").write_text(compile_plan(config).to_json())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["9", "False"]
