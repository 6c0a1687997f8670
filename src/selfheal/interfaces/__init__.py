"""The interfaces several packages implement or consume, in one low package.

A component never imports another package's private module to learn what a supervisor, a
health source or a store looks like: it imports the protocol from here. Implementations live
with their package (`selfheal.supervisor.Supervisor` is a `ProgramControl`,
`selfheal.health.HealthMonitor` a `HealthSource`, `selfheal.store.SqliteJournalStore` a
`JournalStore`); tests and users can write their own (see `selfheal.testing`).
"""

from selfheal.interfaces._breaker import (
    BreakerRecord,
    BreakerState,
    BreakerStore,
    SharedBreakerStore,
    TrialOutcome,
    TrialPermit,
    breaker_store_from_url,
)
from selfheal.interfaces._components import (
    Component,
    Degradable,
    HealthSource,
    HealthStatus,
    ProgramControl,
)
from selfheal.interfaces._journal import (
    Incident,
    JournalStore,
    LeaseGrant,
    MttrSummary,
    RecoveryLeases,
    RecoveryRecord,
    StoredEvent,
)

__all__ = [
    "BreakerRecord",
    "BreakerState",
    "BreakerStore",
    "Component",
    "Degradable",
    "HealthSource",
    "HealthStatus",
    "Incident",
    "JournalStore",
    "LeaseGrant",
    "MttrSummary",
    "ProgramControl",
    "RecoveryLeases",
    "RecoveryRecord",
    "SharedBreakerStore",
    "StoredEvent",
    "TrialOutcome",
    "TrialPermit",
    "breaker_store_from_url",
]
