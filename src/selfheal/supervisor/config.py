"""The ``[programs.NAME]`` and ``[control]`` sections of ``selfheal.toml``.

The models validate what a person writes; `ProgramConfig.to_spec` turns one into the
standard-library `ProgramSpec` the supervisor core runs on (so ``import selfheal`` and the
`ProcessWatchdog` never need pydantic). Checks that span programs (unknown or cyclic
``depends_on``, groups that disagree on their strategy) are in `check_programs`, which raises
a pydantic `ValidationError` whose locations name the offending key, so
`selfheal.config.validate_model` reports them with their line like any other error.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from selfheal._bounds import (
    DAY,
    MAX_COUNT,
    MAX_PROCESSES,
    MIN_PERIOD,
    YEAR,
    checked_path,
    host_problem,
    is_loopback_host,
)
from selfheal.supervisor._config_checks import check_privileges, check_programs
from selfheal.supervisor._expand import check_template, expand_config
from selfheal.supervisor._probe_config import STRICT as _STRICT
from selfheal.supervisor._probe_config import ProbeConfig
from selfheal.supervisor._proc import SwitchUserError, resolve_user
from selfheal.supervisor._spec import (
    BackoffSpec,
    IntensitySpec,
    LogSpec,
    ProbeSpec,
    ProgramSpec,
)

__all__ = [
    "SUPERVISORD_KEYS",
    "ControlConfig",
    "ProbeConfig",
    "ProgramConfig",
    "ProgramsTable",
    "check_privileges",
    "check_programs",
    "supervisord_advice",
]

# What a bearer token may hold: printable ASCII without spaces (an HTTP header value that
# the CLI sends as it is written).
_TOKEN = re.compile(r"[\x21-\x7e]+")


#: A dotted Python module name, as `preload` takes.
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


#: supervisord's program keys: selfheal's key for each, or (None, why there is none).
SUPERVISORD_KEYS: dict[str, tuple[str | None, str]] = {
    "autorestart": ("restart", '"on-failure" for unexpected, "always" for true, "never" for false'),
    "startretries": ("max_restarts", "restarts within restart_window before FATAL"),
    "startsecs": (
        None,
        "a program is up at spawn, or once its readiness probe passes (readiness = {...}) "
        'or it sends READY=1 (ready = "notify")',
    ),
    "stopsignal": ("stop_signal", 'e.g. stop_signal = "QUIT"'),
    "stopwaitsecs": ("stop_grace", "seconds before SIGKILL"),
    "exitcodes": ("exit_codes", "a list"),
    "directory": ("cwd", "the working directory"),
    "environment": ("env", 'a table: env = { KEY = "value" }'),
    "stdout_logfile": (None, "output goes to <log_dir>/NAME.log ([control] log_dir)"),
    "stderr_logfile": (None, "with redirect_stderr = false, to <log_dir>/NAME.stderr.log"),
    "stdout_logfile_maxbytes": ("log_max_bytes", "bytes"),
    "stdout_logfile_backups": ("log_backups", "rotated files kept"),
    "stopasgroup": (None, "the whole process group is always signalled"),
    "killasgroup": (None, "the whole process group is always signalled"),
    "process_name": (None, "processes are named NAME, or NAME:N with numprocs"),
}


def supervisord_advice(loc: tuple[object, ...]) -> str | None:
    """Say what to write instead of supervisord's key at `loc` (``programs.NAME.KEY``)."""
    if len(loc) != 3 or loc[0] != "programs" or not isinstance(loc[2], str):
        return None
    known = SUPERVISORD_KEYS.get(loc[2])
    if known is None:
        return None
    key, why = known
    said = f"selfheal's is {key} ({why})" if key else f"selfheal needs none: {why}"
    return f"supervisord's key; {said}. selfheal import converts a whole supervisord.conf"


class ProgramConfig(BaseModel):
    """One supervised program (``[programs.NAME]``)."""

    model_config = _STRICT

    command: list[str] = Field(min_length=1, description="argv list; never run through a shell")
    shell: bool = Field(
        default=False, description="run the one-element command with /bin/sh -c (opt-in)"
    )
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    restart: Literal["always", "on-failure", "never"] = "always"
    exit_codes: list[Annotated[int, Field(ge=0, le=255)]] = Field(
        default_factory=lambda: [0], description="exit codes that count as success (0-255)"
    )
    depends_on: list[str] = Field(default_factory=list)
    numprocs: int = Field(
        default=1,
        ge=1,
        le=MAX_PROCESSES,
        description=f"processes of this program; all programs together run at most {MAX_PROCESSES}",
    )
    autostart: bool = True
    group: str | None = Field(default=None, description="name of the restart group")
    strategy: Literal["one_for_one", "one_for_all", "rest_for_one"] = "one_for_one"
    ready: Literal["spawn", "notify", "probe"] | None = Field(
        default=None,
        description="when the program counts as ready: at spawn, on READY=1, on readiness "
        "probe (default: 'probe' with a [readiness] probe, else 'spawn')",
    )
    backoff_initial: float = Field(default=0.1, ge=0, le=DAY, description="first backoff delay, s")
    backoff_factor: float = Field(default=2.0, ge=1, le=10)
    backoff_max: float = Field(default=30.0, ge=0, le=DAY, description="backoff cap, s")
    backoff_jitter: float = Field(default=0.2, ge=0, le=1, description="fraction, +/-")
    backoff_reset: float = Field(
        default=10.0, ge=0, le=YEAR, description="seconds up after which the backoff starts over"
    )
    max_restarts: int = Field(
        default=10, ge=0, le=MAX_COUNT, description="restart intensity: restarts ..."
    )
    restart_window: float = Field(
        default=60.0, ge=MIN_PERIOD, le=YEAR, description="... within this many s"
    )
    liveness: ProbeConfig | None = None
    readiness: ProbeConfig | None = None
    watchdog_sec: float | None = Field(
        default=None,
        ge=MIN_PERIOD,
        le=DAY,
        description="sd_notify WATCHDOG=1 must arrive this often",
    )
    start_timeout: float | None = Field(
        default=None,
        ge=MIN_PERIOD,
        le=DAY,
        description="seconds after spawn by which a 'notify' or 'probe' program must be "
        "ready, else it is restarted",
    )
    stop_signal: Literal["TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2"] = "TERM"
    stop_grace: float = Field(default=10.0, ge=0, le=DAY, description="seconds before SIGKILL")
    log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1 << 40)
    log_backups: int = Field(default=3, ge=0, le=1000)
    log_tail_lines: int = Field(default=20, ge=0, le=1000)
    pdeathsig: bool = Field(
        default=False,
        description="ask the kernel to SIGTERM the child when the daemon dies (costs ~2 ms "
        "per spawn: it needs fork+preexec instead of vfork)",
    )
    numprocs_start: int = Field(
        default=0,
        ge=0,
        le=MAX_COUNT,
        description="number of the first process (NAME:N, %(process_num)d)",
    )
    priority: int = Field(
        default=999,
        ge=-MAX_COUNT,
        le=MAX_COUNT,
        description="start order beside depends_on: a program waits for those of a lower "
        "priority being started; shutdown goes the other way",
    )
    user: str | None = Field(
        default=None,
        min_length=1,
        description="run as this user, 'name' or 'name:group' (the daemon must be root)",
    )
    umask: int | None = Field(
        default=None, ge=0, le=0o777, description="the program's umask: '022' or 0o022"
    )
    redirect_stderr: bool = Field(
        default=True,
        description="stderr into NAME.log with stdout; false: into NAME.stderr.log",
    )
    preload: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Python modules a spare process imports ahead: a restart takes the spare "
        "and skips those imports (the command must be a Python interpreter and a script or -m)",
    )

    @field_validator("preload")
    @classmethod
    def _modules(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _MODULE.fullmatch(name):
                raise ValueError(f"{name[:80]!r} is not a module name (e.g. 'myapp.web')")
        return value

    @model_validator(mode="after")
    def _preload_needs_python(self) -> ProgramConfig:
        if self.preload:
            interpreter = os.path.basename(self.command[0]) if self.command else ""
            if self.shell or not re.match(r"(python|pypy)[0-9.]*$", interpreter):
                raise ValueError(
                    "preload needs a command run by a Python interpreter without shell, e.g. "
                    f"['python3', 'web.py'] or ['python3', '-m', 'myapp'] (got {interpreter!r})"
                )
            first = self.command[1] if len(self.command) > 1 else ""
            if not first or (first.startswith("-") and first != "-m"):
                raise ValueError(
                    "preload needs the script or '-m module' right after the interpreter "
                    f"(got {first!r}): interpreter options are not passed to the spare; use "
                    "their environment variables instead (PYTHONUNBUFFERED=1 for -u, "
                    "PYTHONOPTIMIZE, PYTHONWARNINGS, PYTHONDEVMODE...)"
                )
        return self

    @field_validator("cwd")
    @classmethod
    def _printable_cwd(cls, value: str | None) -> str | None:
        return checked_path(value)

    @field_validator("umask", mode="before")
    @classmethod
    def _octal(cls, value: object) -> object:
        # supervisord writes umask=022; in TOML that is a string, or the integer 0o022.
        if isinstance(value, str):
            if not re.fullmatch(r"0?o?[0-7]{1,4}", value.strip()):
                raise ValueError(f"must be octal digits like '022' or 0o022 (got {value!r})")
            return int(value.strip().replace("o", ""), 8)
        return value

    @field_validator("user")
    @classmethod
    def _known_user(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                resolve_user(value)
            except SwitchUserError as exc:
                raise ValueError(f"{exc} ('name' or 'name:group', names or numeric ids)") from None
        return value

    @field_validator("command", mode="before")
    @classmethod
    def _argv_not_string(cls, value: object) -> object:
        # The most common mistake coming from supervisord: a command line as one string.
        if isinstance(value, str):
            try:
                argv = shlex.split(value)
            except ValueError:
                argv = value.split()
            shown = ", ".join(json.dumps(a) for a in argv)
            raise ValueError(
                f"must be an argv list, e.g. command = [{shown}]; a command line as one string "
                'runs through a shell only with shell = true and command = ["..."]'
            )
        return value

    @field_validator("command")
    @classmethod
    def _no_nul(cls, value: list[str]) -> list[str]:
        if any("\0" in arg for arg in value):
            raise ValueError("an argument contains a NUL character, which exec cannot pass")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not k or "=" in k or "\0" in k]
        if bad:
            raise ValueError(
                f"invalid variable name(s) {', '.join(repr(k) for k in bad)}: a name is "
                "non-empty, without '=' or NUL"
            )
        if any("\0" in v for v in value.values()):
            raise ValueError("a value contains a NUL character, which exec cannot pass")
        return value

    @model_validator(mode="after")
    def _expansions(self) -> ProgramConfig:
        # Checked here, with the key's line; done in `to_spec`, where the config's directory
        # (%(here)s) is known. Values are never shown: env values may be secrets.
        env = dict(os.environ)
        for key, value in self.env.items():
            try:
                check_template(value)
                env[key] = expand_config(value, os.environ)
            except ValueError as exc:
                raise ValueError(f"env.{key}: {exc}") from None
        fields: list[tuple[str, str]] = [(f"command[{i}]", a) for i, a in enumerate(self.command)]
        if self.cwd is not None:
            fields.append(("cwd", self.cwd))
        for kind, probe in (("liveness", self.liveness), ("readiness", self.readiness)):
            if probe is not None:
                fields += [(f"{kind}.{k}", v) for k in ("http", "tcp") if (v := getattr(probe, k))]
                fields += [(f"{kind}.command[{i}]", a) for i, a in enumerate(probe.command or ())]
        for where, value in fields:
            try:
                check_template(value)
                expand_config(value, env, shell=self.shell and where.startswith("command"))
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        return self

    @model_validator(mode="after")
    def _consistent(self) -> ProgramConfig:
        if self.shell and len(self.command) != 1:
            raise ValueError("with shell = true, command must be one string: ['cmd | other']")
        if self.ready == "probe" and self.readiness is None:
            raise ValueError("ready = 'probe' needs a [readiness] probe")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be >= backoff_initial")
        return self

    def to_spec(self, name: str, *, base_dir: Path | None = None) -> ProgramSpec:
        """Return the program as the core's `ProgramSpec`.

        Args:
            name: The program's name (its key under ``[programs]``).
            base_dir: Directory that a relative `cwd` is relative to (the config file's).
        """
        here = str(base_dir) if base_dir is not None else None
        env = {k: expand_config(v, os.environ, here) for k, v in self.env.items()}
        seen = {**os.environ, **env}

        def x(text: str, *, shell: bool = False) -> str:
            return expand_config(text, seen, here, shell=shell)

        cwd = x(self.cwd) if self.cwd is not None else None
        if cwd is not None and base_dir is not None and not Path(cwd).is_absolute():
            cwd = str(base_dir / cwd)

        def probe(p: ProbeConfig | None) -> ProbeSpec | None:
            if p is None:
                return None
            spec = p.to_spec()
            return replace(spec, target=x(spec.target), argv=tuple(x(a) for a in spec.argv))

        return ProgramSpec(
            name=name,
            command=tuple(x(a, shell=self.shell) for a in self.command),
            shell=self.shell,
            cwd=cwd,
            env=tuple(sorted(env.items())),
            restart=self.restart,
            exit_codes=frozenset(self.exit_codes),
            depends_on=tuple(self.depends_on),
            numprocs=self.numprocs,
            autostart=self.autostart,
            group=self.group,
            strategy=self.strategy,
            # A readiness probe that did not gate readiness would be silently ignored.
            ready=self.ready or ("probe" if self.readiness is not None else "spawn"),
            backoff=BackoffSpec(
                initial=self.backoff_initial,
                factor=self.backoff_factor,
                maximum=self.backoff_max,
                jitter=self.backoff_jitter,
                reset_after=self.backoff_reset,
            ),
            intensity=IntensitySpec(max_restarts=self.max_restarts, window=self.restart_window),
            liveness=probe(self.liveness),
            readiness=probe(self.readiness),
            watchdog_sec=self.watchdog_sec,
            start_timeout=self.start_timeout,
            stop_signal=int(getattr(signal, f"SIG{self.stop_signal}")),
            stop_grace=self.stop_grace,
            log=LogSpec(
                max_bytes=self.log_max_bytes,
                backups=self.log_backups,
                tail_lines=self.log_tail_lines,
            ),
            pdeathsig=self.pdeathsig,
            numprocs_start=self.numprocs_start,
            priority=self.priority,
            user=self.user,
            umask=self.umask,
            redirect_stderr=self.redirect_stderr,
            preload=tuple(self.preload),
        )


class ControlConfig(BaseModel):
    """The control API and the daemon's state directory (``[control]``).

    The CLI finds a running daemon through ``<state_dir>/control.json``; the token the API
    requires for state changes is in ``<state_dir>/control.token`` (mode 0600), generated
    at start unless `token` is set here.
    """

    model_config = _STRICT

    enabled: bool = True
    host: str = Field(
        default="127.0.0.1",
        description="address to listen on; any but a loopback one (127.0.0.1, ::1, "
        "localhost) is warned about, and then GET /status needs the token too",
    )
    port: int = Field(default=0, ge=0, le=65535)
    socket: str | None = Field(default=None, description="unix socket path instead of TCP")
    token: str | None = Field(
        default=None,
        min_length=16,
        max_length=4096,
        description="printable ASCII without spaces (default: a random one per start)",
    )
    status_requires_token: bool = False
    state_dir: str = Field(default=".selfheal", min_length=1)
    log_dir: str | None = Field(default=None, description="default: <state_dir>/logs")
    max_connections: int = Field(
        default=64,
        ge=4,
        le=10_000,
        description="connections the control API keeps open at once (a new one replaces the "
        "one idle the longest); fewer when the file descriptor limit leaves less room",
    )
    minfds: int | None = Field(
        default=None,
        ge=64,
        le=1_048_576,
        description="file descriptors the daemon must be able to open: the soft limit is "
        "raised to it (unset: to the hard limit), and the daemon refuses to start when the "
        "hard limit is lower (supervisord's minfds)",
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        problem = host_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("socket", "state_dir", "log_dir")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return checked_path(value)

    @field_validator("token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        # Refused here rather than failing later in the CLI's request; never echoed.
        if value is not None and not _TOKEN.fullmatch(value):
            raise ValueError(
                "must be printable ASCII without spaces, newlines or other characters an "
                "HTTP header cannot carry"
            )
        return value

    @property
    def exposed(self) -> bool:
        """Whether the API listens where other machines may reach it (TCP, not loopback)."""
        return self.enabled and self.socket is None and not is_loopback_host(self.host)


class ProgramsTable(BaseModel):
    """The ``[programs]`` table alone, with the checks that span programs.

    `selfheal run` validates it with `selfheal.config.validate_model` after the whole file,
    so cross-program mistakes are reported with their lines.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    programs: dict[str, ProgramConfig] = Field(default_factory=dict)
    include: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _graph(self) -> ProgramsTable:
        # With included files this table is only part of the programs: the whole of them
        # (dependencies across files) is checked by `selfheal.config.parse_config`.
        if not self.include:
            check_programs(self.programs)
        return self
