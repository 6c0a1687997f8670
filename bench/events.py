"""Events per second through the bus into the journal, against plain sqlite3 executemany.

Three measurements, interleaved over `--repeats` rounds so that machine noise hits them alike:

1. baseline: `sqlite3` ``executemany`` of the same rows (built before the clock starts) into a
   fresh file with the journal's schema, WAL and ``synchronous=NORMAL``, one transaction,
   committed: rows per second.
2. journal: the same events published with ``bus.publish`` on a bus with a `Journal`
   subscribed, timed until `Journal.flush` says all are committed: events per second, and the
   ratio to the baseline (target >= 0.5). The same with ``bus.emit``, which also builds each
   `Event` (the baseline's rows are built before its clock starts), next to ``bus.emit`` with
   no journal at all, which bounds what any subscriber can reach.
3. latency: each ``bus.publish`` call timed while the journal writes behind it (p50, p99,
   p99.9, max), next to the same publish on a bus whose only subscriber does nothing.

Usage: ``.venv/bin/python bench/events.py [--events 100000] [--repeats 5]``; results are also
written to ``bench/results/events.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from selfheal import Event, EventBus
from selfheal.events import subject_of
from selfheal.store import Journal

# The baseline writes the journal's own rows with the journal's own statements; the bench
# measures what the Journal adds on top, so it reads them from where the store keeps them.
from selfheal.store._encoding import encode_data
from selfheal.store._schema import INSERT_EVENT, SCHEMA


def make_events(n: int) -> list[Event]:
    now = time.time()
    return [
        Event("bench.worker.tick", "bench", "info", now + i * 1e-6, {"n": i, "host": "web-1"})
        for i in range(n)
    ]


def fresh(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def baseline(events: list[Event], path: Path) -> float:
    rows = [
        (
            e.id,
            e.type,
            e.source,
            str(e.severity),
            subject_of(e.type, e.source),
            e.timestamp,
            encode_data(e.data),
        )
        for e in events
    ]
    fresh(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    gc.collect()
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(INSERT_EVENT, rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(rows) / elapsed


def through_journal(events: list[Event], path: Path, *, emit: bool) -> float:
    fresh(path)
    bus = EventBus()
    journal = Journal(bus, path)
    journal.open()
    gc.collect()
    publish = bus.publish
    start = time.perf_counter()
    if emit:
        for e in events:
            bus.emit("bench.worker.tick", "bench", "info", n=e.data["n"], host="web-1")
    else:
        for e in events:
            publish(e)
    assert journal.flush(timeout=600)
    elapsed = time.perf_counter() - start
    journal.close()
    assert journal.committed == len(events), (journal.committed, journal.dropped)
    return len(events) / elapsed


def emit_only(events: list[Event]) -> float:
    bus = EventBus()
    bus.subscribe("*", lambda e: None)
    gc.collect()
    start = time.perf_counter()
    for e in events:
        bus.emit("bench.worker.tick", "bench", "info", n=e.data["n"], host="web-1")
    return len(events) / (time.perf_counter() - start)


def latencies(events: list[Event], path: Path | None) -> list[int]:
    bus = EventBus()
    journal: Journal | None = None
    if path is None:
        bus.subscribe("*", lambda e: None)
    else:
        fresh(path)
        journal = Journal(bus, path)
        journal.open()
    clock = time.perf_counter_ns
    out = []
    gc.collect()
    for e in events:
        t0 = clock()
        bus.publish(e)
        out.append(clock() - t0)
    if journal is not None:
        assert journal.flush(timeout=600)
        journal.close()
    return out


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.events < 1 or args.repeats < 1:
        parser.error("--events and --repeats must be >= 1")

    events = make_events(args.events)
    runs: dict[str, list[float]] = {
        "baseline": [],
        "journal_publish": [],
        "journal_emit": [],
        "emit_no_journal": [],
    }
    lat_journal: list[int] = []
    lat_plain: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        steps: list[tuple[str, Callable[[], float]]] = [
            ("baseline", lambda: baseline(events, path)),
            ("journal_publish", lambda: through_journal(events, path, emit=False)),
            ("journal_emit", lambda: through_journal(events, path, emit=True)),
            ("emit_no_journal", lambda: emit_only(events)),
        ]
        for _ in range(args.repeats):
            for name, step in steps:
                runs[name].append(step())
            lat_journal += latencies(events, path)
            lat_plain += latencies(events, None)

    med = {name: statistics.median(values) for name, values in runs.items()}
    result = {
        "events": args.events,
        "repeats": args.repeats,
        "rate_median": med,
        "rate_all": runs,
        "ratio_publish": med["journal_publish"] / med["baseline"],
        "ratio_emit": med["journal_emit"] / med["baseline"],
        "latency_us": {
            name: {
                "p50": pct(values, 0.50),
                "p99": pct(values, 0.99),
                "p99.9": pct(values, 0.999),
                "max": max(values) / 1000.0,
            }
            for name, values in (("with_journal", lat_journal), ("no_journal", lat_plain))
        },
    }
    print(f"{args.events} events x {args.repeats} rounds (medians)")
    print(f"  sqlite3 executemany (baseline)   {med['baseline']:>12,.0f} rows/s")
    print(
        f"  bus.publish -> Journal, committed {med['journal_publish']:>12,.0f} events/s"
        f"  ratio {result['ratio_publish']:.2f}"
    )
    print(
        f"  bus.emit    -> Journal, committed {med['journal_emit']:>12,.0f} events/s"
        f"  ratio {result['ratio_emit']:.2f}"
    )
    print(f"  (bus.emit alone, no journal       {med['emit_no_journal']:>12,.0f} events/s)")
    for name, lat in result["latency_us"].items():  # type: ignore[attr-defined]
        print(
            f"  publish latency {name:<13} p50 {lat['p50']:6.2f} us  p99 {lat['p99']:7.2f} us"
            f"  p99.9 {lat['p99.9']:8.2f} us  max {lat['max']:9.1f} us"
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "events.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
