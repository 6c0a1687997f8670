"""A short tour of selfheal: events published by components and seen by a subscriber."""

from __future__ import annotations

from selfheal import Event, EventBus, Severity


def main() -> None:
    bus = EventBus()
    bus.subscribe(
        "*", lambda e: print(f"[{e.severity:>8}] {e.type} from {e.source}: {dict(e.data)}")
    )
    bus.publish(
        Event(
            type="health.database.failed",
            source="demo",
            severity=Severity.ERROR,
            data={"error": "connection refused"},
        )
    )
    bus.publish(Event(type="health.database.recovered", source="demo", data={}))


if __name__ == "__main__":
    main()
