"""How the journal turns an event's data into JSON text, secrets hidden, and back.

Every event's data is encoded on the journal's writer thread, so the common case (a flat dict
of known keys and plain values) takes a fast path; anything else is cleaned first: values under
secret-looking keys are masked at any depth, and strings that may hold a secret go through
`selfheal._redact.redact`. What JSON cannot hold is kept as its (redacted) repr.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from selfheal._json import finite
from selfheal._redact import MASK, is_secret_key, redact

__all__ = ["decode_data", "encode_data"]


def _repr(value: Any) -> str:
    # What JSON cannot hold is stored as its repr, which may hold a secret too.
    return redact(repr(value))


# allow_nan=False: NaN and Infinity are not JSON (SQLite's json_extract fails on them); a
# value holding one is encoded again with them as null.
_SLOW_ENCODE = json.JSONEncoder(
    default=_repr, ensure_ascii=False, separators=(",", ":"), allow_nan=False
).encode
# json.dumps builds a C encoder on every call, which is most of its cost on a small dict; the
# journal encodes every event's data, so it builds one once (a stdlib detail, hence the
# fallback to the public encoder when it is missing or fails).
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE: Any = (
    # markers, default, encoder, indent, separators, sort_keys, skipkeys, allow_nan
    _c_make_encoder(None, _repr, json.encoder.encode_basestring, None, ":", ",", 0, 0, 0)
    if _c_make_encoder is not None
    else None
)


def _ENCODE(data: Any, original: Any = None) -> str:  # noqa: N802 - reads as a constant
    if _C_ENCODE is not None:
        try:
            return "".join(_C_ENCODE(data, 0))
        except (ValueError, TypeError, RecursionError):
            pass
    try:
        return _SLOW_ENCODE(finite(data))
    except (ValueError, TypeError, RecursionError):
        # Keys JSON cannot have, or a cycle: keep what it looked like rather than lose it.
        shown = data if original is None else original
        return _SLOW_ENCODE({"unencodable": _repr(shown)[:2000]})


# Keys seen before and found harmless: checking a dict's keys against it is one C call.
_SCALARS = frozenset({str, int, float, bool, type(None)})
_SAFE_KEYS: set[object] = set()
# Every pattern `redact` hides needs one of these characters ("@" of a URL's userinfo, "="
# or ":" of key=value, whitespace of "--password x" and "Bearer x"): a string without any
# of them cannot hold a secret it would find, and is not scanned.
_SUSPECT = re.compile(r"[@=:\s]").search
# Strings seen before without any of them: event values repeat (hosts, names, statuses), and
# a set lookup costs a third of the search.
_PLAIN: set[str] = set()


def _plain(value: str) -> bool:
    if _SUSPECT(value):
        return False
    if len(_PLAIN) >= 10_000:  # never let odd values grow it unbounded
        _PLAIN.clear()
    if len(value) <= 100:
        _PLAIN.add(value)
    return True


def encode_data(data: Any) -> str:
    """Return `data` as JSON text with secrets hidden, non-JSON values as repr.

    Values under secret-looking keys are masked at any depth, and strings that may hold a
    secret (a program's log tail, an error's text) go through `selfheal._redact.redact`.
    """
    if not data:
        return "{}"
    if type(data) is not dict:
        data = dict(data)
    values = data.values()
    if _SAFE_KEYS.issuperset(data) and _SCALARS.issuperset(map(type, values)):
        for value in values:
            if type(value) is str and value not in _PLAIN and not _plain(value):
                break
        else:
            return _ENCODE(data)  # flat, known keys, no string worth scanning
    try:
        cleaned = _clean(data, frozenset())
    except RecursionError:
        # Too deep to check for secrets is too deep to store: one bad event must not
        # cost the batch it came in.
        return _SLOW_ENCODE({"unencodable": "data nested too deeply to store"})
    if len(_SAFE_KEYS) < 10_000:  # keys are few; never let odd ones grow it unbounded
        _SAFE_KEYS.update(k for k in data if isinstance(k, str) and not is_secret_key(k))
    return _ENCODE(cleaned, data)


def _clean(value: Any, path: frozenset[int]) -> Any:
    """Return `value` with secret-keyed values masked and suspect strings redacted.

    Keys are kept as they are (JSON's encoder then decides what it cannot hold), and a
    container that contains itself is left as it is below the repeat (the encoder reports it).
    """
    if type(value) is str:
        return redact(value) if _SUSPECT(value) else value
    if not isinstance(value, Mapping | list | tuple) or id(value) in path:
        return value
    path = path | {id(value)}
    if isinstance(value, Mapping):
        return {
            k: MASK if isinstance(k, str) and is_secret_key(k) else _clean(v, path)
            for k, v in value.items()
        }
    return [_clean(v, path) for v in value]


def decode_data(text: object) -> dict[str, Any]:
    """Return the data `encode_data` stored (or what a row written by hand holds), as a dict."""
    if text is None:
        return {}
    if not isinstance(text, str | bytes):
        return {"value": text}  # a row not written by the journal: show what it holds
    try:
        value = json.loads(text)
    except ValueError:
        return {"raw": text if isinstance(text, str) else text.decode(errors="replace")}
    return value if isinstance(value, dict) else {"value": value}
