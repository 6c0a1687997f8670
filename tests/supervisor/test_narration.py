"""The supervisor tells operators each state change in supervisord's words, at its level."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from selfheal.events import log_level
from selfheal.supervisor import BackoffSpec, IntensitySpec, ProgramSpec
from supervisor_helpers import PY, SLEEP, make

pytestmark = pytest.mark.anyio


async def test_lines_for_spawn_running_exit_stop_and_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="selfheal.supervisor")
    crash = ProgramSpec(
        "crash",
        (PY, "-c", "raise SystemExit(3)"),
        backoff=BackoffSpec(initial=0.001, maximum=0.001, jitter=0.0),
        intensity=IntensitySpec(max_restarts=1, window=60),
    )
    sup, rec = make(tmp_path, crash, ProgramSpec("web", SLEEP))
    await sup.start()
    try:
        await rec.wait("process.crash.fatal")
        await rec.wait("process.web.ready")
        web = sup.pid("web")
    finally:
        await sup.stop()
    records = [r for r in caplog.records if r.name == "selfheal.supervisor"]
    lines = [r.getMessage() for r in records]
    first = lines.index(f"spawned: 'web' with pid {web}")
    assert lines[first + 1] == "success: web entered RUNNING state (ready at spawn)"
    assert any(
        line.startswith("exited: crash (exit status 3; not expected, after ") for line in lines
    )
    assert "gave up: crash entered FATAL state, more than 1 restarts in 60 s" in lines
    assert any(line.startswith("stopped: web (terminated by SIGTERM, after ") for line in lines)
    assert "stopped: every program (2 process(es))" in lines
    # The level is the event's; the event's data goes along for JSON logs.
    by_message = {r.getMessage().split(" (")[0]: r for r in records}
    fatal = rec.of("process.crash.fatal")[0]
    gave_up = next(r for r in records if r.getMessage().startswith("gave up: crash"))
    assert gave_up.levelno == log_level(fatal.severity) == logging.CRITICAL
    assert by_message["exited: crash"].levelno == logging.ERROR
    assert gave_up.fields == {"event": "process.crash.fatal", "data": dict(fatal.data)}  # type: ignore[attr-defined]
    for line in lines:  # for people: no Python reprs of containers or None
        assert "{'" not in line
        assert "None" not in line
