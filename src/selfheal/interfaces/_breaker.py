"""Where breakers keep their state, alone or shared by a fleet."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    pass

__all__ = [
    "BreakerRecord",
    "BreakerState",
    "BreakerStore",
    "SharedBreakerStore",
    "TrialOutcome",
    "TrialPermit",
    "breaker_store_from_url",
]


# --------------------------------------------------------------------------- breaker state


class BreakerState(StrEnum):
    """The three states of a circuit breaker.

    CLOSED lets calls through and counts failures; OPEN rejects every call until the recovery
    timeout has passed; HALF_OPEN lets a bounded number of trial calls through, whose outcome
    closes or reopens the breaker.
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    """What a `BreakerStore` keeps per breaker name.

    Attributes:
        state: The breaker's state.
        opened_at: Wall-clock seconds (`Clock.time`) when it last opened, so that processes
            on other machines can agree on when its recovery timeout ends.
    """

    state: BreakerState
    opened_at: float


@runtime_checkable
class BreakerStore(Protocol):
    """Where breakers keep their state so that it survives restarts or is shared.

    A breaker loads its record when created, saves on every state change (under its lock, so
    a store must be quick), and loads again when its recovery timeout ends, so a breaker
    another instance re-opened or closed meanwhile follows that. The CLOSED success path
    never touches the store. A shared store (Redis, later) implements the same two methods.
    """

    def load(self, name: str) -> BreakerRecord | None:
        """Return the record of breaker `name`, or None if there is none."""
        ...

    def save(self, name: str, record: BreakerRecord) -> None:
        """Store `record` as the state of breaker `name`."""
        ...


class TrialOutcome(StrEnum):
    """How a half-open trial call ended, as a shared store is told."""

    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"  # neither: an ignored error or a cancellation gives the permit back


@dataclass(frozen=True, slots=True)
class TrialPermit:
    """A permit for one half-open trial call, granted by a `SharedBreakerStore`.

    Attributes:
        name: The breaker.
        token: The permit's id in the store; empty for a permit decided locally (the store
            was unreachable, or already closed), which there is nothing to give back for.
        epoch: The half-open period it belongs to.
    """

    name: str
    token: str = ""
    epoch: int = 0

    @property
    def local(self) -> bool:
        """Return whether the permit was decided locally, without the store."""
        return not self.token


@runtime_checkable
class SharedBreakerStore(BreakerStore, Protocol):
    """A `BreakerStore` shared by a fleet (`selfheal.store.redis.RedisBreakerStore`).

    `load` and `save` never wait on the network: `load` reads a local cache and `save`
    queues the change, so a breaker may call them under its lock. Changes made elsewhere
    arrive through `watch`. Trial permits are fleet-wide: `acquire_trial` (or its async twin,
    which never blocks the event loop) asks the store, and must be called without holding a
    lock.
    """

    def watch(self, name: str, callback: Callable[[], object]) -> Callable[[], None]:
        """Call `callback` (in a store thread) whenever the shared record of `name` changed.

        Returns:
            A function that stops the watching.
        """
        ...

    def acquire_trial(
        self, name: str, *, max_calls: int, recovery_timeout: float
    ) -> TrialPermit | None:
        """Return a trial permit for `name`, or None when the fleet has none to spare."""
        ...

    async def aacquire_trial(
        self, name: str, *, max_calls: int, recovery_timeout: float
    ) -> TrialPermit | None:
        """Async twin of `acquire_trial`."""
        ...

    def release_trial(self, permit: TrialPermit, outcome: TrialOutcome) -> None:
        """Give `permit` back with the trial's outcome (queued; never waits)."""
        ...


def breaker_store_from_url(url: str, *, bus: object = None) -> SharedBreakerStore:
    """Return this process's shared breaker store of a fleet URL (one per URL).

    Args:
        url: ``redis://``, ``rediss://``, ``unix://`` or ``redis+sentinel://`` (see
            `selfheal.store.redis.parse_url`).
        bus: Where the store publishes ``fleet.redis.down`` / ``.up`` (the first bus given
            for a URL is kept).

    Raises:
        ValueError: For a URL that names no supported store; the message says what is valid.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not scheme.startswith(("redis", "unix")):
        raise ValueError(
            f"breaker store url {url!r}: use 'redis://host:6379/0' (or rediss://, unix://, "
            "redis+sentinel://), or pass a BreakerStore object"
        )
    # By name: a policy (a lower layer) must not import the store package it names.
    module = importlib.import_module("selfheal.store.redis")
    store: SharedBreakerStore = module.RedisBreakerStore.shared(url, bus=bus)
    return store
