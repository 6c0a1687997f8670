"""Retry: run a call again when it fails transiently.

One concept per module: `_backoff` (how long to wait), `_stop` (when to give up), `_budget`
(how many retries a dependency can take), `_hints` (the server's own "retry after"),
`_testing` (the process-wide test mode), `_attempts` (the decision after each failure, shared
by every front end), `_statistics` (how the calls fared), `_policy` (`Retry`, the sync and
async decorators), `_loop` (the ``for attempt in retrying(...)`` form), `_entry` (`retry` and
`retrying`, with their defaults) and `_migration` (tenacity's and stamina's keywords, refused
with ours named).
"""

from selfheal.policies.retry._attempts import RetryError
from selfheal.policies.retry._backoff import (
    Backoff,
    ConstantBackoff,
    DecorrelatedJitter,
    ExponentialBackoff,
    LinearBackoff,
    RandomJitter,
)
from selfheal.policies.retry._budget import RetryBudget
from selfheal.policies.retry._entry import retry, retrying
from selfheal.policies.retry._hints import retry_after_hint
from selfheal.policies.retry._loop import RetryAttempt, RetryLoop
from selfheal.policies.retry._policy import Retry
from selfheal.policies.retry._statistics import RetryStatistics
from selfheal.policies.retry._stop import Stop, StopAfterAttempts, StopAfterDelay, StopAtDeadline
from selfheal.policies.retry._testing import is_active, is_testing, set_active, set_testing

__all__ = [
    "Backoff",
    "ConstantBackoff",
    "DecorrelatedJitter",
    "ExponentialBackoff",
    "LinearBackoff",
    "RandomJitter",
    "Retry",
    "RetryAttempt",
    "RetryBudget",
    "RetryError",
    "RetryLoop",
    "RetryStatistics",
    "Stop",
    "StopAfterAttempts",
    "StopAfterDelay",
    "StopAtDeadline",
    "is_active",
    "is_testing",
    "retry",
    "retry_after_hint",
    "retrying",
    "set_active",
    "set_testing",
]
