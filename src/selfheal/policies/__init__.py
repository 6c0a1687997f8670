"""Resilience policies: retry, circuit breaker, timeout, bulkhead, fallback and the pipeline."""

from selfheal._deadline import current_deadline, remaining
from selfheal.interfaces import BreakerRecord, BreakerState, BreakerStore
from selfheal.policies._base import Policy
from selfheal.policies.breaker import (
    CircuitBreaker,
    CircuitBreakerError,
    FailureRateWindow,
    MemoryBreakerStore,
    SlowCallRule,
)
from selfheal.policies.bulkhead import Bulkhead, BulkheadFullError
from selfheal.policies.fallback import Fallback, fallback
from selfheal.policies.pipeline import Pipeline, pipeline
from selfheal.policies.retry import (
    Backoff,
    ConstantBackoff,
    DecorrelatedJitter,
    ExponentialBackoff,
    LinearBackoff,
    RandomJitter,
    Retry,
    RetryAttempt,
    RetryBudget,
    RetryError,
    RetryLoop,
    RetryStatistics,
    Stop,
    StopAfterAttempts,
    StopAfterDelay,
    StopAtDeadline,
    is_testing,
    retry,
    retry_after_hint,
    retrying,
    set_testing,
)
from selfheal.policies.timeout import Timeout

__all__ = [
    "Backoff",
    "BreakerRecord",
    "BreakerState",
    "BreakerStore",
    "Bulkhead",
    "BulkheadFullError",
    "CircuitBreaker",
    "CircuitBreakerError",
    "ConstantBackoff",
    "DecorrelatedJitter",
    "ExponentialBackoff",
    "FailureRateWindow",
    "Fallback",
    "LinearBackoff",
    "MemoryBreakerStore",
    "Pipeline",
    "Policy",
    "RandomJitter",
    "Retry",
    "RetryAttempt",
    "RetryBudget",
    "RetryError",
    "RetryLoop",
    "RetryStatistics",
    "SlowCallRule",
    "Stop",
    "StopAfterAttempts",
    "StopAfterDelay",
    "StopAtDeadline",
    "Timeout",
    "current_deadline",
    "fallback",
    "is_testing",
    "pipeline",
    "remaining",
    "retry",
    "retry_after_hint",
    "retrying",
    "set_testing",
]
