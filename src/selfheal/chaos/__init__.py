"""Chaos engineering: faults to inject, and the safeguards that keep them safe.

- `ChaosMonkey`: the article's random disruptions of registered targets, seeded, with a time
  limit per disruption and rollback on stop, abort and kill switch.
- In-process faults on named injection points: `inject`, `FaultPoint` (a `Policy`) and the
  `Injector` that activates `Latency`, `RaiseError` and `WrongResult` faults by probability.
- Process faults: `KillProcess`, `StopProcess` (SIGSTOP, with a dead-man SIGCONT).
- Safety: `Safeguards`, `TimeWindow`, `KillSwitch`, `kill_switch`, `ChaosRefusedError`.
- The fault proxy: `FaultProxy` (a TCP proxy with Toxiproxy's toxics and HTTP API, served by
  `FaultProxyServer` / ``selfheal chaos proxy``), with a dead-man switch on every toxic.
- Experiments: `selfheal.chaos.experiment` (``selfheal chaos run``), TOML or Chaos Toolkit
  files, with steady-state checks, rollbacks that always run and honest exit codes.

Like the top level, this package imports its modules on first use (PEP 562), so the pytest
plugin (`selfheal.testing.pytest_plugin`), loaded in every test run, costs almost nothing.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from selfheal.chaos._faults import (
        InjectedFaultError,
        Latency,
        RaiseError,
        WrongResult,
    )
    from selfheal.chaos._inject import (
        FaultHandle,
        FaultPoint,
        Injector,
        ainject,
        inject,
    )
    from selfheal.chaos._killswitch import (
        KillSwitch,
        kill_switch,
        kill_switch_reason,
        release_kill_switch,
    )
    from selfheal.chaos._monkey import (
        ChaosMonkey,
    )
    from selfheal.chaos._process import (
        KillProcess,
        ProgramPids,
        StopProcess,
    )
    from selfheal.chaos._safety import (
        ENABLE_VARIABLE,
        ENVIRONMENT_VARIABLE,
        ChaosRefusedError,
        Safeguards,
        chaos_enabled,
        refuse_in_production,
    )
    from selfheal.chaos._schedule import (
        Action,
        ChaosSchedule,
        Step,
    )
    from selfheal.chaos._targets import (
        ChaosReport,
        ChaosTarget,
        Disruption,
    )
    from selfheal.chaos._toxi_client import (
        FaultProxyError,
        ProxyHandle,
        ToxiproxyClient,
    )
    from selfheal.chaos._windows import (
        TimeWindow,
    )
    from selfheal.chaos.proxy import (
        FaultProxy,
        FaultProxyServer,
        ProxyConfig,
        ProxyError,
        ProxyState,
        Toxic,
        proxy_app,
    )

_LAZY: dict[str, str] = {
    "FaultProxy": "selfheal.chaos.proxy",
    "FaultProxyServer": "selfheal.chaos.proxy",
    "ProxyConfig": "selfheal.chaos.proxy",
    "ProxyError": "selfheal.chaos.proxy",
    "ProxyState": "selfheal.chaos.proxy",
    "Toxic": "selfheal.chaos.proxy",
    "proxy_app": "selfheal.chaos.proxy",
    "FaultProxyError": "selfheal.chaos._toxi_client",
    "ProxyHandle": "selfheal.chaos._toxi_client",
    "ToxiproxyClient": "selfheal.chaos._toxi_client",
    "ENABLE_VARIABLE": "selfheal.chaos._safety",
    "ENVIRONMENT_VARIABLE": "selfheal.chaos._safety",
    "Action": "selfheal.chaos._schedule",
    "ChaosMonkey": "selfheal.chaos._monkey",
    "ChaosRefusedError": "selfheal.chaos._safety",
    "ChaosReport": "selfheal.chaos._targets",
    "ChaosSchedule": "selfheal.chaos._schedule",
    "ChaosTarget": "selfheal.chaos._targets",
    "Disruption": "selfheal.chaos._targets",
    "FaultHandle": "selfheal.chaos._inject",
    "FaultPoint": "selfheal.chaos._inject",
    "InjectedFaultError": "selfheal.chaos._faults",
    "Injector": "selfheal.chaos._inject",
    "KillProcess": "selfheal.chaos._process",
    "KillSwitch": "selfheal.chaos._killswitch",
    "Latency": "selfheal.chaos._faults",
    "ProgramPids": "selfheal.chaos._process",
    "RaiseError": "selfheal.chaos._faults",
    "Safeguards": "selfheal.chaos._safety",
    "Step": "selfheal.chaos._schedule",
    "StopProcess": "selfheal.chaos._process",
    "TimeWindow": "selfheal.chaos._windows",
    "WrongResult": "selfheal.chaos._faults",
    "ainject": "selfheal.chaos._inject",
    "chaos_enabled": "selfheal.chaos._safety",
    "inject": "selfheal.chaos._inject",
    "kill_switch": "selfheal.chaos._killswitch",
    "kill_switch_reason": "selfheal.chaos._killswitch",
    "refuse_in_production": "selfheal.chaos._safety",
    "release_kill_switch": "selfheal.chaos._killswitch",
}

__all__ = [
    "ENABLE_VARIABLE",
    "ENVIRONMENT_VARIABLE",
    "Action",
    "ChaosMonkey",
    "ChaosRefusedError",
    "ChaosReport",
    "ChaosSchedule",
    "ChaosTarget",
    "Disruption",
    "FaultHandle",
    "FaultPoint",
    "FaultProxy",
    "FaultProxyError",
    "FaultProxyServer",
    "InjectedFaultError",
    "Injector",
    "KillProcess",
    "KillSwitch",
    "Latency",
    "ProgramPids",
    "ProxyConfig",
    "ProxyError",
    "ProxyHandle",
    "ProxyState",
    "RaiseError",
    "Safeguards",
    "Step",
    "StopProcess",
    "TimeWindow",
    "Toxic",
    "ToxiproxyClient",
    "WrongResult",
    "ainject",
    "chaos_enabled",
    "inject",
    "kill_switch",
    "kill_switch_reason",
    "proxy_app",
    "refuse_in_production",
    "release_kill_switch",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'selfheal.chaos' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
