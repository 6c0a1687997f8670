"""The event vocabulary: what a type's segments mean, read in one place.

Types are dotted: ``<area>.<subject>.<what>`` (``process.web.exited``,
``health.database.failed``). Patterns match them with wildcards: ``*`` stands for exactly one
segment, except as the last segment of a pattern, where it stands for one or more (so
``health.*`` sees every health event and ``*`` sees everything).

Everything that needs the meaning of a type (the bus, the journal, recovery rules, the CLI)
asks this module: the subject (`subject_of`), its three parts (`parse_type`), whether it opens
or closes an incident (`classify`), whether a pattern is well formed (`check_pattern`) and the
literal start every type it matches shares (`pattern_prefix`).

- failure: the last segment is ``failed``, ``failure``, ``fatal``, ``opened``, ``unhealthy``,
  ``down``, ``crashed`` or ``recovery_failed``; or it is ``exited`` with a non-zero
  ``exit_code``/``returncode`` or a ``signal`` in its data, unless ``expected`` is true.
- recovery: the last segment is ``recovered``, ``succeeded``, ``closed``, ``passed``,
  ``healthy`` or ``up``; or the type is ``process.<name>.started`` / ``.running``.
- neither: everything else, including ``recovery.*.started|escalated|suppressed``,
  ``journal.*`` and ``eventbus.*``.

For the article's ``system.database.failure.recovered`` the subject is the failed event's
(``database``).
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from selfheal.events._event import Event

__all__ = [
    "SIGNAL_SEGMENTS",
    "Signal",
    "TypeParts",
    "check_pattern",
    "classify",
    "matches",
    "parse_type",
    "pattern_prefix",
    "subject_of",
]

_FAILURE = frozenset(
    {"failed", "failure", "fatal", "opened", "unhealthy", "down", "crashed", "recovery_failed"}
)
_RECOVERY = frozenset({"recovered", "succeeded", "closed", "passed", "healthy", "up"})
_PROCESS_UP = frozenset({"started", "running"})
_IGNORED_PREFIXES = ("journal.", "eventbus.")
_RECOVERY_NOISE = frozenset({"started", "escalated", "suppressed"})

#: Last segments that can make an event a failure or recovery signal: anything else is
#: neutral, which a hot path (the journal's incident tracker) can tell with one set lookup.
SIGNAL_SEGMENTS = _FAILURE | _RECOVERY | _PROCESS_UP | {"exited"}


class Signal(StrEnum):
    """What an event says about its subject."""

    FAILURE = "failure"
    RECOVERY = "recovery"
    NEUTRAL = "neutral"


# Types are few and the journal asks for every event: cached, bounded for odd publishers.
@functools.lru_cache(maxsize=4096)
def subject_of(event_type: str, source: str = "") -> str:
    """Return the subject of a type: its middle (``database`` in ``health.database.failed``).

    Args:
        event_type: The dotted type.
        source: The publisher, which stands in for types of fewer than three segments.
    """
    parts = event_type.split(".")
    return ".".join(parts[1:-1]) if len(parts) >= 3 else source


class TypeParts(NamedTuple):
    """The three parts of a type: ``process`` / ``web`` / ``exited`` in ``process.web.exited``.

    Attributes:
        area: The first segment: who speaks (``process``, ``health``, ``recovery``...).
        subject: What it is about (see `subject_of`).
        what: The last segment: what happened (``exited``, ``failed``, ``started``...).
    """

    area: str
    subject: str
    what: str


@functools.lru_cache(maxsize=4096)
def parse_type(event_type: str, source: str = "") -> TypeParts:
    """Return the area, subject and last segment of a dotted type.

    A one-segment type is its own area and last segment.

    Args:
        event_type: The dotted type.
        source: The publisher, which stands in as the subject of types of fewer than three
            segments (as in `subject_of`).
    """
    area, _, rest = event_type.partition(".")
    what = rest.rpartition(".")[2] if rest else area
    return TypeParts(area, subject_of(event_type, source), what)


def pattern_prefix(pattern: str) -> str:
    """Return the literal text every type `pattern` matches starts with (for index lookups).

    ``health.*`` gives ``health.``, ``*.failed`` and ``*`` give ``""``, an exact type itself.
    """
    return pattern.partition("*")[0]


def check_pattern(pattern: str) -> str:
    """Return `pattern` if it is a well-formed subscription pattern.

    Raises:
        ValueError: If it is empty or has an empty segment; the message shows valid ones.
    """
    if not pattern or any(not seg for seg in pattern.split(".")):
        raise ValueError(
            f"{pattern!r} is not an event pattern: use dotted non-empty segments, "
            "e.g. 'health.*', 'breaker.*.opened' or 'process.web.exited'"
        )
    return pattern


def matches(pattern: str, event_type: str) -> bool:
    """Return whether a dotted `event_type` matches a subscription `pattern`.

    ``*`` matches one segment; a trailing ``*`` matches one or more segments.

    Args:
        pattern: e.g. ``breaker.*.opened``, ``health.*`` or ``*``.
        event_type: e.g. ``breaker.payments.opened``.

    Returns:
        True when the type matches.
    """
    if pattern == event_type:
        return True
    pats = pattern.split(".")
    parts = event_type.split(".")
    last = len(pats) - 1
    for i, pat in enumerate(pats):
        if i == last and pat == "*":
            return len(parts) > i
        if i >= len(parts) or (pat != "*" and pat != parts[i]):
            return False
    return len(parts) == len(pats)


def classify(event: Event) -> tuple[Signal, str]:  # noqa: PLR0911 - one rule per return
    """Return whether `event` is a failure or recovery signal, and of which subject.

    Args:
        event: Any event.

    Returns:
        The signal and the subject.
    """
    etype = event.type
    if etype.startswith(_IGNORED_PREFIXES):
        return Signal.NEUTRAL, ""
    parts = etype.split(".")
    last = parts[-1]
    if last in {"recovered", "recovery_failed"} and len(parts) >= 3:
        # The article's "<failed type>.recovered": the subject is the failed event's.
        inner = parts[:-1]
        if inner[-1] in _FAILURE:
            source = str(event.data.get("original_source", event.source))
            sig = Signal.RECOVERY if last == "recovered" else Signal.FAILURE
            return sig, subject_of(".".join(inner), source)
    subject = subject_of(etype, event.source)
    if parts[0] == "recovery" and last in _RECOVERY_NOISE:
        return Signal.NEUTRAL, subject
    if last in _FAILURE:
        return Signal.FAILURE, subject
    if last in _RECOVERY or (parts[0] == "process" and last in _PROCESS_UP):
        return Signal.RECOVERY, subject
    if last == "exited" and not event.data.get("expected"):
        code = event.data.get("exit_code", event.data.get("returncode", 0))
        if event.data.get("signal") or (code not in (0, None)):
            return Signal.FAILURE, subject
    return Signal.NEUTRAL, subject
