"""The journal store's errors: no journal at a path, or a file that is not a journal."""

from __future__ import annotations

import sqlite3

from selfheal.errors import JournalError

__all__ = ["JournalFormatError", "JournalNotFoundError"]


class JournalNotFoundError(JournalError, FileNotFoundError):
    """Raised when a read-only store is opened on a path with no journal."""


class JournalFormatError(JournalError, sqlite3.DatabaseError):
    """Raised when a SQLite file's tables are not those of a selfheal journal."""
