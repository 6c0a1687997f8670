"""`selfheal.web.client.ControlClient`: the control API from a script, as the CLI uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import StartDaemon
from selfheal.errors import ControlError
from selfheal.web.client import ControlClient
from supervisor_helpers import PY, alive

SLEEPER = f"[{json.dumps(PY)}, '-c', 'import time; time.sleep(60)']"
CONFIG = f"""
[control]
state_dir = "state"

[programs.web]
command = {SLEEPER}

[programs.worker]
command = {SLEEPER}
numprocs = 2
"""


def test_a_script_finds_the_daemon_and_controls_it(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(CONFIG)
    start_daemon(config)
    daemon = ControlClient.connect(config=config)
    assert daemon.alive()
    names = sorted(p["name"] for p in daemon.status())
    assert names == ["web", "worker:0", "worker:1"]
    old = daemon.status("web")[0]["pid"]

    answer = daemon.restart("web")  # returns once it runs again
    (web,) = daemon.status("web")
    assert web["state"] == "RUNNING"
    assert web["pid"] != old
    assert not alive(old)
    assert "web" in json.dumps(answer)

    daemon.stop("worker:*")
    assert {p["state"] for p in daemon.status("worker")} == {"STOPPED"}
    daemon.start("worker:1")
    states = {p["name"]: p["state"] for p in daemon.status("worker")}
    assert states == {"worker:0": "STOPPED", "worker:1": "RUNNING"}


def test_its_failures_are_control_errors_that_say_why(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    with pytest.raises(ControlError, match="no daemon is running with state dir") as none:
        ControlClient.connect(state_dir=tmp_path / "nowhere")
    assert none.value.status is None
    config = tmp_path / "selfheal.toml"
    config.write_text(CONFIG)
    start_daemon(config)
    daemon = ControlClient.connect(state_dir=tmp_path / "state")
    with pytest.raises(ControlError, match="nope") as unknown:
        daemon.stop("nope")
    assert unknown.value.status == 404
    with pytest.raises(ValueError, match="name the processes"):
        daemon.stop()  # never "everything" by accident
