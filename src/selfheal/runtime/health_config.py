"""The ``[health]`` section of ``selfheal.toml``: the daemon's named health checks.

```toml
[health]
drain_seconds = 5                  # readiness fails this long before the daemon stops
show_details = "when_authorized"   # check output only with the control token

[health.checks.db]
postgres = "postgresql://app@127.0.0.1/app"
interval = 5
failure_threshold = 2

[health.checks.web-http]
http = "http://127.0.0.1:8000/healthz"
expect_status = [200]
body_contains = "ok"
kind = "liveness"
```

A check is a table with exactly one of ``http``, ``tcp``, ``redis``, ``postgres``,
``sqlite``, ``command``, ``disk``, ``memory`` or ``process`` (what to check, made by the
factory of the same kind in `selfheal.health.checks`), the options that kind takes, and the
health monitor's options (``interval``, ``critical``, ``timeout``, ``kind``,
``failure_threshold``, ``success_threshold``, ``jitter``, ``max_age``). `HealthConfig.to_plan`
turns it into plain data for the daemon's plan, which builds the monitor without pydantic
(`selfheal.runtime.health_monitor_from_plan`). Needs pydantic; see docs/configuration.md.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from selfheal._bounds import DAY, MAX_COUNT, MIN_PERIOD, YEAR, checked_path
from selfheal.runtime._checks import KINDS, build_check

__all__ = ["HealthCheckConfig", "HealthConfig", "check_health"]

# The health monitor's rule for names: they appear in URLs and event types.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")

#: The options each kind of check takes besides its target.
_KIND_OPTIONS: dict[str, tuple[str, ...]] = {
    "http": (
        "method",
        "expect_status",
        "body_contains",
        "body_matches",
        "json_fields",
        "max_response_time",
        "headers",
        "follow_redirects",
    ),
    "tcp": (),
    "redis": (),
    "postgres": (),
    "sqlite": ("query",),
    "command": ("cwd",),
    "disk": ("min_free_ratio", "min_free_bytes"),
    "memory": ("max_percent", "max_rss_bytes"),
    "process": (),
}
_MONITOR_OPTIONS = (
    "interval",
    "critical",
    "timeout",
    "kind",
    "failure_threshold",
    "success_threshold",
    "jitter",
    "max_age",
)


class HealthCheckConfig(BaseModel):
    """One named check: what to check (exactly one kind key), its options, how often."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    http: str | None = Field(default=None, description="URL that must answer as expected")
    tcp: str | None = Field(default=None, description="'host:port' that must accept")
    redis: str | None = Field(default=None, description="redis:// URL that must answer PING")
    postgres: str | None = Field(default=None, description="URL or conninfo; SELECT 1")
    sqlite: str | None = Field(default=None, description="database file that must answer")
    command: list[str] | None = Field(default=None, description="argv that must exit 0")
    disk: str | None = Field(default=None, description="a path on the file system to watch")
    memory: bool | None = Field(default=None, description="true: watch memory use")
    process: str | None = Field(default=None, description="pidfile of a process to watch")

    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] | None = Field(
        default=None, min_length=1
    )
    body_contains: str | None = None
    body_matches: str | None = None
    json_fields: dict[str, Any] | None = None
    max_response_time: float | None = Field(default=None, gt=0, le=DAY)
    headers: dict[str, str] | None = None
    follow_redirects: bool = False
    query: str | None = Field(default=None, min_length=1)
    cwd: str | None = None
    min_free_ratio: float | None = Field(default=None, ge=0, lt=1)
    min_free_bytes: int | None = Field(default=None, ge=0, le=1 << 62)
    max_percent: float | None = Field(default=None, gt=0, le=100)
    max_rss_bytes: int | None = Field(default=None, gt=0, le=1 << 62)

    interval: float = Field(default=10.0, ge=MIN_PERIOD, le=DAY, description="seconds between runs")
    critical: bool = Field(default=True, description="false: a failure only degrades (warn)")
    timeout: float | None = Field(
        default=None, ge=MIN_PERIOD, le=DAY, description="default: min(5, interval)"
    )
    kind: Literal["readiness", "liveness", "startup"] = "readiness"
    failure_threshold: int = Field(default=1, ge=1, le=MAX_COUNT)
    success_threshold: int = Field(default=1, ge=1, le=MAX_COUNT)
    jitter: float = Field(default=0.1, ge=0, le=0.5)
    max_age: float | None = Field(default=None, gt=0, le=YEAR)

    @property
    def check_kind(self) -> str:
        """Return which kind key is set (valid after validation)."""
        return next(k for k in KINDS if getattr(self, k) is not None)

    @field_validator("sqlite", "disk", "process", "cwd")
    @classmethod
    def _printable_path(cls, value: str | None) -> str | None:
        return checked_path(value)

    @model_validator(mode="after")
    def _one_kind(self) -> HealthCheckConfig:
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            got = ", ".join(kinds) if kinds else "none"
            raise ValueError(f"a check has exactly one of {', '.join(KINDS)}; got {got}")
        kind = kinds[0]
        stray = [
            k
            for other, options in _KIND_OPTIONS.items()
            if other != kind
            for k in options
            if k in self.model_fields_set
        ]
        if stray:
            owners = sorted({o for o, opts in _KIND_OPTIONS.items() for k in stray if k in opts})
            verb = "goes" if len(stray) == 1 else "go"
            raise ValueError(f"{', '.join(stray)} only {verb} with {' or '.join(owners)}")
        if self.memory is False:
            raise ValueError("memory = true adds a memory check; leave the check out instead")
        timeout = self.timeout if self.timeout is not None else min(5.0, self.interval)
        floor = self.interval * (1 + self.jitter) + timeout
        if self.max_age is not None and self.max_age < floor:
            raise ValueError(
                f"max_age must be at least interval * (1 + jitter) + timeout ({floor:g} s), "
                "or results go stale before the next one can arrive"
            )
        try:
            # Made once here, so a bad target or a missing extra is reported with its line.
            build_check(kind, self._args(Path.cwd()))
        except (ValueError, TypeError, re.error, ImportError) as exc:
            raise ValueError(f"{kind}: {exc}") from None
        return self

    def _args(self, base: Path) -> dict[str, Any]:
        kind = self.check_kind
        target = getattr(self, kind)
        args: dict[str, Any] = {
            k: getattr(self, k) for k in _KIND_OPTIONS[kind] if k in self.model_fields_set
        }
        if kind == "http":
            args["url"] = target
        elif kind == "tcp":
            host, _, port = str(target).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("must be 'host:port' with a port from 1 to 65535")
            args.update(host=host.strip("[]"), port=int(port))
        elif kind == "redis":
            args["url"] = target
        elif kind == "postgres":
            args["conninfo"] = target
        elif kind == "command":
            args["argv"] = list(target)
            args["cwd"] = str(base / self.cwd) if self.cwd is not None else str(base)
        elif kind == "process":
            args["pidfile"] = str(base / target)
        elif kind in ("sqlite", "disk"):
            args["path"] = str(base / target)
        return args

    def to_plan(self, name: str, base_dir: str | Path) -> dict[str, Any]:
        """Return the check as plain data: its kind, the factory's arguments, the options.

        Args:
            name: The check's name.
            base_dir: What relative paths (``sqlite``, ``disk``, ``process``, ``cwd``; a
                command's default working directory) are relative to.
        """
        options = {k: getattr(self, k) for k in _MONITOR_OPTIONS}
        return {
            "name": name,
            "kind": self.check_kind,
            "args": self._args(Path(base_dir)),
            "options": options,
        }


class HealthConfig(BaseModel):
    """The ``[health]`` table: named checks, and how the daemon serves and drains them."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    checks: dict[str, HealthCheckConfig] = Field(default_factory=dict)
    drain_seconds: float = Field(default=0.0, ge=0, le=DAY, description="readiness fails first")
    show_details: Literal["when_authorized", "never", "always"] = "when_authorized"

    def to_plan(self, base_dir: str | Path) -> dict[str, Any]:
        """Return the section as plain data for `DaemonPlan.extra` (``extra["health"]``)."""
        return {
            "drain_seconds": self.drain_seconds,
            "show_details": self.show_details,
            "checks": [c.to_plan(name, base_dir) for name, c in self.checks.items()],
        }


def check_health(health: HealthConfig, programs: Collection[str]) -> None:
    """Check the check names: valid in URLs and events, and none the name of a program.

    A rule's ``verify = { checks = [...] }`` names health checks and programs alike, so one
    name must not mean both.

    Raises:
        ValidationError: Located at ``health.checks.NAME`` for each problem.
    """
    errors: list[InitErrorDetails] = []
    for name in health.checks:
        message = ""
        if not _NAME.match(name):
            message = (
                "a check name is 1-63 letters, digits, '_' or '-', starting with a letter or "
                "digit (it appears in URLs and event types)"
            )
        elif name in programs:
            message = (
                f"{name!r} is also a program; verify = {{ checks = [...] }} names programs "
                "and checks alike, so give the check another name"
            )
        if message:
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError("health_names", message),
                    loc=("health", "checks", name),
                    input=name,
                )
            )
    if errors:
        raise ValidationError.from_exception_data("health", errors)
