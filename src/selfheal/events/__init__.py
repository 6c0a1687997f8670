"""One event model: everything that notices something publishes, everything that reacts subscribes.

`Event` and `Severity` are the data; `EventBus` delivers them; the vocabulary (`matches`,
`subject_of`, `parse_type`, `classify`, `check_pattern`, `pattern_prefix`) is the one place
that reads meaning out of a type.
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
    TypeParts,
    check_pattern,
    classify,
    matches,
    parse_type,
    pattern_prefix,
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
    "TypeParts",
    "check_pattern",
    "classify",
    "matches",
    "parse_type",
    "pattern_prefix",
    "subject_of",
]
