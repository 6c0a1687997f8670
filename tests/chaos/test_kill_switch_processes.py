"""The kill switch across processes: ``selfheal chaos stop`` ends a ``selfheal chaos run``
and rolls back the toxics of a ``selfheal chaos proxy``.

Every run and proxy here is the real CLI in a process of its own; the switch is engaged by
another ``selfheal chaos stop`` process, as an operator would, through the state directory
both find (in the same selfheal.toml, or given with --state-dir).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from health_helpers import redis_server
from proxy_helpers import connect, proxy_process
from selfheal.chaos import FaultProxyError, ToxiproxyClient
from supervisor_helpers import wait_until

pytestmark = pytest.mark.slow

EXPERIMENT = """
title = "a fault the operator stops"
name = "held-fault"

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
{hold}

[[method]]
name = "never reached"
provider = {{ type = "process", path = "touch", arguments = ["${{dir}}/too-far"] }}

[[rollbacks]]
name = "remove the fault"
provider = {{ type = "process", path = "rm", arguments = ["-f", "${{dir}}/fault"] }}
"""

#: Two ways a fault is held: a pause (the runner waits) or an activity that blocks.
HOLDS = {
    "pause": "pauses = { after = 60 }",
    "blocking activity": (
        '\n[[method]]\nname = "hold"\n'
        'provider = { type = "process", path = "sleep", arguments = ["60"] }'
    ),
}


def selfheal(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "selfheal", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "selfheal.toml"
    path.write_text('[control]\nstate_dir = "state"\n')
    return path


def write(tmp_path: Path, hold: str) -> Path:
    path = tmp_path / "experiment.toml"
    path.write_text(EXPERIMENT.format(dir=json.dumps(str(tmp_path)), hold=hold))
    return path


def test_an_engaged_switch_stops_a_run_from_starting_until_resumed(tmp_path: Path) -> None:
    experiment = write(tmp_path, "")
    state = str(tmp_path / "state")
    assert selfheal("chaos", "stop", "--state-dir", state, "--reason", "freeze").returncode == 0
    refused = selfheal("chaos", "run", str(experiment), "--state-dir", state, "--json")
    assert refused.returncode == 2, refused.stderr
    record = json.loads(refused.stdout)
    assert record["outcome"] == "aborted"
    assert record["reason"].startswith("not started: the kill switch")
    assert record["method"] == []
    assert record["rollbacks"] == []
    assert not (tmp_path / "fault").exists()
    shown = selfheal("chaos", "run", str(experiment), "--state-dir", state)
    assert shown.returncode == 2
    assert "ABORTED not started: the kill switch" in shown.stdout
    assert "selfheal chaos resume" in shown.stdout
    assert "Traceback" not in shown.stdout + shown.stderr
    assert selfheal("chaos", "resume", "--state-dir", state).returncode == 0
    again = selfheal("chaos", "run", str(experiment), "--state-dir", state, "--json")
    # It ran: the fault it injects is only gone after the rollback, so the run deviates.
    assert again.returncode == 1, again.stdout
    assert (tmp_path / "too-far").exists()
    assert json.loads(again.stdout)["reason"] == "steady state deviated"


@pytest.mark.parametrize("hold", list(HOLDS))
def test_chaos_stop_from_another_process_aborts_a_running_experiment_and_rolls_back(
    tmp_path: Path, config: Path, hold: str
) -> None:
    experiment = write(tmp_path, HOLDS[hold])
    journal = tmp_path / "journal.json"
    with (tmp_path / "run.out").open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "selfheal",
                "chaos",
                "run",
                str(experiment),
                "-c",
                str(config),
                "--journal",
                str(journal),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_until((tmp_path / "fault").exists, 30)
        stopped = selfheal("chaos", "stop", "-c", str(config), "--reason", "pager went off")
        assert stopped.returncode == 0, stopped.stderr
        engaged = time.monotonic()
        assert proc.wait(timeout=30) == 2
        # The switch is looked at every second (Safeguards' poll interval).
        assert time.monotonic() - engaged < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = (tmp_path / "run.out").read_text()
    assert "Traceback" not in output
    assert "ABORTED" in output
    assert not (tmp_path / "fault").exists()  # rolled back
    assert not (tmp_path / "too-far").exists()
    record = json.loads(journal.read_text())
    assert record["interrupted_by"] == "kill switch"
    assert record["reason"] == (
        f"the kill switch {tmp_path / 'state' / 'chaos.stop'} is engaged; 'selfheal chaos "
        "resume' (or deleting the file) lifts it; rolled back"
    )
    assert [r["status"] for r in record["rollbacks"]] == ["succeeded"]
    assert record["steady_states"]["after_rollback"]["met"] is True
    assert record["ignored_signals"] == []
    if hold == "blocking activity":
        assert record["method"][-1]["name"] == "hold"
        assert record["method"][-1]["status"] == "interrupted"


def test_chaos_stop_rolls_back_the_toxics_of_a_proxy_process_and_refuses_new_ones(
    tmp_path: Path,
) -> None:
    state = str(tmp_path / "state")
    with redis_server() as redis_upstream, proxy_process("--state-dir", state) as process:
        proxy = process.client().create(upstream=f"127.0.0.1:{redis_upstream.port}", name="redis")
        ours = ToxiproxyClient(f"http://127.0.0.1:{process.api_port}").proxies()["redis"]
        sock = connect(proxy.listen)
        proxy.add_toxic(type="latency", attributes={"latency": 60_000})
        sock.sendall(b"PING\r\n")
        assert selfheal("chaos", "stop", "--state-dir", state).returncode == 0
        engaged = time.monotonic()
        sock.settimeout(10)
        assert sock.recv(100) == b"+PONG\r\n"  # held back, released when the toxic went
        assert time.monotonic() - engaged < 5  # looked at every second
        assert proxy.toxics() == {}
        with pytest.raises(FaultProxyError) as refused:
            ours.add_toxic("latency", latency=100)
        assert refused.value.status == 403
        assert "selfheal chaos resume" in str(refused.value)
        with pytest.raises(FaultProxyError):
            ours.disable()
        sock.sendall(b"PING\r\n")
        assert sock.recv(100) == b"+PONG\r\n"
        assert selfheal("chaos", "resume", "--state-dir", state).returncode == 0
        ours.add_toxic("latency", latency=100)
        assert [t["name"] for t in ours.toxics()] == ["latency_downstream"]
        sock.close()
