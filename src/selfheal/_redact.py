"""Keep secrets out of output: passwords in URLs, ``token=``/``password=`` values, bearer tokens.

Anything that may reach a log line, an event, an HTTP response or a journal (check output,
error messages, command lines) goes through `redact` first. The rules err on the side of hiding:
a false positive costs a few characters of output, a false negative leaks a credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MASK", "is_secret_key", "redact", "redact_value"]

#: What a hidden secret is replaced with.
MASK = "***"

# Key names whose values are secrets (as a query parameter, a conninfo keyword, a JSON key).
_SECRET_KEY = (
    r"(?:[A-Za-z0-9]+[_-])*"  # noqa: S105 - names of secrets, not a secret
    r"(?:password|passwd|pwd|pass|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|credentials?|auth)"
)
_SECRET_KEY_RE = re.compile(rf"^{_SECRET_KEY}$", re.IGNORECASE)

# scheme://user:password@host -> scheme://user:***@host (the user name is not a secret).
_URL_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:)[^\s/@]+(?=@)")
# key=value, key: value, "key": "value" (query strings, libpq conninfo, JSON, YAML).
_KEY_VALUE = re.compile(
    rf"(?P<head>(?<![A-Za-z0-9]){_SECRET_KEY}(?P<q>[\"']?)\s*[=:]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s&;,\"'}]+)",
    re.IGNORECASE,
)
# Authorization: Bearer abc / Basic abc / Token abc
_AUTH_SCHEME = re.compile(r"(?P<head>\b(?:bearer|basic|token)\s+)[A-Za-z0-9\-._~+/]+=*", re.I)


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    if value[:1] in "\"'" and len(value) >= 2:
        return f"{match.group('head')}{value[0]}{MASK}{value[0]}"
    return f"{match.group('head')}{MASK}"


def redact(text: str) -> str:
    """Return `text` with credentials replaced by ``***``.

    Hides the password of ``scheme://user:password@host`` URLs, the values of secret-looking
    keys (``password=``, ``token=``, ``api_key:``, ``"secret": "..."``) and the credentials of
    ``Bearer``/``Basic``/``Token`` authorization values.

    Args:
        text: Any text that may reach a user: an error message, a command line, check output.

    Returns:
        The text with every secret masked; text without secrets is returned unchanged.
    """
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m.group('head')}{MASK}", text)
    text = _KEY_VALUE.sub(_mask_value, text)
    return _AUTH_SCHEME.sub(lambda m: f"{m.group('head')}{MASK}", text)


def is_secret_key(key: str) -> bool:
    """Return whether a mapping key names a secret (``password``, ``api_key``, ``db_token``).

    Args:
        key: A mapping key or parameter name.

    Returns:
        True when values under this key must never be shown.
    """
    return bool(_SECRET_KEY_RE.match(key))


def redact_value(value: Any) -> Any:
    """Return a copy of `value` (mappings, sequences, strings) with secrets masked.

    Values under secret-looking keys are replaced whole; strings are passed through `redact`;
    numbers, booleans and None are kept.

    Args:
        value: A JSON-like structure, e.g. a check's observed values.

    Returns:
        The redacted copy (plain dicts and lists).
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            str(k): MASK if is_secret_key(str(k)) else redact_value(v) for k, v in value.items()
        }
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [redact_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(repr(value))
