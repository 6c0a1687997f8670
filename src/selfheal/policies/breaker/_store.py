"""The breaker store that ships with selfheal: a dict, shared by the breakers of one process.

Stores that outlive the process or span machines (the Redis one) implement the same
`selfheal.interfaces.BreakerStore` protocol elsewhere.
"""

from __future__ import annotations

import threading

from selfheal.interfaces import BreakerRecord

__all__ = ["MemoryBreakerStore"]


class MemoryBreakerStore:
    """A `BreakerStore` in a dict: survives re-creating a breaker, shared within a process."""

    __slots__ = ("_lock", "_records")

    def __init__(self) -> None:
        self._records: dict[str, BreakerRecord] = {}
        self._lock = threading.Lock()

    def load(self, name: str) -> BreakerRecord | None:
        """Return the record of breaker `name`, or None if there is none."""
        with self._lock:
            return self._records.get(name)

    def save(self, name: str, record: BreakerRecord) -> None:
        """Store `record` as the state of breaker `name`."""
        with self._lock:
            self._records[name] = record

    def __repr__(self) -> str:
        return f"MemoryBreakerStore(names={sorted(self._records)!r})"
