"""The dashboard's snapshot, built from whichever components a daemon or an app has.

Every part is optional: a daemon without programs shows none, an app without a journal shows
no incidents. Each component is read through its public API only, so this module is the one
place that knows how the page's JSON is put together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from selfheal._clock import SYSTEM_CLOCK, Clock

__all__ = ["ComponentsSnapshot"]


class _Statuses(Protocol):
    def status(self) -> list[dict[str, Any]]: ...


class _Reports(Protocol):
    def reports(self) -> list[Any]: ...


class _Incidents(Protocol):
    def incidents(self, *, open_only: bool = False, limit: int | None = None) -> list[Any]: ...


class _HasStatus(Protocol):
    def get_status(self) -> Mapping[str, Any]: ...


@dataclass
class ComponentsSnapshot:
    """A `DashboardSource` over the components of one daemon or app.

    Attributes:
        app: The name shown in the title.
        supervisor: Has ``status()`` (a `selfheal.supervisor.Supervisor`).
        monitor: Has ``reports()`` (a `selfheal.health.HealthMonitor`).
        journal: Has ``incidents(limit=)`` (a `selfheal.store.Journal`).
        synthetic: Has ``get_status()`` (a `selfheal.synthetic.SyntheticTester`).
        chaos: Has ``enabled`` and ``status()`` (a `selfheal.chaos.ChaosMonkey`), if any.
        features: Has ``names`` and ``is_available(name)`` (a `FeatureManager`).
        breakers: Objects with ``name`` and ``state`` (circuit breakers).
        incidents: How many of the newest incidents to show.
        clock: Stamps the snapshot.
    """

    app: str = "selfheal"
    supervisor: _Statuses | None = None
    monitor: _Reports | None = None
    journal: _Incidents | None = None
    synthetic: _HasStatus | None = None
    chaos: Any = None
    features: Any = None
    breakers: Iterable[Any] = field(default_factory=tuple)
    incidents: int = 20
    clock: Clock = SYSTEM_CLOCK

    def snapshot(self) -> dict[str, Any]:
        """Return the page's JSON: programs, checks, synthetic, breakers, features, incidents."""
        return {
            "app": self.app,
            "time": self.clock.time(),
            "programs": self._programs(),
            "checks": self._checks(),
            "synthetic": self._synthetic(),
            "breakers": [
                {"name": str(b.name), "state": str(getattr(b.state, "value", b.state))}
                for b in self.breakers
            ],
            "features": self._features(),
            "incidents": self._incidents(),
            "chaos": self._chaos(),
        }

    def _programs(self) -> list[dict[str, Any]]:
        if self.supervisor is None:
            return []
        keys = ("name", "state", "pid", "uptime", "restarts", "reason")
        return [{k: process.get(k) for k in keys} for process in self.supervisor.status()]

    def _checks(self) -> list[dict[str, Any]]:
        if self.monitor is None:
            return []
        out = []
        for report in self.monitor.reports():
            result = report.result
            out.append(
                {
                    "name": report.name,
                    "status": str(report.status),
                    "kind": str(report.kind),
                    "age": report.age,
                    "output": "" if result is None else result.output,
                }
            )
        return out

    def _synthetic(self) -> list[dict[str, Any]]:
        if self.synthetic is None:
            return []
        out = []
        for name, status in self.synthetic.get_status().items():
            item = {"name": name, **dict(status)}
            item.setdefault("status", "unknown")
            item.setdefault("history", [])
            out.append(item)
        return out

    def _features(self) -> list[dict[str, Any]]:
        if self.features is None:
            return []
        return [
            {"name": name, "available": bool(self.features.is_available(name))}
            for name in self.features.names
        ]

    def _incidents(self) -> list[dict[str, Any]]:
        if self.journal is None:
            return []
        return [incident.to_dict() for incident in self.journal.incidents(limit=self.incidents)]

    def _chaos(self) -> dict[str, Any]:
        if self.chaos is None:
            return {"enabled": False, "active": [], "runs": []}
        targets = self.chaos.status()
        active = [
            {"kind": "disruption", "target": name, "started_at": t.get("last_disruption")}
            for name, t in targets.items()
            if t.get("disrupted")
        ]
        runs = [
            {"name": name, "outcome": f"{t.get('disruptions', 0)} disruption(s)"}
            for name, t in targets.items()
        ]
        return {"enabled": bool(self.chaos.enabled), "active": active, "runs": runs}
