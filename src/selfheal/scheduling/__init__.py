"""A periodic scheduler on an injected clock: the engine under health checks and synthetic tests.

`Scheduler` runs named jobs in the background, each on its own interval with jitter, under
its own timeout, with one run in flight per job, Kubernetes-style failure and success
thresholds, and results that carry their age::

    from selfheal.scheduling import JobOptions, Scheduler

    scheduler = Scheduler()
    scheduler.add("ping", ping, JobOptions.of(interval=10, timeout=2, failure_threshold=3))
    await scheduler.start()              # or scheduler.start_in_thread() in sync programs
    scheduler.report("ping").age         # seconds since the latest result

Standard library only. See ``docs/scheduling.md``.
"""

from selfheal.scheduling._core import (
    Freshness,
    JobOptions,
    JobResult,
    ThresholdState,
    freshness,
    jittered,
    step,
)
from selfheal.scheduling._job import Job, JobReport
from selfheal.scheduling._scheduler import JobObserver, Scheduler

__all__ = [
    "Freshness",
    "Job",
    "JobObserver",
    "JobOptions",
    "JobReport",
    "JobResult",
    "Scheduler",
    "ThresholdState",
    "freshness",
    "jittered",
    "step",
]
