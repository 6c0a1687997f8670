"""`SelfHealingApp.from_config`: the wiring of ``selfheal run``, from the same file.

A real program, a real TCP "database" checked by a ``[health]`` check, a rule whose
verification names both (the program and the check), and the journal recording it all.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from app_helpers import http_service, tcp_service
from selfheal.app import SelfHealingApp
from selfheal.health import HealthMonitor
from selfheal.interfaces import HealthStatus
from selfheal.recovery import RecoveryEngine, RecoveryManager, RestartProgram, Rule
from selfheal.store import Journal, SqliteJournalStore
from selfheal.supervisor import ProgramSpec, Supervisor
from selfheal.synthetic import SyntheticTester
from selfheal.testing import EventRecorder, FakeClock
from supervisor_helpers import SLEEP, alive

pytestmark = pytest.mark.anyio

CONFIG = """
[control]
enabled = false
state_dir = "state"

[programs.web]
command = {command}
restart = "never"

[health]
drain_seconds = 0.5

[health.checks.db]
tcp = "127.0.0.1:{port}"
interval = 0.2

[[recovery]]
on = "process.*.exited"
when = {{ "data.expected" = {{ ne = true }} }}
steps = [{{ restart = "{{subject}}" }}]
verify = {{ checks = ["web", "db"], within = 15, interval = 0.1 }}
cooldown = 0.1
"""

WIRING = [Journal, HealthMonitor, Supervisor, RecoveryEngine, RecoveryManager]


async def test_the_config_file_gives_the_daemons_wiring_and_verification_finds_checks_and_programs(
    tmp_path: Path,
) -> None:
    db = await tcp_service()
    port = db.sockets[0].getsockname()[1]
    config = tmp_path / "selfheal.toml"
    config.write_text(CONFIG.format(command=json.dumps(list(SLEEP)), port=port))
    app = SelfHealingApp.from_config(config)
    assert app.app_name == tmp_path.name
    assert [type(c) for c in app.runtime.components] == WIRING
    assert app.drain_seconds == 0.5
    assert app.health_monitor.names() == ["db"]
    assert app.journal is not None
    recorder = EventRecorder(app.event_bus)
    try:
        async with app:
            assert app.supervisor is not None
            await recorder.wait("process.web.ready")
            pid = app.supervisor.pid("web")
            assert pid is not None
            assert await app.health_source.check_now("db") == HealthStatus.PASS
            with pytest.raises(KeyError):
                await app.health_source.check_now("nothing")
            assert app.health_source.status("nothing") == HealthStatus.UNKNOWN

            os.kill(pid, signal.SIGKILL)
            done = await recorder.wait("recovery.web.succeeded", within=20)
            assert done.data["tries"][-1]["checks"] == {"web": "pass", "db": "pass"}
            assert not alive(pid)
    finally:
        db.close()
    store = SqliteJournalStore(tmp_path / "state" / "journal.db")
    try:
        (incident,) = store.incidents()
    finally:
        store.close()
    assert (incident.subject, incident.closed_by) == ("web", "recovery.web.succeeded")


def test_code_gives_the_same_wiring_as_the_file(tmp_path: Path) -> None:
    rule = Rule(on="process.*.exited", steps=(RestartProgram(),))
    app = SelfHealingApp(
        "shop",
        programs=[ProgramSpec("web", SLEEP)],
        state_dir=tmp_path / "state",
        rules=[rule],
        journal=tmp_path / "journal.db",
    )
    assert [type(c) for c in app.runtime.components] == WIRING
    assert app.recovery_engine is not None
    assert app.recovery_engine.programs is app.supervisor
    assert app.recovery_engine.health is app.health_source
    assert app.recovery_engine.features is app.feature_manager
    assert app.supervisor is not None
    assert app.supervisor.bus is app.event_bus
    assert app.health_monitor.bus is app.event_bus
    assert app.feature_manager.bus is app.event_bus
    assert app.recovery_manager.event_bus is app.event_bus


def test_a_rule_that_restarts_needs_programs(tmp_path: Path) -> None:
    rule = Rule(on="process.*.exited", steps=(RestartProgram(),))
    with pytest.raises(ValueError, match="no ProgramControl"):
        SelfHealingApp("shop", rules=[rule])


SYNTHETIC = """
[control]
enabled = false
state_dir = "state"

[synthetic.journey]
base_url = "{url}"
call = "app_helpers:fetch"
interval = 30
"""


async def test_synthetic_scenarios_come_from_the_file_and_verify_like_checks(
    tmp_path: Path,
) -> None:
    with http_service() as (url, down):
        config = tmp_path / "selfheal.toml"
        config.write_text(SYNTHETIC.format(url=url))
        app = SelfHealingApp.from_config(config, clock=FakeClock())
        tester = app.synthetic_tester
        assert isinstance(tester, SyntheticTester)
        assert tester.names() == ["journey"]
        assert tester.bus is app.event_bus
        recorder = EventRecorder(app.event_bus, "synthetic.*")
        async with app:
            assert await app.health_source.check_now("journey") == HealthStatus.PASS
            down()
            assert await app.health_source.check_now("journey") == HealthStatus.FAIL
            await recorder.wait("synthetic.journey.failed")
        assert tester.get_status()["journey"]["failure_count"] >= 1
