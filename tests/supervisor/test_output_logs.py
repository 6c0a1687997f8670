"""Programs' output files: rotation under heavy output, and files moved or removed under us."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from selfheal.events import EventBus
from selfheal.supervisor import LogSpec, ProgramSpec, Supervisor
from selfheal.supervisor._logs import OutputLog
from supervisor_helpers import PY, Recorder

pytestmark = pytest.mark.anyio

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
