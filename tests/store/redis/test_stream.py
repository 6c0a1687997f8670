"""The fleet journal: one stream for all nodes, incidents folded once, no acked event lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from fleet_helpers import FleetRedis, wait_until
from selfheal.errors import JournalError
from selfheal.events import Event, EventBus
from selfheal.store import Journal, JournalOptions, JournalStore
from selfheal.store.redis import IncidentFolder, RecoveryLease, RedisJournalStore, connect

Factory = Callable[..., RedisJournalStore]


@pytest.fixture
def stores(redis_url: str, prefix: str) -> Iterator[Factory]:
    made: list[RedisJournalStore] = []

    def make(url: str = redis_url, **kwargs: object) -> RedisJournalStore:
        kwargs.setdefault("prefix", prefix)
        store = RedisJournalStore(url, **kwargs)  # type: ignore[arg-type]
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def _ev(etype: str, source: str = "node", ts: float | None = None, **data: object) -> Event:
    return Event(etype, source, "info", ts if ts is not None else time.time(), data)


def test_it_is_a_journal_store(stores: Factory) -> None:
    assert isinstance(stores(fold=False), JournalStore)


def test_every_node_writes_one_stream_that_any_node_reads(stores: Factory) -> None:
    a, b = stores(fold=False), stores(fold=False)
    a.write([_ev("health.db.failed", "a", password="hunter2")], [], [], now=0)
    b.write([_ev("process.web.exited", "b", exit_code=1)], [], [], now=0)
    a.write([_ev("health.db.passed", "a")], [], [], now=0)
    reader = stores(readonly=True)
    rows = reader.events()
    assert [(r.type, r.source) for r in rows] == [
        ("health.db.failed", "a"),
        ("process.web.exited", "b"),
        ("health.db.passed", "a"),
    ]
    assert rows[0].subject == "db"
    assert rows[0].data == {"password": "***"}  # secrets are masked as in the SQLite journal
    assert [r.type for r in reader.events(type="health.*")] == [
        "health.db.failed",
        "health.db.passed",
    ]
    assert [r.type for r in reader.events(limit=1)] == ["health.db.passed"]
    after = reader.events(after_seq=rows[0].seq)
    assert [r.seq for r in after] == [rows[1].seq, rows[2].seq]
    assert rows[0].seq < rows[1].seq < rows[2].seq


def test_since_filters_on_the_events_own_time(stores: Factory) -> None:
    a = stores(fold=False)
    now = time.time()
    a.write([_ev("x.a.old", ts=now - 3600), _ev("x.a.new", ts=now)], [], [], now=0)
    assert [r.type for r in a.events(since=now - 60)] == ["x.a.new"]


def test_the_stream_stays_bounded(stores: Factory, redis_url: str) -> None:
    a = stores(fold=False, max_len=100)
    for _ in range(10):
        a.write([_ev("x.y.z") for _ in range(100)], [], [], now=0)
    length = connect(redis_url).xlen(a.keys.stream)
    # MAXLEN ~ trims whole nodes of the stream: about 100, never the 1000 written.
    assert 100 <= length < 400


def test_one_incident_for_a_failure_every_node_saw(stores: Factory) -> None:
    nodes = [stores(lease_ttl=1.0) for _ in range(3)]
    for i, node in enumerate(nodes):
        node.write([_ev("health.db.failed", f"n{i}")], [], [], now=0)
    nodes[0].write(
        [_ev("recovery.db.started", "recovery", recovery_id="r1", rule="restart-db")], [], [], now=0
    )
    nodes[0].write(
        [_ev("recovery.db.succeeded", "recovery", recovery_id="r1", rule="restart-db")],
        [],
        [],
        now=0,
    )
    reader = stores(readonly=True)
    wait_until(lambda: [i.is_open for i in reader.incidents()] == [False], 10)
    (incident,) = reader.incidents()
    assert incident.subject == "db"
    assert incident.signals == 3
    assert incident.recoveries == 1
    assert incident.closed_by == "recovery.db.succeeded"
    (recovery,) = reader.recoveries()
    assert (recovery.id, recovery.outcome, recovery.rule) == ("r1", "succeeded", "restart-db")
    (summary,) = reader.mttr_by_subject()
    assert (summary.subject, summary.incidents, summary.open) == ("db", 1, 0)
    assert sum(n.folder is not None and n.folder.folding for n in nodes) == 1


def test_events_acknowledged_while_redis_restarts_are_all_stored(own_redis: FleetRedis) -> None:
    bus = EventBus()
    store = RedisJournalStore(own_redis.url, timeout=0.2, fold=False, close_timeout=20)
    journal = Journal(bus, store, options=JournalOptions(max_pending=1_000_000))
    journal.open()
    published: list[str] = []
    stop = threading.Event()

    def publisher() -> None:
        while not stop.is_set():
            event = _ev("load.gen.tick")
            bus.publish(event)
            published.append(event.id)
            time.sleep(0.0005)

    thread = threading.Thread(target=publisher)
    thread.start()
    try:
        wait_until(lambda: store.stored > 100, 10)
        own_redis.stop()
        stored_before = store.stored
        wait_until(lambda: store.buffered > 100, 10)  # acknowledged, waiting for Redis
        own_redis.start()  # same port, same append-only file
        wait_until(lambda: store.buffered == 0 and store.stored > stored_before, 20)
    finally:
        stop.set()
        thread.join()
    journal.close()  # everything accepted goes to Redis before close returns
    assert journal.dropped == 0
    assert store.dropped == 0
    assert journal.accepted == len(published)
    redis = connect(own_redis.url)
    ids = [fields["id"] for _, fields in redis.xrange(store.keys.stream)]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert set(ids) == set(published)


def test_a_full_outbox_refuses_and_counts(own_redis: FleetRedis) -> None:
    store = RedisJournalStore(own_redis.url, timeout=0.2, fold=False, max_buffer=10)
    own_redis.stop()
    try:
        store.write([_ev("a.b.c") for _ in range(8)], [], [], now=0)
        assert store.buffered == 8
        with pytest.raises(JournalError, match="max_buffer=10"):
            store.write([_ev("a.b.c") for _ in range(3)], [], [], now=0)
        assert store.dropped == 3
    finally:
        own_redis.start()
    assert store.flush(10)
    assert connect(own_redis.url).xlen(store.keys.stream) == 8
    store.close()


def test_a_dead_folders_pending_entries_are_claimed_and_folded(
    redis_url: str, prefix: str, stores: Factory
) -> None:
    writer = stores(fold=False)
    keys = writer.keys
    redis = connect(redis_url)
    writer.write([_ev("health.db.failed", "a"), _ev("health.db.passed", "a")], [], [], now=0)
    # A folder that read both entries and died before committing: they are pending on it,
    # and its lease runs out.
    redis.xgroup_create(keys.stream, keys.group, id="0", mkstream=True)
    redis.xreadgroup(keys.group, "dead-node", {keys.stream: ">"}, count=10)
    assert redis.xpending(keys.stream, keys.group)["pending"] == 2
    dead = RecoveryLease(redis, "journal-folder", ttl=0.3, holder="dead-node", prefix=prefix)
    assert dead.acquire() is not None
    folder = IncidentFolder(redis, keys, node="heir", ttl=5)
    wait_until(lambda: dead.info() is None, 5)
    folder.step()  # takes the lease and claims what the dead folder held
    assert folder.folding
    (incident,) = writer.incidents()
    assert not incident.is_open
    assert redis.xpending(keys.stream, keys.group)["pending"] == 0
    folder.stop()


def test_a_folder_that_lost_its_lease_cannot_commit(
    redis_url: str, prefix: str, stores: Factory
) -> None:
    writer = stores(fold=False)
    redis = connect(redis_url)
    folder = IncidentFolder(redis, writer.keys, node="slow", ttl=5, block=0.01)
    folder.step()
    assert folder.folding
    # The lease is taken from it (it was paused past its ttl and another node took over).
    redis.delete(folder.lease.key)
    assert RecoveryLease(redis, "journal-folder", prefix=prefix, holder="other").acquire()
    writer.write([_ev("health.db.failed", "a")], [], [], now=0)
    folder.step()
    assert not folder.folding
    assert writer.incidents() == []
    # Its entries stay pending for the new holder.
    assert redis.xpending(writer.keys.stream, writer.keys.group)["pending"] == 1


def test_read_only_refuses_writes(stores: Factory) -> None:
    with pytest.raises(JournalError, match="read-only"):
        stores(readonly=True).write([_ev("a.b.c")], [], [], now=0)


def test_bad_urls_say_what_is_valid() -> None:
    with pytest.raises(ValueError, match="Redis Cluster is not supported"):
        RedisJournalStore("redis+cluster://h:7000/0")
    with pytest.raises(ValueError, match="scheme 'mysql' is not supported"):
        RedisJournalStore("mysql://h/0")
