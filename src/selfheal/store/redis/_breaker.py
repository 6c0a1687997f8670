"""The shared breaker store: breaker state on Redis, cached in every node, never waited on.

A breaker's calls never wait on Redis while they hold its lock, and its success path never
talks to Redis at all:

- `load` reads the local cache; `save` updates the cache and queues the change. One I/O
  thread per store sends what is queued (all of it in one pipeline) and applies the replies.
- A subscriber thread listens on ``<prefix>:breakers``: a trip on one node reaches every
  node's cache and breakers (`watch`) one Redis round trip and one publish later.
- Half-open trial permits are fleet-wide (`acquire_trial`): the caller waits for the I/O
  thread's answer (on a future, or awaiting it), never longer than `timeout`.

When Redis cannot be reached the store is *degraded*: breakers decide on their own state,
trial permits are local, and it reconciles when Redis answers again (``docs/fleet.md``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.events import EventBus, Severity
from selfheal.interfaces import BreakerRecord, BreakerState, TrialOutcome, TrialPermit
from selfheal.store.redis._breaker_script import BREAKER, Reply, parse_message
from selfheal.store.redis._client import connect, parse_url, redis_errors
from selfheal.store.redis._keys import breaker_channel, breaker_keys
from selfheal.store.redis._lease import node_name
from selfheal.store.redis._ops import Entry, Op, is_noscript, permit, state_word
from selfheal.store.redis._subscriber import Subscriber

__all__ = ["RedisBreakerStore"]

logger = logging.getLogger("selfheal.breaker.redis")

_Callback = Callable[[], object]
_CLOSED = BreakerState.CLOSED

# One store per URL and process, so that every breaker naming a URL shares one connection, one
# subscriber and one I/O thread. A forked child has none of the parent's threads: it starts over.
_SHARED: dict[str, RedisBreakerStore] = {}
_SHARED_LOCK = threading.Lock()
os.register_at_fork(after_in_child=_SHARED.clear)


class RedisBreakerStore:
    """A `SharedBreakerStore` on Redis: one state per breaker name across the fleet.

    Args:
        url: A fleet URL (``redis://host:6379/0``, ``redis+sentinel://...``).
        prefix: Key prefix; breakers of the same name and prefix share their state.
        timeout: Seconds a Redis command (and a caller waiting for a trial permit) may take
            before Redis counts as unreachable.
        trial_ttl: Seconds a trial permit is held at most (a node that dies holding one gives
            it back this long after); longer than the slowest trial call.
        clock: Turns Redis's times into this node's (`Clock.time`).
        bus: Where to publish ``fleet.redis.down`` and ``fleet.redis.up``.
        client: A redis-py client to use instead of connecting to `url` (tests).

    Raises:
        ValueError: If `url` is not a supported Redis URL.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "selfheal",
        timeout: float = 0.25,
        trial_ttl: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        client: Any = None,
    ) -> None:
        self._url = parse_url(url)
        self.prefix = prefix
        self.timeout = timeout
        self.trial_ttl = trial_ttl
        self.clock = clock
        self.bus = bus
        self.node = f"{node_name()}:{os.urandom(3).hex()}"
        self.channel = breaker_channel(prefix)
        self._redis = client if client is not None else connect(self._url, timeout=timeout)
        self._errors = redis_errors()
        # What a caller waiting for a permit takes as "Redis did not answer in time".
        self._no_answer: tuple[type[BaseException], ...] = (
            concurrent.futures.TimeoutError,
            TimeoutError,
            *self._errors,
        )
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._entries: dict[str, Entry] = {}
        self._ops: deque[Op] = deque()
        # The latest unsent change per breaker: (record, version it was decided on).
        self._pending: dict[str, tuple[BreakerRecord, int]] = {}
        self._permits = itertools.count(1)
        self._closing = False
        self._degraded = False
        self._resync = False
        self._busy = False
        #: Changes sent while Redis was unreachable and reconciled afterwards.
        self.reconciled = 0
        self._io = threading.Thread(target=self._io_loop, name="selfheal-breakers-io", daemon=True)
        self._io.start()
        self._subscriber = Subscriber(self)

    @classmethod
    def shared(cls, url: str, *, bus: EventBus | None = None) -> RedisBreakerStore:
        """Return this process's store for `url` (made on first use, with default options).

        Args:
            url: The fleet URL.
            bus: Where to publish ``fleet.redis.*``; the first bus given is kept.
        """
        with _SHARED_LOCK:
            store = _SHARED.get(url)
            if store is None or store._closing:
                store = _SHARED[url] = cls(url, bus=bus)
            elif store.bus is None:
                store.bus = bus
            return store

    def __repr__(self) -> str:
        where = f"{self._url.safe!r}, prefix={self.prefix!r}, breakers={len(self._entries)}"
        return f"RedisBreakerStore({where}, degraded={self._degraded})"

    @property
    def degraded(self) -> bool:
        """Return whether Redis is unreachable now (breakers run on local state)."""
        return self._degraded

    # -- the BreakerStore protocol: never waits --------------------------------------------

    def load(self, name: str) -> BreakerRecord | None:
        """Return the cached record of `name` (first use: fetched in the background)."""
        entry = self._entries.get(name)
        if entry is None:
            entry = self._register(name)
        return entry.record

    def save(self, name: str, record: BreakerRecord) -> None:
        """Queue `record` as the fleet's state of `name` (HALF_OPEN is Redis's own doing)."""
        if record.state is BreakerState.HALF_OPEN:
            return
        with self._lock:
            entry = self._entries.get(name) or self._new_entry(name)
            entry.record = record
            first = name not in self._pending
            self._pending[name] = (record, entry.ver)
            if first and not self._degraded:
                self._ops.append(Op(name, []))  # empty args: send what is pending then
                self._wake.notify()

    # -- the fleet's extras ----------------------------------------------------------------

    def watch(self, name: str, callback: _Callback) -> Callable[[], None]:
        """Call `callback` (in a store thread) whenever the shared record of `name` changed.

        Returns:
            A function that stops the watching.
        """
        entry = self._entries.get(name) or self._register(name)
        with self._lock:
            entry.watchers.append(callback)

        def unwatch() -> None:
            with self._lock:
                if callback in entry.watchers:
                    entry.watchers.remove(callback)

        return unwatch

    def acquire_trial(
        self, name: str, *, max_calls: int, recovery_timeout: float
    ) -> TrialPermit | None:
        """Return a fleet-wide trial permit for `name`, or None when none is free.

        Waits at most `timeout` for Redis; when it cannot answer, the permit is decided
        locally (the breaker's own limit applies).
        """
        op = self._trial_op(name, max_calls, recovery_timeout)
        if op.future is None:
            return TrialPermit(name)
        try:
            reply = op.future.result(self.timeout)
        except self._no_answer:
            return TrialPermit(name)
        return permit(name, op, reply)

    async def aacquire_trial(
        self, name: str, *, max_calls: int, recovery_timeout: float
    ) -> TrialPermit | None:
        """Async twin of `acquire_trial`: the event loop never waits on Redis."""
        op = self._trial_op(name, max_calls, recovery_timeout)
        if op.future is None:
            return TrialPermit(name)
        try:
            reply = await asyncio.wait_for(asyncio.wrap_future(op.future), self.timeout)
        except self._no_answer:
            return TrialPermit(name)
        return permit(name, op, reply)

    def _trial_op(self, name: str, max_calls: int, recovery_timeout: float) -> Op:
        token = f"{self.node}:{next(self._permits)}"
        args = [
            "trial",
            max_calls,
            max(0, round(recovery_timeout * 1000)),
            token,
            max(1, round(self.trial_ttl * 1000)),
        ]
        op = Op(name, args, concurrent.futures.Future())
        with self._lock:
            if self._degraded or self._closing:
                op.future = None
            else:
                self._ops.append(op)
                self._wake.notify()
        return op

    def release_trial(self, permit: TrialPermit, outcome: TrialOutcome) -> None:
        """Give `permit` back with the trial's outcome (queued; dropped while degraded)."""
        if permit.local:
            return
        with self._lock:
            if not self._degraded and not self._closing:
                args = ["done", permit.token, permit.epoch, str(outcome)]
                self._ops.append(Op(permit.name, args))
                self._wake.notify()

    def ready(self, timeout: float | None = None) -> bool:
        """Wait until the store hears changes from other nodes and has reloaded its records.

        Returns:
            False on timeout (Redis unreachable).
        """
        return self._subscriber.subscribed.wait(timeout) and self.sync(timeout)

    def sync(self, timeout: float | None = None) -> bool:
        """Wait until everything queued was sent and answered (for tests and shutdown).

        Returns:
            True when done, False on timeout or while degraded.
        """
        with self._lock:
            return (
                self._wake.wait_for(
                    lambda: (
                        (not self._ops and not self._busy and not self._resync) or self._degraded
                    ),
                    timeout,
                )
                and not self._degraded
            )

    def close(self) -> None:
        """Stop the store's threads (queued changes are sent first if Redis answers)."""
        self.sync(self.timeout * 4)
        with self._lock:
            self._closing = True
            self._wake.notify_all()
        self._subscriber.stop()
        self._io.join()

    # -- the cache -------------------------------------------------------------------------

    def _new_entry(self, name: str) -> Entry:
        # Called with the lock held.
        entry = self._entries[name] = Entry()
        self._ops.append(Op(name, ["get"]))
        self._wake.notify()
        return entry

    def _register(self, name: str) -> Entry:
        with self._lock:
            return self._entries.get(name) or self._new_entry(name)

    def _record(self, reply: Reply) -> BreakerRecord:
        return BreakerRecord(reply.state, self.clock.time() - reply.age)

    def _apply(self, name: str, reply: Reply, *, force: bool = False) -> None:
        """Adopt what Redis holds for `name` if it is newer; tell the watchers of a change.

        A change that keeps the same opening (OPEN turning HALF_OPEN in Redis) keeps the
        cached opening time and tells nobody: each breaker starts its trials on its own timer.
        """
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return
            if reply.ver == 0:
                self._reseed(name, entry)
                return
            if reply.ver <= entry.ver and not force:
                return
            entry.ver = reply.ver
            if name in self._pending:
                return  # a newer local decision is on its way; its reply settles it
            old = entry.record
            same = old is not None and reply.opened_ms == entry.opened_ms
            entry.opened_ms = reply.opened_ms
            opened_at = old.opened_at if old is not None and same else self.clock.time() - reply.age
            entry.record = BreakerRecord(reply.state, opened_at)
            if old is not None and same and (old.state is _CLOSED) == (reply.state is _CLOSED):
                return
            watchers = list(entry.watchers)
        for callback in watchers:
            try:
                callback()
            except Exception:
                logger.exception("breaker store: watcher of %s failed", name)

    def _reseed(self, name: str, entry: Entry) -> None:
        # Called with the lock held. Redis holds nothing for `name`: new, or Redis restarted
        # empty. An OPEN breaker puts its state back, so the fleet does not forget the trip.
        entry.ver = 0
        record = entry.record
        if record is not None and record.state is not _CLOSED and name not in self._pending:
            self._pending[name] = (record, 0)
            self._ops.append(Op(name, []))
            self._wake.notify()

    def _on_message(self, data: str) -> None:
        change = parse_message(data)
        if change is not None and change.node != self.node:
            self._apply(change.name, change.reply)

    # -- the I/O thread --------------------------------------------------------------------

    def _take(self) -> list[Op] | None:
        with self._lock:
            self._wake.wait_for(lambda: bool(self._ops) or self._closing or self._resync)
            if self._closing and not self._ops:
                return None
            ops = list(self._ops)
            self._ops.clear()
            self._busy = True
            for op in ops:
                if not op.args:  # a save: the latest pending change of that breaker
                    pending = self._pending.get(op.name)
                    if pending is not None:
                        op.record, ver = pending
                        op.args = ["save", state_word(op.record.state), ver, "cas"]
            return [op for op in ops if op.args]

    def _io_loop(self) -> None:
        while True:
            if (self._resync or self._degraded) and not self._reconnect():
                return  # only when closing
            ops = self._take()
            if ops is None:
                return
            try:
                replies = self._run(ops)
            except self._errors as exc:
                self._go_degraded(ops, exc)
                continue
            except Exception:
                logger.exception("breaker store: a batch failed")
                replies = []
            for op, raw in zip(ops, replies, strict=False):
                self._answer(op, raw)
            with self._lock:
                self._busy = False
                self._wake.notify_all()

    def _run(self, ops: list[Op]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for op in ops:
            BREAKER(
                pipe,
                breaker_keys(self.prefix, op.name),
                [op.args[0], self.channel, op.name, self.node, *op.args[1:]],
            )
        replies: list[Any] = pipe.execute(raise_on_error=False)
        if any(is_noscript(r) for r in replies):
            # Redis restarted and lost its script cache: nothing of the batch ran.
            self._redis.script_load(BREAKER.source)
            replies = self._run(ops)
        return replies

    def _answer(self, op: Op, raw: Any) -> None:
        if isinstance(raw, Exception):
            logger.error("breaker store: %s on %s failed: %r", op.args[0], op.name, raw)
            if op.future is not None and not op.future.done():
                op.future.set_exception(raw)
            return
        reply = Reply.parse(raw)
        if op.args[0] == "save":
            self._saved(op, reply)
        else:
            self._apply(op.name, reply)
        if op.future is not None and not op.future.done():
            op.future.set_result(reply)

    def _saved(self, op: Op, reply: Reply) -> None:
        applied = reply.result == "applied"
        with self._lock:
            entry = self._entries[op.name]
            pending = self._pending.get(op.name)
            if pending is not None and pending[0] is op.record:
                del self._pending[op.name]
            elif pending is not None:
                # A newer decision came while this one travelled: send it next. Made on top of
                # this one, it expects this version now if this one applied.
                if applied:
                    self._pending[op.name] = (pending[0], reply.ver)
                self._ops.append(Op(op.name, []))
            if applied:
                # The cache keeps the record as this node decided it (its breaker has it).
                entry.ver = max(entry.ver, reply.ver)
                entry.opened_ms = reply.opened_ms
                return
        # Rejected: somebody changed it first; follow what Redis holds.
        self._apply(op.name, reply, force=True)

    # -- degraded mode -----------------------------------------------------------------------

    def _go_degraded(self, ops: list[Op], exc: BaseException) -> None:
        with self._lock:
            first = not self._degraded
            self._degraded = True
            self._busy = False
            for op in ops:
                if op.future is not None and not op.future.done():
                    op.future.set_exception(ConnectionError(str(exc)))
            self._wake.notify_all()
        if first:
            logger.warning(
                "breaker store: %s unreachable (%r); using local state", self._url.safe, exc
            )
            self._emit("down", Severity.ERROR, error=repr(exc), pending=len(self._pending))

    def request_resync(self) -> None:
        """Reload every record from Redis (the subscriber missed messages)."""
        with self._lock:
            self._resync = True
            self._wake.notify_all()

    def _reconnect(self) -> bool:
        delay = 0.05
        while not self._closing:
            try:
                self._redis.ping()
                self._redis.script_load(BREAKER.source)
                self._reconcile()
            except self._errors:
                with self._lock:
                    self._wake.wait(delay)
                delay = min(delay * 2, 1.0)
                continue
            was_degraded = self._degraded
            with self._lock:
                self._degraded = False
                self._resync = False
                self._wake.notify_all()
            if was_degraded:
                logger.warning("breaker store: %s is back; reconciled", self._url.safe)
                self._emit("up", Severity.INFO, reconciled=self.reconciled)
            return True
        return False

    def _reconcile(self) -> None:
        with self._lock:
            pending = dict(self._pending)
            names = list(self._entries)
        ops = [
            Op(name, ["save", state_word(record.state), ver, "merge"])
            for name, (record, ver) in pending.items()
        ]
        ops += [Op(name, ["get"]) for name in names]
        replies = self._run(ops)
        for op, raw in zip(ops, replies, strict=True):
            if isinstance(raw, Exception):
                raise ConnectionError(repr(raw))
            reply = Reply.parse(raw)
            if op.args[0] == "save":
                with self._lock:
                    if self._pending.get(op.name, (None,))[0] is pending[op.name][0]:
                        del self._pending[op.name]
                self.reconciled += 1
                if reply.result == "applied":
                    with self._lock:
                        self._entries[op.name].ver = reply.ver
                        self._entries[op.name].opened_ms = reply.opened_ms
                    continue
            self._apply(op.name, reply, force=True)

    def _emit(self, what: str, severity: Severity, **data: Any) -> None:
        if self.bus is not None:
            self.bus.emit(f"fleet.redis.{what}", "breakers", severity, url=self._url.safe, **data)
