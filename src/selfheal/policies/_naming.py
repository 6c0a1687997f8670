"""How a policy names itself in event types when it was given no name."""

from __future__ import annotations


def name_of(name: str | None, fn: object) -> str:
    """Return `name`, else the wrapped function's ``__name__``, else ``"call"``."""
    if name:
        return name
    found = getattr(fn, "__name__", None)
    return found if isinstance(found, str) else "call"
