"""The daemon's process: what ``selfheal run`` execs (``python -m selfheal.cli.daemon``).

``selfheal run CONFIG`` validates the file (pydantic), writes the `DaemonPlan` to a memfd and
execs ``python -m selfheal.cli.daemon daemon --plan-fd N``: the long-running process never
imports pydantic, click or rich, which keeps its memory near supervisord's. ``compile CONFIG``
prints a config's plan as JSON (or its problems), for reloads.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from collections.abc import Sequence

from selfheal._safepath import safe_dir
from selfheal.cli._daemon import Daemon, journal_advice
from selfheal.cli._limits import fit_descriptors
from selfheal.cli._logging import configure_logging, log_daemon
from selfheal.errors import ConfigError, StartError, StateDirLockedError
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
    d.add_argument("--log-format", choices=("text", "json"), default="text")
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
    return run_daemon(plan, verbose=args.verbose, log_format=args.log_format)


def run_daemon(plan: DaemonPlan, *, verbose: bool = False, log_format: str = "text") -> int:
    """Run a daemon in the foreground, logging to stderr, until SIGINT/SIGTERM.

    Returns:
        0; `EXIT_CONFIG` if its programs cannot fit in the file descriptors it may open, or
        another user could subvert its state or log directory; `EXIT_LOCKED` if another
        daemon uses the state dir.
    """
    configure_logging(log_format=log_format, verbose=verbose)
    prepared = _prepare(plan)
    if isinstance(prepared, int):
        return prepared
    plan = prepared
    try:
        daemon = Daemon(plan)
    except StartError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    log_daemon(daemon, verbose=verbose)
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


def _prepare(plan: DaemonPlan) -> DaemonPlan | int:
    """Return `plan` fitted to the descriptors, its directories made; or the exit status."""
    try:
        plan = fit_descriptors(plan)
        # Before anything writes there (the journal is opened first): made with safe modes,
        # or refused when another user could subvert them.
        safe_dir(plan.state_dir, 0o700)
        safe_dir(plan.log_dir, 0o750)
    except StartError as exc:  # also UnsafePathError
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_CONFIG
    except OSError as exc:
        sys.stderr.write(f"error: cannot make the state or log directory: {exc}\n")
        return 1
    return plan


if __name__ == "__main__":
    sys.exit(main())
