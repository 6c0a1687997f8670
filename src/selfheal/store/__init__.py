"""The journal: every event, incident and recovery, in SQLite by default.

Standard library only (``sqlite3``); `selfheal.store.config` (the ``[journal]`` TOML section)
needs pydantic. A Redis backend can implement `JournalStore` later.
"""

from selfheal.interfaces import Incident, JournalStore, MttrSummary, RecoveryRecord, StoredEvent
from selfheal.store._errors import JournalFormatError, JournalNotFoundError
from selfheal.store._incidents import IncidentTracker
from selfheal.store._journal import DROPPED, Journal, JournalOptions
from selfheal.store._sqlite import DEFAULT_PATH, SqliteJournalStore, path_from_url

__all__ = [
    "DEFAULT_PATH",
    "DROPPED",
    "Incident",
    "IncidentTracker",
    "Journal",
    "JournalFormatError",
    "JournalNotFoundError",
    "JournalOptions",
    "JournalStore",
    "MttrSummary",
    "RecoveryRecord",
    "SqliteJournalStore",
    "StoredEvent",
    "path_from_url",
]
