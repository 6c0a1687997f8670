"""The ``[journal]`` section of ``selfheal.toml``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["JournalConfig"]


class JournalConfig(BaseModel):
    """Where the journal of events and incidents is kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "sqlite:///.selfheal/journal.db"
