"""A probe of ``[programs.NAME.liveness]`` or ``[programs.NAME.readiness]``, validated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from selfheal._bounds import DAY, MAX_COUNT, MIN_PERIOD
from selfheal.supervisor._spec import ProbeSpec

__all__ = ["STRICT", "ProbeConfig"]

#: Every model refuses nan and inf: a timer of inf seconds never fires, or raises.
STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ProbeConfig(BaseModel):
    """A liveness or readiness probe: exactly one of `http`, `tcp` or `command`."""

    model_config = STRICT

    http: str | None = Field(default=None, description="URL that must answer 2xx/3xx")
    tcp: str | None = Field(default=None, description="'host:port' that must accept")
    command: list[str] | None = Field(default=None, min_length=1, description="argv, exit 0")
    interval: float = Field(
        default=5.0, ge=MIN_PERIOD, le=DAY, description="seconds between probes"
    )
    timeout: float = Field(
        default=2.0, ge=MIN_PERIOD, le=DAY, description="seconds before a probe fails"
    )
    initial_delay: float = Field(default=0.0, ge=0, le=DAY, description="seconds after start")
    failure_threshold: int = Field(
        default=3, ge=1, le=MAX_COUNT, description="consecutive failures"
    )

    @field_validator("tcp")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None and "${" not in value and "%(" not in value:
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("must be 'host:port' with a port from 1 to 65535")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ProbeConfig:
        given = [k for k in ("http", "tcp", "command") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of 'http', 'tcp' or 'command' "
                f"(got {', '.join(given) if given else 'none'})"
            )
        return self

    def to_spec(self) -> ProbeSpec:
        """Return the probe as the core's `ProbeSpec`."""
        kind: Literal["http", "tcp", "command"]
        if self.http is not None:
            kind, target = "http", self.http
        elif self.tcp is not None:
            kind, target = "tcp", self.tcp
        else:
            kind, target = "command", ""
        return ProbeSpec(
            kind=kind,
            target=target,
            argv=tuple(self.command or ()),
            interval=self.interval,
            timeout=self.timeout,
            initial_delay=self.initial_delay,
            failure_threshold=self.failure_threshold,
        )
