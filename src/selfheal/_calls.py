"""What every layer asks of a user's callable: is it async, and what is it called."""

from __future__ import annotations

import functools
import inspect
import pkgutil
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from selfheal.errors import CheckError

T = TypeVar("T")

_FUNCTION_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

__all__ = [
    "awaited",
    "checked_keywords",
    "contained",
    "describe",
    "describe_error",
    "is_async_callable",
    "peer_keywords",
    "refuse_awaitable",
    "resolve_function",
    "unknown_keyword",
    "unknown_keywords",
]


def is_async_callable(fn: object) -> bool:
    """Return whether calling `fn` gives a coroutine.

    True for an ``async def`` function or bound method, a partial of one, and an object whose
    ``__call__`` is ``async def``.
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    if isinstance(fn, type):
        return False  # calling a class builds an instance, whatever its __call__ is
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async __call__ on instances
    )


def describe(fn: object) -> str:
    """Return a readable name for `fn` (its qualified name, else its repr)."""
    return str(getattr(fn, "__qualname__", None) or repr(fn))


def describe_error(exc: BaseException) -> str:
    """Return one line saying why a user's check, job or scenario failed.

    A `CheckError` (the target answered, but wrongly) is its message alone; anything else is
    ``Type: message``, so a ``ConnectionRefusedError`` does not read as a bare errno text.
    Not redacted: callers redact what they show.
    """
    try:
        text = str(exc)
    except Exception as failure:  # noqa: BLE001 - user code's __str__ may raise anything
        text = f"(its message could not be read: {type(failure).__name__})"
    if isinstance(exc, CheckError):
        return text or "check failed"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def awaited(awaitable: Awaitable[T], what: str) -> T:
    """Return what `awaitable` (user code) gives, with `contained` exits.

    Raises:
        RuntimeError: Instead of ``SystemExit`` or ``KeyboardInterrupt``, which asyncio would
            re-raise out of the event loop, ending the whole process.
    """
    try:
        return await awaitable
    except (SystemExit, KeyboardInterrupt) as exc:
        raise contained(exc, what) from None


def contained(exc: BaseException, what: str) -> RuntimeError:
    """Return the error that stands for `exc` (``SystemExit``, ``KeyboardInterrupt``...).

    User code raising those must end its own call, never the daemon's event loop or thread.

    Args:
        exc: What the user's code raised.
        what: Who raised it, for the message (``"the check"``).
    """
    return RuntimeError(f"{what} raised {describe_error(exc)}")


def refuse_awaitable(value: object, what: str) -> None:
    """Refuse what a sync call returned if it is awaitable: a coroutine that would never run.

    A lambda around an async function, registered where a sync one is expected, returns a
    coroutine; it is closed (no "never awaited" warning) and the call fails with advice.

    Args:
        value: What the call returned.
        what: Names the callable in the message (``"the check"``, ``"the scenario"``).

    Raises:
        TypeError: If `value` is awaitable.
    """
    if inspect.isawaitable(value):
        close = getattr(value, "close", None)
        if close is not None:
            close()
        raise TypeError(f"{what} returned an awaitable; register the coroutine function itself")


def resolve_function(ref: str) -> Any:
    """Return the callable a config names as ``'module:function'`` (``pkg.mod:Class.method``).

    Raises:
        ValueError: Not of that form, not importable, or not callable; the message says which.
    """
    if not isinstance(ref, str) or not _FUNCTION_REF.match(ref):
        raise ValueError(f"call must be 'module:function', got {ref!r}")
    try:
        fn = pkgutil.resolve_name(ref)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot import {ref!r}: {exc}") from None
    if not callable(fn):
        raise ValueError(f"{ref!r} is not callable")
    return fn


KeywordCheck = Callable[[str, Iterable[str], tuple[str, ...]], None]


def unknown_keyword(owner: str, key: str, valid: tuple[str, ...]) -> str:
    """Return the line saying `owner` takes no keyword `key`: the closest one, and all."""
    import difflib  # only when a keyword is wrong: importing it costs more than a call

    close = difflib.get_close_matches(key, valid, n=1)
    guess = f": did you mean '{close[0]}='?" if close else ""
    every = ", ".join(valid)
    return f"{owner}() got an unexpected keyword '{key}='{guess} (valid keywords: {every})"


def unknown_keywords(owner: str, given: Iterable[str], valid: tuple[str, ...]) -> None:
    """Raise a TypeError naming each keyword of `given` not in `valid` (`unknown_keyword`).

    Raises:
        TypeError: One line per bad keyword.
    """
    problems = [unknown_keyword(owner, key, valid) for key in given if key not in valid]
    if problems:
        raise TypeError("\n".join(problems))


def peer_keywords(
    peers: Mapping[str, tuple[str, str]],
    see: str,
    *,
    owned: Mapping[tuple[str, str], str] | None = None,
) -> KeywordCheck:
    """Return a keyword check that also says what a peer library's keyword is here.

    Args:
        peers: A peer's keyword -> (the peer's name, what to write here instead).
        see: Where to read more, added to the message (``selfheal help breaker``).
        owned: (owner, keyword) -> why that one callable does not take it, for keywords
            that are right elsewhere.
    """
    owned = owned or {}

    def check(owner: str, given: Iterable[str], valid: tuple[str, ...]) -> None:
        problems = []
        for key in given:
            if key in valid:
                continue
            if (owner, key) in owned:
                problems.append(f"{owner}() got {key}=: {owned[owner, key]}")
            elif key in peers:
                peer, advice = peers[key]
                problems.append(f"{owner}() got {peer}'s keyword '{key}=': {advice}")
            else:
                problems.append(unknown_keyword(owner, key, valid))
        if problems:
            raise TypeError("\n".join(problems) + f" (see {see})")

    return check


def checked_keywords(cls: type[T], check: KeywordCheck = unknown_keywords) -> type[T]:
    """Make `cls(...)` with a keyword it does not take say which it meant and which it takes.

    Python's own error names the bad keyword only. The check runs before ``__init__``, so
    no TypeError raised inside it is ever rewritten.

    Args:
        cls: A class whose ``__init__`` takes named parameters (not ``**kwargs``).
        check: Raises for the bad keywords (a policy adds advice for its peers' keywords).
    """
    init = cls.__init__
    params = list(inspect.signature(init).parameters.values())[1:]  # not self
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return cls  # any keyword may be right
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    valid = tuple(p.name for p in params if p.kind in named)
    owner = cls.__name__

    @functools.wraps(init)
    def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs and not kwargs.keys() <= accepted:
            check(owner, kwargs, valid)
        init(self, *args, **kwargs)

    accepted = frozenset(valid)
    setattr(cls, "__init__", checked_init)  # noqa: B010 - mypy refuses assigning a method
    return cls
