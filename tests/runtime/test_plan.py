"""The daemon plan: a config file compiled into plain data, paths resolved, and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfheal.errors import ConfigError
from selfheal.runtime import DaemonPlan, compile_plan

CONFIG = """
[control]
state_dir = "run/state"
port = 8123

[programs.web]
command = ["python", "-m", "http.server"]

[programs.worker]
command = ["python", "worker.py"]
cwd = "/srv/worker"
depends_on = ["web"]

[[recovery]]
on = "process.*.exited"
action = { restart = "{subject}" }
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "conf" / "selfheal.toml"
    path.parent.mkdir()
    path.write_text(CONFIG)
    return path


def test_relative_paths_are_resolved_against_the_config_file(config: Path) -> None:
    plan = compile_plan(config)
    base = config.parent.resolve()
    assert plan.config_path == str(base / "selfheal.toml")
    assert plan.state_dir == str(base / "run/state")
    assert plan.log_dir == str(base / "run/state/logs")
    web, worker = plan.programs
    assert (web.name, web.cwd) == ("web", str(base))  # no cwd: the config's directory
    assert (worker.cwd, worker.depends_on) == ("/srv/worker", ("web",))
    assert plan.control["port"] == 8123
    assert plan.extra["journal"]["path"] == str(base / "run/state/journal.db")
    # Validated and complete, defaults filled: the daemon builds rules without pydantic.
    (rule,) = plan.extra["recovery"]
    assert (rule["on"], rule["action"]["restart"], rule["cooldown"]) == (
        "process.*.exited",
        "{subject}",
        60.0,
    )
    assert plan.extra["recovery_engine"] == {
        "dry_run": False,
        "rate_limit": {"per_minute": 60.0, "burst": 20},
    }


def test_the_plan_reads_back_what_it_wrote(config: Path) -> None:
    plan = compile_plan(config)
    assert DaemonPlan.from_json(plan.to_json()) == plan


def test_a_bad_config_names_the_key_and_its_line(tmp_path: Path) -> None:
    path = tmp_path / "selfheal.toml"
    path.write_text('[programs.web]\ncommand = ["x"]\ndepends_on = ["ghost"]\n')
    with pytest.raises(ConfigError) as info:
        compile_plan(path)
    (issue,) = info.value.issues
    assert issue.key.startswith("programs.web")
    assert issue.line is not None
    assert "ghost" in issue.message
