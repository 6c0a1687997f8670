"""Experiments against real processes, run by the real CLI (``selfheal chaos run``).

The daemon (``selfheal run``) supervises two HTTP servers: ``web`` is restarted when it dies,
``static`` is not. Killing ``web`` holds because the supervisor brings it back within the
recovery window; killing ``static`` deviates, and its rollback starts it again. A run sent
SIGTERM (or SIGINT) in the middle of its method still rolls back, and exits 2.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from selfheal.cli import main
from supervisor_helpers import PY, alive, running_daemon, wait_until

pytestmark = pytest.mark.slow

CONFIG = """
[control]
state_dir = "state"

[programs.web]
# It listens 1 s after it starts: the first restart after a good run is immediate, so without
# this pause a fast machine can have it back before a check during the method looks.
command = [{py}, "-c", "{slow_web}"]
readiness = {{ tcp = "127.0.0.1:{web}", interval = 0.05 }}

[programs.static]
command = [{py}, "-m", "http.server", "{static}", "--bind", "127.0.0.1"]
readiness = {{ tcp = "127.0.0.1:{static}", interval = 0.05 }}
restart = "never"
"""

EXPERIMENT = """
title = "{program} answers after being killed"
name = "kill-{program}"

[configuration]
url = "http://127.0.0.1:{port}/"

[steady_state]
title = "{program} answers"
[[steady_state.probes]]
name = "{program} answers"
provider = {{ type = "http", url = "${{url}}", timeout = 1 }}
tolerance = 200

[[method]]
name = "kill {program}"
provider = {{ type = "process", path = "kill", arguments = ["-KILL", "${{pid}}"] }}
pauses = {{ after = 0.5 }}

[[rollbacks]]
name = "start {program} again"
[rollbacks.provider]
type = "process"
path = {py}
arguments = ["-m", "selfheal", "start", "{program}", "-c", {config}]

[during]
interval = 0.05

[recovery]
within = {within}
interval = 0.1
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def program(config: Path, name: str) -> dict[str, Any] | None:
    result = CliRunner().invoke(main, ["status", "--json", "-c", str(config)])
    if result.exit_code != 0:
        return None
    return next(p for p in json.loads(result.output)["processes"] if p["name"] == name)


def running_pid(config: Path, name: str) -> int:
    assert wait_until(lambda: (program(config, name) or {}).get("state") == "RUNNING", 20)
    info = program(config, name)
    assert info is not None
    return int(info["pid"])


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    ports = {"web": free_port(), "static": free_port()}
    config = tmp_path / "selfheal.toml"
    slow_web = (
        "import runpy, sys, time; time.sleep(1.0); "
        f"sys.argv = ['http.server', '{ports['web']}', '--bind', '127.0.0.1']; "
        "runpy.run_module('http.server', run_name='__main__')"
    )
    config.write_text(CONFIG.format(py=json.dumps(PY), slow_web=slow_web, **ports))
    with running_daemon(config):
        yield config, ports


def chaos_run(experiment: Path, *args: str, timeout: float = 60) -> tuple[int, dict[str, Any]]:
    journal = experiment.with_suffix(".journal.json")
    proc = subprocess.run(
        [PY, "-m", "selfheal", "chaos", "run", str(experiment), "--journal", str(journal), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(journal.read_text())


def write_experiment(tmp_path: Path, config: Path, name: str, port: int, within: float) -> Path:
    path = tmp_path / f"kill-{name}.toml"
    path.write_text(
        EXPERIMENT.format(
            program=name,
            port=port,
            within=within,
            py=json.dumps(PY),
            config=json.dumps(str(config)),
        )
    )
    return path


def test_killing_a_supervised_program_holds_because_it_comes_back_in_time(
    daemon: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    config, ports = daemon
    old = running_pid(config, "web")
    experiment = write_experiment(tmp_path, config, "web", ports["web"], within=15)

    code, record = chaos_run(experiment, "--var", f"pid={old}")

    assert code == 0, record["reason"]
    assert record["outcome"] == "held"
    assert record["method"][0]["output"]["status"] == 0  # kill succeeded
    assert not alive(old)
    assert running_pid(config, "web") != old  # the supervisor restarted it
    # The outage was seen while the method paused, and the steady state came back.
    assert record["time_to_detect"] is not None
    assert record["time_to_recover"] is not None
    assert record["time_to_recover"] > 0
    assert [e["type"] for e in record["events"]] == [
        "chaos.kill-web.started",
        "chaos.kill-web.held",
        "chaos.kill-web.rolled_back",
    ]


def test_killing_an_unsupervised_program_deviates_and_the_rollback_restarts_it(
    daemon: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    config, ports = daemon
    old = running_pid(config, "static")
    experiment = write_experiment(tmp_path, config, "static", ports["static"], within=1)

    code, record = chaos_run(experiment, "--var", f"pid={old}", "--json")

    assert code == 1
    assert record["outcome"] == "deviated"
    assert record["reason"] == "steady state not back within 1s"
    assert record["time_to_detect"] is not None
    assert record["time_to_recover"] is None
    assert record["rollbacks"][0]["output"]["status"] == 0
    # The rollback (`selfheal start static`) brought it back: checked after the rollbacks.
    assert record["steady_states"]["after_rollback"]["met"] is True
    assert running_pid(config, "static") != old


INTERRUPTED = """
title = "a fault interrupted"
name = "interrupted"

[configuration]
dir = {dir}

[steady_state]
[[steady_state.probes]]
name = "no fault"
provider = {{ type = "process", path = "test", arguments = ["!", "-e", "${{dir}}/fault"] }}
tolerance = 0

[[method]]
name = "inject"
provider = {{ type = "process", path = "touch", arguments = ["${{dir}}/fault"] }}

[[method]]
name = "hold the fault"
provider = {{ type = "process", path = {py}, arguments = ["-c", "{hold}"] }}

[[method]]
name = "never reached"
provider = {{ type = "process", path = "touch", arguments = ["${{dir}}/too-far"] }}

[[rollbacks]]
name = "rollback started"
provider = {{ type = "process", path = "touch", arguments = ["${{dir}}/rollback-started"] }}

[[rollbacks]]
name = "slow cleanup"
provider = {{ type = "process", path = "sleep", arguments = ["1"] }}

[[rollbacks]]
name = "remove the fault"
provider = {{ type = "process", path = "rm", arguments = ["-f", "${{dir}}/fault"] }}
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_method_still_rolls_back_and_exits_2(
    tmp_path: Path, sig: signal.Signals
) -> None:
    hold = (
        f"import os, time; open('{tmp_path}/holder', 'w').write(str(os.getpid())); time.sleep(60)"
    )
    experiment = tmp_path / "interrupted.toml"
    experiment.write_text(
        INTERRUPTED.format(dir=json.dumps(str(tmp_path)), py=json.dumps(PY), hold=hold)
    )
    journal = tmp_path / "journal.json"
    with (tmp_path / "run.out").open("w") as out:
        proc = subprocess.Popen(
            [PY, "-m", "selfheal", "chaos", "run", str(experiment), "--journal", str(journal)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        holder = tmp_path / "holder"
        assert wait_until(lambda: holder.exists() and holder.read_text().isdigit(), 30)
        assert (tmp_path / "fault").exists()
        os.kill(proc.pid, sig)
        # A second signal while the rollbacks run is recorded and ignored.
        assert wait_until((tmp_path / "rollback-started").exists, 30)
        os.kill(proc.pid, sig)
        assert proc.wait(timeout=30) == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = (tmp_path / "run.out").read_text()
    assert "Traceback" not in output
    assert not (tmp_path / "fault").exists()  # rolled back
    assert not (tmp_path / "too-far").exists()
    assert not alive(int((tmp_path / "holder").read_text()))  # the fault's process is gone
    record = json.loads(journal.read_text())
    assert record["outcome"] == "aborted"
    assert record["interrupted_by"] == sig.name
    assert record["ignored_signals"] == [sig.name]
    assert [(r["name"], r["status"]) for r in record["method"]] == [
        ("inject", "succeeded"),
        ("hold the fault", "interrupted"),
    ]
    assert [r["status"] for r in record["rollbacks"]] == ["succeeded"] * 3
    assert record["steady_states"]["after_rollback"]["met"] is True
    assert "ABORTED" in output


def test_production_is_refused_by_the_cli(tmp_path: Path) -> None:
    experiment = tmp_path / "e.toml"
    marker = tmp_path / "ran"
    experiment.write_text(
        'title = "t"\n[[method]]\nname = "a"\n[method.provider]\ntype = "process"\n'
        f'path = "touch"\narguments = [{json.dumps(str(marker))}]\n'
    )
    env = {**os.environ, "SELFHEAL_ENV": "production"}
    cmd = [sys.executable, "-m", "selfheal", "chaos", "run", str(experiment)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 4
    assert "SELFHEAL_ENV=production" in proc.stderr
    assert not marker.exists()
    proc = subprocess.run(
        [*cmd, "--allow-production", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outcome"] == "held"
    assert marker.exists()
