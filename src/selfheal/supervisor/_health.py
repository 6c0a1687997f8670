"""Supervised programs seen as health checks, so recovery rules can verify a restart.

In the daemon, a rule's ``verify = { checks = ["web"] }`` names programs: ``web`` passes when
every process of it is RUNNING (ready) and, if it has a probe, the probe passes right now.
"""

from __future__ import annotations

import asyncio

from selfheal.health._api import HealthStatus
from selfheal.supervisor._core import Supervisor, _build_check
from selfheal.supervisor._states import ProcessState

__all__ = ["ProgramHealth"]


class ProgramHealth:
    """A `HealthSource` over a `Supervisor`: one check per program.

    Args:
        supervisor: The programs to report on.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def __repr__(self) -> str:
        return f"ProgramHealth({self.supervisor!r})"

    def status(self, name: str) -> HealthStatus:
        """Return PASS when every process of program `name` is RUNNING, else FAIL.

        Unknown names are UNKNOWN rather than an error: a rule may name a check that the
        configuration no longer has, and that must fail verification, not crash it.
        """
        try:
            states = [self.supervisor.state(n) for n in self.supervisor.instance_names(name)]
        except KeyError:
            return HealthStatus.UNKNOWN
        ok = bool(states) and all(s is ProcessState.RUNNING for s in states)
        return HealthStatus.PASS if ok else HealthStatus.FAIL

    async def check_now(self, name: str) -> HealthStatus:
        """Return `status(name)`, and for a program with a probe, run the probe once now."""
        status = self.status(name)
        if status is not HealthStatus.PASS:
            return status
        spec = self.supervisor.spec(name)
        probe = spec.liveness or spec.readiness
        if probe is None:
            return status
        check = _build_check(probe, spec.cwd)
        try:
            async with asyncio.timeout(probe.timeout):
                await check()
        except Exception:  # noqa: BLE001 - any probe failure is a failed verification
            return HealthStatus.FAIL
        return HealthStatus.PASS
