"""Hand-made implementations of the interfaces components consume, for tests.

Both are plain in-memory objects: a test decides what the supervisor does and what the health
checks say, then asserts what was asked of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from selfheal.interfaces import HealthStatus

__all__ = ["FakeHealthSource", "FakeProgramControl"]


class FakeProgramControl:
    """A `ProgramControl` over a set of names that records every call.

    Each call is recorded before anything else happens, so a failing or hanging call is in
    `calls` too. An unknown name raises `KeyError`, as the protocol says.

    Args:
        *names: The programs it knows.
        on_restart: Called with the name after each successful restart (e.g. to make a health
            check pass: ``on_restart=health.set``).

    Attributes:
        calls: ``(action, name)`` of every call, in order; action is ``start``, ``stop`` or
            ``restart``.
        error: When set, every call of a known name raises it (after being recorded).
        hang: When true, every call of a known name waits until cancelled (a deadline test).
    """

    def __init__(self, *names: str, on_restart: Callable[[str], object] | None = None) -> None:
        self.names = list(names)
        self.on_restart = on_restart
        self.calls: list[tuple[str, str]] = []
        self.error: BaseException | None = None
        self.hang = False

    def __repr__(self) -> str:
        return f"FakeProgramControl({', '.join(map(repr, self.names))})"

    @property
    def restarts(self) -> list[str]:
        """Return the names restarted, in order."""
        return [name for action, name in self.calls if action == "restart"]

    def program_names(self) -> list[str]:
        """Return the names given at construction."""
        return list(self.names)

    async def start_program(self, name: str) -> None:
        """Record a start of `name`."""
        await self._act("start", name)

    async def stop_program(self, name: str) -> None:
        """Record a stop of `name`."""
        await self._act("stop", name)

    async def restart_program(self, name: str) -> None:
        """Record a restart of `name`, then call `on_restart`."""
        await self._act("restart", name)
        if self.on_restart is not None:
            self.on_restart(name)

    async def _act(self, action: str, name: str) -> None:
        if name not in self.names:
            raise KeyError(name)
        self.calls.append((action, name))
        if self.error is not None:
            raise self.error
        if self.hang:
            await asyncio.Event().wait()


class FakeHealthSource:
    """A `HealthSource` whose statuses the test sets.

    Args:
        statuses: Initial status per check name.
        default: The status of a name never set; None makes such a name unknown (`KeyError`,
            as a real source raises for a check it does not have).

    Attributes:
        checked: The name of every `check_now` call, in order.
    """

    def __init__(
        self,
        statuses: Mapping[str, HealthStatus] | None = None,
        *,
        default: HealthStatus | None = HealthStatus.FAIL,
    ) -> None:
        self.statuses: dict[str, HealthStatus] = dict(statuses or {})
        self.default = default
        self.checked: list[str] = []

    def __repr__(self) -> str:
        return f"FakeHealthSource({self.statuses!r}, default={self.default!r})"

    def set(self, name: str, status: HealthStatus = HealthStatus.PASS) -> None:
        """Make check `name` report `status` from now on (PASS unless told otherwise)."""
        self.statuses[name] = status

    def status(self, name: str) -> HealthStatus:
        """Return the status set for `name` (or the default)."""
        found = self.statuses.get(name, self.default)
        if found is None:
            raise KeyError(name)
        return found

    async def check_now(self, name: str) -> HealthStatus:
        """Record the call in `checked` and return `status(name)`."""
        self.checked.append(name)
        return self.status(name)
