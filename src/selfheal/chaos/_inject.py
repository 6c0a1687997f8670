"""Named injection points and the `Injector` that activates faults on them.

Application code marks where faults may happen, once, at no cost while no fault is active::

    @FaultPoint("payments.charge")        # a Policy: decorator, or a layer of a Pipeline
    def charge(order): ...

    rows = inject("db.query", rows)        # inline: may wait, raise or change `rows`

Tests (or a chaos experiment) activate faults by name through an `Injector`, which owns the
clock the latency waits on, a seed, an event bus and the safety checks::

    injector = Injector(clock=fake_clock, seed=1)
    injector.add("db.query", Latency(2.0), probability=0.5, duration=60)

Points are process-wide by name, like loggers: a point does not need to know the injector,
and the injector does not need a reference to the code. Checking a point without active
faults is one attribute read; only active faults cost anything.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.chaos._args import check_name, positive_seconds
from selfheal.chaos._faults import Fault, InjectedFaultError, Latency, RaiseError, WrongResult
from selfheal.chaos._killswitch import kill_switch_reason, watch_kill_switch
from selfheal.chaos._safety import ChaosRefusedError, refuse_in_production
from selfheal.events import EventBus, Severity
from selfheal.policies import Policy

__all__ = ["FaultHandle", "FaultPoint", "Injector", "ainject", "inject"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class FaultHandle:
    """One active fault on one point; `remove()` it, or read how often it fired.

    Attributes:
        point: The point's name.
        fault: The fault.
        probability: Chance that a pass through the point fires it.
        expires_at: When it stops, on the injector's clock (monotonic seconds).
        times: Fire at most this often (None: no limit).
        hits: Passes through the point while it was active.
        fired: Passes on which it fired.
    """

    __slots__ = (
        "expires_at",
        "fault",
        "fired",
        "hits",
        "injector",
        "point",
        "probability",
        "removed",
        "rng",
        "times",
    )

    def __init__(  # noqa: PLR0917 - built in one place, by Injector.add
        self,
        injector: Injector,
        point: str,
        fault: Fault,
        probability: float,
        expires_at: float,
        times: int | None,
        rng: random.Random,
    ) -> None:
        self.injector = injector
        self.point = point
        self.fault = fault
        self.probability = probability
        self.expires_at = expires_at
        self.times = times
        self.rng = rng
        self.hits = 0
        self.fired = 0
        self.removed: str | None = None  # why it was removed

    def __repr__(self) -> str:
        return (
            f"FaultHandle({self.point!r}, {self.fault!r}, probability={self.probability}, "
            f"fired={self.fired}/{self.hits}, active={self.active})"
        )

    @property
    def active(self) -> bool:
        """Return whether the fault is still in place (not removed, not past its limit)."""
        return self.removed is None and self.injector.clock.monotonic() < self.expires_at

    def remove(self) -> bool:
        """Remove the fault; return whether it was still in place."""
        return _remove([self], "removed")


class _Point:
    __slots__ = ("faults", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.faults: tuple[FaultHandle, ...] = ()


_lock = threading.Lock()
_points: dict[str, _Point] = {}


def _point(name: str) -> _Point:
    check_name("injection point", name)
    with _lock:
        point = _points.get(name)
        if point is None:
            point = _points[name] = _Point(name)
        return point


def _remove(handles: list[FaultHandle], reason: str) -> bool:
    """Take `handles` off their points; publish ``rolled_back`` for those still in place."""
    gone = []
    with _lock:
        for handle in handles:
            if handle.removed is None:
                handle.removed = reason
                point = _points[handle.point]
                point.faults = tuple(h for h in point.faults if h is not handle)
                gone.append(handle)
    for handle in gone:
        handle.injector._emit(handle, "rolled_back", Severity.INFO, reason=reason)
    return bool(gone)


def _clear_all(reason: str) -> None:
    with _lock:
        handles = [h for p in _points.values() for h in p.faults]
    _remove(handles, f"kill switch: {reason}")


# The registry is process-wide, so it follows the process-wide kill switch for good.
watch_kill_switch(_clear_all)


class _Decision:
    __slots__ = ("delays", "error", "wrong")

    def __init__(self) -> None:
        self.delays: list[tuple[Clock, float]] = []
        self.error: BaseException | None = None
        self.wrong: list[WrongResult] = []

    def answer(self, result: Any) -> Any:
        for fault in self.wrong:
            result = fault.apply(result)
        return result


def _decide(point: _Point) -> _Decision:
    """Decide which active faults fire on this pass (the slow path: faults are active)."""
    decision = _Decision()
    ended: list[tuple[FaultHandle, str]] = []
    with _lock:
        for handle in point.faults:
            if handle.injector.clock.monotonic() >= handle.expires_at:
                ended.append((handle, "expired"))
                continue
            handle.hits += 1
            if handle.probability < 1.0 and handle.rng.random() >= handle.probability:
                continue
            handle.fired += 1
            if handle.times is not None and handle.fired >= handle.times:
                ended.append((handle, "exhausted"))
            fault = handle.fault
            if isinstance(fault, Latency):
                decision.delays.append((handle.injector.clock, fault.delay(handle.rng)))
            elif isinstance(fault, RaiseError):
                decision.error = decision.error or fault.build(point.name)
            else:
                decision.wrong.append(fault)
    for handle, reason in ended:
        _remove([handle], reason)
    return decision


def _pass(point: _Point) -> _Decision:
    """Run a sync pass: wait the latency, raise the error; return what answers the result."""
    decision = _decide(point)
    for clock, seconds in decision.delays:
        clock.sleep(seconds)
    if decision.error is not None:
        raise decision.error
    return decision


async def _apass(point: _Point) -> _Decision:
    """Run an async pass: wait the latency, raise the error; return what answers the result."""
    decision = _decide(point)
    for clock, seconds in decision.delays:
        await clock.asleep(seconds)
    if decision.error is not None:
        raise decision.error
    return decision


@overload
def inject(name: str) -> None: ...
@overload
def inject(name: str, value: T) -> T: ...
def inject(name: str, value: Any = None) -> Any:
    """Pass injection point `name`: wait, raise or change `value` if a fault fires here.

    Latency waits with the injector clock's blocking ``sleep``; in async code use `ainject`.

    Args:
        name: The point's name.
        value: What the code computed; a `WrongResult` fault replaces it.

    Returns:
        `value`, or the wrong answer.
    """
    point = _points.get(name)
    if point is None or not point.faults:
        return value
    return _pass(point).answer(value)


async def ainject(name: str, value: T | None = None) -> T | None:
    """Pass injection point `name` from async code (latency waits with ``asleep``).

    Args:
        name: The point's name.
        value: What the code computed; a `WrongResult` fault replaces it.

    Returns:
        `value`, or the wrong answer.
    """
    point = _points.get(name)
    if point is None or not point.faults:
        return value
    decision = await _apass(point)
    return decision.answer(value)  # type: ignore[no-any-return]


class FaultPoint(Policy):
    """An injection point as a policy: a decorator, or a layer of a `Pipeline`.

    Latency and errors happen before the call, a wrong result replaces its answer. Put it
    innermost in a pipeline to see how the policies around the call cope.

    Args:
        name: The point's name (dotted segments, e.g. ``db.query``).

    Raises:
        ValueError: For a malformed name.
    """

    __slots__ = ("_point", "name")

    def __init__(self, name: str) -> None:
        self._point = _point(name)
        self.name = name

    def __repr__(self) -> str:
        return f"FaultPoint({self.name!r})"

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Return `fn` passing this point first (sync)."""
        point = self._point

        def with_faults(*args: P.args, **kwargs: P.kwargs) -> R:
            if not point.faults:
                return fn(*args, **kwargs)
            decision = _pass(point)
            return decision.answer(fn(*args, **kwargs))  # type: ignore[no-any-return]

        return with_faults

    def awrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        """Return `fn` passing this point first (async)."""
        point = self._point

        async def with_faults(*args: P.args, **kwargs: P.kwargs) -> R:
            if not point.faults:
                return await fn(*args, **kwargs)
            decision = await _apass(point)
            return decision.answer(await fn(*args, **kwargs))  # type: ignore[no-any-return]

        return with_faults


class Injector:
    """Activates in-process faults on injection points, safely and repeatably.

    Args:
        clock: Latency waits on it, time limits are measured on it.
        seed: Seeds each fault's stream (probability and jitter): the same seed and the same
            sequence of `add` calls fire on the same passes. None: random.
        bus: Receives ``chaos.<point>.injected`` when a fault is added and
            ``chaos.<point>.rolled_back`` (with the reason) when it ends.
        allow_production: Add faults even where ``SELFHEAL_ENV=production``.
        duration: Default time limit of a fault, in seconds.

    Also a context manager: leaving the ``with`` block removes its faults.
    """

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        seed: int | str | None = None,
        bus: EventBus | None = None,
        allow_production: bool = False,
        duration: float = 300.0,
    ) -> None:
        self.clock = clock
        self.seed: int | str = random.SystemRandom().getrandbits(32) if seed is None else seed
        self.bus = bus
        self.allow_production = allow_production
        self.duration = positive_seconds("duration", duration)
        self._count = itertools.count()

    def __repr__(self) -> str:
        return f"Injector(seed={self.seed!r}, faults={len(self.faults)})"

    def __enter__(self) -> Injector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()

    @property
    def faults(self) -> list[FaultHandle]:
        """Return this injector's faults still in place."""
        with _lock:
            handles = [h for p in _points.values() for h in p.faults if h.injector is self]
        return [h for h in handles if h.active]

    def add(
        self,
        point: str,
        fault: Fault,
        *,
        probability: float = 1.0,
        duration: float | None = None,
        times: int | None = None,
    ) -> FaultHandle:
        """Activate `fault` on `point`.

        Args:
            point: The injection point's name.
            fault: `Latency`, `RaiseError` or `WrongResult`.
            probability: Chance, from 0 to 1, that a pass fires it.
            duration: Its time limit (default: the injector's `duration`).
            times: Remove it after it fired this often.

        Returns:
            Its handle.

        Raises:
            ChaosRefusedError: In production without ``allow_production``, or while the
                kill switch is engaged.
            ValueError: For a bad point name, probability, duration or times.
        """
        refuse_in_production(allow=self.allow_production)
        if (reason := kill_switch_reason()) is not None:
            raise ChaosRefusedError(
                f"refusing to add a fault: the kill switch is engaged ({reason})"
            )
        if not isinstance(fault, Latency | RaiseError | WrongResult):
            raise TypeError(f"fault: must be Latency, RaiseError or WrongResult, got {fault!r}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability: must be between 0 and 1, got {probability!r}")
        if times is not None and times < 1:
            raise ValueError(f"times: must be at least 1 or None, got {times!r}")
        limit = self.duration if duration is None else positive_seconds("duration", duration)
        slot = _point(point)
        # Not for secrets: a seeded stream is the point, so a run can be repeated.
        rng = random.Random(f"{self.seed}:{point}:{next(self._count)}")  # noqa: S311
        handle = FaultHandle(
            self, point, fault, probability, self.clock.monotonic() + limit, times, rng
        )
        with _lock:
            slot.faults = (*slot.faults, handle)
        self._emit(handle, "injected", Severity.WARNING, fault=repr(fault), limit=limit)
        return handle

    def latency(
        self, point: str, seconds: float, *, jitter: float = 0.0, **options: Any
    ) -> FaultHandle:
        """Add a `Latency` fault; `options` as for `add`."""
        return self.add(point, Latency(seconds, jitter), **options)

    def error(self, point: str, error: Any = InjectedFaultError, **options: Any) -> FaultHandle:
        """Add a `RaiseError` fault; `options` as for `add`."""
        return self.add(point, RaiseError(error), **options)

    def wrong_result(self, point: str, value: Any = None, **options: Any) -> FaultHandle:
        """Add a `WrongResult` fault answering `value`; `options` as for `add`."""
        return self.add(point, WrongResult(value), **options)

    def clear(self, point: str | None = None) -> int:
        """Remove this injector's faults (on `point` only, if given); return how many."""
        with _lock:
            handles = [
                h
                for p in _points.values()
                if point is None or p.name == point
                for h in p.faults
                if h.injector is self
            ]
        _remove(handles, "cleared")
        return len(handles)

    def _emit(self, handle: FaultHandle, what: str, severity: Severity, **data: Any) -> None:
        if self.bus is not None:
            self.bus.emit(f"chaos.{handle.point}.{what}", "chaos", severity, **data)
