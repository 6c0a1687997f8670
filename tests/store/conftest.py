"""Fixtures of the store tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A journal file in a directory that does not exist yet (the store creates it)."""
    return tmp_path / "j" / "journal.db"
