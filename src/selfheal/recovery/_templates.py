"""The templates of actions and rules: ``{subject}``-style placeholders filled from an event.

Only plain names are substituted, never attributes or indexes, so a template from a config
file cannot reach into Python objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from selfheal.events import Event

__all__ = ["event_fields", "render"]


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def event_fields(event: Event) -> dict[str, str]:
    """Return the values templates may use: type, source, severity, subject, data.<key>."""
    fields = {
        "type": event.type,
        "source": event.source,
        "severity": str(event.severity),
        "subject": event.subject,
    }
    for key, value in event.data.items():
        if isinstance(value, str | int | float | bool):
            fields[f"data.{key}"] = str(value)
    return fields


def render(
    template: str, fields: Mapping[str, str], *, quote: Callable[[str], str] | None = None
) -> str:
    """Fill ``{subject}``-style placeholders from `fields`; unknown ones are kept as written.

    Only plain names are substituted (no attribute access or indexing, unlike `str.format`),
    so a template from a config file cannot reach into Python objects.

    Args:
        template: Text with ``{name}`` placeholders.
        fields: From `event_fields`.
        quote: Applied to each substituted value (``shlex.quote`` for shell commands).

    Returns:
        The text.
    """

    def sub(match: re.Match[str]) -> str:
        value = fields.get(match.group(1))
        if value is None:
            return match.group(0)
        return quote(value) if quote else value

    return _PLACEHOLDER.sub(sub, template)
