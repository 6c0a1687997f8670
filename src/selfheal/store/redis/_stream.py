"""The fleet's journal: one Redis stream of every node's events, and the incidents folded from it.

Writing (`write`, from a `Journal`'s writer thread) sends a batch as one script call that
XADDs every event (``MAXLEN ~``, so the stream stays bounded) and records the batch's number
under the publisher's own key. When Redis cannot be reached the batch goes to a local outbox,
and so does every later batch, in order, until a sender thread has got them all stored: an
event the `Journal` accepted is never lost because Redis restarted. A batch whose reply was
lost (Redis stored it, then died) is sent again and skipped by the script, since its number is
not above the one recorded, so a retry never stores an event twice. When the outbox is full
`write` refuses the batch with `JournalError` and counts it in `dropped`; the `Journal` then
counts and reports the drop.

Incidents and recoveries are not taken from the writing node's own tracker (each node sees only
its own events): `IncidentFolder` folds the whole stream into them, on one node at a time (see
`selfheal.store.redis._folder`). The queries read Redis directly, so ``selfheal events`` and
``selfheal incidents`` show the fleet's history from any machine.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from selfheal.errors import JournalError
from selfheal.events import Event, matches, subject_of
from selfheal.interfaces import Incident, MttrSummary, RecoveryRecord, StoredEvent
from selfheal.store._encoding import encode_data as _encode
from selfheal.store.redis._client import Script, connect, parse_url, redis_errors
from selfheal.store.redis._folder import IncidentFolder, incident_from_json, recovery_from_json
from selfheal.store.redis._keys import StreamKeys, seq_of, stream_id_of
from selfheal.store.redis._lease import node_name

__all__ = ["RedisJournalStore"]

logger = logging.getLogger("selfheal.journal.redis")

# ARGV: maxlen (0: none), first batch number, marker ttl ms, node, then one JSON array per
# event: [id, type, source, severity, subject, ts, data as JSON text]. One argument per event,
# not seven: packing arguments is most of what redis-py spends on a batch.
_XADD_BATCH = Script(
    """
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = tonumber(ARGV[2])
local n = #ARGV - 4
local added = 0
for i = 0, n - 1 do
  if first + i > last then
    local e = cjson.decode(ARGV[5 + i])
    local entry = {'id', e[1], 'type', e[2], 'source', e[3], 'severity', e[4],
      'subject', e[5], 'ts', e[6], 'data', e[7], 'node', ARGV[4]}
    if ARGV[1] == '0' then
      redis.call('XADD', KEYS[1], '*', unpack(entry))
    else
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(entry))
    end
    added = added + 1
  end
end
if first + n - 1 > last then redis.call('SET', KEYS[2], first + n - 1, 'PX', ARGV[3]) end
return added
"""
)
# Per script call: Lua's unpack and the argument list stay small, and one call stays short
# (a script blocks the whole Redis while it runs).
_CHUNK = 512
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Events the outbox sends in one script call, at most.
_DRAIN_MAX = 1024
_MARKER_TTL_MS = 86_400_000
# Seconds of clock difference between a publisher and Redis allowed when `since` bounds a scan.
_SKEW = 60.0
_PAGE = 500


class RedisJournalStore:
    """A `JournalStore` on Redis shared by a fleet: a stream of events, folded incidents.

    Args:
        url: A fleet URL (``redis://host:6379/0``, ``redis+sentinel://...``).
        prefix: Key prefix; nodes with the same prefix share one history.
        readonly: Open for queries only (the CLI): no outbox, no folding.
        max_len: Approximate bound of the stream (``MAXLEN ~``); None: unbounded.
        max_buffer: Events held in the outbox while Redis is unreachable, at most.
        fold: Run an `IncidentFolder` (one node of the fleet folds at a time).
        lease_ttl: Seconds the folder's lease lasts without renewal.
        timeout: Seconds a Redis command may take before Redis counts as unreachable.
        close_timeout: Seconds `close` keeps trying to store what the outbox holds.
        client: A redis-py client to use instead of connecting to `url` (tests).

    Raises:
        ValueError: If `url` is not a supported Redis URL.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "selfheal",
        readonly: bool = False,
        max_len: int | None = 1_000_000,
        max_buffer: int = 100_000,
        fold: bool = True,
        lease_ttl: float = 10.0,
        timeout: float = 1.0,
        close_timeout: float = 5.0,
        client: Any = None,
    ) -> None:
        self._url = parse_url(url)
        self.keys = StreamKeys(prefix)
        self.readonly = readonly
        self.max_len = max_len
        self.max_buffer = max_buffer
        self.close_timeout = close_timeout
        self._redis = client if client is not None else connect(self._url, timeout=timeout)
        self._errors = redis_errors()
        # A new name per store: batch numbers restart at 1 with each one.
        self.node = f"{node_name()}:{os.urandom(3).hex()}"
        self._batch_no = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._outbox: deque[tuple[int, list[Any], int]] = deque()  # (first no, args, count)
        self._buffered = 0
        self._closing = False
        self._sender: threading.Thread | None = None
        #: Events refused because the outbox was full, or still in it when `close` gave up.
        self.dropped = 0
        #: Events stored in Redis by this store.
        self.stored = 0
        self.folder: IncidentFolder | None = None
        if fold and not readonly:
            self.folder = IncidentFolder(self._redis, self.keys, node=self.node, ttl=lease_ttl)
            self.folder.start()

    def __repr__(self) -> str:
        return (
            f"RedisJournalStore({self._url.safe!r}, prefix={self.keys.prefix!r}, "
            f"buffered={self._buffered}, dropped={self.dropped})"
        )

    @property
    def buffered(self) -> int:
        """Return how many accepted events wait in the outbox for Redis."""
        return self._buffered

    # ----------------------------------------------------------------- writing

    def write(
        self,
        events: Sequence[Event],
        incidents: Sequence[Incident],
        recoveries: Sequence[RecoveryRecord],
        *,
        now: float,
    ) -> None:
        """Store the events (see the module docs; incidents are folded from the stream).

        Raises:
            JournalError: If Redis is unreachable and the outbox is full; the batch is
                counted in `dropped`.
        """
        if self.readonly:
            raise JournalError("this RedisJournalStore is read-only")
        del incidents, recoveries  # folded fleet-wide from the stream instead
        batches = self._encode(events, now)
        with self._lock:
            if self._outbox:  # keep the order: behind what waits already
                self._queue(batches)
                return
        for i, batch in enumerate(batches):
            try:
                self._send(batch)
            except self._errors as exc:
                logger.warning("redis journal: %s unreachable (%r); buffering", self._url.safe, exc)
                with self._lock:
                    self._queue(batches[i:])
                return

    def _encode(self, events: Sequence[Event], now: float) -> list[tuple[int, list[Any], int]]:
        out: list[tuple[int, list[Any], int]] = []
        dumps = _DUMPS
        for start in range(0, len(events), _CHUNK):
            chunk = events[start : start + _CHUNK]
            args = [
                dumps(
                    [
                        e.id,
                        e.type,
                        e.source,
                        str(e.severity),
                        subject_of(e.type, e.source),
                        repr(float(e.timestamp or now)),
                        _encode(e.data),
                    ]
                )
                for e in chunk
            ]
            out.append((self._batch_no + 1, args, len(chunk)))
            self._batch_no += len(chunk)
        return out

    def _queue(self, batches: list[tuple[int, list[Any], int]]) -> None:
        # Called with the lock held.
        count = sum(b[2] for b in batches)
        if self._buffered + count > self.max_buffer:
            self.dropped += count
            raise JournalError(
                f"redis journal: {self._buffered} events wait for {self._url.safe}; "
                f"{count} more dropped (max_buffer={self.max_buffer})"
            )
        self._outbox.extend(batches)
        self._buffered += count
        if self._sender is None:
            self._sender = threading.Thread(
                target=self._drain, name="selfheal-redis-journal", daemon=True
            )
            self._sender.start()
        self._changed.notify_all()

    def _send(self, batch: tuple[int, list[Any], int]) -> None:
        first, args, count = batch
        maxlen = self.max_len or 0
        _XADD_BATCH(
            self._redis,
            [self.keys.stream, self.keys.publisher(self.node)],
            [maxlen, first, _MARKER_TTL_MS, self.node, *args],
        )
        self.stored += count

    def _drain(self) -> None:
        delay = 0.05
        while True:
            with self._lock:
                self._changed.wait_for(lambda: bool(self._outbox) or self._closing)
                if not self._outbox:
                    self._sender = None
                    return
                # Batches are numbered one after another: the first ones travel as one, so
                # the outbox drains faster than publishers fill it.
                taken: list[tuple[int, list[Any], int]] = []
                for queued in self._outbox:
                    if taken and sum(b[2] for b in taken) + queued[2] > _DRAIN_MAX:
                        break
                    taken.append(queued)
                batch = (taken[0][0], [a for b in taken for a in b[1]], sum(b[2] for b in taken))
            try:
                self._send(batch)
            except self._errors as exc:
                logger.debug("redis journal: still unreachable: %r", exc)
                with self._lock:
                    # Woken early by close, which then waits close_timeout itself.
                    self._changed.wait(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.05
            with self._lock:
                for _ in taken:
                    self._outbox.popleft()
                self._buffered -= batch[2]
                self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the outbox is empty (every accepted event is in Redis).

        Args:
            timeout: Real seconds to wait at most; None waits as long as it takes.

        Returns:
            True when empty, False on timeout.
        """
        with self._lock:
            return self._changed.wait_for(lambda: not self._outbox, timeout)

    def prune(self, *, before: float | None, max_rows: int | None) -> int:
        """Trim the stream, delete closed incidents and ended recoveries; return events cut.

        Nothing happens while Redis is unreachable: another pass comes.
        """
        try:
            return self._prune(before, max_rows)
        except self._errors as exc:
            logger.debug("redis journal: retention pass skipped: %r", exc)
            return 0

    def _prune(self, before: float | None, max_rows: int | None) -> int:
        deleted = 0
        r, keys = self._redis, self.keys
        if before is not None:
            deleted += int(r.xtrim(keys.stream, minid=f"{int(before * 1000)}-0", approximate=True))
            self._prune_folded(before)
        if max_rows is not None:
            deleted += int(r.xtrim(keys.stream, maxlen=max_rows, approximate=True))
        return deleted

    def _prune_folded(self, before: float) -> None:
        r, keys = self._redis, self.keys
        old = [i.id for i in self.incidents() if i.closed_at is not None and i.closed_at < before]
        if old:
            r.hdel(keys.incidents, *old)
        stale = [
            rec.id
            for rec in self._all_recoveries()
            if (rec.ended_at if rec.ended_at is not None else rec.started_at) < before
        ]
        if stale:
            r.hdel(keys.recoveries, *stale)

    def close(self) -> None:
        """Try `close_timeout` seconds to store what the outbox holds, then stop."""
        if not self.flush(self.close_timeout):
            with self._lock:
                left = self._buffered
                self.dropped += left
            logger.error("redis journal: %d events never reached %s; dropped", left, self._url.safe)
        with self._lock:
            self._closing = True
            self._outbox.clear()
            self._buffered = 0
            self._changed.notify_all()
        if self.folder is not None:
            self.folder.stop()

    # ----------------------------------------------------------------- queries

    def open_incidents(self) -> list[Incident]:
        """Return the fleet's open incidents ([] while Redis is unreachable).

        A `Journal` asks this as it opens; the fleet's incidents are folded elsewhere, so an
        unreachable Redis must not keep a node from starting.
        """
        try:
            return self.incidents(open_only=True)
        except JournalError as exc:
            logger.warning("redis journal: %s", exc)
            return []

    def next_incident_id(self) -> int:
        """Return an id above every incident's (ids are assigned by the folder)."""
        try:
            return int(self._redis.get(self.keys.next_incident) or 1)
        except self._errors:
            return 1

    def events(
        self,
        *,
        since: float | None = None,
        type: str | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> list[StoredEvent]:
        """Return up to `limit` matching events, oldest first (see `JournalStore.events`)."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if after_seq is not None:
            return self._scan(f"({stream_id_of(after_seq)}", "+", since, type, limit, newest=False)
        # Entries are added after their events happened: an entry older than `since` (less the
        # allowed clock skew) cannot hold a matching event, so the scan stops there.
        low = "-" if since is None else f"{max(0, int((since - _SKEW) * 1000))}-0"
        out = self._scan(low, "+", since, type, limit, newest=True)
        out.reverse()
        return out

    def _scan(
        self,
        low: str,
        high: str,
        since: float | None,
        type: str | None,
        limit: int,
        *,
        newest: bool,
    ) -> list[StoredEvent]:
        """Return up to `limit` matches between stream ids, newest or oldest first, by pages."""
        out: list[StoredEvent] = []
        while len(out) < limit:
            if newest:
                page = self._read(self._redis.xrevrange, self.keys.stream, high, low, _PAGE)
            else:
                page = self._read(self._redis.xrange, self.keys.stream, low, high, _PAGE)
            for sid, fields in page:
                event = _stored(sid, fields)
                if _wanted(event, since, type):
                    out.append(event)
                    if len(out) >= limit:
                        break
            if len(page) < _PAGE:
                break
            if newest:
                high = f"({page[-1][0]}"
            else:
                low = f"({page[-1][0]}"
        return out

    def incidents(self, *, open_only: bool = False, limit: int | None = None) -> list[Incident]:
        """Return the fleet's incidents, newest first."""
        rows = [incident_from_json(v) for v in self._read(self._redis.hvals, self.keys.incidents)]
        if open_only:
            rows = [i for i in rows if i.is_open]
        rows.sort(key=lambda i: i.id, reverse=True)
        return rows if limit is None else rows[:limit]

    def _all_recoveries(self) -> list[RecoveryRecord]:
        return [recovery_from_json(v) for v in self._read(self._redis.hvals, self.keys.recoveries)]

    def _read(self, command: Callable[..., Any], *args: Any) -> Any:
        """Run a read command; Redis not answering is a `JournalError` naming the URL."""
        try:
            return command(*args)
        except self._errors as exc:
            raise JournalError(
                f"cannot reach the fleet's journal at {self._url.safe}: {exc}"
            ) from exc

    def recoveries(self, *, limit: int = 100) -> list[RecoveryRecord]:
        """Return the fleet's recoveries, newest first."""
        rows = self._all_recoveries()
        rows.sort(key=lambda r: r.started_at, reverse=True)
        return rows[:limit]

    def mttr_by_subject(self) -> list[MttrSummary]:
        """Return incident statistics per subject, by subject name."""
        by_subject: dict[str, list[Incident]] = {}
        for incident in self.incidents():
            by_subject.setdefault(incident.subject, []).append(incident)
        out = []
        for subject in sorted(by_subject):
            rows = by_subject[subject]
            ttrs = [i.ttr for i in rows if i.ttr is not None]
            ttds = [i.ttd for i in rows if i.ttd is not None]
            out.append(
                MttrSummary(
                    subject,
                    len(rows),
                    sum(1 for i in rows if i.is_open),
                    sum(ttrs) / len(ttrs) if ttrs else None,
                    max(ttrs) if ttrs else None,
                    sum(ttds) / len(ttds) if ttds else None,
                    max(i.opened_at for i in rows),
                )
            )
        return out


def _stored(sid: str, fields: dict[str, str]) -> StoredEvent:
    try:
        data = json.loads(fields.get("data", "{}"))
    except ValueError:
        data = {"raw": fields.get("data", "")}
    try:
        ts = float(fields.get("ts", "0"))
    except ValueError:
        ts = 0.0
    return StoredEvent(
        seq_of(sid),
        fields.get("id", ""),
        fields.get("type", ""),
        fields.get("source", ""),
        fields.get("severity", ""),
        fields.get("subject", ""),
        ts,
        data if isinstance(data, dict) else {"value": data},
    )


def _wanted(event: StoredEvent, since: float | None, type: str | None) -> bool:
    if since is not None and event.timestamp < since:
        return False
    return not type or matches(type, event.type)
