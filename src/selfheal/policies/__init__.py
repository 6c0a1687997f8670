"""Resilience policies: retry, circuit breaker, timeout, bulkhead, fallback and the pipeline."""

from selfheal.policies._base import Policy
from selfheal.policies.breaker import (
    BreakerRecord,
    BreakerState,
    BreakerStore,
    CircuitBreaker,
    CircuitBreakerError,
    FailureRateWindow,
    MemoryBreakerStore,
    SlowCallRule,
)

__all__ = [
    "BreakerRecord",
    "BreakerState",
    "BreakerStore",
    "CircuitBreaker",
    "CircuitBreakerError",
    "FailureRateWindow",
    "MemoryBreakerStore",
    "Policy",
    "SlowCallRule",
]
