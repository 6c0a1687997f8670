"""One run of a scenario: its attempts under the scenario's `Retry` policy, as a scheduler job.

The retry decision and the wait between attempts are `selfheal.policies.Retry`'s, on the
tester's clock; this module only counts attempts and keeps what each one said. A sync
function runs in the scheduler's thread for the job (its retries sleep there); an async one
or an `HttpScenario` runs on the scheduler's loop. Either way the scheduler bounds the whole
run with the scenario's timeout and never starts a run while the previous one is in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from selfheal._calls import describe_error, is_async_callable, refuse_awaitable
from selfheal._clock import Clock
from selfheal._redact import redact
from selfheal.errors import CheckError
from selfheal.policies import ConstantBackoff, Retry
from selfheal.synthetic._http import HttpScenario
from selfheal.synthetic._records import StepRecord

__all__ = ["Attempts", "Progress"]

#: What a scenario may be: a function of the base URL (sync or async), or an `HttpScenario`.
ScenarioFunc = Callable[[str], Any]


@dataclass(slots=True)
class Progress:
    """What one run has done so far; read by the tester when the scheduler records the run.

    Attributes:
        attempts: Attempts started.
        errors: Why each failed attempt failed (redacted), in order.
        steps: The steps of the latest attempt (declarative scenarios).
        recorded: Whether the tester has recorded the run (a later result that never
            started, because this run still hung, must not reuse it).
    """

    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    recorded: bool = False


class Attempts:
    """Runs a scenario's attempts with retries; `job` is what the scheduler calls.

    Args:
        fn: The scenario: ``fn(base_url)`` (sync or async) fails by raising or returning
            False; or an `HttpScenario`.
        base_url: What the scenario is given.
        retries: Attempts after the first.
        retry_delay: Seconds between attempts.
        clock: Where the waits between attempts sleep.
        headers: The synthetic-traffic marker for declarative scenarios.
    """

    __slots__ = ("_async", "_sync", "base_url", "clock", "fn", "headers", "is_async", "progress")

    def __init__(
        self,
        fn: ScenarioFunc | HttpScenario,
        base_url: str,
        *,
        retries: int,
        retry_delay: float,
        clock: Clock,
        headers: Mapping[str, str],
    ) -> None:
        self.fn = fn
        self.base_url = base_url
        self.clock = clock
        self.headers = headers
        self.is_async = isinstance(fn, HttpScenario) or is_async_callable(fn)
        self.progress: Progress | None = None
        policy = Retry(
            on=Exception,
            attempts=retries + 1,
            backoff=ConstantBackoff(retry_delay),
            hint=None,
            reraise=True,  # the scenario's own error says what failed, not "gave up"
            clock=clock,
            name="synthetic",
        )
        self._async = policy.awrap(self._attempt_async)
        self._sync = policy.wrap(self._attempt_sync)

    @property
    def job(self) -> Callable[[], Any]:
        """Return the scheduler's job: one run, every attempt of it."""
        return self._run_async if self.is_async else self._run_sync

    async def _run_async(self) -> None:
        progress = self.progress = Progress()
        await self._async(progress)

    def _run_sync(self) -> None:
        progress = self.progress = Progress()
        self._sync(progress)

    async def _attempt_async(self, progress: Progress) -> None:
        progress.attempts += 1
        progress.steps = []
        fn = self.fn
        try:
            if isinstance(fn, HttpScenario):
                await fn.run(
                    self.base_url,
                    clock=self.clock,
                    headers=self.headers,
                    record=progress.steps.append,
                )
            else:
                _check_value(await fn(self.base_url))
        except Exception as exc:
            progress.errors.append(redact(describe_error(exc)))
            raise

    def _attempt_sync(self, progress: Progress) -> None:
        progress.attempts += 1
        fn = self.fn
        try:
            value = fn(self.base_url)
            refuse_awaitable(value, "the scenario")
            _check_value(value)
        except Exception as exc:
            progress.errors.append(redact(describe_error(exc)))
            raise


def _check_value(value: object) -> None:
    if value is False:
        raise CheckError("the scenario returned False")
