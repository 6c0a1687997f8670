"""Functions the test experiments call through the ``python`` provider (and Chaos Toolkit too)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def is_positive(value: Any) -> bool:
    """A probe tolerance: the probe's output is a positive number."""
    return isinstance(value, int | float) and value > 0


def health_status(url: str) -> str:
    """Return the "status" field of the JSON at `url` ("unreachable" when it cannot be read)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(json.load(response)["status"])
    except OSError as exc:
        return f"unreachable: {exc}"


def fail(message: str = "boom") -> None:
    """Raise, to test a failing python activity."""
    raise RuntimeError(message)


def greet(name: str, configuration: dict[str, Any] | None = None) -> str:
    """Return a greeting that uses the experiment's configuration."""
    prefix = (configuration or {}).get("greeting", "hello")
    return f"{prefix} {name}"


def secret_token(secrets: dict[str, Any] | None = None) -> str:
    """Return the token the experiment's secrets hand over (to test they are passed)."""
    return (secrets or {}).get("token", "")
