"""What other components (recovery rules, the control API) may ask of a supervisor."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["ProgramControl"]


@runtime_checkable
class ProgramControl(Protocol):
    """Start, stop and restart supervised programs by name.

    Each method returns once the action is done (the program started, or stopped and reaped)
    and raises `KeyError` for an unknown name.
    """

    def program_names(self) -> list[str]:
        """Return the names of the configured programs."""
        ...

    async def start_program(self, name: str) -> None:
        """Start `name` if it is not running."""
        ...

    async def stop_program(self, name: str) -> None:
        """Stop `name` (stop signal, grace period, then SIGKILL to its process group)."""
        ...

    async def restart_program(self, name: str) -> None:
        """Stop `name` if running, then start it."""
        ...
