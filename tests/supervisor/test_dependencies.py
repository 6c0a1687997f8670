"""Dependencies start in order and stop in reverse; a group restarts together by its strategy."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from selfheal.supervisor import ProcessState, ProgramSpec
from supervisor_helpers import FAST, NOTIFY, PY, SLEEP, make

pytestmark = pytest.mark.anyio
S = ProcessState


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
