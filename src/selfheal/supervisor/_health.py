"""Supervised programs seen as health checks, so recovery rules can verify a restart.

In the daemon, a rule's ``verify = { checks = ["web"] }`` names programs: ``web`` passes when
every process of it is RUNNING (ready) and, if it has a probe, the probe passes right now.
A program that is ready at spawn and has no probe offers no proof but staying up: it passes
once every process has been RUNNING for `ProgramHealth.settle` seconds, so a restart that
dies during start-up is not called a success.
"""

from __future__ import annotations

from selfheal.interfaces import HealthStatus
from selfheal.supervisor._probes import build_check, probe_once
from selfheal.supervisor._states import ProcessState
from selfheal.supervisor._supervisor import Supervisor

__all__ = ["ProgramHealth"]


class ProgramHealth:
    """A `HealthSource` over a `Supervisor`: one check per program (or process ``name:N``).

    Args:
        supervisor: The programs to report on.
        settle: Seconds a process ready at spawn, without probes, must have been running
            before it passes.
    """

    def __init__(self, supervisor: Supervisor, *, settle: float = 1.0) -> None:
        self.supervisor = supervisor
        self.settle = settle

    def __repr__(self) -> str:
        return f"ProgramHealth({self.supervisor!r}, settle={self.settle:g})"

    def status(self, name: str) -> HealthStatus:
        """Return PASS when every process of program `name` is RUNNING (and settled), else FAIL.

        Unknown names are UNKNOWN rather than an error: a rule may name a check that the
        configuration no longer has, and that must fail verification, not crash it.
        """
        sup = self.supervisor
        try:
            names = sup.instance_names(name)
            states = [sup.state(n) for n in names]
            spec = sup.spec(name)
        except KeyError:
            return HealthStatus.UNKNOWN
        if not states or any(s is not ProcessState.RUNNING for s in states):
            return HealthStatus.FAIL
        unproven = spec.ready == "spawn" and spec.liveness is None and spec.readiness is None
        if unproven and self.settle > 0:
            uptimes = {p["name"]: p["uptime"] for p in sup.status() if p["name"] in names}
            if any((uptimes.get(n) or 0.0) < self.settle for n in names):
                return HealthStatus.FAIL
        return HealthStatus.PASS

    async def check_now(self, name: str) -> HealthStatus:
        """Return `status(name)`, and for a program with a probe, run the probe once now."""
        status = self.status(name)
        if status is not HealthStatus.PASS:
            return status
        try:
            spec = self.supervisor.spec(name)
        except KeyError:  # removed by a reload meanwhile
            return HealthStatus.UNKNOWN
        probe = spec.liveness or spec.readiness
        if probe is None:
            return status
        check = build_check(probe, spec.cwd)
        error = await probe_once(check, probe.timeout, self.supervisor.clock, name=name)
        return HealthStatus.FAIL if error else HealthStatus.PASS
