"""The daemon's file descriptors: the soft limit raised at start, the programs' need checked.

Every process the daemon supervises holds descriptors in the daemon for as long as it runs
(its output log and pipe, a second pair for a separate stderr, a pidfd), a probe holds one
while it runs, and the control API one per connection. When they run out, a restart cannot
spawn. So at start the daemon raises its soft ``RLIMIT_NOFILE`` (to the hard limit, at most
65,536, or to ``[control] minfds``), refuses to start when its programs cannot fit in what it
got, and gives the control API only the connections that are left (supervisord's ``minfds``).
"""

from __future__ import annotations

import logging
import resource
from dataclasses import replace

from selfheal.errors import StartError
from selfheal.runtime import DaemonPlan

__all__ = ["DAEMON_DESCRIPTORS", "MIN_CONNECTIONS", "descriptors_needed", "fit_descriptors"]

logger = logging.getLogger("selfheal.daemon")

#: The daemon's own: stdio, epoll, the journal (database, WAL, shared memory, a reader), the
#: notify socket, the lock and children files, a spawn under way (its pipes), a reload's
#: compiler, the health checks' connections, and room to spare.
DAEMON_DESCRIPTORS = 32
#: The fewest connections the control API is given; below that, the daemon does not start.
MIN_CONNECTIONS = 4
# The most the soft limit is raised to without `minfds`: programs inherit it, and some close
# every descriptor up to it before exec (a million take seconds) or use select().
_CEILING = 1 << 16


def descriptors_needed(plan: DaemonPlan, connections: int = 0) -> int:
    """Return about how many file descriptors `plan` needs with every program running.

    Args:
        plan: The daemon's config.
        connections: The control API's connections to count (and its listening socket).
    """
    total = DAEMON_DESCRIPTORS
    for spec in plan.programs:
        streams = 1 if spec.redirect_stderr else 2
        probes = (spec.readiness is not None) + (spec.liveness is not None)
        # Per process: a log file and a pipe per stream, a pidfd, three per probe run (a
        # socket, or a command's pipes).
        total += spec.numprocs * (2 * streams + 1 + 3 * probes)
    total += 2 * len((plan.extra.get("health") or {}).get("checks") or [])
    if plan.control.get("enabled", True):
        total += 1 + connections
    return total


def fit_descriptors(plan: DaemonPlan) -> DaemonPlan:
    """Raise the soft descriptor limit and check that `plan`'s programs fit in it.

    The soft limit goes up to the hard one (at most 65,536), or to ``[control] minfds`` when
    set; the programs inherit it. The control API gets ``max_connections``, or fewer when the
    limit leaves less room.

    Returns:
        `plan`, with the control API's connections as many as fit.

    Raises:
        StartError: When the programs do not fit (or ``minfds`` is above the hard limit),
            saying how many descriptors they need and what the limits are.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    minfds = plan.control.get("minfds")
    hard_cap = _CEILING if hard == resource.RLIM_INFINITY else min(hard, _CEILING)
    if minfds is not None and hard < minfds:
        raise StartError(
            f"[control] minfds = {minfds}, but the hard limit of open files is {hard}: raise "
            "it (ulimit -Hn, or LimitNOFILE= in a systemd unit) or lower minfds"
        )
    target = hard_cap if minfds is None else max(soft, minfds)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            logger.warning("cannot raise the open files limit from %d to %d: %s", soft, target, exc)
        else:
            logger.debug("open files limit raised from %d to %d", soft, target)
            soft = target
    need = descriptors_needed(plan, MIN_CONNECTIONS)
    if need > soft:
        processes = sum(spec.numprocs for spec in plan.programs)
        raise StartError(
            f"{len(plan.programs)} program(s) ({processes} process(es)) need about {need} file "
            f"descriptors, but the daemon may open only {soft} (hard limit {hard}): raise the "
            "limit (ulimit -n, or LimitNOFILE= in a systemd unit) or run fewer processes"
        )
    control = plan.control
    if not control.get("enabled", True):
        return plan
    wanted = int(control.get("max_connections", 64))
    room = soft - descriptors_needed(plan)
    if room >= wanted:
        return plan
    logger.warning(
        "control API: at most %d connections (not %d): the open files limit (%d) leaves no "
        "more room beside the programs",
        room,
        wanted,
        soft,
    )
    return replace(plan, control={**control, "max_connections": room})
