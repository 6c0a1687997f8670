"""Three ``selfheal run`` daemons with ``[journal] url = "redis://..."``: one fleet, one history.

Each daemon supervises a probe of a shared database; when the database "fails" every probe
exits, every daemon's fleet rule fires, and exactly one daemon runs the recovery. The
incident, its three signals and its one recovery are then read back through the CLI of any
node, as a person would.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fleet_helpers import node_env, wait_until
from selfheal.cli import main
from selfheal.store.redis import RedisJournalStore

pytestmark = pytest.mark.slow

PY = json.dumps(__import__("sys").executable)
# Waits for the shared database to "fail", then exits as a failed probe does.
PROBE = "import os, time\nwhile not os.path.exists('failed'): time.sleep(0.02)\nraise SystemExit(1)"
# The recovery: leaves a mark in a file all nodes share, and takes a while, so that every
# node's failure signal (a loaded machine spreads them over seconds) falls in the incident.
RECOVER = "import time; open('recoveries', 'a').write('x\\n'); time.sleep(4)"

CONFIG = """
[control]
state_dir = "state-{n}"

[journal]
url = "{url}"
local_copy = true

[programs.dbprobe]
command = [{py}, "-c", {probe}]
restart = "never"

[[recovery]]
name = "db"
on = "process.dbprobe.exited"
fleet = true
action = {{ command = [{py}, "-c", {recover}] }}
cooldown = 30
"""


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def fleet(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[list[Path]]:
    del prefix  # the daemons use the default prefix: this test has a server of its own
    configs = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(3):
            config = tmp_path / f"node{n}.toml"
            config.write_text(
                CONFIG.format(
                    n=n, url=redis_url, py=PY, probe=json.dumps(PROBE), recover=json.dumps(RECOVER)
                )
            )
            configs.append(config)
            with (tmp_path / f"node{n}.err").open("ab") as err:
                procs.append(
                    subprocess.Popen(
                        [json.loads(PY), "-m", "selfheal", "run", str(config)],
                        cwd=tmp_path,
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        env=node_env(),
                    )
                )
        yield configs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)


def _incidents(config: Path) -> list[dict[str, Any]]:
    code, out = cli("incidents", "--json", "--config", str(config))
    assert code == 0, out
    incidents: list[dict[str, Any]] = json.loads(out)["incidents"]
    return incidents


def test_one_incident_of_three_nodes_gets_one_recovery(
    fleet: list[Path], tmp_path: Path, redis_url: str
) -> None:
    journal = RedisJournalStore(redis_url, readonly=True)
    # Every probe runs (its start is journaled by its node) before the database fails.
    wait_until(lambda: len(journal.events(type="process.dbprobe.started")) == 3, 30)
    (tmp_path / "failed").touch()

    def settled() -> bool:
        incidents = _incidents(fleet[1])
        return len(incidents) == 1 and not incidents[0]["open"]

    try:
        wait_until(settled, 30)
    except AssertionError:
        history = [(e.type, e.source, e.data.get("reason")) for e in journal.events(limit=200)]
        raise AssertionError(f"incidents: {_incidents(fleet[1])}\nevents: {history}") from None
    assert (tmp_path / "recoveries").read_text() == "x\n"  # one node acted
    (incident,) = _incidents(fleet[2])
    assert incident["subject"] == "dbprobe"
    assert incident["signals"] == 3  # one exit per node, one incident
    assert incident["recoveries"] == 1
    assert incident["closed_by"] == "recovery.dbprobe.succeeded"

    def outcomes() -> list[tuple[str, str | None]]:
        code, out = cli("events", "--json", "--config", str(fleet[0]), "--type", "recovery.*")
        assert code == 0, out
        return sorted(
            (json.loads(line)["type"], json.loads(line)["data"].get("reason"))
            for line in out.splitlines()
        )

    # The waiting nodes learn that it is done at their next look at the lease.
    wait_until(lambda: len(outcomes()) >= 6, 30)
    assert outcomes() == [
        ("recovery.dbprobe.started", None),
        ("recovery.dbprobe.succeeded", None),
        ("recovery.dbprobe.suppressed", "fleet_active"),
        ("recovery.dbprobe.suppressed", "fleet_active"),
        ("recovery.dbprobe.suppressed", "fleet_done"),
        ("recovery.dbprobe.suppressed", "fleet_done"),
    ]
    # Each node also keeps its own history in SQLite (local_copy).
    code, out = cli("events", "--json", "--db", str(tmp_path / "state-0" / "journal.db"))
    assert code == 0, out
    assert "process.dbprobe.exited" in out
