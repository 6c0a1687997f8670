"""What each toxic does to a stream of bytes: pure decisions, no I/O, no clock.

Data read from a socket enters a `Chain` as an `Item` stamped with the time it arrived; each
toxic of the chain (in the order they were added) turns it into zero or more items, each with
the earliest time it may be written (``at``) or an end: a half-close (``EOF``), a close, or a
reset. The driver writes items in order, each not before its ``at``. So a test can check every
toxic by feeding items with chosen times, and the socket driver only waits and writes.

One `Effect` is made per toxic per connection direction, with the toxicity drawn then (as
Toxiproxy does): a toxic that misses a connection passes its data through untouched.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from selfheal.chaos.proxy._model import Toxic

__all__ = [
    "Bandwidth",
    "Chain",
    "Effect",
    "End",
    "Item",
    "Latency",
    "LimitData",
    "Passthrough",
    "ResetPeer",
    "Slicer",
    "SlowClose",
    "Timeout",
    "make_effect",
]


class End(IntEnum):
    """How a direction ends: half-close the writer, close the connection, or reset it."""

    EOF = 1
    CLOSE = 2
    RESET = 3


@dataclass(slots=True)
class Item:
    """Bytes to write (or an end) and the earliest time to do it.

    Attributes:
        at: Monotonic seconds; never written before.
        data: The bytes (empty for an end).
        end: The end this item stands for, or None for data.
        by: The toxic that set ``at`` (removing it releases the item at once).
    """

    at: float
    data: bytes = b""
    end: End | None = None
    by: str | None = None


class Effect:
    """A toxic's decisions for one direction of one connection (the default passes all)."""

    __slots__ = ()

    def start(self, now: float) -> list[Item]:
        """Return what the toxic emits as it starts applying at `now` (usually nothing)."""
        return []

    def push(self, item: Item) -> list[Item]:
        """Return what `item` becomes."""
        return [item]

    def stop(self, now: float) -> list[Item]:
        """Return what the toxic emits as it is removed at `now` (usually nothing)."""
        return []


class Passthrough(Effect):
    """A toxic whose toxicity roll missed this connection, or a type that changes nothing."""

    __slots__ = ()


class Latency(Effect):
    """Delays each chunk by ``latency`` ± ``jitter`` (uniform), never below zero."""

    __slots__ = ("jitter", "latency", "rng")

    def __init__(self, latency: float, jitter: float, rng: random.Random) -> None:
        self.latency, self.jitter, self.rng = latency, jitter, rng

    def push(self, item: Item) -> list[Item]:
        """Delay data; ends pass (after the data before them, which the driver keeps in order)."""
        if item.end is not None:
            return [item]
        delay = self.latency
        if self.jitter:
            delay += self.rng.uniform(-self.jitter, self.jitter)
        item.at += max(0.0, delay)
        return [item]


class Bandwidth(Effect):
    """Lets ``rate`` bytes per second through, in slices of a tenth of a second's worth."""

    __slots__ = ("free_at", "rate")

    def __init__(self, rate: float) -> None:
        self.rate = rate  # bytes per second; 0 means unlimited, as in Toxiproxy
        self.free_at = float("-inf")

    def push(self, item: Item) -> list[Item]:
        """Return the item's slices, each due once the ones before it had time to pass."""
        if self.rate <= 0:
            return [item]
        at = max(item.at, self.free_at)
        if item.end is not None:
            item.at = at
            return [item]
        slice_size = max(1, int(self.rate / 10))
        out = []
        data = item.data
        for offset in range(0, len(data), slice_size):
            piece = data[offset : offset + slice_size]
            at += len(piece) / self.rate
            out.append(Item(at, piece))
        self.free_at = at
        return out


class Timeout(Effect):
    """Drops all data; closes the connection ``timeout`` after it starts (0: never).

    Removing it closes the connection too, as Toxiproxy does: the data it dropped left the
    stream broken, so going on would only hand the peers garbage.
    """

    __slots__ = ("timeout",)

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def start(self, now: float) -> list[Item]:
        """Schedule the close, when there is a timeout."""
        return [Item(now + self.timeout, end=End.CLOSE)] if self.timeout > 0 else []

    def push(self, item: Item) -> list[Item]:
        """Drop data, let ends through."""
        return [item] if item.end is not None else []

    def stop(self, now: float) -> list[Item]:
        """Close the connection it stalled."""
        return [Item(now, end=End.CLOSE)]


class ResetPeer(Effect):
    """On the first data (or end), resets the connection ``timeout`` later; drops the rest."""

    __slots__ = ("fired", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.fired = False

    def push(self, item: Item) -> list[Item]:
        """Turn the first item into a reset, swallow everything after it."""
        if self.fired:
            return []
        self.fired = True
        return [Item(item.at + self.timeout, end=End.RESET)]


class SlowClose(Effect):
    """Passes data; delays the end of the direction by ``delay``."""

    __slots__ = ("delay",)

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def push(self, item: Item) -> list[Item]:
        """Delay ends only."""
        if item.end is not None:
            item.at += self.delay
        return [item]


class LimitData(Effect):
    """Passes the first ``limit`` bytes of the direction, then closes the connection.

    The count is kept when the toxic is updated, as Toxiproxy keeps it.
    """

    __slots__ = ("limit", "sent")

    def __init__(self, limit: int, sent: int = 0) -> None:
        self.limit, self.sent = limit, sent

    def push(self, item: Item) -> list[Item]:
        """Cut data at the limit and close there."""
        if item.end is not None:
            return [item]
        room = self.limit - self.sent
        if room <= 0:
            return []
        out = []
        if piece := item.data[:room]:
            self.sent += len(piece)
            out.append(Item(item.at, piece))
        if self.sent >= self.limit:
            out.append(Item(item.at, end=End.CLOSE))
        return out


class Slicer(Effect):
    """Cuts each chunk into pieces of ``average`` ± ``variation`` bytes, ``delay`` apart."""

    __slots__ = ("average", "delay", "rng", "variation")

    def __init__(self, average: int, variation: int, delay: float, rng: random.Random) -> None:
        self.average, self.variation, self.delay, self.rng = average, variation, delay, rng

    def push(self, item: Item) -> list[Item]:
        """Return the pieces; the last one takes what is left."""
        if item.end is not None:
            return [item]
        data, at, out = item.data, item.at, []
        offset = 0
        while len(data) - offset > self.average + self.variation:
            size = self.average
            if self.variation:
                size += self.rng.randint(-self.variation, self.variation)
            out.append(Item(at, data[offset : offset + size]))
            offset += size
            at += self.delay
        out.append(Item(at, data[offset:]))
        return out


_MS = 0.001

#: How each toxic type builds its effect (times in the API are ms, slicer's delay µs).
_BUILDERS: dict[str, Callable[[Toxic, random.Random, Effect | None], Effect]] = {
    "latency": lambda t, rng, _: Latency(t.attr("latency") * _MS, t.attr("jitter") * _MS, rng),
    "bandwidth": lambda t, _, __: Bandwidth(t.attr("rate") * 1000),
    "timeout": lambda t, _, __: Timeout(t.attr("timeout") * _MS),
    "reset_peer": lambda t, _, __: ResetPeer(t.attr("timeout") * _MS),
    "slow_close": lambda t, _, __: SlowClose(t.attr("delay") * _MS),
    "limit_data": lambda t, _, previous: LimitData(
        int(t.attr("bytes")), previous.sent if isinstance(previous, LimitData) else 0
    ),
    "slicer": lambda t, rng, _: Slicer(
        int(t.attr("average_size")),
        int(t.attr("size_variation")),
        t.attr("delay") / 1_000_000,
        rng,
    ),
}


def make_effect(toxic: Toxic, rng: random.Random, previous: Effect | None = None) -> Effect:
    """Return the effect of `toxic` on one direction of one connection.

    Args:
        toxic: The toxic (its times in ms, bandwidth in KB/s, slicer delay in µs).
        rng: Draws toxicity, jitter and slice sizes (seeded for repeatable runs).
        previous: The effect this one replaces after an update, whose state it keeps.

    Returns:
        The effect, or a `Passthrough` when the toxicity roll misses.
    """
    if toxic.toxicity < 1 and rng.random() >= toxic.toxicity:
        return Passthrough()
    build = _BUILDERS.get(toxic.type)
    return Passthrough() if build is None else build(toxic, rng, previous)


class Chain:
    """The toxics of one direction of one connection, applied in the order they were added."""

    __slots__ = ("_effects",)

    def __init__(self) -> None:
        self._effects: list[tuple[str, Effect]] = []

    def __len__(self) -> int:
        return len(self._effects)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={type(e).__name__}" for name, e in self._effects)
        return f"Chain({inner})"

    def names(self) -> list[str]:
        """Return the toxic names, in order."""
        return [name for name, _ in self._effects]

    def effect(self, name: str) -> Effect | None:
        """Return the effect of toxic `name`, or None."""
        return next((e for n, e in self._effects if n == name), None)

    def push(self, item: Item) -> list[Item]:
        """Return what an item read from the socket becomes after every toxic."""
        return self._through([item], 0)

    def add(self, name: str, effect: Effect, now: float) -> list[Item]:
        """Append toxic `name`; return what it emits as it starts (through the toxics after it)."""
        self._effects.append((name, effect))
        return self._emitted(len(self._effects) - 1, effect.start(now))

    def replace(self, name: str, effect: Effect, now: float) -> list[Item]:
        """Swap the effect of toxic `name` in place (an update); return what it emits."""
        for i, (n, _) in enumerate(self._effects):
            if n == name:
                self._effects[i] = (name, effect)
                return self._emitted(i, effect.start(now))
        return self.add(name, effect, now)

    def remove(self, name: str, now: float) -> list[Item]:
        """Remove toxic `name`; return what it emits as it goes (through the ones after it)."""
        for i, (n, effect) in enumerate(self._effects):
            if n == name:
                del self._effects[i]
                return self._emitted(i, effect.stop(now), start=i)
        return []

    def _emitted(self, index: int, items: list[Item], *, start: int | None = None) -> list[Item]:
        name = self._effects[index][0] if start is None else None
        for item in items:
            item.by = item.by or name
        return self._through(items, index + 1 if start is None else start)

    def _through(self, items: list[Item], start: int) -> list[Item]:
        for name, effect in self._effects[start:]:
            out: list[Item] = []
            for item in items:
                before = item.at
                for result in effect.push(item):
                    if result.at > before:
                        result.by = name
                    out.append(result)
            items = out
        return items
