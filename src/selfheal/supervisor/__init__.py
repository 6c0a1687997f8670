"""The supervisor: keeps programs running, restarting them within milliseconds.

Standard library only (``import selfheal`` works without extras); the TOML models are in
`selfheal.supervisor.config` (pydantic), the daemon wiring in `selfheal.runtime`.

Modules, by concept: `_states` (the pure lifecycle table), `_spec` (what a program is),
`_supervisor` (the facade: Component and ProgramControl), `_driver` (runs the lifecycles),
`_child` (one process and its output), `_deps` (dependencies, start and stop order, groups),
`_probes` (probes and deadlines on the clock), `_statedir` (lock, children file, leftovers),
`_proc` (spawn, exit watch, signals, /proc), `_logs`, `_notify` (sd_notify), `_health`
(programs as health checks), `watchdog` (the article's synchronous API).
"""

from selfheal.interfaces import ProgramControl
from selfheal.supervisor._health import ProgramHealth
from selfheal.supervisor._logs import log_path
from selfheal.supervisor._reload import ReloadResult, preview_reload
from selfheal.supervisor._spec import (
    BackoffSpec,
    IntensitySpec,
    LogSpec,
    ProbeSpec,
    ProgramSpec,
    spec_from_dict,
    spec_to_dict,
)
from selfheal.supervisor._states import Lifecycle, ProcessState, Trigger, transition
from selfheal.supervisor._supervisor import Supervisor
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
    "log_path",
    "preview_reload",
    "spec_from_dict",
    "spec_to_dict",
    "transition",
]
