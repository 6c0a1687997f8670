"""Folding the fleet's event stream into incidents and recoveries, on one node at a time.

Every node that writes the stream runs an `IncidentFolder`; a lease elects the one that
folds. It reads the stream through a consumer group, so an entry is delivered to one consumer
and stays pending until acknowledged. The folder runs the journal's `IncidentTracker` over the
entries in stream order and commits the incidents and recoveries they changed, the position
reached and the XACK of the entries in one script that first checks the folder still holds
the lease (its fencing token): a folder that lost its lease (paused, partitioned) cannot
overwrite what its successor folded.

When the folding node dies, its lease expires and another node's folder takes it; that one
first claims every pending entry (XAUTOCLAIM) and folds those, then reads on. Entries up to
the committed position are never folded twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.events import SIGNAL_SEGMENTS, Event
from selfheal.interfaces import Incident, RecoveryRecord
from selfheal.store import IncidentTracker
from selfheal.store._journal import _track as track
from selfheal.store.redis._client import Script, redis_errors
from selfheal.store.redis._keys import StreamKeys
from selfheal.store.redis._lease import RecoveryLease

__all__ = ["IncidentFolder", "incident_from_json", "recovery_from_json"]

logger = logging.getLogger("selfheal.journal.redis")

# KEYS: lease, incidents, open, recoveries, position, stream, next id.
# ARGV: token, group, last folded id ('' for none), next id, then the incidents as a count and
# (id, subject, open, json) each, the recoveries as a count and (id, json) each, then ids to ack.
_COMMIT = Script(
    """
local cur = redis.call('GET', KEYS[1])
if not cur or string.sub(cur, 1, string.find(cur, '|', 1, true) - 1) ~= ARGV[1] then
  return 0
end
local i = 5
local n = tonumber(ARGV[i])
i = i + 1
for _ = 1, n do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 3])
  if ARGV[i + 2] == '1' then
    redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i])
  elseif redis.call('HGET', KEYS[3], ARGV[i + 1]) == ARGV[i] then
    redis.call('HDEL', KEYS[3], ARGV[i + 1])
  end
  i = i + 4
end
n = tonumber(ARGV[i])
i = i + 1
for _ = 1, n do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  i = i + 2
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[5], ARGV[3]) end
redis.call('SET', KEYS[7], ARGV[4])
if i <= #ARGV then redis.call('XACK', KEYS[6], ARGV[2], unpack(ARGV, i)) end
return 1
"""
)

_INCIDENT_FIELDS = tuple(f.name for f in fields(Incident))
_RECOVERY_FIELDS = tuple(f.name for f in fields(RecoveryRecord))


def incident_from_json(text: str) -> Incident:
    """Return the `Incident` stored as JSON by the folder."""
    data = json.loads(text)
    return Incident(**{k: data[k] for k in _INCIDENT_FIELDS if k in data})


def recovery_from_json(text: str) -> RecoveryRecord:
    """Return the `RecoveryRecord` stored as JSON by the folder."""
    data = json.loads(text)
    return RecoveryRecord(**{k: data[k] for k in _RECOVERY_FIELDS if k in data})


def _sid(value: str) -> tuple[int, int]:
    ms, _, n = value.partition("-")
    return int(ms), int(n or 0)


class IncidentFolder:
    """Folds the stream into incidents while this node holds the folding lease.

    Args:
        client: A sync redis-py client (decoding replies).
        keys: The fleet's keys.
        node: This node's consumer name.
        ttl: Seconds the folding lease lasts without renewal (a dead folder is replaced
            this long after its last renewal).
        block: Seconds one read waits for new entries.
        batch: Entries read (and committed) at once, at most.
        clock: Times lease renewals.
    """

    def __init__(
        self,
        client: Any,
        keys: StreamKeys,
        *,
        node: str,
        ttl: float = 10.0,
        block: float = 0.2,
        batch: int = 500,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._redis = client
        self.keys = keys
        self.node = node
        self.ttl = ttl
        self.block = block
        self.batch = batch
        self.clock = clock
        self.lease = RecoveryLease(
            client, "journal-folder", ttl=ttl, holder=node, prefix=keys.prefix
        )
        self._errors = redis_errors()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._token: int | None = None
        self._tracker: IncidentTracker | None = None
        self._pos: tuple[int, int] = (0, 0)
        self._next_id = 1
        self._renew_at = 0.0
        #: Entries this folder folded.
        self.folded = 0

    def __repr__(self) -> str:
        return f"IncidentFolder(node={self.node!r}, folding={self._token is not None})"

    @property
    def folding(self) -> bool:
        """Return whether this node holds the folding lease now."""
        return self._token is not None

    def start(self) -> None:
        """Start the folding thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="selfheal-redis-folder", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop folding and hand the lease back so another node takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        token, self._token = self._token, None
        if token is not None:
            with contextlib.suppress(*self._errors):  # else it expires by itself
                self.lease.release(token)

    def _run(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            try:
                self.step()
                delay = 0.05
            except self._errors as exc:
                logger.debug("incident folder: redis unreachable: %r", exc)
                self._token = None  # rebuilt from what Redis holds once it answers
                self._stop.wait(delay)
                delay = min(delay * 2, 1.0)
            except Exception:
                logger.exception("incident folder failed; starting over")
                self._token = None
                self._stop.wait(1.0)

    def step(self) -> None:
        """Take the lease if free, renew it when due, fold what the stream delivers."""
        if self._token is None:
            token = self.lease.acquire()
            if token is None:
                self._stop.wait(self.ttl / 3)
                return
            self._take_over(token)
            return
        if self.clock.monotonic() >= self._renew_at:
            if not self.lease.renew(self._token):
                self._token = None
                return
            self._renew_at = self.clock.monotonic() + self.ttl / 3
        keys = self.keys
        reply = self._redis.xreadgroup(
            keys.group,
            self.node,
            {keys.stream: ">"},
            count=self.batch,
            block=int(self.block * 1000),
        )
        if reply:
            self._fold(reply[0][1])

    def _take_over(self, token: int) -> None:
        r, keys = self._redis, self.keys
        try:
            # From the start of the stream: what was published before any folder ran counts.
            r.xgroup_create(keys.stream, keys.group, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._next_id = int(r.get(keys.next_incident) or 1)
        self._tracker = IncidentTracker(
            [i for i in map(incident_from_json, r.hvals(keys.incidents)) if i.is_open],
            next_id=self._next_id,
        )
        pos = r.get(keys.folded)
        self._pos = _sid(pos) if pos else (0, 0)
        self._token = token
        self._renew_at = self.clock.monotonic() + self.ttl / 3
        # What a dead folder was delivered and never committed comes first, in stream order.
        start = "0-0"
        while self._token is not None:
            cursor, entries, *_ = r.xautoclaim(
                keys.stream, keys.group, self.node, 0, start_id=start, count=self.batch
            )
            if entries:
                self._fold(entries)
            if cursor == "0-0":
                break
            start = cursor

    def _fold(self, entries: Sequence[tuple[str, dict[str, str] | None]]) -> None:
        tracker, token = self._tracker, self._token
        assert tracker is not None
        assert token is not None
        events: list[Event] = []
        last = ""
        for sid, entry in entries:
            if not entry or _sid(sid) <= self._pos:
                continue  # deleted by trimming, or folded before
            last = sid
            if entry.get("type", "").rpartition(".")[2] not in SIGNAL_SEGMENTS:
                continue  # neither failure nor recovery: nothing to fold, no data to decode
            event = _event(entry)
            if event is not None:
                events.append(event)
        changed, records = track(tracker, events, 0.0)
        incidents = {i.id: i for i in changed}
        recoveries = {r.id: r for r in records}
        if incidents:
            self._next_id = max(self._next_id, max(incidents) + 1)
        args: list[Any] = [token, self.keys.group, last, self._next_id, len(incidents)]
        for inc in incidents.values():
            args += [inc.id, inc.subject, int(inc.is_open), json.dumps(inc.to_dict())]
        args.append(len(recoveries))
        for rec in recoveries.values():
            args += [rec.id, json.dumps(rec.to_dict())]
        args += [sid for sid, _ in entries]
        keys = self.keys
        done = _COMMIT(
            self._redis,
            [
                self.lease.key,
                keys.incidents,
                keys.open,
                keys.recoveries,
                keys.folded,
                keys.stream,
                keys.next_incident,
            ],
            args,
        )
        if not int(done):
            logger.warning("incident folder: lease lost; another node folds now")
            self._token = None
            return
        if last:
            self._pos = _sid(last)
        self.folded += len(entries)


def _event(entry: dict[str, str]) -> Event | None:
    try:
        data = json.loads(entry.get("data", "{}"))
        return Event(
            entry["type"],
            entry.get("source", ""),
            entry.get("severity", "info"),
            float(entry.get("ts", "0")),
            data if isinstance(data, dict) else {"value": data},
            id=entry.get("id"),
        )
    except (KeyError, ValueError):
        logger.warning("incident folder: skipped a malformed stream entry")
        return None
