"""The ``selfheal`` command line (needs the ``server`` extra: click, rich, pydantic).

`main` is the ``selfheal`` command. It is imported on first use, so that the daemon's own
process (`selfheal.cli.daemon`, what ``selfheal run`` execs) never loads click or rich.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selfheal.cli._main import main

__all__ = ["main"]


def __getattr__(name: str) -> Any:
    if name != "main":
        raise AttributeError(f"module 'selfheal.cli' has no attribute {name!r}")
    value = importlib.import_module("selfheal.cli._main").main
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
