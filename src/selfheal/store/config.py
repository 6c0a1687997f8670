"""The ``[journal]`` section of ``selfheal.toml``.

```toml
[journal]
enabled = true             # the daemon records every event and incident
url = "sqlite:///data/journal.db"   # default <state_dir>/journal.db; or "sqlite:////var/lib/..."
max_age_days = 30          # retention; 0 keeps events forever
max_rows = 1000000         # newest events kept; 0 for no limit
max_pending = 100000       # events buffered in memory before publishers wait, then drop
block_timeout = 0.1        # seconds a publisher waits for room before the event is dropped
synchronous = "NORMAL"     # "FULL" also survives power loss (slower commits)
```

A fleet shares one journal on Redis (see docs/fleet.md): ``url = "redis://host:6379/0"`` (or
``rediss://``, ``redis+sentinel://``); ``local_copy = true`` also keeps the SQLite journal of
this node in ``<state_dir>/journal.db``, and recovery rules with ``fleet = true`` run on one
node of the fleet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from selfheal._bounds import YEAR, checked_path
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.events import EventBus
from selfheal.interfaces import JournalStore
from selfheal.store._journal import Journal, JournalOptions
from selfheal.store._sqlite import SqliteJournalStore, path_from_url
from selfheal.store.redis import RedisJournalStore, parse_url

__all__ = ["JournalConfig"]


class JournalConfig(BaseModel):
    """Where the journal of events and incidents is kept, and for how long."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = True
    url: str = "sqlite:///.selfheal/journal.db"
    max_age_days: float = Field(default=30.0, ge=0, le=100 * YEAR / 86_400)
    max_rows: int = Field(default=1_000_000, ge=0, le=1_000_000_000_000)
    max_pending: int = Field(
        default=100_000, ge=1, le=1_000_000, description="events held in memory, at most"
    )
    block_timeout: float = Field(default=0.1, ge=0, le=60)
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    local_copy: bool = False

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        checked_path(value)
        if _is_redis(value):
            parse_url(value)
            return value
        try:
            path_from_url(value)
        except ValueError as exc:
            raise ValueError(f"{exc}, or 'redis://host:6379/0' for a fleet's journal") from None
        return value

    @property
    def fleet_url(self) -> str | None:
        """Return the Redis URL of a fleet's journal, or None for a SQLite one."""
        return self.url if _is_redis(self.url) else None

    @property
    def path(self) -> Path:
        """Return the SQLite file of `url` (for a fleet: the default local copy's)."""
        if self.fleet_url is not None:
            return path_from_url(JournalConfig.model_fields["url"].default)
        return path_from_url(self.url)

    def path_in(self, base_dir: str | Path) -> Path:
        """Return the SQLite file, a relative `url` taken relative to `base_dir`.

        The daemon and the CLI both use the config file's directory, so ``selfheal events
        --config selfheal.toml`` reads the journal ``selfheal run selfheal.toml`` writes.
        """
        return Path(base_dir) / self.path

    def options(self) -> JournalOptions:
        """Return the `JournalOptions` this section describes."""
        return JournalOptions(
            max_pending=self.max_pending,
            block_timeout=self.block_timeout,
            max_age=self.max_age_days * 86_400.0 if self.max_age_days else None,
            max_rows=self.max_rows or None,
        )

    def build(self, bus: EventBus, *, clock: Clock = SYSTEM_CLOCK) -> Journal:
        """Return a `Journal` of `bus` as this section describes (not started yet).

        Args:
            bus: The bus to record.
            clock: The daemon's clock.

        Returns:
            The journal; its SQLite file (and directory) exist once this returns.
        """
        store: JournalStore
        if self.fleet_url is not None:
            store = RedisJournalStore(self.fleet_url, max_len=self.max_rows or None)
        else:
            store = SqliteJournalStore(self.path, synchronous=self.synchronous)
        return Journal(bus, store, options=self.options(), clock=clock)


def _is_redis(url: str) -> bool:
    return "://" in url and url.split("://", 1)[0].lower().startswith(("redis", "unix"))
