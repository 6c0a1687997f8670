"""One event model: everything that notices something publishes, everything that reacts subscribes.

`Event` and `Severity` are the data; `EventBus` delivers them; the vocabulary (`matches`,
`subject_of`, `classify`, `check_pattern`) is the one place that reads meaning out of a type.
"""

from selfheal.events._bus import (
    HANDLER_FAILED,
    AsyncHandler,
    EventBus,
    Handler,
    Subscription,
    SyncHandler,
)
from selfheal.events._event import Event, Severity
from selfheal.events._vocabulary import (
    SIGNAL_SEGMENTS,
    Signal,
    check_pattern,
    classify,
    matches,
    subject_of,
)

__all__ = [
    "HANDLER_FAILED",
    "SIGNAL_SEGMENTS",
    "AsyncHandler",
    "Event",
    "EventBus",
    "Handler",
    "Severity",
    "Signal",
    "Subscription",
    "SyncHandler",
    "check_pattern",
    "classify",
    "matches",
    "subject_of",
]
