"""The `Event` every component publishes, and its `Severity`."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from selfheal.events._vocabulary import subject_of

__all__ = ["Event", "Severity", "log_level"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
# A process-unique prefix and a counter give ids that sort by creation and cost ~100 ns,
# where uuid4 costs microseconds. A forked child gets a prefix of its own.
_ID_PREFIX = ""
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:
    global _ID_PREFIX, _ID_COUNTER  # noqa: PLW0603 - per-process state, reset at fork
    _ID_PREFIX = f"{os.getpid():x}-{int.from_bytes(os.urandom(4), 'big'):08x}-"
    _ID_COUNTER = itertools.count(1)


_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)


def _next_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


class Severity(StrEnum):
    """How bad an event is; plain strings (``"critical"``) are accepted wherever this is."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


# The one mapping from severities to `logging` levels: the daemon's log lines and the events
# they report always agree. Any other string is INFO, as it is for the bus.
_LOG_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def log_level(severity: str) -> int:
    """Return the `logging` level of `severity` (``"error"`` -> ``logging.ERROR``).

    Args:
        severity: A `Severity` or any string (an unknown one is INFO).

    Returns:
        The level number.
    """
    return _LOG_LEVELS.get(str(severity).lower(), 20)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Event:
    """Something that happened, published on an `EventBus`.

    The field names are the article's, so ``Event(type=..., source=..., severity=...,
    timestamp=..., data=...)`` works unchanged.

    Attributes:
        type: Dotted event type, e.g. ``health.database.failed``.
        source: Who noticed it (a component or subject name).
        severity: One of `Severity`, or any string.
        timestamp: Wall-clock seconds since the epoch (from the publisher's `Clock`).
        data: Details; kept as given, never copied, so publishers must not mutate it later.
        id: Unique per process run; defaults to a fresh id.
    """

    type: str
    source: str
    severity: str
    timestamp: float
    data: Mapping[str, Any]
    id: str

    # Hand-written because every component builds events: setting the slots through their
    # descriptors costs a third less than the generated frozen __init__ (object.__setattr__).
    def __init__(  # noqa: PLR0917 - the article builds events positionally too
        self,
        type: str,
        source: str = "",
        severity: str = Severity.INFO,
        timestamp: float = 0.0,
        data: Mapping[str, Any] = _EMPTY,
        id: str | None = None,
    ) -> None:
        _set_type(self, type)
        _set_source(self, source)
        _set_severity(self, severity)
        _set_timestamp(self, timestamp)
        _set_data(self, data)
        _set_id(self, id if id is not None else f"{_ID_PREFIX}{next(_ID_COUNTER):x}")

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, Event) and other.id == self.id)

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def subject(self) -> str:
        """Return the middle of the type (``database`` in ``health.database.failed``).

        For types of fewer than three segments the source stands in.
        """
        return subject_of(self.type, self.source)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the event."""
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "severity": str(self.severity),
            "timestamp": self.timestamp,
            "data": dict(self.data),
        }


_set_type, _set_source, _set_severity, _set_timestamp, _set_data, _set_id = (
    Event.__dict__[name].__set__
    for name in ("type", "source", "severity", "timestamp", "data", "id")
)
