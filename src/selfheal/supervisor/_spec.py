"""What the supervisor core runs on: small frozen option objects, standard library only."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "BackoffSpec",
    "IntensitySpec",
    "LogSpec",
    "ProbeSpec",
    "ProgramSpec",
    "spec_from_dict",
    "spec_to_dict",
]


@dataclass(frozen=True, slots=True)
class BackoffSpec:
    """Exponential backoff between automatic restarts, with jitter, a cap and a reset.

    The first restart after a healthy run is immediate; the n-th consecutive one waits
    ``initial * factor ** (n - 2)`` seconds (capped at `maximum`), spread by +/- `jitter`.

    Attributes:
        initial: Delay before the second consecutive restart, in seconds.
        factor: Growth per consecutive failure.
        maximum: The cap.
        jitter: Fraction of the delay added or removed at random (0.2 = +/-20%).
        reset_after: A run at least this long resets the count of consecutive failures.
    """

    initial: float = 0.1
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.2
    reset_after: float = 10.0

    def delay(self, attempt: int, rand: float = 0.5) -> float:
        """Return the delay before restart number `attempt` (0 = first after a good run).

        Args:
            attempt: Consecutive failures before this one.
            rand: A uniform sample in [0, 1); 0.5 means no jitter.

        Returns:
            Seconds to wait, never negative and never above `maximum`.
        """
        if attempt <= 0:
            return 0.0
        base = min(self.maximum, self.initial * self.factor ** min(attempt - 1, 64))
        spread = base * self.jitter * (2.0 * rand - 1.0)
        return max(0.0, min(self.maximum, base + spread))


@dataclass(frozen=True, slots=True)
class IntensitySpec:
    """Restart intensity (Erlang/OTP): more than `max_restarts` within `window` s is FATAL."""

    max_restarts: int = 10
    window: float = 60.0


@dataclass(frozen=True, slots=True)
class LogSpec:
    """Where a program's output goes: a rotating file and the tail kept for events."""

    max_bytes: int = 10 * 1024 * 1024
    backups: int = 3
    tail_lines: int = 20


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """A liveness or readiness probe.

    Attributes:
        kind: ``http`` (URL in `target`), ``tcp`` (``host:port`` in `target`) or ``command``
            (`argv`).
        interval: Seconds between probes.
        timeout: Seconds before one probe counts as failed.
        initial_delay: Seconds after the start before the first probe.
        failure_threshold: Consecutive failures that make a liveness probe restart.
    """

    kind: Literal["http", "tcp", "command"]
    target: str = ""
    argv: tuple[str, ...] = ()
    interval: float = 5.0
    timeout: float = 2.0
    initial_delay: float = 0.0
    failure_threshold: int = 3


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """One supervised program, as the core sees it; equal specs mean "unchanged" on reload.

    Attributes:
        name: Unique name; instances of ``numprocs > 1`` are ``name:0``, ``name:1``...
        command: argv; with `shell`, one string run by ``/bin/sh -c``.
        cwd: Working directory (None: the daemon's).
        env: Extra environment, over the daemon's own.
        restart: ``always``, ``on-failure`` (exit code not in `exit_codes`) or ``never``.
        depends_on: Programs that must be ready before this one starts.
        ready: When the program counts as ready: ``spawn``, ``notify`` (sd_notify READY=1) or
            ``probe`` (the readiness probe passed).
        group: Restart group; `strategy` is ``one_for_one``, ``one_for_all`` or
            ``rest_for_one`` (members after the failed one, in config order).
        watchdog_sec: If set, sd_notify ``WATCHDOG=1`` must arrive at least this often.
        start_timeout: If set, a program not ready this many seconds after its spawn (``ready``
            is ``notify`` or ``probe``) is restarted like an unhealthy one (systemd's
            ``TimeoutStartSec``).
        stop_signal: Sent to the process group on stop; SIGKILL after `stop_grace` seconds.
        pdeathsig: Ask the kernel to SIGTERM the child if the daemon dies (slower spawn).
        numprocs_start: The number of the first instance (``name:N`` and ``%(process_num)d``).
        priority: Start order (lower first) beside `depends_on`; stop order is the reverse.
        user: Run as this user (``"name"`` or ``"name:group"``, names or ids); the daemon
            must be root to switch.
        umask: The child's umask (None: the daemon's).
        redirect_stderr: Whether stderr goes to the output log with stdout (else to a log of
            its own, ``NAME.stderr.log``).
        preload: Python modules a spare process imports ahead, so that an instance that has
            to start takes it instead of starting from nothing (`selfheal._standby`); empty:
            no spare. The command must be a Python interpreter and its arguments.

    ``%(program_name)s``, ``%(process_num)d``, ``%(numprocs)d``, ``%(group_name)s`` and
    ``%(host_node_name)s`` in `command`, `env`, `cwd` and probes are expanded per instance
    (supervisord's syntax, with its format specs: ``%(process_num)02d``).
    """

    name: str
    command: tuple[str, ...]
    shell: bool = False
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    restart: Literal["always", "on-failure", "never"] = "always"
    exit_codes: frozenset[int] = frozenset({0})
    depends_on: tuple[str, ...] = ()
    numprocs: int = 1
    autostart: bool = True
    group: str | None = None
    strategy: Literal["one_for_one", "one_for_all", "rest_for_one"] = "one_for_one"
    ready: Literal["spawn", "notify", "probe"] = "spawn"
    backoff: BackoffSpec = field(default_factory=BackoffSpec)
    intensity: IntensitySpec = field(default_factory=IntensitySpec)
    liveness: ProbeSpec | None = None
    readiness: ProbeSpec | None = None
    watchdog_sec: float | None = None
    start_timeout: float | None = None
    stop_signal: int = int(signal.SIGTERM)
    stop_grace: float = 10.0
    log: LogSpec = field(default_factory=LogSpec)
    pdeathsig: bool = False
    numprocs_start: int = 0
    priority: int = 999
    user: str | None = None
    umask: int | None = None
    redirect_stderr: bool = True
    preload: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        """Return the argv to execute (``/bin/sh -c`` only when `shell` was asked for)."""
        if self.shell:
            return ["/bin/sh", "-c", " ".join(self.command)]
        return list(self.command)

    def instance_names(self) -> list[str]:
        """Return the names of this program's processes."""
        return [name for name, _ in self.instances()]

    def instances(self) -> list[tuple[str, int]]:
        """Return each process's name and number (``%(process_num)d``), in order."""
        first = self.numprocs_start
        if self.numprocs == 1:
            return [(self.name, first)]
        return [(f"{self.name}:{n}", n) for n in range(first, first + self.numprocs)]


def spec_to_dict(spec: ProgramSpec) -> dict[str, Any]:
    """Return `spec` as JSON-ready data (`spec_from_dict` reads it back)."""
    data = asdict(spec)
    data["command"] = list(spec.command)
    data["env"] = [list(kv) for kv in spec.env]
    data["exit_codes"] = sorted(spec.exit_codes)
    data["depends_on"] = list(spec.depends_on)
    for probe in ("liveness", "readiness"):
        if data[probe] is not None:
            data[probe]["argv"] = list(data[probe]["argv"])
    return data


def spec_from_dict(data: Mapping[str, Any]) -> ProgramSpec:
    """Return the `ProgramSpec` that `spec_to_dict` turned into `data`."""
    d = dict(data)
    d["command"] = tuple(d["command"])
    d["env"] = tuple((str(k), str(v)) for k, v in d.get("env", ()))
    d["exit_codes"] = frozenset(d.get("exit_codes", (0,)))
    d["depends_on"] = tuple(d.get("depends_on", ()))
    d["preload"] = tuple(d.get("preload", ()))
    d["backoff"] = BackoffSpec(**d.get("backoff", {}))
    d["intensity"] = IntensitySpec(**d.get("intensity", {}))
    d["log"] = LogSpec(**d.get("log", {}))
    for probe in ("liveness", "readiness"):
        if d.get(probe) is not None:
            p = dict(d[probe])
            p["argv"] = tuple(p.get("argv", ()))
            d[probe] = ProbeSpec(**p)
    return ProgramSpec(**d)
