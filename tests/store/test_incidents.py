"""Incidents from events: opened by a failure, closed by its (verified) recovery, with TTD/TTR."""

from __future__ import annotations

from selfheal import Event
from selfheal.store import IncidentTracker


def ev(type_: str, ts: float, **data: object) -> Event:
    return Event(type_, "src", "info", ts, data)


def test_tracker_measures_detect_and_recover_times() -> None:
    tracker = IncidentTracker()
    assert tracker.observe(ev("health.db.passed", 100), 100) == (None, None)
    opened, _ = tracker.observe(ev("health.db.failed", 130), 130)
    assert opened is not None
    assert (opened.ttd, opened.ttd_source) == (30, "last_good")
    again, _ = tracker.observe(ev("health.db.failed", 140), 140)
    assert again is not None
    assert again.signals == 2
    assert again.id == opened.id
    closed, _ = tracker.observe(ev("health.db.passed", 150), 150)
    assert closed is not None
    assert (closed.ttr, closed.closed_by) == (20, "health.db.passed")
    # "since" in the signal beats the last good sighting.
    second, _ = tracker.observe(ev("health.db.failed", 200, since=190.5), 200)
    assert second is not None
    assert (second.id, second.ttd, second.ttd_source) == (2, 9.5, "since")
    # A process exit is seen by the supervisor as it happens.
    tracker.observe(ev("process.web.started", 1), 1)
    third, _ = tracker.observe(ev("process.web.exited", 5, exit_code=2), 5)
    assert third is not None
    assert (third.ttd, third.ttd_source) == (0.0, "immediate")
    # A failure of a subject never seen healthy has no known detection time.
    fourth, _ = tracker.observe(ev("synthetic.login.failed", 6), 6)
    assert fourth is not None
    assert fourth.ttd is None


def test_tracker_waits_for_a_running_recovery_to_verify() -> None:
    tracker = IncidentTracker()
    tracker.observe(ev("process.web.exited", 10, exit_code=-9), 10)
    inc, rec = tracker.observe(ev("recovery.web.started", 11, recovery_id="r1", rule="x"), 11)
    assert inc is not None
    assert inc.recoveries == 1
    assert rec is not None
    assert rec.outcome == "running"
    assert tracker.observe(ev("process.web.started", 12), 12) == (None, None)
    inc, rec = tracker.observe(ev("recovery.web.succeeded", 15, recovery_id="r1"), 15)
    assert inc is not None
    assert (inc.closed_by, inc.ttr) == ("recovery.web.succeeded", 5)
    assert rec is not None
    assert (rec.outcome, rec.ended_at, rec.started_at) == ("succeeded", 15, 11)
