"""The driver of `transition`: feeds each child's lifecycle what happened, does what it asks.

Nothing here polls. A child's exit arrives through its pidfd, output through its pipe,
sd_notify datagrams through the notify socket; timers exist only while something is timed
(a backoff, a stop grace period, a probe interval, a heartbeat deadline). With nothing to do
the daemon makes no wake-ups at all.

The `Supervisor` facade owns one `Driver` and asks it for starts, stops and waits; events are
queued while a step does its I/O and published by `Driver.flush` once the step is done.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from selfheal._clock import Clock
from selfheal._tasks import Tasks
from selfheal.events import EventBus, Severity, log_level
from selfheal.supervisor._child import Child
from selfheal.supervisor._deps import blockers, deps_coming, group_to_restart
from selfheal.supervisor._narrate import log_lines, narrate, seconds
from selfheal.supervisor._probes import heartbeat_missed, ready_within, watch_probe
from selfheal.supervisor._proc import (
    SPAWN_ERRORS,
    ChildRecord,
    SwitchUserError,
    end_processes,
    find_marked,
    proc_session,
    shortage,
    signal_group,
)
from selfheal.supervisor._spare import ProgramSpares
from selfheal.supervisor._spec import ProbeSpec
from selfheal.supervisor._statedir import StateDir
from selfheal.supervisor._states import (
    ACTIVE,
    IDLE,
    Lifecycle,
    ProcessState,
    Trigger,
    transition,
)

__all__ = ["Driver"]

logger = logging.getLogger("selfheal.supervisor")

_STARTED_OR_GAVE_UP = frozenset({ProcessState.RUNNING, ProcessState.EXITED, ProcessState.FATAL})
# A start request is answered at its first failure too (BACKOFF): a command that cannot run
# is reported at once, not after the whole backoff ladder has ended in FATAL.
_REQUEST_DONE = _STARTED_OR_GAVE_UP | {ProcessState.BACKOFF}
_NOT_STARTING = frozenset(ProcessState) - {ProcessState.STARTING}
_SIGNUMS = frozenset(int(s) for s in signal.Signals)


class Driver:
    """Runs the children's lifecycles: spawns, signals, timers, probes, sd_notify, events.

    Args:
        clock: Times backoff, grace periods, probes and heartbeats.
        bus: Where events are published.
        rand: Uniform [0, 1) samples for backoff jitter.
        run_id: This daemon's run id, carried by every child's environment.
        state_dir: Where the running children are recorded.
        leftover_grace: Seconds between SIGTERM and SIGKILL for escaped descendants.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        bus: EventBus,
        rand: Callable[[], float],
        run_id: str,
        state_dir: StateDir,
        leftover_grace: float,
    ) -> None:
        self.clock = clock
        self.bus = bus
        self.run_id = run_id
        self.state_dir = state_dir
        self.loop: asyncio.AbstractEventLoop | None = None
        #: Every instance, in config order (the facade adds and removes them).
        self.children: dict[str, Child] = {}
        self._rand = rand
        self._leftover_grace = leftover_grace
        self._by_pid: dict[int, Child] = {}
        #: Probes, deadlines: cancelled with their run, awaited at shutdown (a probe's
        #: command is reaped before the supervisor says it stopped).
        self.tasks = Tasks()
        #: The spares of programs with ``preload`` (started ahead, taken by a starting instance).
        self.spares = ProgramSpares()
        # Each queued event with the line that tells operators about it (or None).
        self._events: list[tuple[str, str, dict[str, Any], str | None]] = []

    def __repr__(self) -> str:
        return f"Driver(children={list(self.children)})"

    # -- the state machine -------------------------------------------------------------------

    def fire(self, child: Child, trigger: Trigger, reason: str = "") -> None:
        """Feed `trigger` to `child`'s lifecycle and enter the state it leads to."""
        old = child.life
        new = transition(old, trigger, self.clock.monotonic(), child.spec, rand=self._rand())
        if new is old:
            return
        if reason and new.state is not old.state:
            new = replace(new, reason=reason)
        child.life = new
        if new.state is not old.state:
            self._enter(child, new)
        child.wake_waiters()
        if old.state is ProcessState.STARTING and new.state is not ProcessState.STARTING:
            # Ready, or failed: programs waiting on it (dependency or priority) may go now.
            self._start_waiting()
        if new.state in IDLE:
            # A dependency that stopped or gave up may strand start requests of dependents.
            self._release_stranded()

    def _enter(self, child: Child, new: Lifecycle) -> None:
        if child.state_task is not None:
            child.state_task.cancel()
            child.state_task = None
        if new.state not in ACTIVE:
            child.cancel_run_tasks()
        state = new.state
        if state is ProcessState.STARTING:
            self._spawn(child)
        elif state is ProcessState.RUNNING:
            self._event(child, "ready", Severity.INFO, note=new.reason, pid=child.pid)
            if child.spec.liveness is not None:
                child.run_tasks.append(
                    self._task(self._probe(child, child.spec.liveness, liveness=True))
                )
        elif state is ProcessState.BACKOFF:
            self._event(
                child,
                "backoff",
                Severity.WARNING,
                delay=new.delay,
                attempt=new.attempt,
                restarts=len(new.restarts),
                reason=new.reason,
            )
            self._group_restart(child)
            if new.delay <= 0:
                # call_soon, not a direct call: a spawn that keeps failing must not recurse.
                loop = self.loop
                assert loop is not None
                child.state_task = loop.call_soon(self._backoff_elapsed, child, new)
            else:
                child.state_task = self._task(self._backoff(child, new))
        elif state is ProcessState.STOPPING:
            if child.pid is not None:
                signal_group(child.pid, child.spec.stop_signal)
                child.state_task = self._task(self._kill_after_grace(child))
            else:  # nothing to wait for
                loop = self.loop
                assert loop is not None
                child.state_task = loop.call_soon(self._gone, child)
        elif state is ProcessState.FATAL:
            self._event(
                child,
                "fatal",
                Severity.CRITICAL,
                reason=new.reason,
                restarts=len(new.restarts),
                exit_code=child.last_exit,
            )
            self._group_restart(child)

    def _gone(self, child: Child) -> None:
        self.fire(child, Trigger.EXIT_SUCCESS)
        self.flush()

    def _backoff_elapsed(self, child: Child, life: Lifecycle) -> None:
        if child.life is life:
            self.fire(child, Trigger.BACKOFF_ELAPSED)
            self.flush()

    async def _backoff(self, child: Child, life: Lifecycle) -> None:
        await self.clock.asleep(life.delay)
        self._backoff_elapsed(child, life)

    async def _kill_after_grace(self, child: Child) -> None:
        # A timer, not a bound on a wait: the state task is cancelled when the child leaves
        # STOPPING, so reaching the end means it is still there.
        await self.clock.asleep(child.spec.stop_grace)
        if child.pid is not None and child.life.state is ProcessState.STOPPING:
            logger.warning(
                "killing: %s (pid %d) with SIGKILL: still running %s after %s",
                child.name,
                child.pid,
                seconds(child.spec.stop_grace),
                signal.Signals(child.spec.stop_signal).name,
            )
            signal_group(child.pid, signal.SIGKILL)

    # -- the process: spawn and exit ---------------------------------------------------------

    def _spawn(self, child: Child) -> None:
        spec = child.spec
        if child.pid is not None:  # never two processes for one instance
            return
        loop = self.loop
        assert loop is not None
        spares = self.spares.for_child(child, loop, self.clock)
        try:
            pid = child.launch(loop, self.clock.monotonic(), self._on_exit, spares)
        except Exception as exc:  # noqa: BLE001 - whatever stops a spawn, it must not stick
            self._spawn_failed(child, exc)
            return
        self._by_pid[pid] = child
        self.save_children()
        self._event(child, "started", Severity.INFO, pid=pid, attempt=child.life.attempt)
        if spec.watchdog_sec is not None:
            child.run_tasks.append(self._task(self._heartbeat_deadline(child, spec.watchdog_sec)))
        if spec.ready == "spawn":
            self.fire(child, Trigger.READY, "ready at spawn")
            return
        if spec.ready == "probe" and spec.readiness is not None:
            child.run_tasks.append(self._task(self._probe(child, spec.readiness, liveness=False)))
        if spec.start_timeout is not None:
            child.run_tasks.append(self._task(self._start_deadline(child, spec.start_timeout)))

    def _spawn_failed(self, child: Child, exc: Exception) -> None:
        """Report a spawn that failed and back off: retried, or FATAL if the command is bad."""
        lacking = shortage(exc)
        if lacking is not None:
            message = f"cannot start {child.name}: the daemon is out of {lacking} ({exc})"
        elif isinstance(exc, SwitchUserError):
            message = f"cannot run {child.name}: {exc}"
        elif isinstance(exc, SPAWN_ERRORS):
            message = f"cannot execute {child.spec.argv()[0]!r}: {exc}"
        else:  # not one of ours: said in a line, never a traceback at each retry
            message = f"cannot start {child.name}: {type(exc).__name__}: {exc}"
        child.note(message)
        self._event(
            child, "exited", Severity.ERROR, pid=None, exit_code=None, error=message, tail=[message]
        )
        self.fire(child, Trigger.SPAWN_FAILED if lacking is None else Trigger.NO_RESOURCES, message)

    def _on_exit(self, child: Child, status: int) -> None:
        pid = child.pid
        code = child.reaped(status)
        if pid is not None:
            self._by_pid.pop(pid, None)
        was = child.life.state
        uptime = self.clock.monotonic() - child.life.started_at
        self.save_children()
        success = code in child.spec.exit_codes
        expected = was is ProcessState.STOPPING
        self._event(
            child,
            "exited",
            Severity.INFO if expected or success else Severity.ERROR,
            note="expected" if success else "not expected",
            pid=pid,
            exit_code=code,
            signal=signal.Signals(-code).name if code < 0 and -code in _SIGNUMS else None,
            expected=expected,
            uptime=round(uptime, 6),
            tail=child.tail(),
        )
        self.fire(child, Trigger.EXIT_SUCCESS if success else Trigger.EXIT_FAILURE)
        self.flush()

    # -- probes, deadlines, sd_notify --------------------------------------------------------

    async def _probe(self, child: Child, probe: ProbeSpec, *, liveness: bool) -> None:
        kind = "liveness" if liveness else "readiness"
        what = probe.target or " ".join(probe.argv)

        def seen(error: str) -> None:
            # Shown by `selfheal status` and a `start` that gives up: why it is not ready.
            child.probe_error = f"{kind} probe {probe.kind} {what}: {error}" if error else ""

        reason = await watch_probe(
            probe, child.spec.cwd, self.clock, liveness=liveness, on_result=seen
        )
        if liveness:
            self._unhealthy(child, "liveness", reason)
        else:
            self.fire(child, Trigger.READY, "readiness probe passed")
            self.flush()

    async def _start_deadline(self, child: Child, limit: float) -> None:
        # Cancelled with the run's other tasks when the process exits or is stopped.
        if await ready_within(limit, self.clock, child.wait(_NOT_STARTING)):
            return
        if child.life.state is ProcessState.STARTING:
            self._unhealthy(child, "start", f"not ready within {limit:g} s")

    async def _heartbeat_deadline(self, child: Child, limit: float) -> None:
        await heartbeat_missed(limit, self.clock, lambda: child.last_beat)
        self._unhealthy(child, "watchdog", f"no sd_notify WATCHDOG=1 for {limit:g} s")

    def _unhealthy(self, child: Child, probe: str, reason: str) -> None:
        """Restart `child` as unhealthy (counted for backoff and intensity), saying why."""
        self._event(child, "unhealthy", Severity.ERROR, pid=child.pid, probe=probe, reason=reason)
        self.fire(child, Trigger.UNHEALTHY, reason)
        self.flush()

    def on_notify(self, pid: int | None, fields: Mapping[str, str]) -> None:
        """Take in an sd_notify datagram from `pid` (its child's, or one of its session's)."""
        child = self._by_pid.get(pid) if pid is not None else None
        if child is None and pid is not None:
            sid = proc_session(pid)
            child = self._by_pid.get(sid) if sid is not None else None
        if child is None:
            logger.debug("sd_notify datagram from unknown pid %s dropped", pid)
            return
        if "STATUS" in fields:
            child.status_text = fields["STATUS"][:500]
        if "MAINPID" in fields and fields["MAINPID"].isdigit():
            child.main_pid = int(fields["MAINPID"])
        if fields.get("WATCHDOG") == "1":
            child.last_beat = self.clock.monotonic()
        if fields.get("READY") == "1":
            self.fire(child, Trigger.READY, "READY=1")
        if fields.get("WATCHDOG") == "trigger":
            self.fire(child, Trigger.UNHEALTHY, "WATCHDOG=trigger")
        self.flush()

    # -- requests, dependencies, groups ------------------------------------------------------

    def want(self, child: Child) -> None:
        """Start `child` now, or once its dependencies are ready; a stop under way turns back."""
        state = child.life.state
        if state in IDLE:
            # A dependent waits (not started, not failed) until its dependencies are ready,
            # and any program until those of a lower priority being started are done.
            child.waiting = bool(blockers(child, self.children))
            if not child.waiting:
                self.fire(child, Trigger.START)
        elif state in (ProcessState.BACKOFF, ProcessState.STOPPING):
            self.fire(child, Trigger.START, "start requested")

    def _start_waiting(self) -> None:
        children = self.children
        for child in list(children.values()):
            if child.waiting and child.life.state in IDLE and not blockers(child, children):
                child.waiting = False
                self.fire(child, Trigger.START, "dependencies ready")

    def _group_restart(self, failed: Child) -> None:
        for child in group_to_restart(failed, self.children):
            self.fire(child, Trigger.RESTART, f"group {failed.spec.group}: {failed.name} failed")

    def _release_stranded(self) -> None:
        for child in self.children.values():
            if child.requests and child.waiting and not deps_coming(child, self.children):
                child.release_requests()

    async def request(self, child: Child) -> None:
        """Wait for a start or restart of `child` to succeed or fail.

        It also ends when the request can no longer succeed: the instance was stopped or
        replaced meanwhile, or it waits for dependencies that nobody is starting.
        """
        if child.life.state in _REQUEST_DONE and not child.waiting:
            return
        if child.waiting and not deps_coming(child, self.children):
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        child.requests.append(fut)
        waiter = asyncio.ensure_future(child.wait(_REQUEST_DONE))
        try:
            await asyncio.wait([fut, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            child.requests.remove(fut)

    async def stop_and_wait(self, child: Child, *, sweep: bool = True, reason: str = "") -> None:
        """Stop `child` and wait until it is idle; then end what escaped its group.

        Args:
            child: The process.
            sweep: Whether to end what escaped its group (the shutdown sweeps once for all).
            reason: Why, when it is not the stop it was asked for (shown by status).
        """
        child.waiting = False
        child.release_requests()
        # Also after a crash (BACKOFF, EXITED, FATAL): what escaped that run is still about.
        swept_before = child.life.state is ProcessState.STOPPED
        self.fire(child, Trigger.STOP, reason)
        self.flush()
        await child.wait(IDLE)
        if sweep and not swept_before:
            await self.end_escapees(child)

    async def end_escapees(self, child: Child | None) -> None:
        """End descendants that left the process group (``setsid``) but carry our run id.

        Not on the crash path (a /proc scan costs milliseconds): after a deliberate stop of
        `child`, or of everything (None) at shutdown.
        """
        if child is not None and child.life.state not in IDLE:
            return  # started again meanwhile: what carries its name is its new run's
        pids = find_marked(self.run_id, child.marked_as if child is not None else None)
        spares = self.spares.waiting()
        pids = [p for p in pids if p not in self._by_pid and p not in spares]
        if not pids:
            return
        what = child.name if child is not None else "the stopped programs"
        shown = ", ".join(map(str, pids))
        logger.warning(
            "ending %d process(es) of %s that left the group: pid %s", len(pids), what, shown
        )
        await end_processes(pids, self._leftover_grace, self.clock)
        self.emit(
            "supervisor.leftovers.ended",
            Severity.WARNING,
            instance=child.name if child is not None else None,
            pids=pids,
        )
        self.flush()

    # -- plumbing ----------------------------------------------------------------------------

    def _task(self, coro: Awaitable[None]) -> asyncio.Future[None]:
        return self.tasks.spawn(coro, on_done=_log_crash)

    def emit(self, type_: str, severity: Severity, **data: Any) -> None:
        """Queue an event; `flush` publishes it."""
        self._events.append((type_, str(severity), data, None))

    def _event(
        self, child: Child, kind: str, severity: Severity, *, note: str = "", **data: Any
    ) -> None:
        """Queue ``process.<program>.<kind>`` for `child`, and the line that tells operators."""
        data = {"instance": child.name, **data}
        line = narrate(kind, child.name, data, note=note)
        self._events.append((f"process.{child.spec.name}.{kind}", str(severity), data, line))

    def send_signal(self, child: Child, sig: int, *, group: bool = False) -> bool:
        """Send `sig` to `child`'s process (or its whole process group).

        Returns:
            Whether a process was there to receive it.
        """
        pid = child.pid
        if pid is None:
            return False
        name = signal.Signals(sig).name
        logger.info("signal: %s (pid %d) sent %s%s", child.name, pid, name, " (group)" * group)
        if group:
            return signal_group(pid, sig)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True

    def flush(self) -> None:
        """Publish the queued events, in the order they happened, and log their lines."""
        # Events are published after the I/O of a step (the respawn first, then the news).
        lines: list[tuple[int, str, dict[str, Any]]] = []
        while self._events:
            events, self._events = self._events, []
            for type_, severity, data, line in events:
                if line is not None and logger.isEnabledFor(level := log_level(severity)):
                    fields = {k: v for k, v in data.items() if k != "tail"}
                    lines.append((level, line, {"fields": {"event": type_, "data": fields}}))
                self.bus.emit(type_, "supervisor", severity, **data)
        if not lines:
            return
        loop = self.loop
        if loop is not None and loop.is_running():
            # Written after what is already scheduled (a respawn after a crash): a log file
            # must not slow the restart path.
            loop.call_soon(log_lines, lines)
        else:
            log_lines(lines)

    def save_children(self) -> None:
        """Record the running children in the state dir (for the next daemon, if this dies)."""
        self.state_dir.record(
            [
                ChildRecord(c.name, c.pid, c.start_time, self.run_id)
                for c in self.children.values()
                if c.pid is not None
            ]
        )


def _log_crash(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("supervisor task failed", exc_info=task.exception())
