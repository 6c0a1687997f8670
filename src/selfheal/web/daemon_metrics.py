"""Prometheus metrics of a daemon (or a `SelfHealingApp`) for its operators, on ``/metrics``.

Everything comes from the bus or is read at scrape time, so no component calls this module:
program states and uptimes (read from the supervisor), restarts, exits by cause and failed
probes (``process.*``), health checks (`selfheal.web.metrics.HealthMetrics`, same registry),
recoveries by outcome, suppressions and escalations (``recovery.*``), open incidents and time
to recover (the journal's own `IncidentTracker`, fed the same events), journal drops,
synthetic results (``synthetic.*``) and active chaos faults (``chaos.*``). A registry of its
own, never the global one. Needs prometheus-client (the ``server`` extra).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.events import Event, EventBus, Signal, Subscription, classify, parse_type
from selfheal.store import DROPPED, IncidentTracker
from selfheal.supervisor import ProcessState
from selfheal.web.metrics import CONTENT_TYPE, HealthMetrics

if TYPE_CHECKING:
    from selfheal.health import HealthMonitor
    from selfheal.store import Journal
    from selfheal.supervisor import Supervisor

__all__ = ["CONTENT_TYPE", "DaemonMetrics"]

# From a restart in milliseconds to an outage a person had to end.
_TTR_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)

# The chaos tools' event segments (selfheal.chaos): a fault put in place, and taken away.
_FAULT_ON = frozenset({"injected"})
_FAULT_OFF = frozenset({"rolled_back"})


class DaemonMetrics:
    """The daemon's metrics for operators, in the Prometheus text format.

    Metrics (all prefixed ``selfheal_``; counters end in ``_total``, durations are seconds):

    - ``program_state{program,instance,state}``: 1 for each process's current state.
    - ``program_uptime_seconds{program,instance}``: how long each running process has run.
    - ``program_restarts_total{program}``: starts of a process that had run before.
    - ``program_exits_total{program,cause}``: ``stopped`` (asked to), ``success``,
      ``error`` (another exit code), ``signal`` (killed), ``spawn_failed``.
    - ``program_probe_failures_total{program,probe}``: ``liveness``, ``start`` or
      ``watchdog`` failures that made the supervisor restart a process.
    - ``health_check_*``: every named health check (see `HealthMetrics`).
    - ``recoveries_total{subject,outcome}``: finished recoveries, ``succeeded``/``failed``.
    - ``recovery_suppressions_total{subject,reason}`` and
      ``recovery_escalations_total{subject,reason}``.
    - ``incidents_open``: incidents not yet recovered.
    - ``time_to_recover_seconds{subject}``: histogram of closed incidents' time to recover.
    - ``journal_dropped_events_total``: events the journal could not keep.
    - ``synthetic_runs_total{scenario,result}`` and ``synthetic_scenario_passing{scenario}``.
    - ``chaos_injections_total{target}`` and ``chaos_faults_active{target}``.

    Args:
        bus: The daemon's bus (subscribed to ``*``).
        supervisor: Whose processes' states are read at scrape time.
        monitor: The health monitor whose checks are exported.
        journal: Whose drop count is read at scrape time (else ``journal.dropped`` events
            are counted).
        registry: Where to register (default: a new private `CollectorRegistry`).
        clock: Stamps events published without a timestamp.
    """

    def __init__(
        self,
        bus: EventBus,
        *,
        supervisor: Supervisor | None = None,
        monitor: HealthMonitor | None = None,
        journal: Journal | None = None,
        registry: CollectorRegistry | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self._lock = threading.Lock()
        self._tracker = IncidentTracker()
        self._seen_started: set[str] = set()
        self._active_faults: dict[str, bool] = {}
        self._passing: dict[str, bool] = {}
        self._dropped_events = 0.0
        self._journal = journal
        self._supervisor = supervisor
        r = self.registry

        def counter(name: str, text: str, *labels: str) -> Counter:
            return Counter(f"selfheal_{name}", text, labels, registry=r)

        self._restarts = counter(
            "program_restarts", "Starts of a supervised process that had run before.", "program"
        )
        self._exits = counter(
            "program_exits", "Exits of supervised processes, by cause.", "program", "cause"
        )
        self._probe_failures = counter(
            "program_probe_failures",
            "Failed liveness, start or watchdog probes that restarted a process.",
            "program",
            "probe",
        )
        self._recoveries = counter(
            "recoveries", "Finished recoveries, by outcome.", "subject", "outcome"
        )
        self._suppressed = counter(
            "recovery_suppressions",
            "Recoveries not started, by reason (dedup, cooldown, flapping...).",
            "subject",
            "reason",
        )
        self._escalations = counter(
            "recovery_escalations",
            "Escalations, by reason (step_failed, ladder_exhausted, breaker_open...).",
            "subject",
            "reason",
        )
        self._synthetic = counter(
            "synthetic_runs", "Synthetic scenario runs, by result.", "scenario", "result"
        )
        self._injections = counter("chaos_injections", "Chaos faults injected.", "target")
        self._ttr = Histogram(
            "selfheal_time_to_recover_seconds",
            "Time from an incident's first failure signal to its recovery.",
            ["subject"],
            buckets=_TTR_BUCKETS,
            registry=r,
        )
        r.register(_ScrapeCollector(self))
        self._health = HealthMetrics(monitor, registry=r) if monitor is not None else None
        self._sub: Subscription | None = bus.subscribe("*", self._on_event)
        self._handlers: dict[str, Callable[[Event, str, str], None]] = {
            "process": self._process,
            "recovery": self._recovery,
            "synthetic": self._synthetic_event,
            "chaos": self._chaos,
        }

    def __repr__(self) -> str:
        return f"DaemonMetrics(supervisor={self._supervisor!r})"

    def render(self) -> bytes:
        """Return the metrics in the Prometheus text format (content type `CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    def close(self) -> None:
        """Stop counting (the registry keeps what was counted)."""
        if self._sub is not None:
            self._sub.unsubscribe()
            self._sub = None
        if self._health is not None:
            self._health.close()

    # -- events --------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        # Every event goes through the tracker: incidents open and close on any subject.
        with self._lock:
            incident, _ = self._tracker.observe(event, event.timestamp or self._clock.time())
        if incident is not None and incident.ttr is not None:
            self._ttr.labels(incident.subject).observe(incident.ttr)
        if event.type == DROPPED and self._journal is None:
            count = event.data.get("count", 1)
            self._dropped_events += float(count) if isinstance(count, int | float) else 1.0
            return
        parts = parse_type(event.type, event.source)
        handler = self._handlers.get(parts.area)
        if handler is not None:
            handler(event, parts.subject, parts.what)

    def _process(self, event: Event, program: str, what: str) -> None:
        data = event.data
        if what == "started":
            instance = str(data.get("instance") or program)
            with self._lock:
                again = instance in self._seen_started
                self._seen_started.add(instance)
            if again:
                self._restarts.labels(program).inc()
        elif what == "exited":
            self._exits.labels(program, _exit_cause(event)).inc()
        elif what == "unhealthy":
            self._probe_failures.labels(program, str(data.get("probe") or "unknown")).inc()

    def _recovery(self, event: Event, subject: str, what: str) -> None:
        reason = str(event.data.get("reason") or "unknown")
        if what in ("succeeded", "failed"):
            self._recoveries.labels(subject, what).inc()
        elif what == "suppressed":
            self._suppressed.labels(subject, reason).inc()
        elif what == "escalated":
            self._escalations.labels(subject, reason).inc()

    def _synthetic_event(self, event: Event, scenario: str, what: str) -> None:
        self._synthetic.labels(scenario, what).inc()
        signal, _ = classify(event)
        if signal is not Signal.NEUTRAL:
            with self._lock:
                self._passing[scenario] = signal is Signal.RECOVERY

    def _chaos(self, event: Event, target: str, what: str) -> None:
        if what in _FAULT_ON:
            self._injections.labels(target).inc()
            with self._lock:
                self._active_faults[target] = True
        elif what in _FAULT_OFF:
            with self._lock:
                self._active_faults[target] = False
        # A monkey's end (chaos.monkey.stopped/aborted) lists what it rolled back.
        rolled = event.data.get("rolled_back")
        if isinstance(rolled, list | tuple):
            with self._lock:
                for name in rolled:
                    self._active_faults[str(name)] = False

    # -- read at scrape time -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return what the scrape-time metrics read: open incidents, faults, scenarios, drops."""
        with self._lock:
            out: dict[str, Any] = {
                "incidents_open": len(self._tracker.open),
                "chaos_faults_active": dict(self._active_faults),
                "synthetic_passing": dict(self._passing),
            }
        journal = self._journal
        out["journal_dropped"] = float(journal.dropped) if journal else self._dropped_events
        return out

    def processes(self) -> list[dict[str, Any]]:
        """Return the supervisor's status of each process (none without a supervisor)."""
        return self._supervisor.status() if self._supervisor is not None else []


def _exit_cause(event: Event) -> str:
    data = event.data
    if data.get("expected"):
        return "stopped"
    if data.get("pid") is None and data.get("error"):
        return "spawn_failed"
    if data.get("signal"):
        return "signal"
    # The supervisor publishes an exit with one of the program's success codes as info.
    return "success" if event.severity == "info" else "error"


class _ScrapeCollector(Collector):
    """Reads states, uptimes, open incidents, faults and drops when Prometheus scrapes."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "selfheal_program_state",
            "Current state of each supervised process: 1 for the state it is in.",
            labels=["program", "instance", "state"],
        )
        uptime = GaugeMetricFamily(
            "selfheal_program_uptime_seconds",
            "Seconds each running supervised process has been running.",
            labels=["program", "instance"],
        )
        for p in self._metrics.processes():
            for candidate in ProcessState:
                value = 1.0 if p["state"] == candidate.value else 0.0
                state.add_metric([p["program"], p["name"], candidate.value], value)
            if p.get("uptime") is not None:
                uptime.add_metric([p["program"], p["name"]], float(p["uptime"]))
        snap = self._metrics.snapshot()
        incidents = GaugeMetricFamily(
            "selfheal_incidents_open", "Incidents opened and not yet recovered."
        )
        incidents.add_metric([], float(snap["incidents_open"]))
        faults = _flags(
            "selfheal_chaos_faults_active",
            "Chaos faults in place now (1) or rolled back (0), by target.",
            "target",
            snap["chaos_faults_active"],
        )
        passing = _flags(
            "selfheal_synthetic_scenario_passing",
            "Whether each synthetic scenario's latest result passed (1) or failed (0).",
            "scenario",
            snap["synthetic_passing"],
        )
        dropped = CounterMetricFamily(
            "selfheal_journal_dropped_events",
            "Events the journal could not keep (its buffer stayed full, or writes failed).",
        )
        dropped.add_metric([], snap["journal_dropped"])
        yield from (state, uptime, incidents, faults, passing, dropped)


def _flags(name: str, text: str, label: str, flags: dict[str, bool]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=[label])
    for key, on in sorted(flags.items()):
        family.add_metric([key], 1.0 if on else 0.0)
    return family
