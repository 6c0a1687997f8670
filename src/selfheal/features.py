"""Graceful degradation: features that switch to a fallback while what they need is down.

The article's `FeatureManager`, made cheap and observable: a feature's availability follows a
circuit breaker (anything with a ``state``), a health status (anything with
``status(name)``, such as a `selfheal.health` registry) or a boolean check whose answer is
cached for a while on the clock, so `use_feature` never runs a health check per call.
Operators can also switch a feature off and on by hand (`degrade`, `restore`).
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from selfheal._calls import checked_keywords, is_async_callable
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.errors import PolicyError
from selfheal.events import EventBus, Severity

__all__ = ["FeatureManager", "FeatureUnavailableError"]

logger = logging.getLogger("selfheal.features")

R = TypeVar("R")

_AVAILABLE_HEALTH = frozenset({"pass", "warn"})


async def _resolved(value: Any) -> Any:
    return value


class FeatureUnavailableError(PolicyError):
    """A feature is unavailable and has no fallback.

    Attributes:
        name: The feature.
        detail: What is wrong with it (``is unavailable``, ``is not registered``).
    """

    def __init__(self, name: str, detail: str = "is unavailable") -> None:
        super().__init__(f"feature {name!r} {detail}")
        self.name = name
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.detail))


class _Feature:
    __slots__ = (
        "checked_at",
        "fallback",
        "fallback_on",
        "forced_down",
        "health_name",
        "last",
        "lock",
        "name",
        "source",
        "ttl",
        "value",
    )

    def __init__(  # noqa: PLR0917 - a private record built in one place
        self,
        name: str,
        source: Any,
        fallback: Callable[..., Any] | None,
        ttl: float,
        fallback_on: tuple[type[BaseException], ...],
        health_name: str,
    ) -> None:
        self.name = name
        self.source = source
        self.fallback = fallback
        self.ttl = ttl
        self.fallback_on = fallback_on
        self.health_name = health_name
        self.forced_down = False
        self.checked_at: float | None = None
        self.value = False
        self.last: bool | None = None
        self.lock = threading.Lock()


def _state_available(state: object) -> bool:
    # A breaker is usable unless OPEN: HALF_OPEN lets the trial calls through that close it.
    label = getattr(state, "name", None) or str(state)
    return label.upper() != "OPEN"


@checked_keywords
class FeatureManager:
    """Features with fallbacks, whose availability follows a breaker, a health status or a check.

    Args:
        clock: Times the cache of boolean checks.
        bus: Receives ``feature.<name>.degraded`` and ``feature.<name>.restored`` when a
            feature's availability changes (seen on use, or set by hand).
        ttl: Default seconds a boolean check's answer is reused.
    """

    def __init__(
        self, *, clock: Clock = SYSTEM_CLOCK, bus: EventBus | None = None, ttl: float = 5.0
    ) -> None:
        if not isinstance(ttl, int | float) or not ttl >= 0:
            raise ValueError(f"FeatureManager: ttl must be seconds >= 0, got {ttl!r}")
        self.clock = clock
        self.bus = bus
        self.ttl = float(ttl)
        self._features: dict[str, _Feature] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FeatureManager(features={sorted(self._features)!r})"

    def __contains__(self, name: object) -> bool:
        return name in self._features

    @property
    def names(self) -> list[str]:
        """Return the registered feature names, sorted."""
        return sorted(self._features)

    def register(
        self,
        name: str,
        check: Any,
        fallback_func: Callable[..., Any] | None = None,
        *,
        ttl: float | None = None,
        fallback_on: tuple[type[BaseException], ...] = (),
        health_name: str | None = None,
    ) -> None:
        """Register feature `name` (again, to replace it).

        Args:
            name: The feature's name.
            check: What decides availability: an object with ``status(name)`` returning a
                health status (available on ``pass``/``warn``), an object with ``state``
                (a circuit breaker: available unless ``OPEN``), a function returning a bool
                (cached for `ttl`; raising counts as unavailable), or a bool.
            fallback_func: Called with the same arguments instead of the feature's function
                while it is unavailable.
            ttl: Seconds a boolean check's answer is reused; the manager's default if None.
            fallback_on: Exceptions from the feature's function that also use the fallback
                (e.g. ``(CircuitBreakerError,)``); by default the function's errors propagate.
            health_name: The check name to ask a health source for; `name` if None.

        Raises:
            TypeError: If `check` is none of the above, an async function, or `fallback_func`
                is not callable.
            ValueError: If `name` is empty or holds '.' or '*', or `ttl` is negative.
        """
        if not isinstance(name, str) or not name or "." in name or "*" in name:
            raise ValueError(
                "FeatureManager.register: name must be a non-empty string without '.' or '*' "
                f"(it is one segment of feature.<name>.degraded), got {name!r}"
            )
        if ttl is not None and (not isinstance(ttl, int | float) or not ttl >= 0):
            raise ValueError(f"FeatureManager.register: ttl must be seconds >= 0, got {ttl!r}")
        if fallback_func is not None and not callable(fallback_func):
            raise TypeError(
                f"FeatureManager.register: fallback_func must be callable, got {fallback_func!r}"
            )
        if not (
            isinstance(check, bool)
            or callable(getattr(check, "status", None))
            or hasattr(check, "state")
            or callable(check)
        ):
            raise TypeError(
                "FeatureManager.register: check must be a function returning a bool, a bool, "
                f"an object with .state (a breaker) or .status(name) (health), got {check!r}"
            )
        if is_async_callable(check):
            raise TypeError(
                f"FeatureManager.register: check for {name!r} is async; availability is read "
                "on every use, so pass a sync check (cached) or a health source instead"
            )
        self._features[name] = _Feature(
            name,
            check,
            fallback_func,
            self.ttl if ttl is None else float(ttl),
            tuple(fallback_on),
            health_name or name,
        )

    def _get(self, name: str, what: str) -> _Feature:
        feature = self._features.get(name)
        if feature is None:
            raise KeyError(
                f"FeatureManager.{what}: unknown feature {name!r}; registered: {self.names}"
            )
        return feature

    def _evaluate(self, feature: _Feature) -> bool:  # noqa: PLR0911 - one return per kind
        if feature.forced_down:
            return False
        source = feature.source
        if isinstance(source, bool):
            return source
        status = getattr(source, "status", None)
        if callable(status):
            return str(status(feature.health_name)) in _AVAILABLE_HEALTH
        if hasattr(source, "state"):
            return _state_available(source.state)
        now = self.clock.monotonic()
        checked = feature.checked_at
        if checked is not None and now - checked < feature.ttl:
            return feature.value
        # One thread refreshes; the others keep using the previous answer meanwhile.
        if not feature.lock.acquire(blocking=checked is None):
            return feature.value
        try:
            try:
                feature.value = bool(source())
            except Exception as exc:  # noqa: BLE001 - a failing check means unavailable
                logger.debug("feature %s check failed: %r", feature.name, exc)
                feature.value = False
            feature.checked_at = now
            return feature.value
        finally:
            feature.lock.release()

    def _observe(self, feature: _Feature, available: bool, reason: str) -> None:
        with self._lock:  # so that one change is announced once, whatever the threads
            if available is feature.last:
                return
            previous, feature.last = feature.last, available
        if self.bus is None or (previous is None and available):
            return
        kind = "restored" if available else "degraded"
        self.bus.emit(
            f"feature.{feature.name}.{kind}",
            feature.name,
            Severity.INFO if available else Severity.WARNING,
            reason=reason,
        )

    def is_available(self, name: str) -> bool:
        """Return whether feature `name` may be used now (False if it is not registered)."""
        feature = self._features.get(name)
        if feature is None:
            return False
        available = self._evaluate(feature)
        if available is not feature.last:
            self._observe(feature, available, "manual" if feature.forced_down else "check")
        return available

    def use_feature(self, name: str, func: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Call `func(*args, **kwargs)` if the feature is available, else its fallback.

        For async functions this returns a coroutine, so ``await features.use_feature(...)``
        works, also while the feature is degraded and its fallback is sync; `fallback_on`
        errors raised while it is awaited also switch to the fallback (awaited if async).

        Args:
            name: The feature.
            func: The feature's implementation.
            *args: Passed to `func` or the fallback.
            **kwargs: Passed to `func` or the fallback.

        Returns:
            The result of `func` or of the fallback.

        Raises:
            FeatureUnavailableError: If the feature is unavailable (or unknown) and has no
                fallback.
        """
        feature = self._features.get(name)
        if feature is None:
            raise FeatureUnavailableError(name, "is not registered")
        if self.is_available(name):
            if not feature.fallback_on or feature.fallback is None:
                return func(*args, **kwargs)
            try:
                result = func(*args, **kwargs)
            except feature.fallback_on as exc:
                logger.debug("feature %s failed, using its fallback: %r", name, exc)
                return feature.fallback(*args, **kwargs)  # type: ignore[no-any-return]
            if inspect.iscoroutine(result):
                # An async feature fails when awaited, after this returns: guard the await.
                return self._guarded(feature, result, args, kwargs)  # type: ignore[return-value]
            return result
        if feature.fallback is None:
            raise FeatureUnavailableError(name)
        result = feature.fallback(*args, **kwargs)
        if not inspect.isawaitable(result) and is_async_callable(func):
            # The caller of an async feature awaits what it gets: so must a sync fallback's.
            return _resolved(result)  # type: ignore[return-value]
        return result

    async def _guarded(
        self,
        feature: _Feature,
        coro: Coroutine[Any, Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        try:
            return await coro
        except feature.fallback_on as exc:
            logger.debug("feature %s failed, using its fallback: %r", feature.name, exc)
            assert feature.fallback is not None
            result = feature.fallback(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

    def degrade(self, name: str) -> None:
        """Switch feature `name` off by hand until `restore`.

        Raises:
            KeyError: If the feature is not registered.
        """
        feature = self._get(name, "degrade")
        feature.forced_down = True
        self._observe(feature, False, "manual")

    def restore(self, name: str) -> None:
        """Undo `degrade`; the feature's check decides again, asked afresh now.

        Raises:
            KeyError: If the feature is not registered.
        """
        feature = self._get(name, "restore")
        feature.forced_down = False
        feature.checked_at = None
        self._observe(feature, self._evaluate(feature), "manual")
