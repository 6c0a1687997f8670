"""Programs' output: the last lines in exit events, files that rotate, moved or removed under us."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from selfheal.events import EventBus
from selfheal.supervisor import LogSpec, ProcessState, ProgramSpec, Supervisor
from selfheal.supervisor._logs import OutputLog
from supervisor_helpers import PY, Recorder, make

pytestmark = pytest.mark.anyio
S = ProcessState

# About 8 MiB in 64 KiB writes, as fast as the pipe takes it, then a last line.
FLOOD = (
    "import sys\n"
    "chunk = ('x' * 1023 + '\\n') * 64\n"
    "for _ in range(128):\n"
    "    sys.stdout.write(chunk)\n"
    "sys.stdout.write('the end\\n')\n"
)


async def test_heavy_output_rotates_within_bounds(tmp_path: Path) -> None:
    bus = EventBus()
    rec = Recorder(bus)
    log = LogSpec(max_bytes=256 * 1024, backups=2, tail_lines=3)
    spec = ProgramSpec("flood", (PY, "-c", FLOOD), restart="never", log=log)
    sup = Supervisor([spec], bus=bus, state_dir=tmp_path / "s")
    await sup.start()
    try:
        exited = await rec.wait("process.flood.exited", within=30)
    finally:
        await sup.stop()
    assert exited.data["tail"][-1] == "the end"
    logs = tmp_path / "s" / "logs"
    names = sorted(p.name for p in logs.iterdir())
    assert names == ["flood.log", "flood.log.1", "flood.log.2"]
    for path in logs.iterdir():
        assert path.stat().st_size <= log.max_bytes + 65536
    assert (logs / "flood.log").read_text().endswith("the end\n")


def test_rotation_after_the_file_was_removed_keeps_logging(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "a.log"
    log = OutputLog(path, LogSpec(max_bytes=1024, backups=2, tail_lines=2))
    log.write(b"a" * 1000 + b"\n")
    path.unlink()  # an operator cleaning up, or a logrotate without copytruncate
    log.write(b"b" * 100 + b"\n")  # rotates: the file to move is gone
    log.write(b"still here\n")
    assert path.read_bytes().endswith(b"still here\n")
    shutil.rmtree(tmp_path / "logs")  # the whole directory, even: made again
    log.write(b"c" * 2000 + b"\n")
    log.write(b"back\n")
    assert path.with_name("a.log.1").read_bytes() == b"c" * 2000 + b"\n"
    assert path.read_bytes() == b"back\n"
    log.close()


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


def test_follow_survives_rotation(tmp_path: Path) -> None:
    from selfheal.cli._supervisor import _follow

    path = tmp_path / "p.log"
    path.write_text("old\n")
    follow = _follow(path)
    with path.open("a") as f:
        f.write("one\n")
    assert next(follow) == "one\n"
    path.rename(tmp_path / "p.log.1")
    path.write_text("two\n")
    assert next(follow) == "two\n"
    follow.close()
