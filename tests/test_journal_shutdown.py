"""The journal commits what it accepted on stop, even when the shared thread pool is busy."""

from __future__ import annotations

import asyncio
import concurrent.futures
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
