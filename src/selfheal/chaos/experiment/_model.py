"""What an experiment is, whichever file format it came from.

TOML (our format) and Chaos Toolkit's JSON and YAML are all read into these frozen objects;
the runner knows nothing of formats. Providers and tolerances are small protocols so that new
kinds (killing a supervised program, a proxy toxic) plug in without touching the runner.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol

from selfheal._clock import Clock

__all__ = [
    "AbortConditions",
    "Activity",
    "ActivityContext",
    "ActivityError",
    "ActivityKind",
    "During",
    "Experiment",
    "Pauses",
    "Provider",
    "Recovery",
    "SteadyState",
    "Tolerance",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


class ActivityError(Exception):
    """An activity could not do its job (timed out, could not connect, raised, not found).

    The runner records it as the activity's error; a failed probe is never within tolerance.
    """


@dataclass(frozen=True, slots=True)
class ActivityContext:
    """What a provider may use while it runs.

    Attributes:
        experiment: The experiment's name.
        clock: The run's clock, for anything a provider times or waits for.
        random: The run's seeded generator: the only randomness a provider may use, so
            ``--seed`` repeats a run exactly.
        configuration: The experiment's resolved configuration.
        secrets: The experiment's resolved secrets, by scope.
        arguments: Extra keyword arguments for this call (a probe tolerance's ``value``).
    """

    experiment: str
    clock: Clock
    random: random.Random
    configuration: Mapping[str, Any] = field(default_factory=_empty)
    secrets: Mapping[str, Mapping[str, Any]] = field(default_factory=_empty)
    arguments: Mapping[str, Any] = field(default_factory=_empty)


class Provider(Protocol):
    """Does the work of an activity: runs a process, calls a URL, calls a function.

    `run` returns the activity's output (anything JSON-like) and raises `ActivityError` when
    the work could not be done. `describe` is a one-line summary for people, without secrets.
    """

    def run(self, context: ActivityContext) -> Any:
        """Do the work and return the output."""
        ...

    def describe(self) -> str:
        """Return a one-line summary, e.g. ``process kill -9 1234``."""
        ...


class Tolerance(Protocol):
    """Decides whether a probe's output is within the steady state."""

    def within(self, value: Any, context: ActivityContext) -> bool:
        """Return whether `value` (a probe's output) is within tolerance."""
        ...

    def describe(self) -> str:
        """Return a one-line summary, e.g. ``status 200`` or ``regex 'ok'``."""
        ...


class ActivityKind(StrEnum):
    """A probe observes; an action changes something (injects a fault, rolls back)."""

    PROBE = "probe"
    ACTION = "action"


@dataclass(frozen=True, slots=True)
class Pauses:
    """Seconds to wait before and after an activity (fault settling time)."""

    before: float = 0.0
    after: float = 0.0


@dataclass(frozen=True, slots=True)
class Activity:
    """One probe or action.

    Attributes:
        name: Unique enough for people to tell activities apart.
        kind: Probe or action.
        provider: What does the work.
        tolerance: For steady-state and abort probes: what output is acceptable.
        pauses: Waits around the activity.
        background: Run concurrently with the activities after it (method and rollbacks).
    """

    name: str
    kind: ActivityKind
    provider: Provider
    tolerance: Tolerance | None = None
    pauses: Pauses = field(default_factory=Pauses)
    background: bool = False


@dataclass(frozen=True, slots=True)
class SteadyState:
    """The hypothesis: every probe's output within its tolerance means the service is fine."""

    title: str
    probes: tuple[Activity, ...]


@dataclass(frozen=True, slots=True)
class Recovery:
    """How long the steady state may take to come back after the method.

    Attributes:
        within: Seconds after the method during which the steady state is polled; 0 checks
            once (Chaos Toolkit's behaviour).
        interval: Seconds between two polls.
    """

    within: float = 0.0
    interval: float = 1.0


@dataclass(frozen=True, slots=True)
class During:
    """Checking the steady state while the method runs (to measure time to detect).

    Attributes:
        interval: Seconds between two checks.
        fail_fast: A deviation during the method ends it at once as deviated; otherwise
            deviations are only recorded, and the recovery check decides.
    """

    interval: float = 1.0
    fail_fast: bool = False


@dataclass(frozen=True, slots=True)
class AbortConditions:
    """Safeguards: when one fails, the method stops, rollbacks run, and the run is aborted.

    Attributes:
        probes: Probes checked every `interval` while the method runs and recovery is polled;
            one outside its tolerance aborts.
        interval: Seconds between two checks.
        max_duration: Seconds after the start at which the run aborts, whatever happens.
    """

    probes: tuple[Activity, ...] = ()
    interval: float = 1.0
    max_duration: float | None = None


@dataclass(frozen=True, slots=True)
class Experiment:
    """A whole experiment, validated.

    Attributes:
        name: One event-type segment (``chaos.<name>.held``): from ``name``, else the file.
        title: What the experiment shows.
        description: Longer text.
        tags: Free labels.
        steady_state: The hypothesis, if any.
        method: The faults, in order.
        rollbacks: What undoes them; always run once the method has started.
        recovery: The expected recovery time.
        during: Steady-state checks during the method, if any.
        abort: Abort conditions, if any.
        configuration: Resolved configuration values.
        secrets: Resolved secrets by scope (never printed).
        source: The file it came from.
        format: ``toml``, ``json`` or ``yaml``.
    """

    name: str
    title: str
    description: str = ""
    tags: tuple[str, ...] = ()
    steady_state: SteadyState | None = None
    method: tuple[Activity, ...] = ()
    rollbacks: tuple[Activity, ...] = ()
    recovery: Recovery = field(default_factory=Recovery)
    during: During | None = None
    abort: AbortConditions | None = None
    configuration: Mapping[str, Any] = field(default_factory=_empty)
    secrets: Mapping[str, Mapping[str, Any]] = field(default_factory=_empty)
    source: str = "<string>"
    format: str = "toml"
