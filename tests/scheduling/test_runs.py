"""Jobs on the fake clock: at start, then every interval with jitter, under a timeout."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from health_helpers import BlockingCheck, CountingCheck, until
from selfheal.scheduling import JobOptions, JobResult, Scheduler
from selfheal.testing import FakeClock


async def asleep_again(scheduler: Scheduler, name: str, results: int) -> None:
    """Wait until job `name` recorded `results` results and its loop waits for the next run."""
    job = scheduler.job(name)
    await until(
        lambda: job.last is not None and job.last.number >= results and job.next_run is not None
    )


@pytest.mark.anyio
async def test_a_job_runs_at_start_then_every_interval_after_the_previous_run(
    clock: FakeClock, scheduler: Scheduler
) -> None:
    job = CountingCheck()
    scheduler.add("ping", job, JobOptions.of(interval=30, jitter=0))
    await scheduler.start()
    try:
        await asleep_again(scheduler, "ping", 1)
        assert scheduler.job("ping").next_run == 30
        clock.advance(29.9)
        await asyncio.sleep(0)
        assert job.calls == 1
        clock.advance(0.1)
        await asleep_again(scheduler, "ping", 2)
        assert job.calls == 2
        assert scheduler.job("ping").next_run == 60
    finally:
        await scheduler.stop()


@pytest.mark.anyio
async def test_jittered_waits_stay_within_bounds_and_vary(
    clock: FakeClock, scheduler: Scheduler
) -> None:
    job = CountingCheck()
    scheduler.add("ping", job, JobOptions.of(interval=10, jitter=0.2, timeout=1))
    await scheduler.start()
    try:
        for n in range(1, 9):
            await asleep_again(scheduler, "ping", n)
            clock.advance(12)  # beyond the longest jittered wait
    finally:
        await scheduler.stop()
    waits = [s for s in clock.sleeps if s != 1]  # the 1 s sleeps are the runs' deadlines
    assert len(waits) >= 8
    assert all(8 <= w <= 12 for w in waits)
    assert len(set(waits)) > 1


def test_a_seeded_rng_repeats_the_schedule() -> None:
    def waits(seed: int) -> list[float]:
        clock = FakeClock()
        scheduler = Scheduler(clock=clock, rng=random.Random(seed))
        scheduler.add("ping", lambda: None, JobOptions.of(interval=10, jitter=0.5))

        async def main() -> None:
            await scheduler.start()
            await asleep_again(scheduler, "ping", 1)
            for n in range(2, 5):
                clock.advance(15)
                await asleep_again(scheduler, "ping", n)
            await scheduler.stop()

        asyncio.run(main())
        return [s for s in clock.sleeps if s != 5]

    assert waits(3) == waits(3)
    assert waits(3) != waits(4)


@pytest.mark.anyio
async def test_a_run_that_outlasts_the_interval_is_never_overlapped(
    clock: FakeClock, scheduler: Scheduler
) -> None:
    job = CountingCheck()
    job.hang = True
    scheduler.add("slow", job, JobOptions.of(interval=1, timeout=30, jitter=0))
    await scheduler.start()
    try:
        await until(lambda: job.calls == 1)
        for _ in range(10):  # ten intervals pass while the first run is still going
            await clock.wait_for_sleepers(1)
            clock.advance(1)
            await asyncio.sleep(0)
        assert job.calls == 1
        assert scheduler.report("slow").running
        assert scheduler.job("slow").next_run is None
        # A caller asking meanwhile shares the run in flight.
        waiter = asyncio.ensure_future(scheduler.run_now("slow"))
        await asyncio.sleep(0)
        job.release.set()
        shared = await waiter
        assert shared.ok
        assert job.calls == 1
        # The next run starts one interval after this one ended, not on the old beat.
        await asleep_again(scheduler, "slow", 1)
        assert scheduler.job("slow").next_run == clock.monotonic() + 1
    finally:
        await scheduler.stop()


@pytest.mark.anyio
async def test_a_run_that_hangs_fails_at_its_timeout_and_is_cancelled(
    clock: FakeClock, scheduler: Scheduler
) -> None:
    cancelled = asyncio.Event()

    async def hangs() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    scheduler.add("hangs", hangs, JobOptions.of(interval=10, timeout=2, jitter=0))
    runner = asyncio.ensure_future(scheduler.run_now("hangs"))
    await clock.wait_for_sleepers(1)  # the deadline is armed
    clock.advance(2)
    result = await runner
    assert (result.ok, result.timed_out, result.output) == (False, True, "timed out after 2 s")
    assert result.duration == 2
    await until(lambda: cancelled.is_set() and not scheduler.report("hangs").running)


@pytest.mark.anyio
async def test_a_job_that_swallows_its_cancellation_cannot_hold_the_run(
    clock: FakeClock, scheduler: Scheduler
) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # ignores the cancellation

    scheduler.add("stubborn", stubborn, JobOptions.of(interval=10, timeout=2, jitter=0))
    try:
        runner = asyncio.ensure_future(scheduler.run_now("stubborn"))
        await clock.wait_for_sleepers(1)
        clock.advance(2)
        assert (await runner).timed_out
        # It is still running, so the next run is not started but recorded as hung.
        assert scheduler.report("stubborn").running
        clock.advance(3)
        hung = await scheduler.run_now("stubborn")
        assert hung.output == "previous run has not returned after 5 s (hung); not started again"
        assert hung.timed_out
    finally:
        release.set()  # or the test's own shutdown could never cancel it
    await until(lambda: not scheduler.report("stubborn").running)


@pytest.mark.anyio
async def test_a_sync_job_runs_in_its_own_thread_and_a_hung_one_is_not_started_again(
    clock: FakeClock, scheduler: Scheduler
) -> None:
    blocked = BlockingCheck()
    names: list[str] = []
    scheduler.add("legacy", blocked, JobOptions.of(interval=5, timeout=1, jitter=0))
    scheduler.add(
        "where", lambda: names.append(threading.current_thread().name), JobOptions.of(interval=5)
    )
    await scheduler.run_now("where")
    assert names == ["selfheal-test-where"]
    runner = asyncio.ensure_future(scheduler.run_now("legacy"))
    await until(blocked.entered.is_set)
    await clock.wait_for_sleepers(1)
    clock.advance(1)
    assert (await runner).timed_out
    clock.advance(5)
    assert "hung" in (await scheduler.run_now("legacy")).output
    assert blocked.calls == 1
    blocked.gate.set()
    await until(lambda: not scheduler.report("legacy").running)
    assert (await scheduler.run_now("legacy")).ok
    assert blocked.calls == 2


@pytest.mark.anyio
async def test_outcomes_are_judged_and_redacted(scheduler: Scheduler) -> None:
    def returns_false() -> bool:
        return False

    async def leaks() -> None:
        raise ConnectionError("cannot reach postgresql://app:hunter2@db/app")

    async def observes() -> dict[str, object]:
        return {"rows": 3, "password": "pw"}

    def returns_a_coroutine() -> object:
        return leaks()

    options = JobOptions.of(interval=60)
    for name, fn in [
        ("false", returns_false),
        ("leaks", leaks),
        ("observes", observes),
        ("coroutine", returns_a_coroutine),
    ]:
        scheduler.add(name, fn, options)
    assert (await scheduler.run_now("false")).output == "check returned False"
    assert (await scheduler.run_now("leaks")).output == (
        "ConnectionError: cannot reach postgresql://app:***@db/app"
    )
    observed = await scheduler.run_now("observes")
    assert observed.ok
    assert observed.observed == {"rows": 3, "password": "***"}
    assert "register the coroutine function itself" in (await scheduler.run_now("coroutine")).output


@pytest.mark.anyio
async def test_jobs_added_while_running_start_and_removed_ones_stop(
    clock: FakeClock, scheduler: Scheduler
) -> None:
    await scheduler.start()
    try:
        late = CountingCheck()
        scheduler.add("late", late, JobOptions.of(interval=5, jitter=0))
        await asleep_again(scheduler, "late", 1)
        scheduler.remove("late")
        await until(lambda: clock.pending_sleepers == 0)
        clock.advance(100)
        await asyncio.sleep(0)
        assert late.calls == 1
        assert scheduler.names() == []
        with pytest.raises(KeyError, match="no job named 'late'"):
            scheduler.report("late")
    finally:
        await scheduler.stop()


@pytest.mark.anyio
async def test_until_finishes_a_job(
    clock: FakeClock, scheduler: Scheduler, seen: list[JobResult]
) -> None:
    job = CountingCheck()
    job.fail = "not yet"
    scheduler.add(
        "warmup", job, JobOptions.of(interval=2, timeout=1, jitter=0), until=lambda r: r.ok
    )
    await scheduler.start()
    try:
        await asleep_again(scheduler, "warmup", 1)
        job.fail = None
        clock.advance(2)
        await until(lambda: scheduler.job("warmup").finished)
        await until(lambda: clock.pending_sleepers == 0)  # its loop ended
        clock.advance(1000)
        await asyncio.sleep(0)
        assert job.calls == 2
        assert [r.finished for r in seen] == [False, True]
        report = scheduler.report("warmup")
        assert report.finished
        assert not report.stale  # a finished job's result is final
    finally:
        await scheduler.stop()
