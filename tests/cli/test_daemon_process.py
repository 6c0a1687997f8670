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
    assert [type(c) for c in daemon.runtime.components] == [Journal, Supervisor]
    async with daemon.runtime:
        result = await daemon.reload()
        assert result["recovery_rules"] == 1
        assert result["restart_needed"] == ["control"]
        # After the supervisor, so it stops before it: the programs' exits at shutdown
        # never trigger a recovery.
        assert daemon.runtime.components[-1] is daemon.recovery
        assert daemon.recovery is not None
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
