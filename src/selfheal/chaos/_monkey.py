"""`ChaosMonkey`: the article's random disruptions, made safe and repeatable.

The article's loop woke every ten seconds, drew from the global `random` and recovered a
target by a 10 % chance per check, with no time limit. Here the schedule is a seeded Poisson
process per target (`ChaosSchedule`), every disruption is rolled back at its time limit, the
loop sleeps on the injected clock until the next decision, and the `Safeguards` are checked
before every fault. Stopping or aborting rolls back every target still disrupted.

One implementation, two front ends: the loop is an asyncio task; ``await astart()`` runs it
on your loop, ``start()`` on a loop in a daemon thread, as the article's ``start()`` did.
Sync user functions run in a thread of their own, async ones on the loop, under ``timeout``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import math
import random
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from selfheal._calls import checked_keywords
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._threads import in_own_thread
from selfheal.chaos._args import check_name, positive_seconds
from selfheal.chaos._killswitch import watch_kill_switch
from selfheal.chaos._safety import Safeguards, chaos_enabled
from selfheal.chaos._schedule import Action, ChaosSchedule, Step
from selfheal.chaos._targets import ChaosReport, ChaosTarget, Disruption, call_user
from selfheal.events import EventBus, Severity

__all__ = ["ChaosMonkey"]

logger = logging.getLogger("selfheal.chaos")

# A relative sleep to an absolute time can land a rounding error late, so that a clock
# advanced exactly to a fault's limit would not wake the loop: it wakes this much early and
# takes the steps due within it.
_SLACK = 1e-6


@checked_keywords
class ChaosMonkey:
    """Disrupt registered targets at random, and always put them back.

    Args:
        enabled: False (the default) makes `start` do nothing; None defers to the
            ``ENABLE_CHAOS`` environment variable (``true``/``1``/``yes``/``on``).
        clock: Schedules and time limits run on it (a `FakeClock` in tests).
        bus: Receives ``chaos.<target>.injected`` / ``.rolled_back`` / ``.inject_failed`` /
            ``.rollback_failed`` and ``chaos.monkey.stopped`` / ``.aborted``.
        seed: Seeds the schedule; the same seed repeats a run exactly. None picks one at
            random, logged at start and kept in `seed`.
        duration: Default time limit of a disruption, in seconds.
        timeout: Time allowed to each disrupt, recover and steady-state call.
        safeguards: Production refusal, time windows, the kill switch file, ``max_active``.
        steady_state: Called after an abort, once everything is rolled back; the steady
            state holds unless it raises or returns False.

    Raises:
        ValueError: For a duration or timeout that is not a positive number.
    """

    def __init__(
        self,
        enabled: bool | None = False,
        *,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        seed: int | str | None = None,
        duration: float = 60.0,
        timeout: float = 30.0,
        safeguards: Safeguards | None = None,
        steady_state: Callable[[], object] | None = None,
    ) -> None:
        self.enabled = chaos_enabled(enabled)
        self.clock = clock
        self.bus = bus
        self.seed: int | str = random.SystemRandom().getrandbits(32) if seed is None else seed
        self.duration = positive_seconds("duration", duration)
        self.timeout = positive_seconds("timeout", timeout)
        self.safeguards = safeguards or Safeguards()
        self.steady_state = steady_state
        self.targets: dict[str, ChaosTarget] = {}
        #: The latest executed steps (injections, rollbacks, skipped arrivals), oldest first.
        self.steps: deque[Step] = deque(maxlen=1000)
        self.last_report: ChaosReport | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._wake: asyncio.Future[None] | None = None
        self._end: tuple[str, bool] | None = None  # (reason, aborted) once asked to end
        self._released: asyncio.Event | None = None  # ends the thread of start()

    def __repr__(self) -> str:
        return (
            f"ChaosMonkey(enabled={self.enabled}, targets={list(self.targets)}, "
            f"seed={self.seed!r}, running={self.running})"
        )

    @property
    def running(self) -> bool:
        """Return whether the monkey's loop is running."""
        task = self._task
        return task is not None and not task.done()

    @property
    def disrupted(self) -> list[str]:
        """Return the names of the targets currently disrupted."""
        return [t.name for t in self.targets.values() if t.disrupted]

    def register_target(
        self,
        name: str,
        disrupt_func: Callable[[], object],
        recovery_func: Callable[[], object],
        frequency: float = 3600,
        *,
        duration: float | None = None,
    ) -> None:
        """Register a target for disruption (the article's call).

        Args:
            name: Target identifier (dotted segments, no wildcards).
            disrupt_func: Causes the disruption (sync or async, no arguments).
            recovery_func: Undoes it (sync or async, no arguments); must be safe to call
                after a failed or partial disruption.
            frequency: Average time between disruptions in seconds.
            duration: Time limit of each disruption (default: the monkey's `duration`).

        Raises:
            ValueError: For a bad name, frequency or duration (the message names it).
            RuntimeError: While the monkey runs.
        """
        self._add(name, disrupt_func, recovery_func, frequency, duration, takes_limit=False)

    def register_fault(
        self,
        name: str,
        fault: Disruption,
        frequency: float = 3600,
        *,
        duration: float | None = None,
    ) -> None:
        """Register a `Disruption` (a process fault...) as target `name`.

        Its ``inject(limit)`` receives the time limit; its ``rollback()`` undoes it.
        Arguments and errors as for `register_target`.
        """
        self._add(name, fault.inject, fault.rollback, frequency, duration, takes_limit=True)

    def _add(
        self,
        name: str,
        disrupt: Callable[..., object],
        recover: Callable[[], object],
        frequency: float,
        duration: float | None,
        *,
        takes_limit: bool,
    ) -> None:
        check_name("target", name)
        if not callable(disrupt) or not callable(recover):
            raise TypeError(f"target {name!r}: disrupt and recovery functions must be callable")
        frequency = positive_seconds("frequency", frequency)
        duration = self.duration if duration is None else positive_seconds("duration", duration)
        if self.running:
            raise RuntimeError(f"register_target({name!r}): stop the monkey first")
        self.targets[name] = ChaosTarget(name, disrupt, recover, frequency, duration, takes_limit)

    def _schedule(self) -> ChaosSchedule:
        offset = self.clock.time() - self.clock.monotonic()
        schedule = ChaosSchedule(self.seed, self.safeguards, offset)
        for t in self.targets.values():
            schedule.add(t.name, t.frequency, t.duration)
        return schedule

    def plan(self, seconds: float) -> list[Step]:
        """Return the steps a run starting now would take in its first `seconds`.

        Computed from the seed, the targets and the safeguards' windows alone, assuming
        every injection succeeds; a run with the same seed takes exactly these steps.
        """
        schedule = self._schedule()
        now = self.clock.monotonic()
        schedule.start(now)
        steps: list[Step] = []
        while (due := schedule.next_due()) <= now + seconds:
            step = schedule.pop(due)
            if step is not None:
                steps.append(step)
        return steps

    def _may_start(self) -> bool:
        if not self.enabled:
            logger.info("Chaos Monkey is disabled. Not starting.")
            return False
        self.safeguards.check_start()
        return not self.running

    async def astart(self) -> None:
        """Start the monkey on the running event loop (does nothing unless enabled).

        Raises:
            ChaosRefusedError: In production without ``allow_production``, or while a kill
                switch is engaged.
        """
        if not self._may_start():
            return
        self._thread = self._released = None
        self._begin(asyncio.get_running_loop())

    def start(self) -> None:
        """Start the monkey in a daemon thread (does nothing unless enabled); returns at once.

        Raises:
            ChaosRefusedError: In production without ``allow_production``, or while a kill
                switch is engaged.
        """
        if not self._may_start():
            return
        ready = threading.Event()

        async def main() -> None:
            task = self._begin(asyncio.get_running_loop())
            released = self._released = asyncio.Event()
            ready.set()
            await asyncio.wait({task})
            # The loop stays until stop() has its report: a kill switch may end the task
            # first, and a stop() racing with the loop's close would wait for ever.
            await released.wait()

        thread = threading.Thread(
            target=asyncio.run, args=(main(),), name="selfheal-chaos-monkey", daemon=True
        )
        self._thread = thread
        thread.start()
        ready.wait()
        # A daemon thread dies with the interpreter: roll back at a normal exit at least.
        atexit.register(self.stop)

    def _begin(self, loop: asyncio.AbstractEventLoop) -> asyncio.Task[None]:
        self._loop, self._end = loop, None
        self._wake = loop.create_future()
        # The schedule starts now, not when the task first runs: time may move in between.
        started = self.clock.monotonic()
        self._task = loop.create_task(self._run(started), name="selfheal-chaos-monkey")
        logger.warning(
            "Chaos Monkey has been activated! seed=%r (pass seed=%r to repeat this run)",
            self.seed,
            self.seed,
        )
        return self._task

    async def astop(self) -> ChaosReport | None:
        """Stop the monkey and roll back every target still disrupted.

        Returns:
            How the run ended; None if it never ran.
        """
        return await self._finish_from_any_loop("stopped", aborted=False)

    def stop(self) -> ChaosReport | None:
        """Stop the monkey and roll back every target still disrupted (the article's call).

        Returns:
            How the run ended; None if it never ran.

        Raises:
            RuntimeError: If called on the monkey's own event loop (use ``await astop()``).
        """
        return self._finish_blocking("stopped", aborted=False)

    async def aabort(self, reason: str = "aborted") -> ChaosReport | None:
        """Abort: roll back every disrupted target, then check the steady state."""
        return await self._finish_from_any_loop(reason, aborted=True)

    def abort(self, reason: str = "aborted") -> ChaosReport | None:
        """Abort from sync code: roll back every disrupted target, then check the steady state.

        Raises:
            RuntimeError: If called on the monkey's own event loop (use ``await aabort()``).
        """
        return self._finish_blocking(reason, aborted=True)

    def as_component(self) -> _MonkeyComponent:
        """Return a `Component` (``await start()`` / ``await stop()``) for the daemon."""
        return _MonkeyComponent(self)

    def _finish_blocking(self, reason: str, *, aborted: bool) -> ChaosReport | None:
        atexit.unregister(self.stop)
        loop, thread = self._loop, self._thread
        if loop is None:
            return None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError("ChaosMonkey.stop() on its own event loop: use 'await astop()'")
        report = None
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing runs
                coro = self._finish_on_loop(reason, aborted=aborted)
                report = asyncio.run_coroutine_threadsafe(coro, loop).result()
        if thread is not None:
            thread.join()
        return report or self.last_report

    async def _finish_from_any_loop(self, reason: str, *, aborted: bool) -> ChaosReport | None:
        loop = self._loop
        if loop is None:
            return None
        if loop is asyncio.get_running_loop():
            return await self._finish_on_loop(reason, aborted=aborted)
        atexit.unregister(self.stop)
        future = asyncio.run_coroutine_threadsafe(
            self._finish_on_loop(reason, aborted=aborted), loop
        )
        report = await asyncio.wrap_future(future)
        if self._thread is not None:
            await in_own_thread(self._thread.join, name="chaos-monkey-join")
        return report

    async def _finish_on_loop(self, reason: str, *, aborted: bool) -> ChaosReport | None:
        self._request_end(reason, aborted=aborted)
        if self._task is not None:
            # wait(), not await: the caller's cancellation must not cancel the rollbacks.
            await asyncio.wait({self._task})
        if self._released is not None:
            self._released.set()
        return self.last_report

    def _request_end(self, reason: str, *, aborted: bool) -> None:
        if self._end is None:
            self._end = (reason, aborted)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _abort_soon(self, reason: str) -> None:
        self._request_end(reason, aborted=True)

    def _on_kill_switch(self, reason: str) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:  # engaged on the monkey's own loop: abort before anything else runs
            self._abort_soon(f"kill switch: {reason}")
            return
        with contextlib.suppress(RuntimeError):  # loop already closed: nothing to abort
            loop.call_soon_threadsafe(self._abort_soon, f"kill switch: {reason}")

    async def _run(self, started: float) -> None:
        schedule = self._schedule()
        schedule.start(started)
        unwatch = watch_kill_switch(self._on_kill_switch)
        try:
            while self._end is None:
                stop_reason = self.safeguards.stop_reason()
                if stop_reason is not None:
                    self._end = (stop_reason, True)
                    break
                step = schedule.pop(self.clock.monotonic() + _SLACK)
                if step is None:
                    await self._sleep_until(schedule.next_due())
                elif step.action is Action.SKIP:
                    self.steps.append(step)
                    logger.debug("chaos: %s skipped (%s)", step.target, step.reason)
                else:
                    self.steps.append(step)
                    target = self.targets[step.target]
                    if step.action is Action.INJECT:
                        await self._inject(target, step.limit)
                    else:
                        await self._rollback(target, step.reason)
                    if not target.disrupted:
                        schedule.release(target.name)
                    elif step.action is Action.ROLLBACK:
                        # The rollback failed: keep trying, a fault must not stay for that.
                        schedule.hold(target.name, self.clock.monotonic() + self.timeout)
        finally:
            unwatch()
            await self._end_run(*(self._end or ("cancelled", True)))

    async def _sleep_until(self, when: float) -> None:
        wake = self._wake
        assert wake is not None  # set by _begin before the task starts
        if self.safeguards.kill_switch is not None:
            when = min(when, self.clock.monotonic() + self.safeguards.poll_interval)
        if math.isinf(when):
            await asyncio.wait({wake})
            return
        sleeper = asyncio.ensure_future(self._sleep_to(when))
        try:
            await asyncio.wait({sleeper, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()

    async def _sleep_to(self, when: float) -> None:
        # The delay is measured when the sleeper task runs, not when it is created: time
        # may move in between (a FakeClock advanced by a test, a busy loop).
        await self.clock.asleep(max(0.0, when - self.clock.monotonic() - _SLACK))

    async def _inject(self, target: ChaosTarget, limit: float) -> None:
        # Marked first: a stop while the call runs must roll back what it may have done.
        target.disrupted = True
        args = (limit,) if target.takes_limit else ()
        error = await self._call(target.disrupt, *args, what=f"chaos-{target.name}-disrupt")
        if error is not None:
            target.failures += 1
            logger.error("Chaos Monkey failed to disrupt %s: %r", target.name, error)
            self._emit(target, "inject_failed", Severity.ERROR, error=repr(error))
            await self._rollback(target, "inject_failed")
            return
        target.disruptions += 1
        target.last_disruption = self.clock.time()
        logger.warning("Chaos Monkey disrupted %s for at most %gs", target.name, limit)
        self._emit(
            target, "injected", Severity.WARNING, limit=limit, seed=self.seed, n=target.disruptions
        )

    async def _rollback(self, target: ChaosTarget, reason: str) -> bool:
        error = await self._call(target.recover, what=f"chaos-{target.name}-recover")
        if error is not None:
            target.failures += 1
            logger.error("Chaos Monkey failed to recover %s: %r", target.name, error)
            self._emit(
                target, "rollback_failed", Severity.CRITICAL, reason=reason, error=repr(error)
            )
            return False
        target.disrupted = False
        logger.info("Chaos Monkey recovered %s (%s)", target.name, reason)
        self._emit(target, "rolled_back", Severity.INFO, reason=reason)
        return True

    async def _end_run(self, reason: str, aborted: bool) -> None:
        rolled: list[str] = []
        failed: list[str] = []
        for target in self.targets.values():
            if target.disrupted:
                ok = await self._rollback(target, reason)
                (rolled if ok else failed).append(target.name)
        steady: bool | None = None
        if aborted and self.steady_state is not None:
            check = await call_user(
                self.steady_state, clock=self.clock, limit=self.timeout, what="chaos-steady"
            )
            steady = check.error is None and check.result is not False
        self.last_report = ChaosReport(reason, aborted, tuple(rolled), tuple(failed), steady)
        if self.bus is not None:
            kind = "aborted" if aborted else "stopped"
            severity = Severity.WARNING if aborted or failed else Severity.INFO
            self.bus.emit(
                f"chaos.monkey.{kind}",
                "chaos",
                severity,
                reason=reason,
                rolled_back=rolled,
                failed=failed,
                steady_state=steady,
            )

    async def _call(self, fn: Callable[..., object], *args: Any, what: str) -> Exception | None:
        outcome = await call_user(fn, *args, clock=self.clock, limit=self.timeout, what=what)
        return outcome.error

    def _emit(self, target: ChaosTarget, what: str, severity: Severity, **data: Any) -> None:
        if self.bus is not None:
            self.bus.emit(f"chaos.{target.name}.{what}", "chaos", severity, **data)

    def status(self) -> dict[str, dict[str, Any]]:
        """Return per target: disrupted, disruptions, failures, last_disruption, frequency..."""
        return {t.name: t.to_dict() for t in self.targets.values()}


class _MonkeyComponent:
    """The monkey as the daemon's `Component`."""

    __slots__ = ("monkey",)

    def __init__(self, monkey: ChaosMonkey) -> None:
        self.monkey = monkey

    async def start(self) -> None:
        """Start the monkey on the running loop (if enabled)."""
        await self.monkey.astart()

    async def stop(self) -> None:
        """Stop it, rolling everything back."""
        await self.monkey.astop()
