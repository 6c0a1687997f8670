"""Prometheus metrics of a `HealthMonitor`, in a registry of their own.

Status per check, run durations and status transitions, in the Prometheus text format via
prometheus-client (the ``server`` extra). A private `CollectorRegistry` per monitor, never the
global one: two monitors in one process (or one test after another) never collide.

Under a server with several worker processes (gunicorn), each worker runs its own monitor
and a scrape reaches one of them. With prometheus-client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR`` set before prometheus-client is imported) the counters and
histograms are kept in that directory and every scrape adds up all the workers' (with
whatever else the processes count there); the status gauges are read at scrape time and are
the answering worker's.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from selfheal.health import CheckResult, HealthMonitor, HealthStatus, Probe

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CONTENT_TYPE", "HealthMetrics"]

#: The content type of `HealthMetrics.render`'s body.
CONTENT_TYPE = CONTENT_TYPE_LATEST

# From a 1 ms cache ping to a 10 s timeout.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _StatusCollector(Collector):
    """Reads the monitor's cached reports at scrape time: a scrape runs no check."""

    def __init__(self, monitor: HealthMonitor, prefix: str) -> None:
        self._monitor = monitor
        self._prefix = prefix

    def collect(self) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            f"{self._prefix}_check_status",
            "Current status of each health check: 1 for the status it has, 0 for the others.",
            labels=["check", "kind", "status"],
        )
        age = GaugeMetricFamily(
            f"{self._prefix}_check_age_seconds",
            "Seconds since each health check's latest result.",
            labels=["check"],
        )
        probes = GaugeMetricFamily(
            f"{self._prefix}_probe_status",
            "Whether each probe passes (1: pass or warn, 0: fail).",
            labels=["probe"],
        )
        for report in self._monitor.reports():
            for candidate in HealthStatus:
                status.add_metric(
                    [report.name, report.kind.value, candidate.value],
                    1.0 if report.status == candidate else 0.0,
                )
            if report.age is not None:
                age.add_metric([report.name], report.age)
        for probe in Probe:
            passing = self._monitor.probe(probe).status != HealthStatus.FAIL
            probes.add_metric([probe.value], 1.0 if passing else 0.0)
        yield status
        yield age
        yield probes


# One `HealthMetrics` per monitor for the apps that serve it (`HealthMetrics.of`): in
# multiprocess mode two of them would each add every run to the same shared file. Weak values
# keyed by id: the instance keeps its monitor alive, so an id is never reused while in here.
_SHARED: weakref.WeakValueDictionary[int, HealthMetrics] = weakref.WeakValueDictionary()


def _multiprocess_mode() -> bool:
    """Return whether prometheus-client keeps its values in ``PROMETHEUS_MULTIPROC_DIR``.

    prometheus-client decides this once, when it is first imported.
    """
    return values.ValueClass is not values.MutexValue


class HealthMetrics:
    """Prometheus metrics of one monitor.

    Metrics (with the default prefix ``selfheal_health``):

    - ``selfheal_health_check_status{check,kind,status}``: 1 for each check's current status.
    - ``selfheal_health_check_age_seconds{check}``: age of the latest result.
    - ``selfheal_health_probe_status{probe}``: 1 while livez/readyz/healthz pass.
    - ``selfheal_health_check_duration_seconds{check}``: histogram of run durations.
    - ``selfheal_health_check_runs_total{check,result}``: runs, by ``ok``/``failed``/``timeout``.
    - ``selfheal_health_check_transitions_total{check,from_status,to_status}``: status changes.

    In prometheus-client's multiprocess mode (see the module docs), `render` adds up the
    counters and histograms of every process writing to ``PROMETHEUS_MULTIPROC_DIR``.

    Args:
        monitor: The monitor to observe.
        registry: Where to register (default: a new private `CollectorRegistry`).
        prefix: The metric name prefix.
    """

    @classmethod
    def of(cls, monitor: HealthMonitor) -> HealthMetrics:
        """Return the metrics (default registry and prefix) the web apps share for `monitor`.

        Args:
            monitor: The monitor to observe.

        Returns:
            The one instance for this monitor, created on first use.
        """
        shared = _SHARED.get(id(monitor))
        if shared is None or shared._monitor is not monitor:
            shared = _SHARED[id(monitor)] = cls(monitor)
        return shared

    def __init__(
        self,
        monitor: HealthMonitor,
        *,
        registry: CollectorRegistry | None = None,
        prefix: str = "selfheal_health",
    ) -> None:
        self._monitor = monitor
        self.registry = registry if registry is not None else CollectorRegistry()
        self._duration = Histogram(
            f"{prefix}_check_duration_seconds",
            "Duration of health check runs.",
            ["check"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._runs = Counter(
            f"{prefix}_check_runs",
            "Health check runs by outcome.",
            ["check", "result"],
            registry=self.registry,
        )
        self._transitions = Counter(
            f"{prefix}_check_transitions",
            "Health check status changes.",
            ["check", "from_status", "to_status"],
            registry=self.registry,
        )
        status = _StatusCollector(monitor, prefix)
        self.registry.register(status)
        self._exposed = self.registry
        if _multiprocess_mode():
            # The counters above still go to `registry` (so the names are checked once per
            # monitor), but their values are in the shared directory: read them all from
            # there, beside this process's statuses.
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed)  # type: ignore[no-untyped-call]
            self._exposed.register(status)
        self._remove: Callable[[], None] | None = monitor.add_observer(self._observe)

    def _observe(self, result: CheckResult, before: HealthStatus) -> None:
        self._duration.labels(result.name).observe(result.duration)
        outcome = "ok" if result.ok else "timeout" if result.timed_out else "failed"
        self._runs.labels(result.name, outcome).inc()
        if result.status != before:
            self._transitions.labels(result.name, before.value, result.status.value).inc()

    def render(self) -> bytes:
        """Return the metrics in the Prometheus text format (content type `CONTENT_TYPE`)."""
        return generate_latest(self._exposed)

    def close(self) -> None:
        """Stop observing the monitor (the registry keeps what was counted)."""
        if self._remove is not None:
            self._remove()
            self._remove = None
