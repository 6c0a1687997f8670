"""The front doors: `retry` (a decorator, bare or with options) and `retrying` (a loop).

Both take the same options and build a `Retry`; the defaults of the options left out follow
one choice, whether `on` was given:

- with ``on=`` (you named the transient errors): 3 attempts, ``ExponentialBackoff()``, no
  overall deadline, and giving up raises `RetryError` (tenacity's habit, and the article's
  ``except RetryError``);
- without it (bare ``@retry``, ``retry()``, stamina's habit): every `Exception` is retried,
  3 attempts within 45 s, a jittered exponential backoff, and giving up re-raises the last
  error itself, so that adding the decorator never changes what the callers catch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict, TypeVar, Unpack, overload

from selfheal._clock import Clock
from selfheal.events import EventBus
from selfheal.policies.retry._backoff import Backoff, ExponentialBackoff
from selfheal.policies.retry._budget import RetryBudget
from selfheal.policies.retry._hints import HintExtractor
from selfheal.policies.retry._loop import RetryLoop
from selfheal.policies.retry._migration import check_options, peer_object
from selfheal.policies.retry._policy import Retry, RetryOn
from selfheal.policies.retry._stop import Stop

__all__ = ["SAFE_BACKOFF", "SAFE_DEADLINE", "retry", "retrying"]

# A string: classmethod and staticmethod take no subscripts at run time before Python 3.12.
_F = TypeVar("_F", bound="Callable[..., Any] | classmethod[Any, Any, Any] | staticmethod[Any, Any]")

#: Without `on`: 0.1 s doubling up to 5 s, plus up to 0.1 s at random to spread clients out.
SAFE_BACKOFF: Backoff = ExponentialBackoff(jitter=0.1)
#: Without `on`: no attempt starts more than 45 s after the first (stamina's bound).
SAFE_DEADLINE = 45.0


class _LoopOptions(TypedDict, total=False):
    """The options of `retrying`: `retry`'s, documented there, but for `retry_on_result`."""

    on: RetryOn | None
    attempts: int | None
    backoff: Backoff | float
    deadline: float | None
    stop: Stop | None
    hint: HintExtractor | None
    budget: RetryBudget | None
    reraise: bool | None
    clock: Clock
    bus: EventBus | None
    name: str | None


class _RetryOptions(_LoopOptions, total=False):
    """The options of `retry`."""

    retry_on_result: Callable[[Any], bool] | None


_OPTIONS = tuple(_RetryOptions.__annotations__)
_LOOP_OPTIONS = tuple(_LoopOptions.__annotations__)


def _build(**options: Unpack[_RetryOptions]) -> Retry:
    """Build the `Retry`, filling in the defaults that depend on whether `on` was given."""
    rest: dict[str, Any] = dict(options)
    on, reraise = rest.pop("on", None), rest.pop("reraise", None)
    if on is None:
        rest.setdefault("backoff", SAFE_BACKOFF)
        rest.setdefault("deadline", SAFE_DEADLINE)
    # `Retry` has the defaults that do not depend on `on`.
    return Retry(
        on=Exception if on is None else on,
        reraise=on is None if reraise is None else reraise,
        **rest,
    )


@overload
def retry(fn: _F, /) -> _F: ...
@overload
def retry(**options: Unpack[_RetryOptions]) -> Retry: ...
def retry(fn: Any = None, /, **options: Any) -> Any:
    """Build a retry policy: a decorator for ``def`` and ``async def``, or a pipeline stage.

    ``@retry`` alone (or ``@retry()``) retries any `Exception` with safe defaults; name the
    transient errors with ``on=`` to get the established defaults instead (see below).

    Args:
        fn: Only for the bare ``@retry``: the function to decorate.
        **options: Keywords only:

            - ``on``: What is worth retrying: an exception type, a tuple of them, or a
              predicate taking the exception (true: retry; a number or `timedelta`: retry
              after that many seconds, as stamina's backoff hooks). None (left out): every
              `Exception`, with the safe defaults below.
            - ``attempts=3``: Attempts in all, the first call included; None for no limit
              (then give `deadline` or `stop`).
            - ``backoff``: The wait before each retry, a `Backoff` or constant seconds.
              With ``on``: ``ExponentialBackoff()``, 0.1 s doubling up to 5 s; without:
              the same plus up to 0.1 s of jitter.
            - ``deadline``: Seconds from the first attempt after which no new attempt
              starts (a retry never sleeps past it); published inside the call through
              `selfheal.remaining()` and enforced by an inner async `Timeout`. An
              enclosing deadline on the same clock binds the retry too. With ``on``: None;
              without: 45.
            - ``stop``: An extra `Stop` condition, or'ed with `attempts` and `deadline`.
            - ``retry_on_result``: A predicate on the result; true means "retry this result".
            - ``hint``: Reads the server's wait (Retry-After) from an exception; when it
              gives seconds they replace the backoff's wait. None to ignore hints.
            - ``budget``: A `RetryBudget` shared with other calls; a retry it refuses gives
              up.
            - ``reraise``: How to give up: True re-raises the last exception itself, False
              raises `RetryError` from it. With ``on``: False; without: True.
            - ``clock``: Sleeps and measures time.
            - ``bus``: Receives ``retry.<name>.retrying`` (per retry, only built when
              subscribed), ``retry.<name>.gave_up`` and ``retry.<name>.budget_exhausted``.
            - ``name``: The name in event types; defaults to the wrapped function's name.

    Returns:
        A `Retry` policy; for the bare ``@retry``, the decorated function. Decorated
        functions carry the policy's `RetryStatistics` as ``fn.statistics``.

    Raises:
        TypeError: For a keyword we do not take (one of tenacity's or stamina's names the
            equivalent), an option of the wrong type, or a positional argument that is not
            a function to decorate.
        ValueError: If a number is out of range or nothing would ever stop retrying.
    """
    check_options("retry", options, _OPTIONS)
    if fn is None:
        return _build(**options)
    _check_bare(fn, options)
    return _build()(fn)


def _check_bare(fn: object, options: dict[str, Any]) -> None:
    """Refuse what is not a function to decorate where the bare ``@retry`` takes one."""
    peer = peer_object(fn)
    if peer is not None:
        raise TypeError(f"retry() got {peer}")
    shown = None
    if isinstance(fn, type) and issubclass(fn, BaseException):
        shown = fn.__name__
    elif isinstance(fn, tuple):
        names = [getattr(t, "__name__", repr(t)) for t in fn]
        shown = f"({', '.join(names)}{',' if len(names) == 1 else ''})"
    if shown is not None:
        raise TypeError(
            f"retry({shown}): the errors to retry are given by keyword: @retry(on={shown})"
        )
    if options:
        shown = ", ".join(f"{key}={value!r}" for key, value in options.items())
        raise TypeError(
            f"retry() takes either a function (bare @retry) or options (@retry({shown})), not "
            f"both; write retry({shown})(fn)"
        )
    if not callable(fn) and not isinstance(fn, classmethod | staticmethod):
        raise TypeError(
            f"retry({fn!r}): expected a function to decorate (bare @retry) or keyword "
            "options (@retry(on=..., attempts=...))"
        )


def retrying(**options: Unpack[_LoopOptions]) -> RetryLoop:
    """Retry a block of code, in a ``for`` or ``async for`` loop.

    ``for attempt in retrying(...): with attempt: ...``, or ``async for`` with the same plain
    ``with``. The options and their defaults are `retry`'s (without ``retry_on_result``: a
    block has no result); each ``for`` over the loop is one call under them, and
    ``attempt.number`` counts its attempts from 1. Only the errors `on` catches are kept
    from leaving the block; when the retry gives up, the ``for`` raises as the decorator
    would. The rest of the loop's body runs after every attempt, so put all the work to
    retry inside ``with attempt:``. To share a policy's budget and statistics, use
    ``policy.retrying()``.

    Returns:
        A `RetryLoop` (reusable: each ``for`` starts afresh).

    Raises:
        TypeError: For a keyword we do not take (tenacity's and stamina's name ours).
        ValueError: If a number is out of range.
    """
    check_options("retrying", options, _LOOP_OPTIONS)
    return _build(**options).retrying()
