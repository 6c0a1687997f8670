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


def touch(path: str) -> str:
    """Create the file at `path` (a rollback's visible trace); print it, as chatty code does."""
    with open(path, "a", encoding="utf-8"):
        pass
    print(f"touched {path}")
    return path


def leave(how: str) -> None:
    """Call chaoslib's exit_gracefully or exit_ungracefully, as Chaos Toolkit extensions do."""
    import time

    from chaoslib import exit as chaos_exit

    getattr(chaos_exit, f"exit_{how}")()
    time.sleep(30)  # the signal ends the run first
