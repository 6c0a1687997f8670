"""JSON that every parser reads: ``nan`` and ``inf`` become ``null``.

Python's encoder writes ``NaN`` and ``Infinity`` by default, which is not JSON: SQLite's
``json_extract`` fails on the journal, and browsers and ``jq`` refuse the answer. Every JSON
selfheal writes from values it did not choose (a check's observed values, an event's data)
goes through `dumps` or `finite`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps", "finite"]


def finite(value: Any, _path: frozenset[int] = frozenset()) -> Any:
    """Return `value` with every ``nan``, ``inf`` and ``-inf`` float replaced by None.

    Mappings become dicts and lists and tuples lists where something was replaced; a
    container that contains itself is left as it is below the repeat (the encoder reports it).

    Args:
        value: A JSON-like structure.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if not isinstance(value, Mapping | list | tuple) or id(value) in _path:
        return value
    path = _path | {id(value)}
    if isinstance(value, Mapping):
        return {k: finite(v, path) for k, v in value.items()}
    return [finite(v, path) for v in value]


def dumps(value: Any, **options: Any) -> str:
    """Return `value` as JSON text (`json.dumps` `options`), non-finite numbers as ``null``.

    The common case costs one `json.dumps`; only a value with a non-finite number is copied.

    Raises:
        ValueError: For a circular reference.
        TypeError: For what JSON cannot hold (unless a ``default`` option handles it).
    """
    try:
        return json.dumps(value, allow_nan=False, **options)
    except ValueError:
        return json.dumps(finite(value), allow_nan=False, **options)
