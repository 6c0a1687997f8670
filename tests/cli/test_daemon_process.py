"""The daemon `selfheal run` execs: lean (no click, rich or pydantic), its compile mode, and
its wiring (journal, supervisor, recovery, control API) with reloads, in-process."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from selfheal.cli.daemon import EXIT_CONFIG, Daemon
from selfheal.errors import ReloadError, StartError
from selfheal.health import HealthMonitor
from selfheal.recovery import RecoveryManager
from selfheal.runtime import DaemonPlan, compile_plan
from selfheal.store import Journal
from selfheal.supervisor import Supervisor

CONFIG = """
[control]
enabled = false
state_dir = "state"
"""

RULE = """
[[recovery]]
on = "process.*.exited"
action = { restart = "{subject}" }
"""


def test_the_daemons_process_loads_no_cli_or_validation_library() -> None:
    code = (
        "import sys, selfheal.cli.daemon\n"
        "heavy = {'click', 'rich', 'pydantic'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_compile_prints_the_plan_or_the_problems(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(CONFIG)
    done = subprocess.run(
        [sys.executable, "-m", "selfheal.cli.daemon", "compile", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert DaemonPlan.from_json(done.stdout) == compile_plan(config)
    config.write_text(CONFIG + "\n[programs.web]\nrestart = 'never'\n")
    done = subprocess.run(
        [sys.executable, "-m", "selfheal.cli.daemon", "compile", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == EXIT_CONFIG
    assert "line 6: programs.web.command: required key is missing" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.anyio
async def test_reload_swaps_recovery_rules_and_names_what_needs_a_restart(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(CONFIG)
    plan = compile_plan(config)
    config.write_text(CONFIG.replace("enabled = false", "enabled = false\nport = 9") + RULE)
    new_plan = compile_plan(config)

    async def recompile(path: str) -> DaemonPlan:
        assert path == plan.config_path
        return new_plan

    daemon = Daemon(plan, recompile=recompile)
    assert daemon.recovery is None
    components = [type(c) for c in daemon.runtime.components]
    assert components == [Journal, HealthMonitor, Supervisor, RecoveryManager]
    async with daemon.runtime:
        result = await daemon.reload()
        assert result["recovery_rules"] == 1
        assert result["restart_needed"] == ["control"]
        # Right after the supervisor, so it stops before it: the programs' exits at shutdown
        # never trigger a recovery.
        assert daemon.recovery is not None
        at = daemon.runtime.components.index(daemon.supervisor)
        assert daemon.runtime.components[at + 1] is daemon.recovery
        assert daemon.plan is new_plan


@pytest.mark.anyio
async def test_a_refused_reload_changes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(CONFIG + RULE)
    plan = compile_plan(config)

    async def recompile(path: str) -> DaemonPlan:
        raise ReloadError("line 3: programs.web.command: required key is missing")

    daemon = Daemon(plan, recompile=recompile)
    engine = daemon.recovery
    async with daemon.runtime:
        with pytest.raises(ReloadError, match="required key"):
            await daemon.reload()
    assert daemon.recovery is engine
    assert daemon.plan is plan


def test_a_journal_that_cannot_be_opened_is_a_start_error(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(CONFIG)
    plan = compile_plan(config)
    journal = dict(plan.extra["journal"], path=str(tmp_path))  # a directory
    bad = dataclasses.replace(plan, extra={**plan.extra, "journal": journal})
    with pytest.raises(StartError, match=r"cannot open the journal .*enabled = false"):
        Daemon(bad)


def test_a_daemon_with_rules_and_checks_builds_them_without_pydantic(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(
        CONFIG
        + RULE
        + 'escalate = [{ call = "os:getpid" }, { webhook = "http://127.0.0.1:9/h" }]\n'
        + "flap = { window = 60, high = 4, low = 1 }\n"
        + "[recovery_engine]\nrate_limit = { per_minute = 6, burst = 2 }\n"
        + '[health.checks.up]\ncommand = ["true"]\n'
    )
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(compile_plan(config).to_json())
    code = (
        "import sys\n"
        "from selfheal.cli.daemon import Daemon\n"
        "from selfheal.runtime import DaemonPlan\n"
        f"daemon = Daemon(DaemonPlan.from_json(open({str(plan_file)!r}).read()))\n"
        "rule, = daemon.recovery.rules\n"
        "print(rule.on, [a.kind for a in rule.escalate], rule.flap.high, rule.cooldown,\n"
        "      daemon.recovery.governor.snapshot('x') is not None,\n"
        "      daemon.app.health_monitor.names(), 'pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "process.*.exited",
        "['call',",
        "'webhook']",
        "4",
        "60.0",
        "True",
        "['up']",
        "False",
    ]


@pytest.mark.anyio
async def test_reload_replaces_health_checks_and_the_drain(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(CONFIG + '[health.checks.a]\ncommand = ["true"]\n')
    plan = compile_plan(config)
    config.write_text(
        CONFIG
        + '[health]\ndrain_seconds = 2\nshow_details = "never"\n'
        + '[health.checks.b]\ncommand = ["true"]\n[health.checks.c]\ncommand = ["false"]\n'
    )
    new_plan = compile_plan(config)

    async def recompile(path: str) -> DaemonPlan:
        return new_plan

    daemon = Daemon(plan, recompile=recompile)
    monitor = daemon.app.health_monitor
    assert monitor.names() == ["a"]
    async with daemon.runtime:
        result = await daemon.reload()
        assert result["health_checks"] == 2
        assert result["restart_needed"] == ["health.show_details"]
        assert monitor.names() == ["b", "c"]
        assert daemon.app.drain_seconds == 2.0
        assert await monitor.check_now("c") == "fail"
