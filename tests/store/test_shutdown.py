"""The journal commits what it accepted on stop, even when the shared thread pool is busy."""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from selfheal import EventBus
from selfheal.store import Journal, SqliteJournalStore


@pytest.mark.anyio
async def test_stop_commits_while_the_default_executor_is_saturated(tmp_path: Path) -> None:
    # stop() ran close() through asyncio.to_thread: with every worker of the loop's default
    # pool held by hung user code, stop() never ran, and the daemon's shutdown hung with the
    # accepted events uncommitted.
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    loop.set_default_executor(pool)
    release = threading.Event()
    blocker = loop.run_in_executor(None, release.wait, 10)
    bus = EventBus()
    journal = Journal(bus, tmp_path / "j.db")
    await journal.start()
    try:
        for n in range(100):
            bus.emit("app.tick", "t", n=n)
        await asyncio.wait_for(journal.stop(), 5)
    finally:
        release.set()
        await blocker
        pool.shutdown(wait=False)
    assert len(SqliteJournalStore(tmp_path / "j.db", readonly=True).events(limit=1000)) == 100


EXITS_WITHOUT_CLOSE = """
import sys
from selfheal import EventBus
from selfheal.store import Journal

bus = EventBus()
journal = Journal(bus, sys.argv[1])
journal.open()
for n in range(20_000):
    bus.emit("load.writer.tick", "writer", n=n)
# No close(): the script ends (or sys.exit() is called) with events still buffered.
"""


def test_events_accepted_before_a_normal_exit_are_committed(tmp_path: Path) -> None:
    # The writer is a daemon thread: at interpreter exit it was simply stopped, and every
    # event accepted but not yet committed was lost without a word.
    db = tmp_path / "j.db"
    done = subprocess.run(
        [sys.executable, "-c", EXITS_WITHOUT_CLOSE, str(db)], timeout=60, check=False
    )
    assert done.returncode == 0
    store = SqliteJournalStore(db, readonly=True)
    assert len(store.events(limit=100_000)) == 20_000


def test_retention_prunes_recoveries_a_crash_left_running(tmp_path: Path) -> None:
    # A daemon killed mid-recovery never records its end: the row stayed "running", and
    # retention (which only pruned ended recoveries) kept it for ever.
    from selfheal.store import RecoveryRecord

    store = SqliteJournalStore(tmp_path / "j.db")
    store.write(
        [],
        [],
        [
            RecoveryRecord("orphan", "web", "rule", started_at=1_000.0),
            RecoveryRecord("recent", "web", "rule", started_at=9_000.0),
            RecoveryRecord("old-done", "web", "rule", 1_000.0, 1_001.0, "succeeded"),
        ],
        now=10_000.0,
    )
    store.prune(before=5_000.0, max_rows=None)
    assert [r.id for r in store.recoveries()] == ["recent"]
    store.close()
