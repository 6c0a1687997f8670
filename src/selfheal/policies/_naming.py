"""How a policy names itself in event types when it was given no name."""

from __future__ import annotations


def check_name(owner: str, name: object) -> None:
    """Refuse a name that would break event types (``retry.<name>.gave_up``) and patterns.

    Raises:
        ValueError: If `name` is not None and not a non-empty string free of '.' and '*'.
    """
    if name is not None and (not isinstance(name, str) or not name or "." in name or "*" in name):
        raise ValueError(
            f"{owner}: name must be a non-empty string without '.' or '*' (it is one segment "
            f"of the event types), or None for the function's name, got {name!r}"
        )


def name_of(name: str | None, fn: object) -> str:
    """Return `name`, else the wrapped function's ``__name__``, else ``"call"``."""
    if name:
        return name
    found = getattr(fn, "__name__", None)
    return found if isinstance(found, str) else "call"
