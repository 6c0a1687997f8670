"""The daemon's /metrics: what operators need, named as Prometheus expects, read back with
prometheus-client's own parser."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from selfheal.events import Event, EventBus
from selfheal.health import HealthMonitor
from selfheal.supervisor import ProgramSpec
from selfheal.testing import FakeClock
from selfheal.web.daemon_metrics import DaemonMetrics
from supervisor_helpers import SLEEP, make


def parse(metrics: DaemonMetrics) -> tuple[dict[str, str], dict[str, float]]:
    """Return the families' types and every sample as ``name{k=v,...}`` -> value."""
    types: dict[str, str] = {}
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        types[family.name] = family.type
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}"] = s.value
    return types, samples


@pytest.mark.anyio
async def test_program_states_restarts_and_exits_by_cause(tmp_path: Path) -> None:
    sup, rec = make(tmp_path, ProgramSpec("web", SLEEP), clock=FakeClock())
    metrics = DaemonMetrics(sup.bus, supervisor=sup)
    await sup.start()
    try:
        await rec.wait("process.web.ready")
        pid = sup.pid("web")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await rec.wait("process.web.ready", 2)
        types, m = parse(metrics)
        assert m["selfheal_program_state{instance=web,program=web,state=RUNNING}"] == 1.0
        assert m["selfheal_program_state{instance=web,program=web,state=FATAL}"] == 0.0
        assert m["selfheal_program_restarts_total{program=web}"] == 1.0
        assert m["selfheal_program_exits_total{cause=signal,program=web}"] == 1.0
        assert types["selfheal_program_restarts"] == "counter"
        assert types["selfheal_program_state"] == "gauge"
    finally:
        await sup.stop()
    _, m = parse(metrics)
    assert m["selfheal_program_exits_total{cause=stopped,program=web}"] == 1.0
    assert not [s for s in m if s.startswith("selfheal_program_state")]  # nothing supervised
    metrics.close()


def test_exit_causes_and_probe_failures() -> None:
    bus = EventBus(clock=FakeClock())
    metrics = DaemonMetrics(bus)
    bus.emit("process.a.exited", "supervisor", "info", pid=1, exit_code=0, expected=False)
    bus.emit("process.a.exited", "supervisor", "error", pid=2, exit_code=3, expected=False)
    bus.emit("process.a.exited", "supervisor", "error", pid=None, exit_code=None, error="no")
    bus.emit("process.a.unhealthy", "supervisor", "error", probe="liveness")
    _, m = parse(metrics)
    assert m["selfheal_program_exits_total{cause=success,program=a}"] == 1.0
    assert m["selfheal_program_exits_total{cause=error,program=a}"] == 1.0
    assert m["selfheal_program_exits_total{cause=spawn_failed,program=a}"] == 1.0
    assert m["selfheal_program_probe_failures_total{probe=liveness,program=a}"] == 1.0


def test_recoveries_incidents_and_time_to_recover() -> None:
    bus = EventBus(clock=FakeClock())
    metrics = DaemonMetrics(bus)

    def at(ts: float, type_: str, **data: object) -> None:
        bus.publish(Event(type_, "test", "error", ts, data))

    at(100.0, "process.db.exited", exit_code=1)
    at(100.5, "health.api.failed", check="api")
    types, m = parse(metrics)
    assert m["selfheal_incidents_open{}"] == 2.0
    at(100.1, "recovery.db.started", recovery_id="r1", rule="x")
    at(102.5, "recovery.db.succeeded", recovery_id="r1", rule="x", duration=2.4)
    at(101.0, "recovery.api.suppressed", reason="cooldown")
    at(101.0, "recovery.api.escalated", reason="ladder_exhausted")
    at(101.0, "recovery.api.failed", recovery_id="r2", error="no")
    types, m = parse(metrics)
    assert m["selfheal_incidents_open{}"] == 1.0
    assert m["selfheal_recoveries_total{outcome=succeeded,subject=db}"] == 1.0
    assert m["selfheal_recoveries_total{outcome=failed,subject=api}"] == 1.0
    assert m["selfheal_recovery_suppressions_total{reason=cooldown,subject=api}"] == 1.0
    assert m["selfheal_recovery_escalations_total{reason=ladder_exhausted,subject=api}"] == 1.0
    assert types["selfheal_time_to_recover_seconds"] == "histogram"
    assert m["selfheal_time_to_recover_seconds_count{subject=db}"] == 1.0
    assert m["selfheal_time_to_recover_seconds_sum{subject=db}"] == pytest.approx(2.5)
    assert m["selfheal_time_to_recover_seconds_bucket{le=1.0,subject=db}"] == 0.0
    assert m["selfheal_time_to_recover_seconds_bucket{le=5.0,subject=db}"] == 1.0


def test_synthetic_results_and_active_chaos_faults_from_their_events() -> None:
    bus = EventBus(clock=FakeClock())
    metrics = DaemonMetrics(bus)
    bus.emit("synthetic.checkout.passed", "synthetic")
    bus.emit("synthetic.checkout.failed", "synthetic", "error")
    bus.emit("synthetic.login.passed", "synthetic")
    bus.emit("chaos.cache.injected", "chaos", "warning", limit=30)
    bus.emit("chaos.db.injected", "chaos", "warning", limit=30)
    bus.emit("chaos.db.injected", "chaos", "warning", limit=30)
    _, m = parse(metrics)
    assert m["selfheal_synthetic_runs_total{result=passed,scenario=checkout}"] == 1.0
    assert m["selfheal_synthetic_runs_total{result=failed,scenario=checkout}"] == 1.0
    assert m["selfheal_synthetic_scenario_passing{scenario=checkout}"] == 0.0
    assert m["selfheal_synthetic_scenario_passing{scenario=login}"] == 1.0
    assert m["selfheal_chaos_faults_active{target=cache}"] == 1.0
    assert m["selfheal_chaos_injections_total{target=db}"] == 2.0
    bus.emit("chaos.cache.rolled_back", "chaos", reason="limit")
    bus.emit("chaos.monkey.stopped", "chaos", reason="stopped", rolled_back=["db"], failed=[])
    _, m = parse(metrics)
    assert m["selfheal_chaos_faults_active{target=cache}"] == 0.0
    assert m["selfheal_chaos_faults_active{target=db}"] == 0.0


def test_journal_drops_and_health_checks() -> None:
    clock = FakeClock()
    bus = EventBus(clock=clock)
    monitor = HealthMonitor(clock=clock, bus=bus)
    monitor.register("db", lambda: None, interval=5)
    metrics = DaemonMetrics(bus, monitor=monitor)
    bus.emit("journal.dropped", "journal", "error", count=3, total=3)
    types, m = parse(metrics)
    assert m["selfheal_journal_dropped_events_total{}"] == 3.0
    assert types["selfheal_journal_dropped_events"] == "counter"
    assert m["selfheal_health_check_status{check=db,kind=readiness,status=unknown}"] == 1.0


def test_names_follow_prometheus_conventions() -> None:
    bus = EventBus(clock=FakeClock())
    metrics = DaemonMetrics(bus)
    bus.emit("process.a.started", "supervisor", instance="a")
    bus.emit("process.a.started", "supervisor", instance="a")
    bus.emit("recovery.a.succeeded", "recovery")
    types, m = parse(metrics)
    for name, kind in types.items():
        assert name.startswith("selfheal_"), name
        if kind == "counter":
            assert not name.endswith("_total")  # the parser strips it from families...
    for sample in m:
        name = sample.split("{")[0]
        if types.get(name.removesuffix("_total")) == "counter":
            assert name.endswith(("_total", "_created")), name  # ...samples carry it
    assert all("seconds" in n for n in types if "time" in n or "uptime" in n)
    assert metrics.registry is not DaemonMetrics(bus).registry  # a registry each
