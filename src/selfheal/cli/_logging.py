"""What the daemon writes on stderr: lines for people, or one JSON object a line for shippers.

``selfheal run`` logs one line when the daemon has started (version, config, programs,
control address) and when it stops, the supervisor's state changes in supervisord's words
(`selfheal.supervisor` narrates them), and every other event (recovery, journal) as
``type: key=value ...``. Levels follow the events' severities (`selfheal.events.log_level`);
values are formatted for people, never as Python reprs. ``--log-format json`` writes the
same records as JSON, with the event's data as fields. Standard library only: the daemon's
process never loads click or rich.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from selfheal.events import Event, log_level

if TYPE_CHECKING:
    from selfheal.cli._daemon import Daemon

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "human", "log_daemon"]

_QUIET = ("httpx", "httpcore", "uvicorn", "uvicorn.error", "asyncio")


def human(value: Any) -> str:
    """Return `value` for people: ``-`` for None, ``1.5`` not ``1.500001``, lists by commas."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") or "0"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(human(v) for v in value) or "-"
    if isinstance(value, Mapping):
        return " ".join(f"{k}={_quoted(human(v))}" for k, v in value.items()) or "-"
    return str(value)


def _quoted(text: str) -> str:
    if text and not any(c.isspace() or c in '"=' for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def describe_event(event: Event) -> str:
    """Return ``type: key=value ...`` for `event` (its output tail left out)."""
    data = " ".join(f"{k}={_quoted(human(v))}" for k, v in event.data.items() if k != "tail")
    return f"{event.type}: {data}" if data else event.type


class TextFormatter(logging.Formatter):
    """``2024-05-06 12:00:00,123 INFO spawned: 'web' with pid 123``; one record, one line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Format `record`, its arguments for people and its message on one line."""
        record.args = _humanized(record.args)
        text = super().format(record)
        if record.exc_info or record.stack_info:
            return text  # a traceback keeps its lines
        return text.replace("\n  ", "; ").replace("\n", " | ")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message``, and the event."""

    def format(self, record: logging.LogRecord) -> str:
        """Format `record` as JSON (values JSON cannot hold become strings)."""
        record.args = _humanized(record.args)
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def _iso(created: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{stamp}.{int(created % 1 * 1000):03d}Z"


def _humanized(args: Any) -> Any:
    # Callers log dicts and lists with %s ("reloaded: %s"): shown for people, not as reprs.
    if isinstance(args, tuple):
        return tuple(human(a) if isinstance(a, Mapping | list | tuple | set) else a for a in args)
    return args


def configure_logging(
    *, log_format: str = "text", verbose: bool = False, stream: IO[str] | None = None
) -> None:
    """Send every log record of this process to `stream` (stderr) in `log_format`.

    Args:
        log_format: ``text`` (for people) or ``json`` (for log shippers).
        verbose: Log debug records too (every event, the supervisor's included).
        stream: Where to write (default: stderr).
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in _QUIET:  # probes and the control API would log every request
        logging.getLogger(name).setLevel(logging.WARNING)


def log_daemon(daemon: Daemon, *, verbose: bool = False) -> None:
    """Log `daemon`'s events, and one line when it has started and when it has stopped.

    The supervisor tells its own state changes in words; its ``process.*`` events are
    logged again only with `verbose` (at debug level).
    """
    events = logging.getLogger("selfheal.events")

    def log_event(event: Event) -> None:
        level = log_level(event.severity)
        if event.type.startswith("process.") and event.source == "supervisor":
            level = logging.DEBUG  # already told by the supervisor, in words
        if events.isEnabledFor(level):
            fields = {"event": event.type, "source": event.source, "data": dict(event.data)}
            events.log(level, describe_event(event), extra={"fields": fields})

    daemon.runtime.bus.subscribe("*", log_event)
    runtime = daemon.runtime
    # The last to start (everything is up) and the first to stop; and the reverse.
    runtime.add(_Announce(daemon))
    if runtime.components:
        runtime.add(_Farewell(daemon), before=runtime.components[0])


class _Announce:
    """A component that says the daemon has started (it starts last) and is stopping."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self.logger = logging.getLogger("selfheal.daemon")

    def __repr__(self) -> str:
        return "Announce()"

    async def start(self) -> None:
        from selfheal.cli._help import version

        daemon = self._daemon
        plan = daemon.plan
        processes = [p["name"] for p in daemon.supervisor.status()]
        programs = daemon.supervisor.program_names()
        address = next(
            (a for c in daemon.runtime.components if (a := getattr(c, "address", None))),
            "off",
        )
        self.logger.info(
            "selfheal %s started (pid %d): config %s; %d program(s), %d process(es): %s; "
            "control %s; state %s",
            version(),
            os.getpid(),
            plan.config_path,
            len(programs),
            len(processes),
            _names(processes),
            address,
            plan.state_dir,
            extra={"fields": {"event": "daemon.started", "programs": programs}},
        )

    async def stop(self) -> None:
        count = sum(1 for p in self._daemon.supervisor.status() if p["pid"] is not None)
        self.logger.info(
            "selfheal stopping (pid %d): stopping %d running process(es)",
            os.getpid(),
            count,
            extra={"fields": {"event": "daemon.stopping"}},
        )


class _Farewell:
    """A component that says the daemon has stopped (it stops last)."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._started = 0.0

    def __repr__(self) -> str:
        return "Farewell()"

    async def start(self) -> None:
        self._started = self._daemon.runtime.clock.monotonic()

    async def stop(self) -> None:
        up = self._daemon.runtime.clock.monotonic() - self._started
        logging.getLogger("selfheal.daemon").info(
            "selfheal stopped (pid %d) after %s",
            os.getpid(),
            _duration(up),
            extra={"fields": {"event": "daemon.stopped", "uptime": round(up, 3)}},
        )


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f} s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _names(names: list[str], shown: int = 12) -> str:
    """Return `names` for one log line: the first `shown`, then how many more."""
    if len(names) <= shown:
        return ", ".join(names) or "-"
    return f"{', '.join(names[:shown])} and {len(names) - shown} more (selfheal status)"
