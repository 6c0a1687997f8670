"""The ``[programs.NAME]`` and ``[control]`` sections of ``selfheal.toml``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ControlConfig", "ProgramConfig"]


class ProgramConfig(BaseModel):
    """One supervised program."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] = Field(min_length=1, description="argv list; never run through a shell")
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    restart: Literal["always", "on-failure", "never"] = "always"
    depends_on: list[str] = Field(default_factory=list)
    numprocs: int = Field(default=1, ge=1)


class ControlConfig(BaseModel):
    """The control API: where it listens and the token that state changes require."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    token: str | None = None
