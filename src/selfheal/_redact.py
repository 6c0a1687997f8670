"""Keep secrets out of output: passwords in URLs, ``token=``/``password=`` values, bearer tokens.

Anything that may reach a log line, an event, an HTTP response or a journal (check output,
error messages, command lines) goes through `redact` first. The rules err on the side of hiding:
a false positive costs a few characters of output, a false negative leaks a credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "is_secret_key", "mask_secret_keys", "redact", "redact_url", "redact_value"]

#: What a hidden secret is replaced with.
MASK = "***"
# How deep `redact_value` copies; a check's details are a few levels at most.
_MAX_DEPTH = 32

# Key names whose values are secrets (as a query parameter, a conninfo keyword, a JSON key).
_SECRET_KEY = (
    r"(?:[A-Za-z0-9]+[_-])*"  # noqa: S105 - names of secrets, not a secret
    # Glued prefixes count for the unmistakable words (PGPASSWORD, csrftoken).
    r"(?:[A-Za-z0-9]*(?:password|passwd|secret|token)|pwd|pass|api[_-]?key|apikey|"
    r"access[_-]?key|private[_-]?key|credentials?|auth)"
)
# As a mapping key, a whole header value is secret too; in text, `_AUTH_SCHEME` keeps the
# scheme word ("Authorization: Bearer ***") instead.
_SECRET_KEY_RE = re.compile(
    rf"^(?:{_SECRET_KEY}|(?:proxy[_-])?authori[sz]ation|(?:set[_-])?cookie)$", re.IGNORECASE
)

# scheme://user:password@host -> scheme://user:***@host (the user name is not a secret). The
# password runs to the authority's last '@', as URL parsers (urllib, redis-py) split it, so an
# unencoded '@' in it does not leave its tail behind.
_URL_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:)[^\s/]+(?=@[^\s/@]*(?:[/?#\s]|$))"
)
# key=value, key: value, "key": "value" (query strings, libpq conninfo, JSON, YAML).
_KEY_VALUE = re.compile(
    rf"(?P<head>(?<![A-Za-z0-9]){_SECRET_KEY}(?P<q>[\"']?)\s*[=:]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s&;,\"'}]+)",
    re.IGNORECASE,
)
# --password hunter2 (a command line in a command's output or a check's error).
_FLAG_VALUE = re.compile(
    rf"(?P<head>(?<![A-Za-z0-9-])--?{_SECRET_KEY}\s+)(?P<value>[^\s-]\S*)", re.I
)
# password hunter2, the password is hunter2 (a log line, a shell history): a word that can only
# name a password, then the next word, unless that word is what messages about passwords say.
_NOT_SECRETS = (
    "authentication|auth|failed|incorrect|invalid|wrong|required|missing|expired|must|for|of|"
    "to|the|and|or|not|has|file|prompt|changed?|reset|too|cannot|mismatch|does|did|length|"
    "policy|hash|field|please|supplied|provided|given|set|is|was|with|from|in|on"
)
_WORD_VALUE = re.compile(
    r"(?P<head>(?<![A-Za-z0-9_-])(?:[A-Za-z0-9]+_)*(?:password|passwd|passphrase|pwd)"
    rf"(?:\s+(?:is|was))?\s+)(?!(?:{_NOT_SECRETS})\b)(?P<value>[^\s\"',;]+)",
    re.IGNORECASE,
)
# Authorization: Bearer abc / Basic abc / Token abc
_AUTH_SCHEME = re.compile(r"(?P<head>\b(?:bearer|basic|token)\s+)[A-Za-z0-9\-._~+/]+=*", re.I)


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    if value[:1] in "\"'" and len(value) >= 2:
        return f"{match.group('head')}{value[0]}{MASK}{value[0]}"
    return f"{match.group('head')}{MASK}{_closing(match.string[: match.start()], value)}"


def _closing(before: str, value: str) -> str:
    """Return the brackets that end `value` but close what opened before it: "(password=x)".

    Only as many as are open before the secret: a bracket inside a secret is hidden with it.
    """
    still_open = {
        ")": before.count("(") - before.count(")"),
        "]": before.count("[") - before.count("]"),
    }
    end = len(value)
    while end > 1 and still_open.get(value[end - 1], 0) > 0:
        still_open[value[end - 1]] -= 1
        end -= 1
    return value[end:]


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
    text = _FLAG_VALUE.sub(_mask_value, text)
    text = _WORD_VALUE.sub(_mask_value, text)
    return _AUTH_SCHEME.sub(lambda m: f"{m.group('head')}{MASK}", text)


def is_secret_key(key: str) -> bool:
    """Return whether a mapping key names a secret (``password``, ``api_key``, ``db_token``).

    Args:
        key: A mapping key or parameter name.

    Returns:
        True when values under this key must never be shown.
    """
    return bool(_SECRET_KEY_RE.match(key))


def redact_value(value: Any, _path: frozenset[int] = frozenset()) -> Any:
    """Return a copy of `value` (mappings, sequences, strings) with secrets masked.

    Values under secret-looking keys are replaced whole; strings are passed through `redact`;
    numbers, booleans and None are kept. A container that contains itself is cut where it
    repeats (``"<recursive>"``), and one nested past 32 levels where it gets too deep, so the
    copy is always finite and JSON can hold it.

    Args:
        value: A JSON-like structure, e.g. a check's observed values.

    Returns:
        The redacted copy (plain dicts and lists).
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping) or (
        isinstance(value, Sequence) and not isinstance(value, bytes | bytearray)
    ):
        return _redact_container(value, _path)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(repr(value))


def _redact_container(value: Mapping[Any, Any] | Sequence[Any], path: frozenset[int]) -> Any:
    if id(value) in path:
        return "<recursive>"
    if len(path) >= _MAX_DEPTH:
        return "<nested too deeply>"
    path = path | {id(value)}
    if isinstance(value, Mapping):
        return {
            str(k): MASK if is_secret_key(str(k)) else redact_value(v, path)
            for k, v in value.items()
        }
    return [redact_value(v, path) for v in value]


def mask_secret_keys(value: Any, _path: frozenset[int] = frozenset()) -> Any:
    """Return `value` with the values under secret-looking keys masked, at any depth.

    Cheaper than `redact_value`: strings are not scanned, so it suits a hot path (the journal
    encodes every event with it); `value` itself is returned when nothing needed hiding. A
    container that contains itself is left as it is below the repeat (JSON cannot hold it
    anyway, and the caller's encoder reports it).

    Args:
        value: A JSON-like structure.

    Returns:
        `value`, or a copy (plain dicts and lists) with secrets masked.
    """
    if not isinstance(value, Mapping | list | tuple) or id(value) in _path:
        return value
    path = _path | {id(value)}
    if isinstance(value, Mapping):
        out = {
            k: MASK if isinstance(k, str) and is_secret_key(k) else mask_secret_keys(v, path)
            for k, v in value.items()
        }
        return value if all(out[k] is v for k, v in value.items()) else out
    items = [mask_secret_keys(v, path) for v in value]
    return value if all(a is b for a, b in zip(items, value, strict=True)) else items


def redact_url(url: str) -> str:
    """Return `url` without its password, every query value or any path past the first segment.

    Stricter than `redact` (which hides only secret-looking query keys), for URLs configured
    to be called, such as webhooks, whose query often carries a key under any name, and whose
    path often is the key (Slack's ``/services/T.../B.../<secret>``, Discord's
    ``/api/webhooks/<id>/<token>``).

    Args:
        url: Any URL.

    Returns:
        e.g. ``https://user:***@host/path?token=***``, ``https://hooks.slack.com/services/***``.
    """
    parts = urlsplit(url)
    path = parts.path
    first, sep, rest = path.lstrip("/").partition("/")
    if rest:
        path = f"/{first}{sep}{MASK}"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = "&".join(
        f"{pair.split('=', 1)[0]}={MASK}" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, path, query, ""))
