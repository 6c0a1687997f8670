"""The article's event-driven recovery example, moved onto selfheal's API.

The article wires an `EventBus`, a `RecoveryManager` and two recovery functions,
`recover_database` (restart the primary if it answers, else fail over to a replica, then wait
for a connection and verify) and `recover_cache` (flush, restart if needed, wait, pre-warm),
and its monitor publishes ``system.database.failure`` / ``system.cache.failure``. Here the
"servers" are real TCP listeners on 127.0.0.1, the waits have timeouts, nothing prints, and
the journal records the incidents the example only printed about.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfheal import Event, EventBus
from selfheal.recovery import RecoveryManager
from selfheal.store import Journal


class TcpService:
    """A TCP listener standing in for a database or cache server."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.starts = 0

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen()
        self.port = sock.getsockname()[1]
        self.sock = sock
        self.starts += 1
        self.thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
        self.thread.start()

    def _serve(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()

    def stop(self) -> None:
        if self.sock is not None:
            # shutdown wakes the thread blocked in accept(); close alone would not on Linux.
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.sock = None
        if self.thread is not None:
            self.thread.join(5)
            self.thread = None


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_connection(port: int, timeout: float) -> None:
    # The article's wait_for_database_connection(timeout=60), with the timeout honoured.
    deadline = time.monotonic() + timeout
    while not ping(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"127.0.0.1:{port} not reachable within {timeout}s")
        time.sleep(0.01)


@pytest.fixture
def services() -> Iterator[dict[str, TcpService]]:
    found = {"primary": TcpService(), "replica": TcpService(), "cache": TcpService()}
    for svc in found.values():
        svc.start()  # bind once to learn a free port, then take them all down
        svc.stop()
    yield found
    for svc in found.values():
        svc.stop()


def test_article_event_driven_recovery(services: dict[str, TcpService], tmp_path: Path) -> None:
    primary, replica, cache_server = services["primary"], services["replica"], services["cache"]
    cache: dict[str, str] = {"stale": "value"}
    log: list[str] = []
    # Recoveries take a while; the test lets them finish after the monitor's second round.
    slow = threading.Event()

    # --- the article's example, nearly verbatim -----------------------------------------
    event_bus = EventBus()
    journal = Journal(event_bus, tmp_path / "journal.db")
    journal.open()
    recovery = RecoveryManager(event_bus)

    def recover_database(event: Event) -> None:
        """Handle database failure recovery."""
        assert slow.wait(10)
        db_port = event.data["port"]
        log.append(f"recovering database on {event.data['host']}")
        if ping(db_port):
            primary.stop()
            primary.start()  # restart_database_service(db_host)
            port = primary.port
        else:
            replica.start()  # activate_database_replica()
            port = replica.port
        wait_for_connection(port, timeout=5)
        if not ping(port):  # verify_database_integrity()
            raise RuntimeError("database answered, then went away")
        log.append(f"database recovery completed on port {port}")

    def recover_cache(event: Event) -> None:
        """Handle cache failure recovery."""
        assert slow.wait(10)
        cache.clear()  # flush_cache()
        if not ping(cache_server.port):  # is_cache_service_running()
            cache_server.start()  # restart_cache_service()
        wait_for_connection(cache_server.port, timeout=5)
        cache["popular-products"] = "prewarmed"  # prewarm_critical_caches()
        log.append("cache recovery completed")

    recovery.register_recovery("system.database.failure", recover_database)
    recovery.register_recovery("system.cache.failure", recover_cache)

    # "Somewhere in monitoring code, events are published" (one round of monitor_services).
    def monitor_services() -> None:
        if not ping(primary.port):
            event_bus.publish(
                Event(
                    type="system.database.failure",
                    source="monitor",
                    severity="critical",
                    timestamp=time.time(),
                    data={"host": "127.0.0.1", "port": primary.port},
                )
            )
        if not ping(cache_server.port):
            event_bus.publish(
                Event(
                    type="system.cache.failure",
                    source="monitor",
                    severity="warning",
                    timestamp=time.time(),
                    data={"service": "cache"},
                )
            )

    # ---------------------------------------------------------------------------------------

    outcomes: list[Event] = []
    event_bus.subscribe("system.*", lambda e: outcomes.append(e) if e.source != "monitor" else None)
    monitor_services()
    monitor_services()  # a second round while recoveries run: deduplicated per type and source
    slow.set()
    assert recovery.wait(20)
    journal.flush(10)
    journal.close()

    assert sorted(e.type for e in outcomes) == [
        "system.cache.failure.recovered",
        "system.database.failure.recovered",
    ]
    # The primary was down, so the database failed over to the replica.
    assert (primary.starts, replica.starts) == (1, 2)
    assert ping(replica.port)
    assert cache == {"popular-products": "prewarmed"}
    assert f"database recovery completed on port {replica.port}" in log
    # Each subject had one incident, opened by the failure and closed by its recovery.
    incidents = {i.subject: i for i in journal.incidents()}
    assert set(incidents) == {"database", "cache"}
    db_incident = incidents["database"]
    assert db_incident.opened_by == "system.database.failure"
    assert db_incident.closed_by == "system.database.failure.recovered"
    assert db_incident.ttr is not None
    assert db_incident.ttr >= 0
    summary = {s.subject: s for s in journal.mttr_by_subject()}
    assert summary["cache"].incidents == 1
    assert summary["cache"].open == 0
