r"""The process lifecycle, written down in one place: a pure `transition` over Enums.

No I/O happens here. The driver (`Supervisor`) feeds in what it observed (the child exited,
the backoff timer fired, a probe failed) and performs whatever the new state asks for:
entering STARTING means spawn, STOPPING means signal the group, BACKOFF means wait `delay`.

::

    STOPPED/EXITED/FATAL --start--> STARTING --ready--> RUNNING
    STARTING/RUNNING --exit--> BACKOFF --delay--> STARTING      (restart policy allows)
    STARTING --no resources--> BACKOFF                          (always; not counted)
                          \--> EXITED                           (policy says no restart)
                          \--> FATAL                            (restart intensity exceeded)
    STARTING/RUNNING --stop/unhealthy/restart--> STOPPING --exit--> STOPPED | BACKOFF | STARTING
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from selfheal.supervisor._spec import ProgramSpec

__all__ = ["ACTIVE", "IDLE", "Lifecycle", "ProcessState", "Trigger", "transition"]


class ProcessState(Enum):
    """Where a supervised process is in its life (supervisord's names)."""

    STOPPED = "STOPPED"
    """Not running because nobody asked it to (or it was stopped)."""
    STARTING = "STARTING"
    """Spawned (or being spawned), not ready yet."""
    RUNNING = "RUNNING"
    """Ready: spawned, READY=1 received or readiness probe passed."""
    BACKOFF = "BACKOFF"
    """Exited unexpectedly; waiting `Lifecycle.delay` before the next start."""
    STOPPING = "STOPPING"
    """Stop signal sent; waiting for the exit (SIGKILL after the grace period)."""
    EXITED = "EXITED"
    """Exited and the restart policy says not to restart."""
    FATAL = "FATAL"
    """Restarted too often (restart intensity); left stopped until started by hand."""


class Trigger(Enum):
    """What happened to a process, as the driver observed or was asked."""

    START = "start"
    """Asked to start (by the user, autostart or a dependency becoming ready)."""
    STOP = "stop"
    """Asked to stop."""
    RESTART = "restart"
    """Asked to restart (by the user or its group's strategy); not counted as a failure."""
    SPAWN_FAILED = "spawn_failed"
    """The command could not be executed (no such file, permission...)."""
    NO_RESOURCES = "no_resources"
    """The daemon lacked what a spawn needs (file descriptors, memory, processes).

    Its shortage, not the program's failure: retried after the backoff delay, never counted
    toward the restart intensity, so a program recovers once the resources are back.
    """
    READY = "ready"
    """The process became ready."""
    EXIT_SUCCESS = "exit_success"
    """The process exited with one of its success exit codes."""
    EXIT_FAILURE = "exit_failure"
    """The process exited otherwise (other code, or killed by a signal)."""
    UNHEALTHY = "unhealthy"
    """Liveness probe failed past its threshold, or an sd_notify heartbeat was missed."""
    BACKOFF_ELAPSED = "backoff_elapsed"
    """The backoff delay is over."""


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The state of one process and the counters the restart policy needs.

    Attributes:
        state: The current state.
        since: When it entered `state` (monotonic seconds).
        started_at: When the current (or last) run started; a run of at least
            ``backoff.reset_after`` resets `attempt`.
        attempt: Consecutive failed runs (drives the backoff delay).
        restarts: Monotonic times of automatic restarts (for restart intensity).
        delay: In BACKOFF, the seconds to wait before starting again.
        then_start: In STOPPING, start again once stopped.
        counted: In STOPPING, the restart is a failure (unhealthy) that counts.
        reason: Why the last transition happened (for events and status).
    """

    state: ProcessState = ProcessState.STOPPED
    since: float = 0.0
    started_at: float = 0.0
    attempt: int = 0
    restarts: tuple[float, ...] = ()
    delay: float = 0.0
    then_start: bool = False
    counted: bool = False
    reason: str = ""


#: States in which a process runs (or is being started).
ACTIVE = frozenset({ProcessState.STARTING, ProcessState.RUNNING})
#: States with no process and nothing under way.
IDLE = frozenset({ProcessState.STOPPED, ProcessState.EXITED, ProcessState.FATAL})


def transition(  # noqa: PLR0911, PLR0912 - the whole state table, in one place on purpose
    life: Lifecycle, trigger: Trigger, now: float, spec: ProgramSpec, *, rand: float = 0.5
) -> Lifecycle:
    """Return the lifecycle after `trigger` happened at `now`; unchanged if it does not apply.

    Args:
        life: The current lifecycle.
        trigger: What happened.
        now: Monotonic seconds.
        spec: The program (restart policy, backoff, intensity).
        rand: A uniform sample in [0, 1) for the backoff jitter.

    Returns:
        The new lifecycle (the same object when nothing changes).
    """
    state = life.state
    if state in IDLE:
        if trigger in (Trigger.START, Trigger.RESTART):
            # A start by hand forgives the past: FATAL is left and the counters reset.
            return Lifecycle(ProcessState.STARTING, now, now, reason=trigger.value)
        return life
    if state is ProcessState.BACKOFF:
        if trigger in (Trigger.BACKOFF_ELAPSED, Trigger.START, Trigger.RESTART):
            return replace(
                life, state=ProcessState.STARTING, since=now, started_at=now, reason=trigger.value
            )
        if trigger is Trigger.STOP:
            return replace(life, state=ProcessState.STOPPED, since=now, reason="stop")
        return life
    if state is ProcessState.STOPPING:
        if trigger in (Trigger.EXIT_SUCCESS, Trigger.EXIT_FAILURE):
            if not life.then_start:
                return replace(life, state=ProcessState.STOPPED, since=now, then_start=False)
            if life.counted:
                return _after_failure(life, now, spec, rand, success=False, always=True)
            return replace(
                life, state=ProcessState.STARTING, since=now, started_at=now, then_start=False
            )
        if trigger is Trigger.STOP:
            return replace(life, then_start=False, counted=False, reason="stop")
        if trigger in (Trigger.START, Trigger.RESTART):
            return replace(life, then_start=True, counted=False, reason=trigger.value)
        return life
    # STARTING or RUNNING
    if trigger is Trigger.READY and state is ProcessState.STARTING:
        return replace(life, state=ProcessState.RUNNING, since=now, reason="ready")
    if trigger is Trigger.SPAWN_FAILED:
        return _after_failure(life, now, spec, rand, success=False)
    if trigger is Trigger.NO_RESOURCES and state is ProcessState.STARTING:
        # At least the first backoff delay: a shortage seldom ends within microseconds.
        return replace(
            life, state=ProcessState.BACKOFF, since=now, attempt=life.attempt + 1,
            delay=spec.backoff.delay(max(life.attempt, 1), rand), then_start=False,
            counted=False, reason="no resources",
        )  # fmt: skip
    if trigger in (Trigger.EXIT_SUCCESS, Trigger.EXIT_FAILURE):
        return _after_failure(life, now, spec, rand, success=trigger is Trigger.EXIT_SUCCESS)
    if trigger is Trigger.STOP:
        return replace(
            life, state=ProcessState.STOPPING, since=now, then_start=False, counted=False,
            reason="stop",
        )  # fmt: skip
    if trigger is Trigger.RESTART:
        return replace(
            life, state=ProcessState.STOPPING, since=now, then_start=True, counted=False,
            reason="restart",
        )  # fmt: skip
    if trigger is Trigger.UNHEALTHY:
        return replace(
            life, state=ProcessState.STOPPING, since=now, then_start=True, counted=True,
            reason="unhealthy",
        )  # fmt: skip
    return life


def _after_failure(
    life: Lifecycle,
    now: float,
    spec: ProgramSpec,
    rand: float,
    *,
    success: bool,
    always: bool = False,
) -> Lifecycle:
    """Decide what follows an exit: EXITED, BACKOFF (maybe with no delay) or FATAL."""
    if not always and (spec.restart == "never" or (spec.restart == "on-failure" and success)):
        return replace(life, state=ProcessState.EXITED, since=now, reason="exited")
    attempt = life.attempt
    if now - life.started_at >= spec.backoff.reset_after:
        attempt = 0
    window = spec.intensity.window
    recent = tuple(t for t in life.restarts if now - t < window)
    if len(recent) >= spec.intensity.max_restarts:
        return replace(
            life,
            state=ProcessState.FATAL,
            since=now,
            restarts=recent,
            then_start=False,
            counted=False,
            reason=f"more than {spec.intensity.max_restarts} restarts in {window:g} s",
        )
    return replace(
        life,
        state=ProcessState.BACKOFF,
        since=now,
        attempt=attempt + 1,
        restarts=(*recent, now),
        delay=spec.backoff.delay(attempt, rand),
        then_start=False,
        counted=False,
        reason="crashed" if not life.counted else "unhealthy",
    )
