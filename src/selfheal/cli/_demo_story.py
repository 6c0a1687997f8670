"""One line per healed incident: what broke, how it was found, what was done, how long it took.

The incidents are the journal's own (`selfheal.store.IncidentTracker` on the same events), so
the figures agree with the dashboard's timeline. What the journal does not know, the stories
add from the events around an incident: the chaos fault that caused it, the restarts and
recovery rules that acted, and, for a restarted program, when it was serving again (its
``ready`` event), which is what its users wait for.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from selfheal.events import Event, EventBus, parse_type
from selfheal.interfaces import Incident
from selfheal.store import IncidentTracker

__all__ = ["Fault", "Stories", "Story"]

#: How long after a chaos fault an incident of its program is taken to be its doing.
_CAUSE_WINDOW = 15.0
#: How long a story waits for a restarted program's ``ready`` before it is told without it.
_READY_WAIT = 20.0


@dataclass(frozen=True)
class Fault:
    """What a chaos target does, for the stories: ``("web", "web:0", "killed (SIGKILL)")``.

    `also` names the other subjects whose incidents it causes (a health check of the program).
    """

    program: str
    instance: str
    what: str
    also: tuple[str, ...] = ()


@dataclass
class Story:
    """One incident, told when it heals."""

    incident: Incident
    broke: str
    found: str
    done: list[str] = field(default_factory=list)
    fault_at: float | None = None  # when chaos caused it: the times count from the fault
    program: str | None = None  # the program chaos hit (whose restarts fixed it)
    ready_at: float | None = None  # when the restarted program was serving again
    told: bool = False

    @property
    def began(self) -> float:
        """Return when the trouble began: the fault, or else the first failure signal."""
        return self.fault_at if self.fault_at is not None else self.incident.opened_at

    @property
    def ttd(self) -> float | None:
        """Return the time to detect: from the fault when chaos caused it, else the journal's."""
        if self.fault_at is not None:
            return max(0.0, self.incident.opened_at - self.fault_at)
        return self.incident.ttd

    @property
    def ttr(self) -> float | None:
        """Return the time to recover, measured from `began`."""
        closed = self.incident.closed_at
        return None if closed is None else max(0.0, closed - self.began)

    @property
    def serving_after(self) -> float | None:
        """Return the time from `began` until the restarted program served again."""
        return None if self.ready_at is None else max(0.0, self.ready_at - self.began)

    def line(self, t0: float) -> str:
        """Return the story as one line (`t0`: the demo's start, for the offset)."""
        ttd = "at once" if self.ttd == 0 else (f"in {_secs(self.ttd)}" if self.ttd else "")
        done = ", then ".join(self.done) or "nothing needed (it came back by itself)"
        healed = f"healed in {_secs(self.ttr)}" if self.ttr is not None else "still open"
        if self.serving_after is not None:
            healed += f", serving again in {_secs(self.serving_after)}"
        return (
            f"+{self.began - t0:5.1f}s  {self.broke} | found by {self.found} {ttd} | "
            f"done: {done} | {healed}"
        ).replace("  |", " |")


def _secs(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


class Stories:
    """Follow the bus; call `tell` with a line for each incident once it has healed.

    Args:
        bus: The daemon's bus.
        faults: The chaos targets by name, and what each does.
        tell: Receives each story's line.
        t0: The demo's start (wall clock), for the offsets printed.
        ready_programs: Programs whose users wait for ``ready`` after a restart.
    """

    def __init__(
        self,
        bus: EventBus,
        faults: Mapping[str, Fault],
        tell: Callable[[str], None],
        *,
        t0: float,
        ready_programs: frozenset[str] = frozenset(),
    ) -> None:
        self.faults = dict(faults)
        self.tell = tell
        self.t0 = t0
        self.ready_programs = ready_programs
        self.tracker = IncidentTracker()
        self.stories: dict[int, Story] = {}
        self.injected: list[tuple[float, str]] = []  # (timestamp, target)
        self._cause: dict[str, tuple[float, Fault]] = {}  # program -> latest fault
        self._waiting_ready: dict[str, Story] = {}  # instance -> story
        self._since: float | None = None
        self._sub = bus.subscribe("*", self.observe)

    def begin(self, now: float) -> None:
        """Tell and count incidents from `now` on (start-up, before the shop served, is not)."""
        self._since = now

    def close(self) -> None:
        """Stop following the bus; tell every healed story not told yet."""
        self._sub.unsubscribe()
        for story in list(self._waiting_ready.values()):
            self._finish(story)

    def observe(self, event: Event) -> None:
        """Account for one event (the bus calls it)."""
        area, subject, what = parse_type(event.type)
        now = event.timestamp
        if area == "chaos" and what == "injected" and subject in self.faults:
            fault = self.faults[subject]
            self.injected.append((now, subject))
            for affected in (fault.program, *fault.also):
                self._cause[affected] = (now, fault)
        if area == "process" and what == "ready":
            self._ready(str(event.data.get("instance", subject)), now)
        self._note_action(event, area, subject, what)
        incident, _ = self.tracker.observe(event, now)
        if incident is None:
            return
        story = self.stories.get(incident.id)
        if story is None:
            if self._since is None or incident.opened_at < self._since:
                return
            story = self._open(incident, event, area, subject)
            self.stories[incident.id] = story
        story.incident = incident
        if incident.closed_at is not None and not story.told:
            instance = str(event.data.get("instance", subject))
            if area == "process" and what == "started" and subject in self.ready_programs:
                self._waiting_ready[instance] = story
            else:
                self._finish(story)
        self._tell_overdue(now)

    def _open(self, incident: Incident, event: Event, area: str, subject: str) -> Story:
        data = event.data
        instance = str(data.get("instance", subject))
        cause = self._cause.get(subject)
        fault_at = program = None
        if cause is not None and 0 <= incident.opened_at - cause[0] <= _CAUSE_WINDOW:
            fault_at, program = cause[0], cause[1].program
            broke = f"chaos: {cause[1].instance} {cause[1].what}"
        elif area == "process":
            broke = f"{instance} {_describe_exit(data)}"
        else:
            why = data.get("output") or data.get("reason") or data.get("error") or "failed"
            broke = f"{subject} failed: {_short(str(why))}"
        kind = parse_type(event.type).what
        if area == "process" and kind == "exited":
            found = "the supervisor (the kernel reports an exit)"
        elif area == "process" and kind == "unhealthy":
            found = f"the {data.get('probe', 'liveness')} probe of {instance}"
        elif area == "health":
            found = f"health check '{subject}'"
        elif area == "synthetic":
            found = f"synthetic transaction '{subject}'"
        else:
            found = event.type
        return Story(incident, broke, found, fault_at=fault_at, program=program)

    def _note_action(self, event: Event, area: str, subject: str, what: str) -> None:
        data = event.data
        if area == "process" and what == "started":
            action = f"supervisor restarted {data.get('instance', subject)}"
        elif area == "recovery" and what == "started":
            action = f"rule '{data.get('rule', '?')}' acted"
        elif area == "recovery" and what in {"succeeded", "failed"}:
            action = "verified" if what == "succeeded" else "recovery failed"
        else:
            return
        for story in self._open_stories(subject):
            story.done.append(action)

    def _open_stories(self, subject: str) -> list[Story]:
        """Return the open stories of `subject`, and those chaos caused by hitting it."""
        found = []
        for incident in self.tracker.open.values():
            story = self.stories.get(incident.id)
            if story is not None and subject in (incident.subject, story.program):
                found.append(story)
        return found

    def _ready(self, instance: str, now: float) -> None:
        story = self._waiting_ready.pop(instance, None)
        if story is not None:
            story.ready_at = now
            self._finish(story)

    def _tell_overdue(self, now: float) -> None:
        for instance, story in list(self._waiting_ready.items()):
            closed = story.incident.closed_at or now
            if now - closed > _READY_WAIT:
                del self._waiting_ready[instance]
                self._finish(story)

    def _finish(self, story: Story) -> None:
        if not story.told:
            story.told = True
            self.tell(story.line(self.t0))

    def figures(self) -> dict[str, Any]:
        """Return the incidents' counts and their times to detect, recover and serve."""
        stories = list(self.stories.values())
        healed = [s for s in stories if s.ttr is not None]

        def spread(values: list[float]) -> dict[str, float] | None:
            if not values:
                return None
            values = sorted(values)
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            return {"p50": statistics.median(values), "p95": p95, "max": values[-1]}

        return {
            "opened": len(stories),
            "healed": len(healed),
            "from_chaos": sum(s.fault_at is not None for s in stories),
            "ttd": spread([s.ttd for s in stories if s.ttd is not None]),
            "ttr": spread([s.ttr for s in healed if s.ttr is not None]),
            "serving_again": spread(
                [s.serving_after for s in stories if s.serving_after is not None]
            ),
        }


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _describe_exit(data: Mapping[str, Any]) -> str:
    if data.get("error"):
        return f"could not start: {data['error']}"
    sig = data.get("signal")
    if sig:
        return f"was killed by {sig}"
    code = data.get("exit_code")
    return f"exited with status {code}" if code is not None else "stopped answering"
