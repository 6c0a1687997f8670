"""The Redis keys of a fleet, in one place, so every node and the CLI agree on them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StreamKeys", "breaker_channel", "breaker_keys", "seq_of", "stream_id_of"]

# A stream id is "<ms>-<n>"; the journal's `seq` packs both into one int that sorts the same
# way (20 bits for n: a million entries per millisecond, far above what one Redis adds).
_SEQ_BITS = 20
_SEQ_MASK = (1 << _SEQ_BITS) - 1


def breaker_keys(prefix: str, name: str) -> list[str]:
    """Return the hash of breaker `name` and the set of its trial permits."""
    key = f"{prefix}:breaker:{name}"
    return [key, f"{key}:trials"]


def breaker_channel(prefix: str) -> str:
    """Return the channel every breaker change is published on."""
    return f"{prefix}:breakers"


@dataclass(frozen=True, slots=True)
class StreamKeys:
    """The keys of the fleet's event stream and what is folded from it.

    Attributes:
        prefix: What every key starts with (one fleet per prefix on a Redis).
    """

    prefix: str = "selfheal"

    @property
    def stream(self) -> str:
        """Return the stream of events."""
        return f"{self.prefix}:events"

    def publisher(self, node: str) -> str:
        """Return the key holding the last batch number a publisher got stored."""
        return f"{self.prefix}:pub:{node}"

    @property
    def incidents(self) -> str:
        """Return the hash of incidents: id -> JSON."""
        return f"{self.prefix}:incidents"

    @property
    def open(self) -> str:
        """Return the hash of open incidents: subject -> id."""
        return f"{self.prefix}:incidents:open"

    @property
    def next_incident(self) -> str:
        """Return the key holding the next incident id."""
        return f"{self.prefix}:incidents:next"

    @property
    def recoveries(self) -> str:
        """Return the hash of recoveries: recovery id -> JSON."""
        return f"{self.prefix}:recoveries"

    @property
    def folded(self) -> str:
        """Return the key holding the id of the last stream entry folded into incidents."""
        return f"{self.prefix}:incidents:pos"

    @property
    def group(self) -> str:
        """Return the consumer group that folds the stream into incidents."""
        return "selfheal-incidents"


def seq_of(stream_id: str) -> int:
    """Return the journal `seq` of a stream id (``"1700000000000-3"``)."""
    ms, _, n = stream_id.partition("-")
    return (int(ms) << _SEQ_BITS) | min(int(n or 0), _SEQ_MASK)


def stream_id_of(seq: int) -> str:
    """Return the stream id of a journal `seq` (inverse of `seq_of`)."""
    return f"{seq >> _SEQ_BITS}-{seq & _SEQ_MASK}"
