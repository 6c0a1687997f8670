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
from typing import Any

import pytest
from pydantic import ValidationError

from selfheal.supervisor import ProgramSpec
from selfheal.supervisor.config import ProgramConfig
from selfheal.testing import FakeClock
from supervisor_helpers import FAST, PY, alive, make, read, wait_until

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


async def _spare_ready(clock: FakeClock, exclude: set[int] = frozenset()) -> int:  # type: ignore[assignment]
    """Let the refill delay pass; return the pid of the spare that then waits."""
    await clock.wait_for_sleepers()
    clock.advance(1.0)

    def waiting() -> list[int]:
        return [p for p in _standby_pids(os.getpid()) if p not in exclude]

    assert await until(lambda: len(waiting()) == 1)
    return waiting()[0]


async def _crash(sup: Any, rec: Any) -> int | None:
    """SIGKILL the running instance of app; return the pid of the one ready after it."""
    pid = sup.pid("app")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await rec.wait("process.app.ready", 2)
    return sup.pid("app")  # type: ignore[no-any-return]


async def test_a_deploy_after_the_imports_is_not_run_as_stale_code(tmp_path: Path) -> None:
    module = tmp_path / "mymod.py"
    module.write_text("VERSION = 1\n")
    script = tmp_path / "app.py"
    script.write_text(
        "import mymod, os, time\n"
        "print('pid', os.getpid(), 'version', mymod.VERSION, flush=True)\n"
        "time.sleep(60)\n"
    )
    clock = FakeClock()
    spec = ProgramSpec("app", (PY, str(script)), backoff=FAST, preload=("mymod",))
    sup, rec = make(tmp_path, spec, clock=clock)
    await sup.start()
    try:
        await rec.wait("process.app.ready")
        spare = await _spare_ready(clock)
        module.write_text("VERSION = 2\n")
        os.utime(module, ns=(1, 1))  # a deploy: another file, another time
        assert await _crash(sup, rec) == spare
        log = Path(sup.status(["app"])[0]["log"])
        assert await until(lambda: f"pid {spare} version 2" in log.read_text())
    finally:
        await sup.stop()


async def test_instances_that_differ_in_their_environment_share_the_spare(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    spec = _spares(tmp_path, ("decimal",))
    spec = ProgramSpec(
        "app",
        spec.command,
        backoff=FAST,
        preload=("decimal",),
        numprocs=2,
        env=(("PORT", "80%(process_num)02d"),),
    )
    sup, rec = make(tmp_path, spec, clock=clock)
    await sup.start()
    try:
        await rec.wait("process.app.ready", 2)
        for instance in ("app:1", "app:0"):
            before = sup.pid(instance)
            assert before is not None
            spare = await _spare_ready(
                clock, {p for p in (sup.pid("app:0"), sup.pid("app:1")) if p}
            )
            os.kill(before, signal.SIGKILL)
            assert await until(lambda i=instance, s=spare: sup.pid(i) == s)  # type: ignore[misc]
            log = Path(sup.status([instance])[0]["log"])
            assert await until(
                lambda s=spare, i=instance, lg=log: (
                    f"pid {s} as {i} preloaded True" in lg.read_text()
                )  # type: ignore[misc]
            )
    finally:
        await sup.stop()


async def test_a_reload_that_drops_preload_ends_the_spare(tmp_path: Path) -> None:
    clock = FakeClock()
    spec = _spares(tmp_path, ("decimal",))
    sup, rec = make(tmp_path, spec, clock=clock)
    await sup.start()
    try:
        await rec.wait("process.app.ready")
        spare = await _spare_ready(clock)
        await sup.apply([ProgramSpec("app", spec.command, backoff=FAST)])
        assert await until(lambda: not alive(spare))
    finally:
        await sup.stop()


async def test_what_a_spare_wrote_while_waiting_goes_to_each_streams_own_log(
    tmp_path: Path,
) -> None:
    (tmp_path / "noisy.py").write_text(
        "import sys\nprint('imported: out', flush=True)\n"
        "print('imported: err', file=sys.stderr, flush=True)\n"
    )
    script = tmp_path / "app.py"
    script.write_text(APP)
    spec = ProgramSpec(
        "app",
        (PY, str(script)),
        backoff=FAST,
        preload=("noisy",),
        cwd=str(tmp_path),
        redirect_stderr=False,
    )
    clock = FakeClock()
    sup, rec = make(tmp_path, spec, clock=clock)
    await sup.start()
    try:
        await rec.wait("process.app.ready")
        spare = await _spare_ready(clock)
        assert await _crash(sup, rec) == spare
        (info,) = sup.status(["app"])
        out, err = Path(info["log"]), Path(info["stderr_log"])
        assert await until(lambda: f"pid {spare} as app" in out.read_text())
        assert "imported: out" in read(out)
        assert "imported: err" not in read(out)
        assert "imported: err" in read(err)
    finally:
        await sup.stop()


async def test_stopping_a_program_ends_its_spare_and_starting_it_makes_another(
    tmp_path: Path,
) -> None:
    # An operator who stops a program expects nothing of it to keep running.
    clock = FakeClock()
    sup, rec = make(tmp_path, _spares(tmp_path, ("decimal",)), clock=clock)
    await sup.start()
    try:
        await rec.wait("process.app.ready")
        spare = await _spare_ready(clock)
        await sup.restart_program("app")  # a restart takes the spare: that is what it is for
        assert sup.pid("app") == spare
        second = await _spare_ready(clock, exclude={spare})
        await sup.stop_program("app")
        assert await until(lambda: not alive(second))
        assert _standby_pids(os.getpid()) == []
        await sup.start_program("app")
        assert await _spare_ready(clock) not in (spare, second)
    finally:
        await sup.stop()


async def test_what_an_instance_from_a_spare_left_behind_is_ended_with_it(
    tmp_path: Path,
) -> None:
    worker_pid = tmp_path / "worker.pid"
    script = tmp_path / "app.py"
    script.write_text(
        "import os, sys, time\n"
        "if len(sys.argv) > 1 and os.fork() == 0:\n"
        "    os.setsid()  # leaves the group: only its environment marks it as ours\n"
        f"    open({str(worker_pid)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(60)\n"
        "time.sleep(60)\n"
    )
    clock = FakeClock()
    spec = ProgramSpec("app", (PY, str(script), "fork"), backoff=FAST, preload=("decimal",))
    sup, rec = make(tmp_path, spec, clock=clock)
    await sup.start()
    try:
        await rec.wait("process.app.ready")
        first = sup.pid("app")
        assert first is not None
        spare = await _spare_ready(clock)
        assert await until(worker_pid.exists)
        os.kill(int(worker_pid.read_text()), signal.SIGKILL)  # the cold start's worker
        worker_pid.unlink()
        os.kill(first, signal.SIGKILL)
        assert await until(lambda: sup.pid("app") == spare)
        assert await until(lambda: worker_pid.exists() and worker_pid.read_text() != "")
        worker = int(worker_pid.read_text())
        await sup.stop_program("app")
        assert await until(lambda: not alive(worker))
    finally:
        await sup.stop()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"command": ["node", "web.js"]}, "preload needs a command run by a Python interpreter"),
        ({"command": ["python3 web.py"], "shell": True}, "without shell"),
        ({"command": ["python3", "web.py"], "preload": ["web-app"]}, "is not a module name"),
        ({"command": ["python3", "-u", "web.py"]}, "interpreter options are not passed"),
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
