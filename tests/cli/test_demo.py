"""``selfheal demo``: the shop under selfheal and chaos, told incident by incident.

The stories are checked on events given by hand; the command itself runs for real (the
daemon, the shop's processes, users and chaos) and must leave no process behind, whether it
ends at ``--duration`` or at Ctrl-C.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfheal.cli import main
from selfheal.cli._demo_shop import DemoPorts, find_shop, write_config
from selfheal.cli._demo_story import Fault, Stories
from selfheal.events import Event, EventBus

T0 = 1_000_000.0


def _emit(bus: EventBus, type_: str, at: float, **data: object) -> None:
    bus.publish(Event(type_, "test", "info", T0 + at, data))


def test_a_chaos_kill_is_told_from_the_fault_to_serving_again() -> None:
    bus = EventBus()
    lines: list[str] = []
    stories = Stories(
        bus,
        {"kill-web-0": Fault("web", "web:0", "killed (SIGKILL)", ("shop",))},
        lines.append,
        t0=T0,
        ready_programs=frozenset({"web"}),
    )
    stories.begin(T0)
    _emit(bus, "chaos.kill-web-0.injected", 5.0, limit=2)
    _emit(bus, "process.web.exited", 5.002, instance="web:0", exit_code=-9, signal="SIGKILL")
    _emit(bus, "process.web.started", 5.1, instance="web:0", pid=42)
    assert lines == []  # told once it serves again, not at the restart
    _emit(bus, "process.web.ready", 6.0, instance="web:0")
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith("+  5.0s  chaos: web:0 killed (SIGKILL)")
    assert "found by the supervisor" in line
    assert "in 2 ms" in line
    assert "supervisor restarted web:0" in line
    assert "healed in 100 ms, serving again in 1.00 s" in line
    figures = stories.figures()
    assert figures["opened"] == figures["healed"] == figures["from_chaos"] == 1
    assert figures["ttr"]["p50"] == pytest.approx(0.1)
    assert figures["serving_again"]["p50"] == pytest.approx(1.0)


def test_a_rule_that_heals_a_health_check_is_told_with_the_rule() -> None:
    bus = EventBus()
    lines: list[str] = []
    stories = Stories(
        bus,
        {"hang-recs": Fault("recs", "recs", "hung", ("recommendations",))},
        lines.append,
        t0=T0,
    )
    stories.begin(T0)
    _emit(bus, "chaos.hang-recs.injected", 10.0)
    _emit(bus, "health.recommendations.failed", 12.0, output="timed out after 0.5 s")
    rid = {"recovery_id": "r1", "rule": "restart recs"}
    _emit(bus, "recovery.recommendations.started", 12.01, **rid)
    _emit(bus, "recovery.recommendations.succeeded", 14.0, **rid)
    assert len(lines) == 1
    assert "chaos: recs hung | found by health check 'recommendations' in 2.00 s" in lines[0]
    assert "rule 'restart recs' acted, then verified | healed in 4.00 s" in lines[0]


def test_what_the_supervisor_did_to_the_program_chaos_hit_heals_its_checks_too() -> None:
    bus = EventBus()
    lines: list[str] = []
    stories = Stories(
        bus, {"hang-web-0": Fault("web", "web:0", "hung", ("shop",))}, lines.append, t0=T0
    )
    stories.begin(T0)
    _emit(bus, "chaos.hang-web-0.injected", 1.0)
    _emit(bus, "health.shop.failed", 2.0, output="timed out")
    _emit(bus, "process.web.unhealthy", 2.1, instance="web:0", probe="liveness")
    _emit(bus, "process.web.started", 2.2, instance="web:0", pid=7)
    _emit(bus, "health.shop.recovered", 3.0)
    (shop,) = [line for line in lines if "health check 'shop'" in line]
    assert "done: supervisor restarted web:0 | healed in 2.00 s" in shop


def test_incidents_before_the_shop_serves_are_neither_told_nor_counted() -> None:
    bus = EventBus()
    lines: list[str] = []
    stories = Stories(bus, {}, lines.append, t0=T0)
    _emit(bus, "health.shop.failed", 0.5, output="connection refused")
    _emit(bus, "health.shop.recovered", 2.0)
    stories.begin(T0 + 3)
    _emit(bus, "synthetic.checkout.failed", 4.0, error="HTTP 500")
    _emit(bus, "synthetic.checkout.recovered", 9.0)
    assert len(lines) == 1
    assert "checkout failed: HTTP 500 | found by synthetic transaction 'checkout'" in lines[0]
    assert stories.figures()["opened"] == 1


def test_the_generated_config_passes_check(tmp_path: Path) -> None:
    ports = DemoPorts(8080, 9000, 1234, 9001)
    config = write_config(find_shop(None), ports, tmp_path)
    result = CliRunner().invoke(main, ["check", str(config)])
    assert result.exit_code == 0, result.output
    assert "3 program(s), 2 recovery rule(s)" in result.output
    assert 'SHOP_ADMIN_PORT = "1234%(process_num)d"' in config.read_text()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--shop", "/nonexistent/shop"], {}, "the demo shop is not at /nonexistent/shop"),
        (["--duration", "3"], {}, "--duration"),
        ([], {"SELFHEAL_ENV": "production"}, "never runs there"),
    ],
)
def test_bad_arguments_get_one_clear_line(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = CliRunner().invoke(main, ["demo", "--port", "0", *args], env=env)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_busy_port_is_refused_with_what_to_do() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["demo", "--port", str(port)])
    assert result.exit_code == 2
    assert f"--port {port}: 127.0.0.1:{port} is in use" in result.output
    assert "--port 0" in result.output


# -- the real thing ---------------------------------------------------------------------------


def _marked_processes(marker: str) -> list[int]:
    """Return the pids whose environment carries `marker` (the demo's and its children's)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ:
            found.append(int(entry))
    return found


def _start_demo(*args: str) -> tuple[subprocess.Popen[str], str]:
    marker = f"SELFHEAL_DEMO_TEST={uuid.uuid4().hex}"
    env = {**os.environ, "SELFHEAL_DEMO_TEST": marker.split("=", 1)[1]}
    env.pop("SELFHEAL_ENV", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "selfheal", "demo", "--port", "0", "--rate", "10", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    return proc, marker


def _read_until(proc: subprocess.Popen[str], text: str, limit: float = 120) -> str:
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
        if text in line:
            return seen
    proc.kill()
    raise AssertionError(f"no {text!r} in the demo's output:\n{seen}")


def _assert_nothing_left(proc: subprocess.Popen[str], marker: str) -> None:
    if proc.stdout is not None:
        proc.stdout.close()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    left = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = _marked_processes(marker.split("=", 1)[1])
        if not left:
            break
        time.sleep(0.1)  # a process being reaped still shows for a moment
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], "the demo left processes running"


def test_the_demo_runs_for_its_duration_and_ends_with_the_figures() -> None:
    proc, marker = _start_demo("--duration", "10", "--seed", "3")
    head = _read_until(proc, "Each incident is told here")
    url = re.search(r"dashboard  (http://127\.0\.0\.1:\d+/)", head)
    assert url is not None, head
    with urllib.request.urlopen(url.group(1), timeout=5) as page:  # the dashboard, at /
        assert page.url.endswith("/dashboard/")
        assert page.status == 200
    assert proc.stdout is not None
    rest = proc.stdout.read()
    _assert_nothing_left(proc, marker)
    assert proc.returncode == 0, head + rest
    assert "Demo over after" in rest
    assert "(seed 3" in rest
    match = re.search(r"availability\s+(\d+\.\d+)% of (\d+) user requests", rest)
    assert match is not None, rest
    assert int(match.group(2)) > 50
    assert re.search(r"orders\s+\d+ accepted, 0 lost, 0 recorded twice", rest), rest
    assert "Traceback" not in head + rest


def test_ctrl_c_stops_everything_and_still_reports() -> None:
    proc, marker = _start_demo("--seed", "5")
    _read_until(proc, "Each incident is told here")
    time.sleep(1.5)  # let some user requests through: real traffic, not a timer under test
    os.kill(proc.pid, signal.SIGINT)
    assert proc.stdout is not None
    rest = proc.stdout.read()
    _assert_nothing_left(proc, marker)
    assert proc.returncode == 0, rest
    assert "Demo over after" in rest
    assert "Traceback" not in rest
