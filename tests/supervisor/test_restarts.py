"""The supervisor with real child processes: restarts, backoff, groups, probes, sd_notify."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
from pathlib import Path

import pytest

from selfheal.errors import StateDirLockedError
from selfheal.events import EventBus
from selfheal.supervisor import (
    BackoffSpec,
    IntensitySpec,
    LogSpec,
    ProbeSpec,
    ProcessState,
    ProgramControl,
    ProgramSpec,
    Supervisor,
)
from selfheal.supervisor._logs import OutputLog
from selfheal.testing import FakeClock
from supervisor_helpers import PY, Recorder, abandon, alive, kill_quietly, read_int, wait_until

pytestmark = pytest.mark.anyio
S = ProcessState

SLEEP = (PY, "-c", "import time; print('up', flush=True); time.sleep(60)")
FAST = BackoffSpec(initial=0.005, factor=2.0, maximum=0.05, jitter=0.0, reset_after=30.0)

# A child that speaks sd_notify the way every library does: datagrams to $NOTIFY_SOCKET.
NOTIFY = """
import os, socket, sys, time
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def notify(msg):
    s.sendto(msg.encode(), addr)
beats = int(sys.argv[1])
notify("STATUS=warming up")
time.sleep(0.05)
notify("READY=1\\nSTATUS=serving")
for _ in range(beats):
    time.sleep(0.05)
    notify("WATCHDOG=1")
time.sleep(60)
"""


def make(tmp_path: Path, *specs: ProgramSpec, **kw: object) -> tuple[Supervisor, Recorder]:
    bus = EventBus(clock=kw.get("clock", FakeClock()))  # type: ignore[arg-type]
    rec = Recorder(bus)
    sup = Supervisor(specs, bus=bus, state_dir=tmp_path / "state", **kw)  # type: ignore[arg-type]
    return sup, rec


async def test_is_a_program_control(tmp_path: Path) -> None:
    sup, _ = make(tmp_path, ProgramSpec("a", SLEEP))
    assert isinstance(sup, ProgramControl)
    assert sup.program_names() == ["a"]
    with pytest.raises(KeyError, match="no program or process 'b'; known: a"):
        await sup.start_program("b")


async def test_crash_is_restarted_at_once_and_events_carry_the_tail(tmp_path: Path) -> None:
    sup, rec = make(tmp_path, ProgramSpec("web", SLEEP), clock=FakeClock())
    await sup.start()
    try:
        await rec.wait("process.web.ready")
        first = sup.pid("web")
        assert first is not None
        await asyncio.sleep(0)  # let the output reader run
        os.kill(first, signal.SIGKILL)
        exited = await rec.wait("process.web.exited")
        assert exited.data["signal"] == "SIGKILL"
        assert exited.data["pid"] == first
        started = await rec.wait("process.web.started", 2)
        assert started.data["pid"] != first
        backoff = rec.of("process.web.backoff")[0]
        assert backoff.data["delay"] == 0.0
        assert rec.types().index("process.web.exited") < rec.types().index("process.web.backoff")
        assert sup.state("web") is S.RUNNING
        assert not alive(first)
    finally:
        await sup.stop()
    assert rec.of("process.web.exited")[-1].data["expected"] is True


async def test_exited_event_has_the_last_lines(tmp_path: Path) -> None:
    prog = ProgramSpec(
        "noisy",
        (PY, "-c", "import sys\nfor i in range(50): print('line', i)\nsys.exit(4)"),
        restart="never",
        log=LogSpec(tail_lines=3),
    )
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        exited = await rec.wait("process.noisy.exited")
        assert exited.data["exit_code"] == 4
        assert exited.data["tail"] == ["line 47", "line 48", "line 49"]
        await sup.wait_for("noisy", S.EXITED)
        log = (tmp_path / "state" / "logs" / "noisy.log").read_text()
        assert log.count("line") == 50
    finally:
        await sup.stop()


async def test_crash_loop_backs_off_exponentially_then_goes_fatal(tmp_path: Path) -> None:
    clock = FakeClock()
    prog = ProgramSpec(
        "crashy",
        (PY, "-c", "import sys; sys.exit(3)"),
        backoff=BackoffSpec(initial=1.0, factor=2.0, maximum=3.0, jitter=0.0, reset_after=60),
        intensity=IntensitySpec(max_restarts=4, window=100.0),
    )
    sup, rec = make(tmp_path, prog, clock=clock)
    await sup.start()
    try:
        await rec.wait("process.crashy.backoff", 1)
        for n, delay in ((2, 1.0), (3, 2.0), (4, 3.0)):
            await rec.wait("process.crashy.backoff", n)
            assert rec.of("process.crashy.backoff")[-1].data["delay"] == delay
            await clock.wait_for_sleepers()
            assert sup.state("crashy") is S.BACKOFF
            clock.advance(delay)
        fatal = await rec.wait("process.crashy.fatal")
        assert fatal.data["exit_code"] == 3
        assert "more than 4 restarts in 100 s" in fatal.data["reason"]
        assert sup.state("crashy") is S.FATAL
        assert len(rec.of("process.crashy.started")) == 5
        # Starting by hand forgives the past.
        rec.events.clear()
        await sup.start_program("crashy")
        await rec.wait("process.crashy.started")
    finally:
        await sup.stop()


async def test_spawn_failure_is_a_failed_start(tmp_path: Path) -> None:
    prog = ProgramSpec(
        "ghost",
        ("/nonexistent/binary",),
        backoff=FAST,
        intensity=IntensitySpec(max_restarts=2, window=60),
    )
    sup, rec = make(tmp_path, prog, clock=FakeClock(autojump=True))
    await sup.start()
    try:
        await rec.wait("process.ghost.fatal")
        assert "cannot execute" in rec.of("process.ghost.exited")[0].data["error"]
    finally:
        await sup.stop()


async def test_grandchildren_die_with_their_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    prog = ProgramSpec("parent", (PY, "-c", script), restart="never")
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        grandchild = read_int(pidfile)
        assert alive(grandchild)
        pid = sup.pid("parent")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # only the parent: the grandchild must not be left
        await rec.wait("process.parent.exited")
        await asyncio.sleep(0)
        for _ in range(200):
            if not alive(grandchild):
                break
            await asyncio.sleep(0.01)
        assert not alive(grandchild)
    finally:
        await sup.stop()
        kill_quietly(grandchild)


async def test_stop_escalates_to_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    clock = FakeClock()
    stubborn = (
        PY,
        "-c",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\ntime.sleep(60)",
    )
    sup, rec = make(tmp_path, ProgramSpec("stubborn", stubborn, stop_grace=5.0), clock=clock)
    await sup.start()
    try:
        await rec.wait("process.stubborn.ready")
        await asyncio.sleep(0.2)  # real time for the child to install its handler
        stopping = asyncio.ensure_future(sup.stop_program("stubborn"))
        await clock.wait_for_sleepers()
        assert sup.state("stubborn") is S.STOPPING
        clock.advance(5.0)
        async with asyncio.timeout(10):
            await stopping
        exited = rec.of("process.stubborn.exited")[-1]
        assert exited.data["signal"] == "SIGKILL"
        assert sup.state("stubborn") is S.STOPPED
    finally:
        await sup.stop()


async def test_liveness_failure_restarts_the_program(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probe = ProbeSpec("tcp", f"127.0.0.1:{port}", interval=0.02, timeout=1.0, failure_threshold=2)
    prog = ProgramSpec("svc", SLEEP, liveness=probe, backoff=FAST)
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        first = (await rec.wait("process.svc.started")).data["pid"]
        unhealthy = await rec.wait("process.svc.unhealthy")
        assert "liveness probe failed 2 times" in unhealthy.data["reason"]
        second = (await rec.wait("process.svc.started", 2)).data["pid"]
        assert second != first
        assert not alive(first)
        assert rec.of("process.svc.backoff")[0].data["reason"] == "unhealthy"
    finally:
        await sup.stop()


async def test_a_program_never_ready_within_its_start_timeout_is_restarted(
    tmp_path: Path,
) -> None:
    # systemd's TimeoutStartSec: a readiness probe that never passes must not leave the
    # program (and its dependents) STARTING for ever.
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = FakeClock()
    probe = ProbeSpec("tcp", f"127.0.0.1:{port}", interval=1.0, timeout=1.0)
    prog = ProgramSpec("svc", SLEEP, ready="probe", readiness=probe, start_timeout=5.0)
    sup, rec = make(tmp_path, prog, clock=clock)
    await sup.start()
    try:
        first = (await rec.wait("process.svc.started")).data["pid"]
        for _ in range(4):  # four failed probes, 4 s: still within the timeout
            await clock.wait_for_sleepers(2)
            clock.advance(1.0)
        await asyncio.sleep(0.05)
        assert sup.state("svc") is S.STARTING
        assert not rec.of("process.svc.unhealthy")
        await clock.wait_for_sleepers(2)
        clock.advance(1.0)
        unhealthy = await rec.wait("process.svc.unhealthy")
        assert unhealthy.data["probe"] == "start"
        assert unhealthy.data["reason"] == "not ready within 5 s"
        exited = await rec.wait("process.svc.exited")
        assert exited.data["pid"] == first
        assert not alive(first)
        backoff = await rec.wait("process.svc.backoff")
        assert backoff.data["reason"] == "unhealthy"  # counted like a failure: backoff, intensity
    finally:
        await sup.stop()


async def test_a_program_ready_in_time_is_left_alone_by_its_start_timeout(
    tmp_path: Path,
) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = FakeClock()
    probe = ProbeSpec("tcp", f"127.0.0.1:{port}", interval=1.0)
    prog = ProgramSpec("svc", SLEEP, ready="probe", readiness=probe, start_timeout=5.0)
    sup, rec = make(tmp_path, prog, clock=clock)
    await sup.start()
    try:
        await rec.wait("process.svc.ready")
        clock.advance(60.0)
        await asyncio.sleep(0.05)
        assert sup.state("svc") is S.RUNNING
        assert not rec.of("process.svc.unhealthy")
    finally:
        await sup.stop()
        server.close()


async def test_liveness_passing_keeps_the_program(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = FakeClock()
    # The probe's timeout runs on the fake clock too: a long one, so that only the intervals
    # are what the advances below move past.
    probe = ProbeSpec("tcp", f"127.0.0.1:{port}", interval=1.0, timeout=60.0, failure_threshold=1)
    sup, rec = make(tmp_path, ProgramSpec("svc", SLEEP, liveness=probe), clock=clock)
    await sup.start()
    try:
        for _ in range(3):
            await clock.wait_for_sleepers()
            clock.advance(1.0)
        assert sup.state("svc") is S.RUNNING
        assert not rec.of("process.svc.unhealthy")
    finally:
        await sup.stop()
        server.close()


async def test_sd_notify_ready_status_and_missed_heartbeat(tmp_path: Path) -> None:
    prog = ProgramSpec(
        "notifier",
        (PY, "-c", NOTIFY, "2"),
        ready="notify",
        watchdog_sec=0.3,
        backoff=FAST,
    )
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        assert sup.state("notifier") is S.STARTING  # not ready before READY=1
        await rec.wait("process.notifier.ready")
        assert sup.status()[0]["status"] == "serving"
        # Two heartbeats, then silence: restarted 0.3 s after the last one.
        unhealthy = await rec.wait("process.notifier.unhealthy", within=10)
        assert "no sd_notify WATCHDOG=1 for 0.3 s" in unhealthy.data["reason"]
        await rec.wait("process.notifier.started", 2)
        await rec.wait("process.notifier.ready", 2)
    finally:
        await sup.stop()


async def test_heartbeats_keep_the_program_alive(tmp_path: Path) -> None:
    prog = ProgramSpec("beating", (PY, "-c", NOTIFY, "40"), ready="notify", watchdog_sec=0.5)
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        await rec.wait("process.beating.ready")
        await asyncio.sleep(1.0)  # real heartbeats every 50 ms for a 500 ms deadline
        assert not rec.of("process.beating.unhealthy")
        assert len(rec.of("process.beating.started")) == 1
    finally:
        await sup.stop()


async def test_sd_notify_from_a_helper_process_in_the_session(tmp_path: Path) -> None:
    # The datagram comes from a grandchild, attributed through its session id.
    helper = (
        "import os, socket, time\n"
        "a = os.environ['NOTIFY_SOCKET']\n"
        "a = '\\0' + a[1:] if a.startswith('@') else a\n"
        "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1\\nSTATUS=hi', a)\n"
        "time.sleep(1)\n"
    )
    parent = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {helper!r}])\n"
        "time.sleep(60)\n"
    )
    prog = ProgramSpec("parent", (PY, "-c", parent), ready="notify")
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        await rec.wait("process.parent.ready")
        assert sup.status()[0]["status"] == "hi"
    finally:
        await sup.stop()


@pytest.mark.skipif(shutil.which("systemd-notify") is None, reason="needs systemd-notify")
async def test_sd_notify_from_systemd_notify(tmp_path: Path) -> None:
    # The reference client, run from a shell script.
    script = "systemd-notify --ready --status=via-helper; sleep 60"
    prog = ProgramSpec("shelly", (script,), shell=True, ready="notify")
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        await rec.wait("process.shelly.ready")
    finally:
        await sup.stop()


async def test_dependent_starts_only_when_its_dependency_is_ready(tmp_path: Path) -> None:
    db = ProgramSpec("db", (PY, "-c", NOTIFY, "0"), ready="notify")
    app = ProgramSpec("app", SLEEP, depends_on=("db",))
    sup, rec = make(tmp_path, app, db)
    await sup.start()
    try:
        assert sup.state("app") is S.STOPPED
        assert next(p for p in sup.status() if p["name"] == "app")["waiting_for"] == ["db"]
        await rec.wait("process.app.started")
        types = rec.types()
        assert types.index("process.db.ready") < types.index("process.app.started")
    finally:
        await sup.stop()
    # Dependents stop first.
    exits = [e.data["instance"] for e in rec.of("process.app.exited") + rec.of("process.db.exited")]
    assert exits == ["app", "db"]
    order = [e.type for e in rec.events if e.type.endswith(".exited")]
    assert order == ["process.app.exited", "process.db.exited"]


@pytest.mark.parametrize(
    ("strategy", "restarted"),
    [("one_for_one", set()), ("one_for_all", {"a", "c"}), ("rest_for_one", {"c"})],
)
async def test_group_strategies(tmp_path: Path, strategy: str, restarted: set[str]) -> None:
    progs = [
        ProgramSpec(n, SLEEP, group="g", strategy=strategy, backoff=FAST)  # type: ignore[arg-type]
        for n in ("a", "b", "c")
    ]
    sup, rec = make(tmp_path, *progs)
    await sup.start()
    try:
        for n in "abc":
            await rec.wait(f"process.{n}.ready")
        before = {n: sup.pid(n) for n in "abc"}
        b = before["b"]
        assert b is not None
        os.kill(b, signal.SIGKILL)
        await rec.wait("process.b.started", 2)
        for n in restarted:
            await rec.wait(f"process.{n}.started", 2)
        after = {n: sup.pid(n) for n in "abc"}
        changed = {n for n in "ac" if after[n] != before[n]}
        assert changed == restarted
    finally:
        await sup.stop()


async def test_numprocs_and_control_by_program_or_instance(tmp_path: Path) -> None:
    sup, rec = make(tmp_path, ProgramSpec("w", SLEEP, numprocs=3))
    await sup.start()
    try:
        assert [p["name"] for p in sup.status()] == ["w:0", "w:1", "w:2"]
        await sup.stop_program("w:1")
        assert [p["state"] for p in sup.status()] == ["RUNNING", "STOPPED", "RUNNING"]
        await sup.restart_program("w")
        assert all(p["state"] == "RUNNING" for p in sup.status())
        assert len(rec.of("process.w.started")) == 6
    finally:
        await sup.stop()


async def test_apply_restarts_only_changed_programs(tmp_path: Path) -> None:
    a, b = ProgramSpec("a", SLEEP), ProgramSpec("b", SLEEP)
    sup, _ = make(tmp_path, a, b)
    await sup.start()
    try:
        pid_a, pid_b = sup.pid("a"), sup.pid("b")
        c = ProgramSpec("c", SLEEP)
        result = await sup.apply([a, ProgramSpec("b", SLEEP, env=(("X", "1"),)), c])
        assert result.changed == ("b",)
        assert result.unchanged == ("a",)
        assert result.added == ("c",)
        assert sup.pid("a") == pid_a
        assert sup.pid("b") not in (None, pid_b)
        assert sup.state("c") is S.RUNNING
        result = await sup.apply([a])
        assert set(result.removed) == {"b", "c"}
        assert sup.program_names() == ["a"]
    finally:
        await sup.stop()


async def test_leftovers_of_a_dead_run_are_ended(tmp_path: Path) -> None:
    pidfile = tmp_path / "gc.pid"
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    sup, _ = make(tmp_path, ProgramSpec("p", (PY, "-c", script)))
    await sup.start()
    child = sup.pid("p")
    grandchild = read_int(pidfile)
    assert child is not None
    abandon(sup)  # a daemon that died: its children are left running
    # The child is still our zombie-to-be; a fresh supervisor must end both.
    sup2, rec2 = make(tmp_path, ProgramSpec("p", SLEEP, autostart=False), leftover_grace=2.0)
    await sup2.start()
    try:
        ended = await rec2.wait("supervisor.leftovers.ended")
        assert set(ended.data["pids"]) == {child, grandchild}
        os.waitpid(child, 0)  # noqa: ASYNC222 - reap it: the test process is its parent
        assert not alive(grandchild)
    finally:
        await sup2.stop()


async def test_a_second_supervisor_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    sup, _ = make(tmp_path)
    await sup.start()
    try:
        other, _ = make(tmp_path)
        with pytest.raises(StateDirLockedError) as info:
            await other.start()
        assert info.value.pid == os.getpid()
    finally:
        await sup.stop()


def test_output_log_rotates_by_size(tmp_path: Path) -> None:
    log = OutputLog(tmp_path / "x.log", LogSpec(max_bytes=1024, backups=2, tail_lines=2))
    for i in range(100):
        log.write(f"line {i:04d} {'x' * 40}\n".encode())
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["x.log", "x.log.1", "x.log.2"]
    assert all(p.stat().st_size <= 1024 for p in tmp_path.iterdir())
    assert "line 0099" in (tmp_path / "x.log").read_text()
    assert log.tail()[-1].startswith("line 0099")


async def test_command_probes_gate_readiness_and_restart(tmp_path: Path) -> None:
    flag = tmp_path / "healthy"
    check = ("test", "-f", str(flag))
    prog = ProgramSpec(
        "gated",
        SLEEP,
        ready="probe",
        readiness=ProbeSpec("command", argv=check, interval=0.02, timeout=2.0),
        liveness=ProbeSpec("command", argv=check, interval=0.02, failure_threshold=2),
        backoff=FAST,
    )
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        await rec.wait("process.gated.started")
        await asyncio.sleep(0.1)
        assert sup.state("gated") is S.STARTING  # readiness keeps failing: not ready
        flag.touch()
        await rec.wait("process.gated.ready")
        flag.unlink()
        unhealthy = await rec.wait("process.gated.unhealthy")
        assert "test exited with 1" in unhealthy.data["reason"]
        await rec.wait("process.gated.started", 2)
        assert sup.state("gated") is S.STARTING  # not ready again until the flag is back
    finally:
        await sup.stop()


async def test_exit_watch_without_pidfd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from selfheal.supervisor import _proc

    monkeypatch.setattr(_proc, "_HAS_PIDFD", False)
    sup, rec = make(tmp_path, ProgramSpec("w", SLEEP, backoff=FAST))
    await sup.start()
    try:
        first = (await rec.wait("process.w.started")).data["pid"]
        os.kill(first, signal.SIGKILL)
        exited = await rec.wait("process.w.exited")
        assert exited.data["signal"] == "SIGKILL"
        await rec.wait("process.w.started", 2)
        assert not alive(first)
    finally:
        await sup.stop()


def test_pdeathsig_ends_the_child_when_its_parent_dies(tmp_path: Path) -> None:
    import subprocess

    script = (
        "import os, sys, time\n"
        "from selfheal.supervisor._proc import spawn\n"
        "p = spawn([sys.executable, '-c', 'import time; time.sleep(60)'], cwd=None,\n"
        "          env=dict(os.environ), stdout_fd=1, pdeathsig=True)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert alive(child)
        parent.kill()
        parent.wait()
        assert wait_until(lambda: not alive(child), 5)
    finally:
        parent.stdout.close()
        kill_quietly(child)


def test_supervisor_all_is_sorted_and_documented() -> None:
    import inspect

    import selfheal.supervisor as pkg

    names = list(pkg.__all__)
    assert names == sorted(
        names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)
    )
    for name in names:
        obj = getattr(pkg, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, name


async def test_http_liveness_probe_failing_with_500_restarts(tmp_path: Path) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = ProbeSpec(
        "http", f"http://127.0.0.1:{port}/healthz", interval=0.02, failure_threshold=2
    )
    sup, rec = make(tmp_path, ProgramSpec("api", SLEEP, liveness=probe, backoff=FAST))
    await sup.start()
    try:
        unhealthy = await rec.wait("process.api.unhealthy")
        assert "HTTP 500" in unhealthy.data["reason"]
        await rec.wait("process.api.started", 2)
    finally:
        await sup.stop()
        server.close()
