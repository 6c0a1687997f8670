"""The fleet on Redis: shared breaker state, one event stream, recovery leases.

Needs the ``redis`` extra (redis-py), imported when a client is first made. Three parts, each
usable alone:

- `RedisBreakerStore`: breaker state shared by every node; a trip anywhere opens the breaker
  everywhere, half-open trial permits are fleet-wide, and nothing on a call's path waits on
  Redis (see `selfheal.store.redis._breaker`).
- `RedisJournalStore`: the journal of every node in one Redis stream, incidents folded from it
  once for the fleet (see `selfheal.store.redis._stream`).
- `RecoveryLease` and `FleetLeases`: one node acts on an incident, a fencing token stops a node
  that lost its lease (see `selfheal.store.redis._lease`).

See docs/fleet.md for what runs where and what happens when Redis is down.
"""

from selfheal.store.redis._breaker import RedisBreakerStore
from selfheal.store.redis._client import RedisURL, connect, connect_async, parse_url
from selfheal.store.redis._fleet import FleetGrant, FleetLeases
from selfheal.store.redis._folder import IncidentFolder
from selfheal.store.redis._lease import LeaseInfo, LeaseLostError, RecoveryLease, node_name
from selfheal.store.redis._stream import RedisJournalStore

__all__ = [
    "FleetGrant",
    "FleetLeases",
    "IncidentFolder",
    "LeaseInfo",
    "LeaseLostError",
    "RecoveryLease",
    "RedisBreakerStore",
    "RedisJournalStore",
    "RedisURL",
    "connect",
    "connect_async",
    "node_name",
    "parse_url",
]
