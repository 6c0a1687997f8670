"""Starting and stopping the app: run until stop() or a signal, shut down in order, drain first."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from app_helpers import RecordingMonkey, RecordingTester
from health_helpers import until
from selfheal.app import SelfHealingApp
from selfheal.health import Probe
from selfheal.interfaces import HealthStatus
from selfheal.supervisor import ProgramSpec
from selfheal.testing import FakeClock
from supervisor_helpers import PY, SLEEP, alive, read_int, wait_until


def app_with_doubles(log: list[str], **kw: object) -> SelfHealingApp:
    app = SelfHealingApp("shop", **kw)  # type: ignore[arg-type]

    def readiness() -> str:
        return app.health_monitor.probe(Probe.READYZ).status.value

    app.synthetic_tester = RecordingTester(log, seen=readiness)
    app.chaos_monkey = RecordingMonkey(log, readiness, enabled=False)
    return app


@pytest.mark.anyio
async def test_readiness_drains_on_the_clock_before_anything_stops(tmp_path: Path) -> None:
    clock = FakeClock()
    log: list[str] = []
    app = app_with_doubles(
        log,
        clock=clock,
        drain_seconds=5,
        programs=[ProgramSpec("web", SLEEP)],
        state_dir=tmp_path / "state",
    )
    assert app.supervisor is not None
    sup = app.supervisor
    run = asyncio.ensure_future(app.run())
    try:
        await until(lambda: any(p["state"] == "RUNNING" for p in sup.status()), 20)
        pid = sup.pid("web")
        assert pid is not None
        assert app.health_monitor.probe(Probe.READYZ).status == HealthStatus.PASS

        app.stop()
        await clock.wait_for_sleepers()
        # Draining: readiness fails, and nothing else has stopped yet.
        assert app.health_monitor.probe(Probe.READYZ).status == HealthStatus.FAIL
        assert log == ["synthetic.start", "chaos.start"]
        assert alive(pid)
        assert not run.done()

        clock.advance(5)
        await asyncio.wait_for(run, 30)
    finally:
        if not run.done():
            app.stop()
            clock.advance(5)
            await asyncio.wait_for(run, 30)
    assert log == ["synthetic.start", "chaos.start", "chaos.stop", "synthetic.stop"]
    assert app.chaos_monkey.at_stop == "fail"  # type: ignore[attr-defined]
    assert not alive(pid)
    assert not app.running


@pytest.mark.anyio
async def test_async_with_starts_in_order_and_stops_in_reverse(tmp_path: Path) -> None:
    log: list[str] = []
    app = app_with_doubles(log, programs=[ProgramSpec("web", SLEEP)], state_dir=tmp_path / "s")
    async with app:
        assert app.running
        assert app.supervisor is not None
        names = [type(c).__name__ for c in app.runtime.components]
        assert names == [
            "HealthMonitor",
            "Supervisor",
            "RecoveryManager",
            "_Threaded",
            "_Threaded",
            "_Drain",
        ]
    assert log == ["synthetic.start", "chaos.start", "chaos.stop", "synthetic.stop"]
    assert not app.running


def test_start_blocks_until_stop_from_another_thread() -> None:
    log: list[str] = []
    app = app_with_doubles(log)
    done = threading.Event()

    def main() -> None:
        app.start()  # not the main thread: no signal handlers, stop() still works
        done.set()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert wait_until(lambda: "chaos.start" in log, 10)
    assert not done.is_set()
    app.stop()
    assert done.wait(10)
    assert log[-2:] == ["chaos.stop", "synthetic.stop"]


def test_a_stop_before_the_start_ends_the_run_once_started() -> None:
    log: list[str] = []
    app = app_with_doubles(log)
    app.stop()
    app.start()
    assert log == ["synthetic.start", "chaos.start", "chaos.stop", "synthetic.stop"]


@pytest.mark.anyio
async def test_start_in_async_code_says_to_await_run() -> None:
    app = SelfHealingApp("shop")
    with pytest.raises(RuntimeError, match=r"await app\.run"):
        app.start()


@pytest.mark.anyio
async def test_a_tester_or_monkey_cannot_be_swapped_once_started() -> None:
    log: list[str] = []
    app = app_with_doubles(log)
    async with app:
        with pytest.raises(RuntimeError, match="before the app starts"):
            app.synthetic_tester = RecordingTester(log)


SCRIPT = """
import logging, sys
from pathlib import Path
from selfheal.app import SelfHealingApp
from selfheal.supervisor import ProgramSpec

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
here = Path(sys.argv[1])
child = ("{py}", "-c", "import os, pathlib, time; "
         "pathlib.Path({pidfile!r}).write_text(str(os.getpid())); time.sleep(60)")

class App(SelfHealingApp):
    def handle_shutdown(self, sig, frame):
        (here / "signal").write_text(str(sig))
        super().handle_shutdown(sig, frame)

App("shop", programs=[ProgramSpec("worker", child)], state_dir=here / "state").start()
(here / "done").write_text("ok")
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_runs_handle_shutdown_and_stops_everything(tmp_path: Path, sig: int) -> None:
    pidfile = tmp_path / "child.pid"
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(SCRIPT).format(py=PY, pidfile=str(pidfile)))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        child = read_int(pidfile, 20)
        assert alive(child)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert (tmp_path / "signal").read_text() == str(int(sig))
    assert (tmp_path / "done").read_text() == "ok"
    assert not alive(child)
    assert "starting shop with self-healing capabilities" in err
    assert f"{signal.Signals(sig).name} received: stopping shop" in err
    assert "Traceback" not in err
