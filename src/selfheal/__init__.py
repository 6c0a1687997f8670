"""selfheal: keep Python services up without a human.

``import selfheal`` needs only the standard library: clock, events and the resilience
policies. Health endpoints, the supervisor daemon, the journal and the CLI live in subpackages
whose extras (``selfheal[server]``, ``[redis]``, ``[postgres]``) are imported when used.
"""

from selfheal._clock import SYSTEM_CLOCK, Clock, SystemClock
from selfheal.events import Event, EventBus, Severity, Subscription
from selfheal.health import HealthMonitor, HealthStatus
from selfheal.policies import Policy

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "Event",
    "EventBus",
    "HealthMonitor",
    "HealthStatus",
    "Policy",
    "Severity",
    "Subscription",
    "SystemClock",
]
