"""Control by several names at once (supervisorctl's forms), signals, and what stops together."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from selfheal.supervisor import ProcessState, ProgramSpec
from supervisor_helpers import NOTIFY, PY, SLEEP, make, read_int

pytestmark = pytest.mark.anyio
S = ProcessState


async def test_names_stand_for_processes_programs_groups_and_all(tmp_path: Path) -> None:
    sup, _ = make(
        tmp_path,
        ProgramSpec("web", SLEEP, group="front"),
        ProgramSpec("worker", SLEEP, numprocs=3),
        ProgramSpec("cron", SLEEP, group="front"),
    )
    await sup.start()
    try:
        assert sup.select(["all"]) == ["web", "worker:0", "worker:1", "worker:2", "cron"]
        assert sup.select(["worker"]) == ["worker:0", "worker:1", "worker:2"]
        assert sup.select(["worker:*"]) == ["worker:0", "worker:1", "worker:2"]
        assert sup.select(["worker:1", "web", "worker:*"]) == [
            "worker:1", "web", "worker:0", "worker:2"
        ]  # fmt: skip
        assert sup.select(["front:*"]) == ["web", "cron"]
        assert sup.select(["front:cron"]) == ["cron"]
        for bad in ("nope", "worker:9", "nogroup:*", "front:worker"):
            with pytest.raises(KeyError) as caught:
                sup.select([bad])
            assert caught.value.args[0] == (
                f"no program or process {bad!r}; known: web, worker (worker:0..2), cron; "
                "groups: front:* (or all)"
            )
        stopped = await sup.stop_processes(["front:*", "worker:2"])
        assert stopped == ["web", "worker:2", "cron"]
        assert [p["state"] for p in sup.status()] == [
            "STOPPED", "RUNNING", "RUNNING", "STOPPED", "STOPPED"
        ]  # fmt: skip
        assert await sup.start_processes(["all"]) == sup.select(["all"])
        assert {p["state"] for p in sup.status()} == {"RUNNING"}
    finally:
        await sup.stop()


async def test_stopping_a_dependency_stops_its_dependents_first_and_says_why(
    tmp_path: Path,
) -> None:
    db = ProgramSpec("db", SLEEP)
    app = ProgramSpec("app", SLEEP, depends_on=("db",))
    report = ProgramSpec("report", SLEEP, depends_on=("app",))
    other = ProgramSpec("other", SLEEP)
    sup, rec = make(tmp_path, db, app, report, other)
    await sup.start()
    try:
        await rec.wait("process.report.ready")
        stopped = await sup.stop_processes(["db"])
        assert stopped == ["db", "app", "report"]
        states = {p["name"]: (p["state"], p["reason"]) for p in sup.status()}
        assert states == {
            "db": ("STOPPED", "stop"),
            "app": ("STOPPED", "stopped with db, which it depends on"),
            "report": ("STOPPED", "stopped with db, which it depends on"),
            "other": ("RUNNING", "ready at spawn"),
        }
        order = [e.data["instance"] for e in rec.events if e.type.endswith(".exited")]
        assert order == ["report", "app", "db"]  # dependents first
    finally:
        await sup.stop()


async def test_restarting_a_dependency_restarts_its_dependents_once_it_is_ready(
    tmp_path: Path,
) -> None:
    db = ProgramSpec("db", (PY, "-c", NOTIFY, "0"), ready="notify")
    app = ProgramSpec("app", SLEEP, depends_on=("db",))
    sup, rec = make(tmp_path, db, app)
    await sup.start()
    try:
        await rec.wait("process.app.ready")
        first = sup.pid("app")
        restarted = await sup.restart_processes(["db"])
        assert restarted == ["db", "app"]
        assert sup.state("db") is S.RUNNING
        assert sup.state("app") is S.RUNNING
        assert sup.pid("app") != first
        types = rec.types()
        second_db_ready = [i for i, t in enumerate(types) if t == "process.db.ready"][1]
        second_app_start = [i for i, t in enumerate(types) if t == "process.app.started"][1]
        assert second_db_ready < second_app_start  # it waited for db to be ready again
    finally:
        await sup.stop()


async def test_a_program_waits_for_lower_priorities_being_started(tmp_path: Path) -> None:
    # first is ready 50 ms after its spawn (sd_notify); second must not start before that.
    first = ProgramSpec("first", (PY, "-c", NOTIFY, "0"), ready="notify", priority=1)
    second = ProgramSpec("second", SLEEP, priority=2)
    # A low priority that can never start does not hold the others back.
    broken = ProgramSpec("broken", ("/nonexistent/binary",), priority=0)
    sup, rec = make(tmp_path, second, broken, first)
    await sup.start()
    try:
        assert sup.state("second") is S.STOPPED
        assert sup.status(["second"])[0]["waiting_for"] == ["first"]
        await rec.wait("process.second.ready")
        types = rec.types()
        assert types.index("process.first.ready") < types.index("process.second.started")
    finally:
        await sup.stop()
    exits = [e.data["instance"] for e in rec.events if e.type.endswith(".exited")]
    assert exits.index("second") < exits.index("first")  # shutdown: the other way round


async def test_signal_goes_to_the_process_and_reports_who_was_not_running(
    tmp_path: Path,
) -> None:
    # Ready (sd_notify READY=1) once its SIGHUP handler is in place.
    hup = (
        "import os, signal, socket, sys, time\n"
        "signal.signal(signal.SIGHUP, lambda *a: open(sys.argv[1], 'w').write(str(os.getpid())))\n"
        "addr = os.environ['NOTIFY_SOCKET']\n"
        "addr = '\\0' + addr[1:] if addr.startswith('@') else addr\n"
        "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', addr)\n"
        "time.sleep(60)\n"
    )
    got = tmp_path / "hup.txt"
    sup, rec = make(
        tmp_path,
        ProgramSpec("a", (PY, "-c", hup, str(got)), ready="notify"),
        ProgramSpec("idle", SLEEP, autostart=False),
    )
    await sup.start()
    try:
        await rec.wait("process.a.ready")
        sent = sup.signal_processes(["a", "idle"], signal.SIGHUP)
        assert sent == {"a": sup.pid("a"), "idle": None}
        assert read_int(got) == sup.pid("a")
        assert sup.state("a") is S.RUNNING
    finally:
        await sup.stop()
