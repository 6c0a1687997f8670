"""What the shared breaker store queues and caches, and how it reads Redis's replies."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from selfheal.interfaces import BreakerRecord, BreakerState, TrialPermit
from selfheal.store.redis._breaker_script import Reply

__all__ = ["Entry", "Op", "is_noscript", "permit", "state_word"]

_Callback = Callable[[], object]


@dataclass(slots=True)
class Entry:
    """A breaker's cached record, its version and who watches it."""

    record: BreakerRecord | None = None
    ver: int = 0
    opened_ms: int = -1  # Redis's time of the opening `record` stands for
    watchers: list[_Callback] = field(default_factory=list)


@dataclass(slots=True)
class Op:
    """One queued Redis call and who waits for its answer."""

    name: str
    args: list[Any]
    future: concurrent.futures.Future[Reply] | None = None
    record: BreakerRecord | None = None  # a save's record


def state_word(state: BreakerState) -> str:
    return "open" if state is BreakerState.OPEN else "closed"


def is_noscript(reply: Any) -> bool:
    from redis.exceptions import NoScriptError

    return isinstance(reply, NoScriptError)


def permit(name: str, op: Op, reply: Reply) -> TrialPermit | None:
    if reply.result == "granted":
        return TrialPermit(name, str(op.args[3]), reply.ver)
    if reply.result == "closed":
        return TrialPermit(name)  # the fleet closed it: the call goes through, nothing to give back
    return None
