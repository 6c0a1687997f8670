"""One owner of each restart: the supervisor restarts what it supervises, rules defer to it.

A supervised program whose ``restart`` is not ``never`` is restarted by the supervisor, with
its backoff and restart limits. A recovery rule that restarts such a program:

- on an event of that program's own lifecycle (``process.web.exited``, ``.unhealthy``...),
  sees the restart as already handled (``handled_by = "supervisor"`` in its events): the step
  waits for the supervisor's restart and succeeds once the program runs again; it fails, so
  the ladder goes on and ends in escalation, if the supervisor gives up (FATAL) or its policy
  leaves the program down;
- on any other event (a failed health check, ``process.web.fatal``: the supervisor gave up),
  restarts it through `ProgramControl`, unless the supervisor is restarting it already
  (BACKOFF, STARTING): then the step waits for that restart, so a backoff is never cut short.

Programs with ``restart = "never"`` are left to the rules. See docs/recovery.md.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from selfheal.errors import ActionError
from selfheal.events import Event, parse_type
from selfheal.supervisor import ProcessState, Supervisor

__all__ = ["HANDLED_BY", "RestartOwner", "SupervisorRestarts", "handled_program"]

#: What recovery events say in ``handled_by`` when the supervisor owns the restart.
HANDLED_BY = "supervisor"

# The supervisor gave up on the program: what a rule does then is the rule's decision.
_GAVE_UP = "fatal"
_UNDER_WAY = frozenset({ProcessState.BACKOFF, ProcessState.STARTING})
_SETTLED = (ProcessState.RUNNING, ProcessState.STOPPED, ProcessState.EXITED, ProcessState.FATAL)


@runtime_checkable
class RestartOwner(Protocol):
    """Something that restarts programs by itself (the supervisor), asked before a rule does."""

    def restarts_itself(self, program: str) -> bool:
        """Return whether `program` is restarted automatically (False for unknown names)."""
        ...

    def restarting(self, name: str) -> bool:
        """Return whether an automatic restart of program or instance `name` is under way."""
        ...

    async def wait_restarted(self, name: str) -> None:
        """Wait until program or instance `name` runs again.

        Raises:
            ActionError: If it settled anywhere else (given up, exited, stopped).
        """
        ...


class SupervisorRestarts:
    """The `RestartOwner` of a `Supervisor`: programs whose ``restart`` is not ``never``.

    Args:
        supervisor: The supervisor whose programs' states are read.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def __repr__(self) -> str:
        return f"SupervisorRestarts({self.supervisor!r})"

    def restarts_itself(self, program: str) -> bool:
        """Return whether the supervisor restarts `program` by itself."""
        try:
            return self.supervisor.spec(program).restart != "never"
        except KeyError:
            return False

    def restarting(self, name: str) -> bool:
        """Return whether a process of `name` waits out a backoff or is starting."""
        sup = self.supervisor
        try:
            return any(sup.state(n) in _UNDER_WAY for n in sup.instance_names(name))
        except KeyError:
            return False

    async def wait_restarted(self, name: str) -> None:
        """Wait until every process of `name` is RUNNING again.

        Raises:
            ActionError: If one settles in STOPPED, EXITED or FATAL instead (with the reason).
        """
        sup = self.supervisor
        try:
            names = sup.instance_names(name)
        except KeyError as exc:
            raise ActionError(str(exc.args[0])) from None
        for instance in names:
            state = await sup.wait_for(instance, *_SETTLED)
            if state is not ProcessState.RUNNING:
                reason = next(
                    (p["reason"] for p in sup.status() if p["name"] == instance and p["reason"]),
                    "",
                )
                why = f" ({reason})" if reason else ""
                raise ActionError(
                    f"the supervisor gave up on {instance}: {state.value}{why}"
                    if state is ProcessState.FATAL
                    else f"{instance} is {state.value}{why}: the supervisor does not restart it"
                )


def handled_program(event: Event, owner: RestartOwner | None) -> str | None:
    """Return the program whose restart after `event` is the owner's, or None.

    That is the subject of a ``process.<program>.*`` event (other than ``.fatal``) of a
    program the owner restarts by itself, or of any event whose data says
    ``handled_by = "supervisor"``.
    """
    if owner is None:
        return None
    parts = parse_type(event.type, event.source)
    if event.data.get("handled_by") == HANDLED_BY:
        return parts.subject
    if parts.area != "process" or parts.what == _GAVE_UP:
        return None
    return parts.subject if owner.restarts_itself(parts.subject) else None
