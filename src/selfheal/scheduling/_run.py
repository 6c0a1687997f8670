"""Running one job once: in a task or a daemon thread, under `timeout_after` on the clock.

`run_once` never raises for anything the job does: a hang, an exception, a False are all an
`Outcome` that says what happened, already redacted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from selfheal._calls import awaited, describe_error, refuse_awaitable
from selfheal._clock import Clock
from selfheal._deadline import timeout_after
from selfheal._redact import redact, redact_value
from selfheal._threads import start_in_thread
from selfheal.errors import CallTimeoutError

__all__ = ["Outcome", "run_once"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one run of a job gave.

    Attributes:
        ok: Whether it passed.
        output: Why it failed, redacted ("" on success).
        observed: The mapping it returned, redacted.
        duration: Seconds it took (the timeout, if it timed out).
        timed_out: Whether it was abandoned at its timeout.
    """

    ok: bool
    output: str = ""
    observed: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    duration: float = 0.0
    timed_out: bool = False


async def run_once(
    fn: Callable[[], Any],
    *,
    name: str,
    is_async: bool,
    timeout: float,  # noqa: ASYNC109 - this is where the timeout is implemented
    clock: Clock,
    on_finish: Callable[[], None],
) -> Outcome:
    """Run `fn` once, abandoning it after `timeout` seconds on `clock`.

    Args:
        fn: The job: a function or coroutine function of no arguments. It fails by raising or
            by returning False; a mapping it returns is kept as what it observed.
        name: The name of the thread a sync `fn` runs in (``selfheal-<name>``) and of the
            deadline.
        is_async: Whether `fn` is a coroutine function (else it runs in a daemon thread).
        timeout: Seconds after which the run is abandoned and counts as failed.
        clock: The clock the timeout and the duration are measured on.
        on_finish: Called once `fn`'s code has really returned, which for an abandoned run is
            after this function returned (the scheduler's "still busy" marker).

    Returns:
        The outcome.
    """
    loop = asyncio.get_running_loop()
    start = clock.monotonic()
    work: asyncio.Future[Any]
    if is_async:
        work = loop.create_task(_invoke_async(fn))

        def task_done(task: asyncio.Future[Any]) -> None:
            if not task.cancelled():
                task.exception()  # retrieved, so an abandoned failure is not logged as lost
            on_finish()

        work.add_done_callback(task_done)
    else:
        work = _start_thread(fn, name, loop, on_finish)
    timed_out = False
    try:
        async with timeout_after(timeout, clock, name=name):
            # wait(), not await: the deadline cancels this task, never the work itself, so a
            # job that swallows its cancellation cannot hold the run past its timeout.
            await asyncio.wait((work,))
    except CallTimeoutError:
        timed_out = not work.done()  # done in the same loop turn as the deadline: in time
    finally:
        if not work.done():
            # Abandon it: an async job is cancelled (and stays "busy" until it really ends);
            # a sync job's thread cannot be stopped and ends on its own.
            work.cancel()
    duration = clock.monotonic() - start
    if timed_out:
        return Outcome(False, f"timed out after {timeout:g} s", duration=duration, timed_out=True)
    try:
        return _judged(work, duration)
    except Exception as exc:  # noqa: BLE001 - what the job gave is judged, never raised
        output = f"what the check gave could not be read: {describe_error(exc)}"
        return Outcome(False, redact(output), duration=duration)


def _judged(work: asyncio.Future[Any], duration: float) -> Outcome:
    if work.cancelled():
        return Outcome(False, "the check was cancelled", duration=duration)
    exc = work.exception()
    if exc is not None:
        return Outcome(False, redact(describe_error(exc)), duration=duration)
    value = work.result()
    if value is False:
        return Outcome(False, "check returned False", duration=duration)
    if isinstance(value, Mapping):
        return Outcome(True, observed=MappingProxyType(redact_value(value)), duration=duration)
    return Outcome(True, duration=duration)


async def _invoke_async(fn: Callable[[], Any]) -> Any:
    # A SystemExit here would end the whole process (the daemon, or the user's uvicorn):
    # it ends only this run, which fails.
    return await awaited(_call(fn), "the check")


async def _call(fn: Callable[[], Any]) -> Any:
    return await fn()


def _start_thread(
    fn: Callable[[], Any], name: str, loop: asyncio.AbstractEventLoop, on_finish: Callable[[], None]
) -> asyncio.Future[Any]:
    """Run a sync job in a daemon thread of its own and return a future of its outcome.

    A thread per run, not a pool: a hung job keeps its thread, and a pool would run out of
    workers (starving the other jobs) or block interpreter exit joining it.
    """

    def call() -> Any:
        try:
            value = fn()
            refuse_awaitable(value, "the check")
            return value
        finally:
            on_finish()

    return asyncio.wrap_future(start_in_thread(call, name=name), loop=loop)
