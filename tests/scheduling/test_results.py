"""What a job's results say: thresholds, counts, age and staleness, observers."""

from __future__ import annotations

import pytest

from health_helpers import CountingCheck
from selfheal.scheduling import JobOptions, JobResult, Scheduler
from selfheal.testing import FakeClock


@pytest.mark.anyio
async def test_thresholds_decide_health_after_enough_results_in_a_row(
    scheduler: Scheduler,
) -> None:
    job = CountingCheck()
    scheduler.add("db", job, JobOptions.of(interval=1, failure_threshold=3, success_threshold=2))
    assert (await scheduler.run_now("db")).healthy is True  # a first success decides at once
    job.fail = "connection refused"
    results = [await scheduler.run_now("db") for _ in range(3)]
    assert [r.healthy for r in results] == [True, True, False]
    assert [r.consecutive_failures for r in results] == [1, 2, 3]
    job.fail = None
    results = [await scheduler.run_now("db") for _ in range(2)]
    assert [r.healthy for r in results] == [False, True]
    assert [r.consecutive_successes for r in results] == [1, 2]
    assert [r.number for r in results] == [5, 6]
    report = scheduler.report("db")
    assert (report.successes, report.failures) == (3, 3)


@pytest.mark.anyio
async def test_results_age_and_go_stale_after_max_age(
    clock: FakeClock, scheduler: Scheduler
) -> None:
    scheduler.add("db", CountingCheck(), JobOptions.of(interval=10, timeout=1, jitter=0))
    assert scheduler.report("db").options.max_age == 21
    before = scheduler.report("db")
    assert (before.result, before.age, before.stale) == (None, None, False)
    result = await scheduler.run_now("db")
    assert (result.monotonic, result.time) == (clock.monotonic(), clock.time())
    clock.advance(21)
    report = scheduler.report("db")
    assert (report.age, report.stale) == (21, False)
    clock.advance(0.5)
    assert scheduler.report("db").stale
    assert [r.age for r in scheduler.reports()] == [21.5]


@pytest.mark.anyio
async def test_a_first_result_is_due_within_max_age_of_starting(
    clock: FakeClock, scheduler: Scheduler
) -> None:
    hung = CountingCheck()
    hung.hang = True
    scheduler.add("db", hung, JobOptions.of(interval=10, timeout=1, max_age=30))
    assert scheduler.job("db").since is None
    await scheduler.start()
    await scheduler.stop()  # the loop dies before it delivers a first result
    assert scheduler.job("db").since == 0
    clock.advance(30)
    assert not scheduler.report("db").stale
    clock.advance(0.5)
    assert scheduler.report("db").stale
    hung.release.set()


@pytest.mark.anyio
async def test_observers_see_every_result_with_the_previous_one_and_cannot_break_it(
    scheduler: Scheduler, seen: list[JobResult]
) -> None:
    pairs: list[tuple[int, int | None]] = []

    def broken(result: JobResult, previous: JobResult | None) -> None:
        raise RuntimeError("observer bug")

    scheduler.add_observer(broken)
    remove = scheduler.add_observer(
        lambda result, previous: pairs.append(
            (result.number, None if previous is None else previous.number)
        )
    )
    scheduler.add("db", CountingCheck(), JobOptions.of(interval=5))
    await scheduler.run_now("db")
    await scheduler.run_now("db")
    remove()
    await scheduler.run_now("db")
    assert pairs == [(1, None), (2, 1)]
    assert [r.number for r in seen] == [1, 2, 3]
