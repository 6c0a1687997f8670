"""The daemon's process: what ``selfheal run`` execs (``python -m selfheal.cli.daemon``).

``selfheal run CONFIG`` validates the file (pydantic), writes the `DaemonPlan` to a memfd and
execs ``python -m selfheal.cli.daemon daemon --plan-fd N``: the long-running process never
imports pydantic, click or rich, which keeps its memory near supervisord's. ``compile CONFIG``
prints a config's plan as JSON (or its problems), for reloads.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence

from selfheal.cli._daemon import Daemon, journal_advice
from selfheal.errors import ConfigError, StartError, StateDirLockedError
from selfheal.events import Event
from selfheal.runtime import DaemonPlan, compile_plan

__all__ = ["EXIT_CONFIG", "EXIT_LOCKED", "Daemon", "main", "run_daemon"]


#: Exit status of a daemon that found another one on its state dir.
EXIT_LOCKED = 3
EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m selfheal.cli.daemon``: ``daemon --plan-fd N`` or ``compile CONFIG``.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m selfheal.cli.daemon")
    sub = parser.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("daemon", help="run a daemon from a plan (what `selfheal run` execs)")
    d.add_argument("--plan-fd", type=int, required=True)
    d.add_argument("-v", "--verbose", action="store_true")
    c = sub.add_parser("compile", help="print the plan of CONFIG as JSON, or its problems")
    c.add_argument("config")
    args = parser.parse_args(argv)
    if args.mode == "compile":
        try:
            sys.stdout.write(compile_plan(args.config).to_json())
        except ConfigError as exc:
            sys.stderr.write(f"{exc}\n")
            return EXIT_CONFIG
        return 0
    with os.fdopen(args.plan_fd, "r") as f:
        plan = DaemonPlan.from_json(f.read())
    return run_daemon(plan, verbose=args.verbose)


def run_daemon(plan: DaemonPlan, *, verbose: bool = False) -> int:
    """Run a daemon in the foreground, logging to stderr, until SIGINT/SIGTERM.

    Returns:
        0, or `EXIT_LOCKED` if another daemon uses the state dir.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # probes would log every request
    try:
        daemon = Daemon(plan)
    except StartError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    events = logging.getLogger("selfheal.events")

    def log_event(event: Event) -> None:
        level = logging.INFO
        if event.severity in ("warning", "error", "critical"):
            level = logging.WARNING
        if events.isEnabledFor(level):
            data = " ".join(f"{k}={v!r}" for k, v in event.data.items() if k != "tail")
            events.log(level, "%s %s", event.type, data)

    daemon.runtime.bus.subscribe("*", log_event)
    try:
        asyncio.run(daemon.run())
    except StateDirLockedError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_LOCKED
    except OSError as exc:  # e.g. the control port is taken: say so, no traceback
        sys.stderr.write(f"error: cannot run the daemon: {exc}\n")
        return 1
    except sqlite3.Error as exc:  # the journal failed as it started (disk full, locked...)
        path = (plan.extra.get("journal") or {}).get("path", "")
        sys.stderr.write(f"error: {journal_advice(path, exc)}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
