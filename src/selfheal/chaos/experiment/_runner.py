"""Running an experiment: steady state, method, recovery, rollbacks that always run.

The run is one thread of control on the injected `Clock`: activities run one after another,
and the checks that watch the method (abort conditions, steady state during the method) run
between activities and inside every wait (pauses, recovery polling), which the runner cuts at
each check's due time. So a FakeClock drives a whole run, recovery window and all, without
sleeping. The price: a check cannot run while one activity blocks; give a long fault a pause.

Rollbacks run once the method has started, whatever ended it: held, deviated, an abort
condition, ``max_duration``, the kill switch or the end of the time window (`Safeguards`, see
``_guard``), an error, SIGINT or SIGTERM. Signals received while they run are recorded and
ignored (only SIGKILL can skip them), and a run that did not hold checks the steady state once
more afterwards. While the kill switch is engaged, a run does not start: it is aborted with
nothing done.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._threads import start_in_thread
from selfheal.chaos._safety import Safeguards, refuse_in_production
from selfheal.chaos.experiment._guard import KILL_SWITCH, Interrupted, Interrupts, RunGuard, Stop
from selfheal.chaos.experiment._model import (
    Activity,
    ActivityContext,
    ActivityError,
    Experiment,
)
from selfheal.chaos.experiment._report import (
    ActivityResult,
    Outcome,
    RunRecord,
    SteadyStateCheck,
    secret_values,
)
from selfheal.events import EventBus, Severity

__all__ = ["ExperimentRunner", "Progress", "run_experiment"]


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of a run, for a live display.

    Attributes:
        kind: ``phase`` (a new phase starts), ``start`` (an activity starts), ``result`` (an
            activity ended), ``check`` (a steady-state check ended) or ``note``.
        phase: The phase (see `ActivityResult.phase`).
        message: A line for people.
        result: The activity's result, for ``result``.
        check: The check, for ``check``.
    """

    kind: str
    phase: str
    message: str
    result: ActivityResult | None = None
    check: SteadyStateCheck | None = None


class ExperimentRunner:
    """Runs experiments; one runner can run many, one after another.

    Args:
        clock: Times every pause, poll and check (a `FakeClock` in tests).
        bus: Where ``chaos.<name>.started|held|deviated|aborted|rolled_back|skipped`` events
            go; None publishes nothing.
        seed: Seeds the run's random generator; None draws one (recorded in the run).
        on_progress: Called with each `Progress` step, for a live display.
        handle_signals: Turn SIGINT, SIGTERM, SIGUSR1 and SIGUSR2 (chaoslib.exit) into an abort
            with rollbacks while a run lasts
            (only possible in the main thread; the previous handlers are restored after).
        allow_production: Run even where ``SELFHEAL_ENV=production`` (the same as
            `safeguards`' ``allow_production``).
        environ: The environment the production guard reads (default: `os.environ`).
        safeguards: The kill switch (``Safeguards(kill_switch=KillSwitch(state_dir))``, the
            file of ``selfheal chaos stop``) and time windows a run honours; the in-process
            `kill_switch()` is honoured without them.
    """

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        seed: int | None = None,
        on_progress: Callable[[Progress], object] | None = None,
        handle_signals: bool = True,
        allow_production: bool = False,
        environ: Mapping[str, str] | None = None,
        safeguards: Safeguards | None = None,
    ) -> None:
        self.clock = clock
        self.bus = bus
        self.seed = seed
        self.on_progress = on_progress
        self.handle_signals = handle_signals
        safeguards = safeguards if safeguards is not None else Safeguards()
        if allow_production and not safeguards.allow_production:
            safeguards = dataclasses.replace(safeguards, allow_production=True)
        self.safeguards = safeguards
        self.environ = environ

    def __repr__(self) -> str:
        return f"ExperimentRunner(clock={self.clock!r}, seed={self.seed!r})"

    def run(self, experiment: Experiment) -> RunRecord:
        """Run `experiment` to its end and return the record (also on abort or interrupt).

        A run that the kill switch or the time windows do not let start is aborted (exit code
        2) with nothing done.

        Raises:
            ChaosRefusedError: Where ``SELFHEAL_ENV=production`` and production is not allowed.
        """
        refuse_in_production(allow=self.safeguards.allow_production, environ=self.environ)
        seed = self.seed if self.seed is not None else int.from_bytes(os.urandom(4), "big")
        return _Run(self, experiment, seed).execute()


def run_experiment(experiment: Experiment, **options: Any) -> RunRecord:
    """Run `experiment` with an `ExperimentRunner` built from `options`; return the record."""
    return ExperimentRunner(**options).run(experiment)


class _Run:
    """The state of one run; `execute` drives it."""

    def __init__(self, runner: ExperimentRunner, experiment: Experiment, seed: int) -> None:
        self.exp = experiment
        self.clock = runner.clock
        self.bus = runner.bus
        self.on_progress = runner.on_progress
        self.handle_signals = runner.handle_signals
        self.guard = RunGuard(runner.safeguards, self.clock)
        self.t0 = self.clock.monotonic()
        self.record = RunRecord(
            experiment=experiment.name,
            title=experiment.title,
            source=experiment.source,
            seed=seed,
            started_at=self.clock.time(),
            secret_values=secret_values(experiment.secrets),
        )
        self.context = ActivityContext(
            experiment=experiment.name,
            clock=self.clock,
            random=random.Random(seed),  # noqa: S311 - repeatable runs, not secrecy
            configuration=experiment.configuration,
            secrets=experiment.secrets,
        )
        self.interrupts = Interrupts(self.guard, self._ignored)
        self.in_method = False
        self.watching = False
        self.next_during = 0.0
        self.next_abort = 0.0
        self.background: list[tuple[Activity, str, concurrent.futures.Future[ActivityResult]]] = []

    # -- driving -------------------------------------------------------------------------

    def execute(self) -> RunRecord:
        refusal = self.guard.refusal()
        if refusal is not None:
            self._conclude(Outcome.ABORTED, f"not started: {refusal}")
            self.record.ended_at = self.clock.time()
            return self.record
        self._emit("started", title=self.exp.title, seed=self.record.seed)
        with self.interrupts.installed(self.handle_signals):
            try:
                try:
                    self._main()
                finally:
                    self._stop_watching()
            except Interrupted as stop:
                started = self.record.method_started_at is not None
                after = "; rolled back" if started else " before the method; nothing to roll back"
                self._conclude(stop.outcome, stop.reason + after)
                self.record.interrupted_by = stop.name
            except Stop as stop:
                self._conclude(stop.outcome, stop.reason)
            except KeyboardInterrupt:  # signals not handled here: SIGINT still rolls back
                self._conclude(Outcome.ABORTED, "interrupted by SIGINT; rolled back")
                self.record.interrupted_by = "SIGINT"
            except Exception as exc:  # noqa: BLE001 - a bug must not skip the rollbacks
                self._conclude(Outcome.ABORTED, f"runner error: {type(exc).__name__}: {exc}")
            self._stop_watching()  # again: a signal may have cut the first call short
            if self.record.method_started_at is not None:
                self._finish_background()
                self._rollback()
        self.record.ended_at = self.clock.time()
        return self.record

    def _main(self) -> None:
        exp = self.exp
        if self._has_hypothesis():
            self._progress("phase", "before", "steady state before the method")
            before = self._check_hypothesis("before")
            self.record.before = before
            if not before.met:
                self._conclude(Outcome.NOT_MET, "steady state not met before the method")
                return
        self._guard_tick()
        self.record.method_started_at = self._elapsed()
        now = self.clock.monotonic()
        self.in_method = self.watching = True
        self.next_abort = now
        self.next_during = now + (exp.during.interval if exp.during else 0.0)
        self._progress("phase", "method", "method")
        for activity in exp.method:
            self._tick()
            self._perform(activity, "method", self.record.method)
        self._finish_background()
        self.in_method = False
        if not self._has_hypothesis():
            self._conclude(Outcome.HELD, "method completed (no steady state to check)")
            return
        self._progress("phase", "after", "steady state after the method")
        if self._await_steady_state("after", self.record.after):
            self._conclude(Outcome.HELD, "steady state held")
        else:
            within = exp.recovery.within
            self._conclude(
                Outcome.DEVIATED,
                f"steady state not back within {within:g}s" if within else "steady state deviated",
            )

    def _conclude(self, outcome: Outcome, reason: str) -> None:
        if self.record.outcome is not None and outcome is not Outcome.ABORTED:
            return
        self.record.outcome = outcome
        self.record.reason = reason
        self._progress("note", "verdict", reason)
        data: dict[str, Any] = {"reason": reason}
        if outcome in (Outcome.HELD, Outcome.DEVIATED):
            data.update(
                time_to_detect=self.record.time_to_detect,
                time_to_recover=self.record.time_to_recover,
            )
        severity = {
            Outcome.HELD: Severity.INFO,
            Outcome.DEVIATED: Severity.ERROR,
            Outcome.ABORTED: Severity.WARNING,
            Outcome.NOT_MET: Severity.WARNING,
        }[outcome]
        kind = "skipped" if outcome is Outcome.NOT_MET else str(outcome)
        self._emit(kind, severity, **data)

    def _rollback(self) -> None:
        self._progress("phase", "rollback", "rollbacks")
        for activity in self.exp.rollbacks:
            self._perform(activity, "rollback", self.record.rollbacks)
        self._finish_background()
        failed = sum(1 for r in self.record.rollbacks if r.status != "succeeded")
        if self.record.outcome is not Outcome.HELD and self._has_hypothesis():
            self._progress("phase", "after_rollback", "steady state after the rollbacks")
            checks: list[SteadyStateCheck] = []
            self._await_steady_state("after_rollback", checks)
            self.record.after_rollback = checks[-1]
        restored = None if self.record.after_rollback is None else self.record.after_rollback.met
        self._emit(
            "rolled_back",
            Severity.WARNING if failed else Severity.INFO,
            rollbacks=len(self.record.rollbacks),
            failed=failed,
            steady_state_restored=restored,
        )

    # -- activities ----------------------------------------------------------------------

    def _perform(self, activity: Activity, phase: str, results: list[ActivityResult]) -> None:
        if activity.background:
            self._progress("start", phase, f"{activity.name} (background)")
            future = start_in_thread(
                self._in_background, activity, phase, name=f"chaos-{activity.name}"
            )
            self.background.append((activity, phase, future))
            return
        self._wait(activity.pauses.before)
        self._call(activity, phase, results)
        self._wait(activity.pauses.after)

    def _in_background(self, activity: Activity, phase: str) -> ActivityResult:
        # Nobody checks anything from this thread: its pauses are plain sleeps.
        self.clock.sleep(activity.pauses.before)
        result = self._call(activity, phase, [], background=True)
        self.clock.sleep(activity.pauses.after)
        return result

    def _finish_background(self) -> None:
        """Wait for background activities; once the run is over, abandon unfinished ones."""
        pending, self.background = self.background, []
        for activity, phase, future in pending:
            results = self.record.method if phase == "method" else self.record.rollbacks
            if self.interrupts.deferred and phase == "method" and not future.done():
                results.append(self._abandoned(activity, phase))
                continue
            try:
                results.append(future.result())
            except Exception as exc:  # noqa: BLE001 - _call catches the provider's errors
                results.append(self._abandoned(activity, phase, f"{exc}"))

    def _abandoned(self, activity: Activity, phase: str, error: str = "") -> ActivityResult:
        return ActivityResult(
            name=activity.name,
            kind=str(activity.kind),
            phase=phase,
            provider=activity.provider.describe(),
            status="abandoned",
            error=error or "still running when the method ended early",
            background=True,
        )

    def _call(
        self,
        activity: Activity,
        phase: str,
        into: list[ActivityResult],
        *,
        background: bool = False,
    ) -> ActivityResult:
        """Run one activity; its result goes `into` the list first, so an interrupt shows."""
        result = ActivityResult(
            name=activity.name,
            kind=str(activity.kind),
            phase=phase,
            provider=activity.provider.describe(),
            started_at=self.clock.time(),
            elapsed=self._elapsed(),
            background=background,
        )
        if not background:
            self._progress("start", phase, activity.name)
        into.append(result)
        start = self.clock.monotonic()
        try:
            result.output = activity.provider.run(self.context)
        except Stop as stop:
            result.status, result.error = "interrupted", stop.reason
            result.duration = self.clock.monotonic() - start
            raise
        except ActivityError as exc:
            result.status, result.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a plug-in provider's bug fails one activity
            result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
        result.duration = self.clock.monotonic() - start
        if activity.tolerance is not None:
            result.tolerance = activity.tolerance.describe()
            result.tolerance_met = result.status == "succeeded" and activity.tolerance.within(
                result.output, self.context
            )
        self._progress("result", phase, activity.name, result=result)
        return result

    # -- checks --------------------------------------------------------------------------

    def _has_hypothesis(self) -> bool:
        return self.exp.steady_state is not None and bool(self.exp.steady_state.probes)

    def _check(self, probes: tuple[Activity, ...], phase: str) -> SteadyStateCheck:
        check = SteadyStateCheck(phase, True, self.clock.time(), self._elapsed())
        for probe in probes:
            result = self._call(probe, phase, check.probes)
            if not result.tolerance_met:
                check.met = False
                break
        self._progress("check", phase, "met" if check.met else "not met", check=check)
        return check

    def _check_hypothesis(self, phase: str) -> SteadyStateCheck:
        assert self.exp.steady_state is not None
        check = self._check(self.exp.steady_state.probes, phase)
        if phase in ("during", "after"):
            if not check.met and self.record.detected_at is None:
                self.record.detected_at = check.elapsed
                self._progress("note", phase, "deviation detected")
            elif (
                check.met
                and self.record.detected_at is not None
                and self.record.recovered_at is None
            ):
                self.record.recovered_at = check.elapsed
                self._progress("note", phase, "steady state back")
        return check

    def _await_steady_state(self, phase: str, checks: list[SteadyStateCheck]) -> bool:
        """Check until met or the recovery window has passed; return whether it was met."""
        recovery = self.exp.recovery
        deadline = self.clock.monotonic() + recovery.within
        while True:
            check = self._check_hypothesis(phase)
            checks.append(check)
            if check.met:
                return True
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                return False
            self._wait(min(recovery.interval, remaining))

    def _tick(self) -> None:
        """Run the checks that are due: abort conditions, then the steady state during."""
        if self.watching:
            self._guard_tick()
        now = self.clock.monotonic()
        abort = self.exp.abort
        if self.watching and abort is not None:
            if abort.max_duration is not None and now - self.t0 >= abort.max_duration:
                raise Stop(Outcome.ABORTED, f"max_duration of {abort.max_duration:g}s reached")
            if abort.probes and now >= self.next_abort:
                check = self._check(abort.probes, "abort")
                self.next_abort = self.clock.monotonic() + abort.interval
                if not check.met:
                    self.record.abort_check = check
                    name = check.probes[-1].name
                    raise Stop(Outcome.ABORTED, f"abort condition {name!r} not met")
        during = self.exp.during
        if self.in_method and during is not None and self.clock.monotonic() >= self.next_during:
            check = self._check_hypothesis("during")
            self.record.during.append(check)
            self.next_during = self.clock.monotonic() + during.interval
            if not check.met and during.fail_fast:
                raise Stop(Outcome.DEVIATED, "steady state deviated during the method")

    def _guard_tick(self) -> None:
        reason = self.guard.stop_reason()
        if reason is not None:
            raise Interrupted(KILL_SWITCH, reason)

    def _due_times(self) -> list[float]:
        times = self.guard.due() if self.watching else []
        abort = self.exp.abort
        if self.watching and abort is not None:
            if abort.probes:
                times.append(self.next_abort)
            if abort.max_duration is not None:
                times.append(self.t0 + abort.max_duration)
        if self.in_method and self.exp.during is not None:
            times.append(self.next_during)
        return times

    def _wait(self, seconds: float) -> None:
        """Sleep `seconds` on the clock, waking for every check that falls due meanwhile."""
        deadline = self.clock.monotonic() + seconds
        while True:
            self._tick()
            now = self.clock.monotonic()
            if now >= deadline:
                return
            self.clock.sleep(min([deadline, *self._due_times()]) - now)

    # -- plumbing ------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return self.clock.monotonic() - self.t0

    def _progress(self, kind: str, phase: str, message: str, **extra: Any) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(kind, phase, message, **extra))

    def _emit(self, kind: str, severity: str = Severity.INFO, **data: Any) -> None:
        if self.bus is not None:
            self.bus.emit(f"chaos.{self.exp.name}.{kind}", "chaos", severity, **data)

    def _stop_watching(self) -> None:
        self.interrupts.defer()  # from here on a signal is recorded, never raised
        self.in_method = self.watching = False

    def _ignored(self, name: str) -> None:
        self.record.ignored_signals.append(name)
        self._progress("note", "rollback", f"{name} received: rollbacks go on")
