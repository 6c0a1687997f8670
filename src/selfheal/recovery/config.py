"""The ``[[recovery]]`` rules of ``selfheal.toml``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RecoveryRuleConfig"]


class RecoveryRuleConfig(BaseModel):
    """One recovery rule: which events it reacts to and what it does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on: str = Field(min_length=1, description="event type pattern, e.g. 'process.*.exited'")
    action: dict[str, Any]
