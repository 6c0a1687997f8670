"""The ``[journal]`` section of selfheal.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfheal import EventBus
from selfheal.config import ConfigError, parse_config
from selfheal.store import SqliteJournalStore


def test_journal_config() -> None:
    cfg = parse_config('[journal]\nurl = "sqlite:///x/j.db"\nmax_age_days = 0\nmax_rows = 10\n')
    assert cfg.journal.path == Path("x/j.db")
    options = cfg.journal.options()
    assert (options.max_age, options.max_rows) == (None, 10)
    with pytest.raises(ConfigError) as info:
        parse_config('\n[journal]\nurl = "mysql://x"\n')
    (issue,) = info.value.issues
    assert (issue.key, issue.line) == ("journal.url", 3)
    assert "not supported" in issue.message
    assert "redis://" in issue.message  # a fleet's journal is the other valid kind


def test_journal_config_builds_a_journal(tmp_path: Path) -> None:
    db = tmp_path / "d" / "j.db"
    cfg = parse_config(f'[journal]\nurl = "sqlite:///{db}"\nsynchronous = "FULL"\nmax_rows = 7\n')
    bus = EventBus()
    with cfg.journal.build(bus) as journal:
        assert journal.options.max_rows == 7
        bus.emit("a.b.c", "t")
    assert [e.type for e in SqliteJournalStore(db, readonly=True).events()] == ["a.b.c"]
