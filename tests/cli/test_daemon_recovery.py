"""The whole daemon: a program killed, restarted by a recovery rule, verified, journaled.

`selfheal run` supervises a real HTTP server that the supervisor itself never restarts
(``restart = "never"``), so only the ``[[recovery]]`` rule can bring it back; the rule verifies
through the program's readiness probe, and the journal records the incident and its recovery,
read back through the CLI like a person would.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import StartDaemon, cli
from health_helpers import free_port
from supervisor_helpers import PY, alive, wait_until

CONFIG = """
[control]
state_dir = "state"

[programs.web]
command = [{py}, "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
restart = "never"
readiness = {{ tcp = "127.0.0.1:{port}", interval = 0.05 }}

[[recovery]]
name = "web died"
on = "process.web.exited"
when = {{ "data.expected" = {{ ne = true }} }}
steps = [{{ restart = "{{subject}}" }}]
verify = {{ checks = ["web"], within = 15, interval = 0.1 }}
cooldown = 0.1
"""


def web_process(config: Path) -> dict[str, Any] | None:
    code, out = cli("status", "--json", "-c", str(config))
    if code != 0:
        return None
    return next(p for p in json.loads(out)["processes"] if p["name"] == "web")


@pytest.fixture
def daemon(tmp_path: Path, start_daemon: StartDaemon) -> Path:
    config = tmp_path / "selfheal.toml"
    config.write_text(CONFIG.format(py=json.dumps(PY), port=free_port()))
    start_daemon(config)
    return config


def test_killed_program_is_restarted_by_a_rule_verified_and_journaled(daemon: Path) -> None:
    config = daemon
    assert wait_until(lambda: (web_process(config) or {}).get("state") == "RUNNING", 20)
    first = web_process(config)
    assert first is not None
    old_pid = first["pid"]

    os.kill(old_pid, signal.SIGKILL)

    def restarted() -> bool:
        now = web_process(config) or {}
        return now.get("state") == "RUNNING" and now.get("pid") not in (None, old_pid)

    assert wait_until(restarted, 20)
    assert not alive(old_pid)

    def journaled() -> dict[str, Any] | None:
        code, out = cli("incidents", "--json", "--config", str(config))
        if code != 0:
            return None
        closed = [i for i in json.loads(out)["incidents"] if not i["open"]]
        return closed[0] if closed else None

    assert wait_until(lambda: journaled() is not None, 20)
    incident = journaled()
    assert incident is not None
    assert incident["subject"] == "web"
    assert incident["opened_by"] == "process.web.exited"
    # Closed by the verified recovery, not merely by the restart's `started` event.
    assert incident["closed_by"] == "recovery.web.succeeded"
    assert incident["ttr"] is not None
    assert incident["ttr"] > 0

    code, out = cli("events", "--json", "--config", str(config), "--type", "recovery.*")
    assert code == 0, out
    types = [json.loads(line)["type"] for line in out.splitlines()]
    assert types == ["recovery.web.started", "recovery.web.succeeded"]
