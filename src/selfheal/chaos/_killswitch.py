"""Kill switches: stop all chaos now, from this process or from outside it.

Two switches, both honoured by every chaos tool:

- **in-process**: `kill_switch()` rolls back every running monkey's faults and every active
  in-process fault at once, and refuses new ones until `release_kill_switch()`;
- **a file flag**: `KillSwitch(state_dir)` is ``<state_dir>/chaos.stop``. Another process
  (``selfheal chaos stop``, a deploy script, an operator with ``touch``) engages it; a running
  monkey sees it within its ``poll_interval`` and rolls everything back; nothing starts while
  it exists.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from selfheal._safepath import open_private, safe_dir

__all__ = [
    "KillSwitch",
    "kill_switch",
    "kill_switch_reason",
    "release_kill_switch",
    "watch_kill_switch",
]

logger = logging.getLogger("selfheal.chaos")

#: The flag file's name inside a state directory.
FLAG_NAME = "chaos.stop"


class KillSwitch:
    """A kill switch kept as a file, so any process can engage it.

    Args:
        state_dir: The directory of the flag (the daemon's ``state_dir``, ``.selfheal``).
    """

    __slots__ = ("path",)

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.path = Path(state_dir) / FLAG_NAME

    def __repr__(self) -> str:
        return f"KillSwitch({str(self.path.parent)!r})"

    def engaged(self) -> bool:
        """Return whether the flag file exists."""
        return self.path.exists()

    def engage(self, reason: str = "") -> None:
        """Create the flag file, recording `reason` and who engaged it.

        Raises:
            UnsafePathError: If another user could subvert the state directory (the flag is
                never written through a symlink).
            OSError: If the flag cannot be written.
        """
        safe_dir(self.path.parent, 0o700)
        with os.fdopen(open_private(self.path, os.O_WRONLY, 0o644, fresh=True), "w") as f:
            f.write(json.dumps({"reason": reason, "pid": os.getpid()}) + "\n")

    def release(self) -> bool:
        """Delete the flag file; return whether it existed."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def reason(self) -> str | None:
        """Return the reason recorded in the flag, "" if unreadable, None if not engaged."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return ""
        return str(data.get("reason", "")) if isinstance(data, dict) else ""


# The in-process switch is one flag per process by nature: code anywhere (a signal handler,
# an admin endpoint, a test) must reach every monkey and injection point without holding a
# reference to them. Watchers register while they run and unregister when they stop.
_lock = threading.Lock()
_reason: str | None = None
_watchers: dict[int, Callable[[str], None]] = {}
_next_id = 0


def kill_switch(reason: str = "kill switch") -> int:
    """Engage the in-process kill switch: roll back every fault of this process now.

    Every running `ChaosMonkey` aborts (rolls back its disrupted targets on its own loop, then
    checks its steady state) and every active in-process fault is removed. Until
    `release_kill_switch`, monkeys refuse to start and injectors refuse new faults.

    Args:
        reason: Recorded in the ``rolled_back`` events and refusal messages.

    Returns:
        How many watchers (running monkeys, the injection registry) were told.
    """
    global _reason  # noqa: PLW0603 - the process-wide flag, see above
    with _lock:
        _reason = reason or "kill switch"
        watchers = list(_watchers.values())
    logger.warning("chaos kill switch engaged: %s", reason)
    for notify in watchers:
        try:
            notify(reason)
        except Exception:  # one broken watcher must not stop the others
            logger.exception("chaos kill switch: a watcher failed")
    return len(watchers)


def release_kill_switch() -> bool:
    """Release the in-process kill switch; return whether it was engaged."""
    global _reason
    with _lock:
        was, _reason = _reason is not None, None
    return was


def kill_switch_reason() -> str | None:
    """Return why the in-process kill switch is engaged, or None when it is not."""
    return _reason


def watch_kill_switch(notify: Callable[[str], None]) -> Callable[[], None]:
    """Call `notify(reason)` when `kill_switch` is engaged; return the function that unwatches.

    `notify` runs in the thread that engaged the switch, so it must only hand the work over
    (e.g. with ``loop.call_soon_threadsafe``) or be quick and thread-safe.
    """
    global _next_id  # noqa: PLW0603 - the watchers' ids, see above
    with _lock:
        key = _next_id
        _next_id += 1
        _watchers[key] = notify

    def unwatch() -> None:
        with _lock:
            _watchers.pop(key, None)

    return unwatch
