"""``preload``: a restart takes the program's spare, whose imports are done, instead of a spawn.

Real processes: the spare is ``python -m selfheal._standby`` and the program reports, in its
log, which process it is, which instance it serves and whether the preloaded module was
imported before its own code ran.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from selfheal.supervisor import ProgramSpec
from selfheal.supervisor.config import ProgramConfig
from selfheal.testing import FakeClock
from supervisor_helpers import FAST, PY, alive, make, wait_until

pytestmark = pytest.mark.anyio

APP = """
import os, sys, time
print("pid", os.getpid(), "as", os.environ.get("SELFHEAL_PROGRAM"),
      "preloaded", "decimal" in sys.modules, "name", __name__, flush=True)
time.sleep(60)
"""


def _spares(tmp_path: Path, preload: tuple[str, ...]) -> ProgramSpec:
    script = tmp_path / "app.py"
    script.write_text(APP)
    return ProgramSpec("app", (PY, str(script)), backoff=FAST, preload=preload)


async def until(predicate: Callable[[], bool], limit: float = 10.0) -> bool:
    """Poll `predicate` while the loop runs (what it waits for is another process's doing)."""
    for _ in range(int(limit / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


def _standby_pids(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        if ppid == parent and b"selfheal._standby" in cmdline and stat.split()[2] != "Z":
            found.append(int(entry))
    return found


async def test_a_restart_takes_the_spare_which_runs_the_program_as_that_instance(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    sup, rec = make(tmp_path, _spares(tmp_path, ("decimal",)), clock=clock)
    await sup.start()
    try:
        await rec.wait("process.app.ready")
        first = sup.pid("app")
        assert first is not None
        assert _standby_pids(os.getpid()) == []  # the spare starts after a refill delay
        await clock.wait_for_sleepers()
        clock.advance(1.0)
        assert await until(lambda: len(_standby_pids(os.getpid())) == 1)
        (spare,) = _standby_pids(os.getpid())
        os.kill(first, signal.SIGKILL)
        await rec.wait("process.app.ready", 2)
        assert sup.pid("app") == spare  # the spare became the instance: no new spawn
        log = Path(sup.status(["app"])[0]["log"])
        assert await until(
            lambda: f"pid {spare} as app preloaded True name __main__" in log.read_text()
        )
        assert f"pid {first} as app preloaded False" in await asyncio.to_thread(log.read_text)

        # The next spare follows once the refill delay has passed.
        def waiting() -> list[int]:
            return [p for p in _standby_pids(os.getpid()) if p != spare]

        assert waiting() == []
        await clock.wait_for_sleepers()
        clock.advance(1.0)
        assert await until(lambda: len(waiting()) == 1)
        (second_spare,) = waiting()
    finally:
        await sup.stop()
    assert wait_until(lambda: not alive(second_spare))  # no spare outlives the supervisor
    assert _standby_pids(os.getpid()) == []


async def test_a_spare_that_cannot_import_leaves_restarts_to_the_usual_spawn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    sup, rec = make(tmp_path, _spares(tmp_path, ("no_such_module_xyz",)), clock=clock)
    await sup.start()
    try:
        await rec.wait("process.app.ready")
        await clock.wait_for_sleepers()
        clock.advance(1.0)
        assert await until(lambda: "No module named 'no_such_module_xyz'" in caplog.text)
        first = sup.pid("app")
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await rec.wait("process.app.ready", 2)
        second = sup.pid("app")
        assert second not in (None, first)
        log = Path(sup.status(["app"])[0]["log"])
        assert await until(lambda: f"pid {second} as app preloaded False" in log.read_text())
    finally:
        await sup.stop()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"command": ["node", "web.js"]}, "preload needs a command run by a Python interpreter"),
        ({"command": ["python3 web.py"], "shell": True}, "without shell"),
        ({"command": ["python3", "web.py"], "preload": ["web-app"]}, "is not a module name"),
    ],
)
def test_preload_is_refused_where_it_cannot_work(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ProgramConfig.model_validate({"preload": ["web"], **fields})


def test_preload_reaches_the_spec() -> None:
    config = ProgramConfig.model_validate(
        {"command": ["/usr/bin/python3.11", "-m", "app"], "preload": ["app", "uvicorn"]}
    )
    assert config.to_spec("web").preload == ("app", "uvicorn")
