"""selfheal: keep Python services up without a human.

``import selfheal`` loads almost nothing: every name below is imported from its subpackage
the first time it is used (PEP 562), so an app that only wants `retry` never pays for the
supervisor, the journal or the health monitor, and a CLI call starts fast. Everything here
needs only the standard library; health endpoints, the daemon and the CLI live in subpackages
whose extras (``selfheal[server]``, ``[redis]``, ``[postgres]``) are imported when used.
"""

from __future__ import annotations

import importlib

# Not `typing.TYPE_CHECKING`: importing typing would be most of what `import selfheal` costs.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from selfheal._clock import (
        SYSTEM_CLOCK,
        Clock,
        SystemClock,
    )
    from selfheal.app import (
        SelfHealingApp,
    )
    from selfheal.chaos import (
        ChaosMonkey,
        ChaosRefusedError,
        FaultPoint,
        InjectedFaultError,
        Injector,
        inject,
    )
    from selfheal.errors import (
        ActionError,
        CallTimeoutError,
        CheckError,
        ConfigError,
        ControlError,
        JournalError,
        PolicyError,
        ReloadError,
        SelfhealError,
        StartError,
        StateDirLockedError,
        UnsafePathError,
    )
    from selfheal.events import (
        Event,
        EventBus,
        Severity,
        Subscription,
    )
    from selfheal.features import (
        FeatureManager,
        FeatureUnavailableError,
    )
    from selfheal.health import (
        HealthMonitor,
        HealthStatus,
    )
    from selfheal.policies import (
        Backoff,
        BreakerRecord,
        BreakerState,
        BreakerStore,
        Bulkhead,
        BulkheadFullError,
        CircuitBreaker,
        CircuitBreakerError,
        ConstantBackoff,
        DecorrelatedJitter,
        ExponentialBackoff,
        FailureRateWindow,
        Fallback,
        LinearBackoff,
        MemoryBreakerStore,
        Pipeline,
        Policy,
        RandomJitter,
        Retry,
        RetryBudget,
        RetryError,
        RetryStatistics,
        SlowCallRule,
        Stop,
        StopAfterAttempts,
        StopAfterDelay,
        StopAtDeadline,
        Timeout,
        current_deadline,
        fallback,
        is_active,
        is_testing,
        pipeline,
        remaining,
        retry,
        retry_after_hint,
        retrying,
        set_active,
        set_testing,
    )
    from selfheal.recovery import (
        RecoveryEngine,
        RecoveryManager,
    )
    from selfheal.supervisor.watchdog import (
        ProcessWatchdog,
    )
    from selfheal.synthetic import (
        HttpScenario,
        HttpStep,
        SyntheticTester,
    )

# Where each exported name lives; the first access imports the module and caches the name.
_LAZY: dict[str, str] = {
    "SYSTEM_CLOCK": "selfheal._clock",
    "ActionError": "selfheal.errors",
    "Backoff": "selfheal.policies",
    "BreakerRecord": "selfheal.policies",
    "BreakerState": "selfheal.policies",
    "BreakerStore": "selfheal.policies",
    "Bulkhead": "selfheal.policies",
    "BulkheadFullError": "selfheal.policies",
    "CallTimeoutError": "selfheal.errors",
    "ChaosMonkey": "selfheal.chaos",
    "ChaosRefusedError": "selfheal.chaos",
    "CheckError": "selfheal.errors",
    "CircuitBreaker": "selfheal.policies",
    "CircuitBreakerError": "selfheal.policies",
    "Clock": "selfheal._clock",
    "ConfigError": "selfheal.errors",
    "ConstantBackoff": "selfheal.policies",
    "ControlError": "selfheal.errors",
    "DecorrelatedJitter": "selfheal.policies",
    "Event": "selfheal.events",
    "EventBus": "selfheal.events",
    "ExponentialBackoff": "selfheal.policies",
    "FailureRateWindow": "selfheal.policies",
    "Fallback": "selfheal.policies",
    "FaultPoint": "selfheal.chaos",
    "FeatureManager": "selfheal.features",
    "FeatureUnavailableError": "selfheal.features",
    "HealthMonitor": "selfheal.health",
    "HealthStatus": "selfheal.health",
    "HttpScenario": "selfheal.synthetic",
    "HttpStep": "selfheal.synthetic",
    "InjectedFaultError": "selfheal.chaos",
    "Injector": "selfheal.chaos",
    "JournalError": "selfheal.errors",
    "LinearBackoff": "selfheal.policies",
    "MemoryBreakerStore": "selfheal.policies",
    "Pipeline": "selfheal.policies",
    "Policy": "selfheal.policies",
    "PolicyError": "selfheal.errors",
    "ProcessWatchdog": "selfheal.supervisor.watchdog",
    "RandomJitter": "selfheal.policies",
    "RecoveryEngine": "selfheal.recovery",
    "RecoveryManager": "selfheal.recovery",
    "ReloadError": "selfheal.errors",
    "Retry": "selfheal.policies",
    "RetryBudget": "selfheal.policies",
    "RetryError": "selfheal.policies",
    "RetryStatistics": "selfheal.policies",
    "SelfHealingApp": "selfheal.app",
    "SelfhealError": "selfheal.errors",
    "Severity": "selfheal.events",
    "SlowCallRule": "selfheal.policies",
    "StartError": "selfheal.errors",
    "StateDirLockedError": "selfheal.errors",
    "UnsafePathError": "selfheal.errors",
    "Stop": "selfheal.policies",
    "StopAfterAttempts": "selfheal.policies",
    "StopAfterDelay": "selfheal.policies",
    "StopAtDeadline": "selfheal.policies",
    "Subscription": "selfheal.events",
    "SyntheticTester": "selfheal.synthetic",
    "SystemClock": "selfheal._clock",
    "Timeout": "selfheal.policies",
    "current_deadline": "selfheal.policies",
    "fallback": "selfheal.policies",
    "inject": "selfheal.chaos",
    "is_active": "selfheal.policies",
    "is_testing": "selfheal.policies",
    "pipeline": "selfheal.policies",
    "remaining": "selfheal.policies",
    "retry": "selfheal.policies",
    "retry_after_hint": "selfheal.policies",
    "retrying": "selfheal.policies",
    "set_active": "selfheal.policies",
    "set_testing": "selfheal.policies",
}

__all__ = [
    "SYSTEM_CLOCK",
    "ActionError",
    "Backoff",
    "BreakerRecord",
    "BreakerState",
    "BreakerStore",
    "Bulkhead",
    "BulkheadFullError",
    "CallTimeoutError",
    "ChaosMonkey",
    "ChaosRefusedError",
    "CheckError",
    "CircuitBreaker",
    "CircuitBreakerError",
    "Clock",
    "ConfigError",
    "ConstantBackoff",
    "ControlError",
    "DecorrelatedJitter",
    "Event",
    "EventBus",
    "ExponentialBackoff",
    "FailureRateWindow",
    "Fallback",
    "FaultPoint",
    "FeatureManager",
    "FeatureUnavailableError",
    "HealthMonitor",
    "HealthStatus",
    "HttpScenario",
    "HttpStep",
    "InjectedFaultError",
    "Injector",
    "JournalError",
    "LinearBackoff",
    "MemoryBreakerStore",
    "Pipeline",
    "Policy",
    "PolicyError",
    "ProcessWatchdog",
    "RandomJitter",
    "RecoveryEngine",
    "RecoveryManager",
    "ReloadError",
    "Retry",
    "RetryBudget",
    "RetryError",
    "RetryStatistics",
    "SelfHealingApp",
    "SelfhealError",
    "Severity",
    "SlowCallRule",
    "StartError",
    "StateDirLockedError",
    "Stop",
    "StopAfterAttempts",
    "StopAfterDelay",
    "StopAtDeadline",
    "Subscription",
    "SyntheticTester",
    "SystemClock",
    "Timeout",
    "UnsafePathError",
    "current_deadline",
    "fallback",
    "inject",
    "is_active",
    "is_testing",
    "pipeline",
    "remaining",
    "retry",
    "retry_after_hint",
    "retrying",
    "set_active",
    "set_testing",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        # Read on first use: importlib.metadata costs more than all of `import selfheal`.
        from importlib.metadata import PackageNotFoundError, version

        try:
            globals()[name] = version("selfheal")
        except PackageNotFoundError:  # sources on sys.path, never installed
            globals()[name] = "0+unknown"
        return globals()[name]
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'selfheal' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
