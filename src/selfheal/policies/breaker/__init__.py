"""The circuit breaker: stop calling what is failing, try again later with a few trial calls.

One concept per module: `_machine` (the state diagram and counters, pure), `_windows` (the
failure-rate and slow-call windows), `_driver` (the clock, lock, store and events around the
machine: the steps every call takes), `_store` (the in-memory store) and `_policy`
(`CircuitBreaker` and its sync and async front ends).
"""

from selfheal.interfaces import BreakerRecord, BreakerState, BreakerStore
from selfheal.policies.breaker._driver import CircuitBreakerError
from selfheal.policies.breaker._policy import CircuitBreaker
from selfheal.policies.breaker._store import MemoryBreakerStore
from selfheal.policies.breaker._windows import FailureRateWindow, SlowCallRule

__all__ = [
    "BreakerRecord",
    "BreakerState",
    "BreakerStore",
    "CircuitBreaker",
    "CircuitBreakerError",
    "FailureRateWindow",
    "MemoryBreakerStore",
    "SlowCallRule",
]
