"""A journal whose process is killed with SIGKILL keeps every event it reported as committed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from selfheal.store import SqliteJournalStore

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
