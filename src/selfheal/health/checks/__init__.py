"""Built-in health checks: async callables that raise `CheckError` or return what they observed.

A check is any zero-argument callable, sync or async, that raises when the thing it checks is
unhealthy and otherwise returns observed values (a mapping) or None. Checks do not enforce
their own deadline: the caller (the health monitor, a supervisor probe) runs them under a
timeout, so a hanging dependency can never hang the caller. Blocking work (SQLite, ``statvfs``
on a dead NFS mount) runs in a daemon thread of its own, so an abandoned run cannot starve a
thread pool.

Observed values are free-form, except for a few keys the health endpoints lift into the IETF
``application/health+json`` fields: ``componentType``, ``measurement`` (default
``responseTime``), ``observedValue`` and ``observedUnit``.

Every client library is imported when its check is created, not when this module is: the
``redis`` and ``postgres`` extras are only needed by those who use those checks.
"""

from selfheal.errors import CheckError
from selfheal.health._results import Check
from selfheal.health.checks._datastores import postgres_check, redis_check, sqlite_check
from selfheal.health.checks._event_loop import event_loop_lag_check
from selfheal.health.checks._network import http_check, tcp_check
from selfheal.health.checks._system import (
    command_check,
    disk_space_check,
    memory_check,
    process_check,
)

__all__ = [
    "Check",
    "CheckError",
    "command_check",
    "disk_space_check",
    "event_loop_lag_check",
    "http_check",
    "memory_check",
    "postgres_check",
    "process_check",
    "redis_check",
    "sqlite_check",
    "tcp_check",
]
