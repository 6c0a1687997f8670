"""What the journal accepted is on disk: after a SIGKILL (what it reported as committed), a
stop while the loop's thread pool is saturated, or an interpreter exit without close()."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from selfheal import EventBus
from selfheal.store import Journal, SqliteJournalStore

WRITER = """
import json, sys
from selfheal import EventBus
from selfheal.store import Journal, JournalOptions

bus = EventBus()

def report(batch):
    # Printed only after the commit returned: everything up to n is on disk.
    print(json.dumps({"n": batch[-1].data["n"], "size": len(batch)}), flush=True)

# Publishers wait for room rather than drop, so the sequence has no gaps.
journal = Journal(bus, sys.argv[1], options=JournalOptions(block_timeout=60), on_commit=report)
journal.open()
n = 0
while True:
    bus.emit("load.writer.tick", "writer", n=n)
    n += 1
"""


def test_sigkill_keeps_every_committed_event(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    reports: list[dict[str, int]] = []
    enough = threading.Event()
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                reports.append(json.loads(line))
                if len(reports) >= 3 and reports[-1]["n"] >= 5_000:
                    enough.set()
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert enough.wait(30), f"writer did not commit enough: {reports[-1:]}, {proc.poll()}"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        reader.join(10)
    assert proc.returncode == -signal.SIGKILL
    last_reported = max(r["n"] for r in reports)

    store = SqliteJournalStore(db)  # reopening recovers the WAL
    events = store.events(type="load.*", limit=10_000_000)
    numbers = [e.data["n"] for e in events]
    # Every reported event is there, in order, with none missing before it; events committed
    # after the last report may be there too.
    assert numbers[: last_reported + 1] == list(range(last_reported + 1))
    assert numbers == list(range(len(numbers)))
    store.close()


@pytest.mark.anyio
async def test_stop_commits_while_the_default_executor_is_saturated(db: Path) -> None:
    # stop() ran close() through asyncio.to_thread: with every worker of the loop's default
    # pool held by hung user code, stop() never ran, and the daemon's shutdown hung with the
    # accepted events uncommitted.
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    loop.set_default_executor(pool)
    release = threading.Event()
    blocker = loop.run_in_executor(None, release.wait, 10)
    bus = EventBus()
    journal = Journal(bus, db)
    await journal.start()
    try:
        for n in range(100):
            bus.emit("app.tick", "t", n=n)
        await asyncio.wait_for(journal.stop(), 5)
    finally:
        release.set()
        await blocker
        pool.shutdown(wait=False)
    assert len(SqliteJournalStore(db, readonly=True).events(limit=1000)) == 100


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


def test_events_accepted_before_a_normal_exit_are_committed(db: Path) -> None:
    # The writer is a daemon thread: at interpreter exit it was simply stopped, and every
    # event accepted but not yet committed was lost without a word.
    done = subprocess.run(
        [sys.executable, "-c", EXITS_WITHOUT_CLOSE, str(db)], timeout=60, check=False
    )
    assert done.returncode == 0
    store = SqliteJournalStore(db, readonly=True)
    assert len(store.events(limit=100_000)) == 20_000
