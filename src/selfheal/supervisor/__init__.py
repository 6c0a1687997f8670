"""The supervisor: keeps programs running, restarting them within milliseconds.

Standard library only (``import selfheal`` works without extras); the TOML models are in
`selfheal.supervisor.config` (pydantic), the daemon wiring in `selfheal.runtime`.
"""

from selfheal.interfaces import ProgramControl
from selfheal.supervisor._core import ReloadResult, Supervisor
from selfheal.supervisor._health import ProgramHealth
from selfheal.supervisor._spec import (
    BackoffSpec,
    IntensitySpec,
    LogSpec,
    ProbeSpec,
    ProgramSpec,
)
from selfheal.supervisor._states import Lifecycle, ProcessState, Trigger, transition
from selfheal.supervisor.watchdog import ProcessWatchdog

__all__ = [
    "BackoffSpec",
    "IntensitySpec",
    "Lifecycle",
    "LogSpec",
    "ProbeSpec",
    "ProcessState",
    "ProcessWatchdog",
    "ProgramControl",
    "ProgramHealth",
    "ProgramSpec",
    "ReloadResult",
    "Supervisor",
    "Trigger",
    "transition",
]
