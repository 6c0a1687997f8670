"""The daemon's runtime: components started in order and stopped in reverse, and its plan.

`Runtime` starts any `Component` (journal, supervisor, recovery engine, control API) in order
and stops them in reverse; `DaemonPlan` is the validated config the daemon runs, which
`compile_plan` makes from a ``selfheal.toml`` (with pydantic). The daemon itself, what
``selfheal run`` execs, is `selfheal.cli.daemon`: it serves the control API, the top layer.
"""

from selfheal.runtime._components import Runtime
from selfheal.runtime._plan import DaemonPlan, compile_plan, load_daemon_config

__all__ = ["DaemonPlan", "Runtime", "compile_plan", "load_daemon_config"]
