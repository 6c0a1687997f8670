"""Old home of `Supervisor`, kept importable until its last callers import the package.

`selfheal.supervisor._supervisor` is the facade now (the I/O core was split by concept);
import `Supervisor` and `ReloadResult` from `selfheal.supervisor`. Delete this module once
nothing imports it.
"""

from selfheal.supervisor._supervisor import ReloadResult, Supervisor

__all__ = ["ReloadResult", "Supervisor"]
