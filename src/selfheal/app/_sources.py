"""One `HealthSource` over several: the health monitor's checks, then the programs.

A recovery rule's ``verify = { checks = [...] }`` and a chaos steady-state check name health
checks and supervised programs alike; this asks each source in turn for a name it knows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from selfheal.interfaces import HealthSource, HealthStatus

__all__ = ["HealthSources"]


class HealthSources:
    """A `HealthSource` that answers each name from the first source that knows it.

    A source knows a name when its `names` function lists it; a source given without one
    (the programs, through `ProgramHealth`) is asked last and answers UNKNOWN (in
    `status`) or raises `KeyError` (in `check_now`) for names it does not know.

    Args:
        sources: ``(source, names)`` pairs in the order they are asked; `names` returns
            the names the source knows, or is None for a source asked as a last resort.
    """

    def __init__(
        self, sources: Iterable[tuple[HealthSource, Callable[[], Iterable[str]] | None]]
    ) -> None:
        self._sources = tuple(sources)

    def __repr__(self) -> str:
        return f"HealthSources({[s for s, _ in self._sources]!r})"

    def add(self, source: HealthSource, names: Callable[[], Iterable[str]]) -> None:
        """Ask `source` for the names `names` lists, after the sources given so far."""
        self._sources = (*self._sources, (source, names))

    def _source(self, name: str) -> HealthSource | None:
        fallback = None
        for source, names in self._sources:
            if names is None:
                fallback = fallback or source
            elif name in names():
                return source
        return fallback

    def status(self, name: str) -> HealthStatus:
        """Return the latest status of `name`; UNKNOWN when no source knows it."""
        source = self._source(name)
        return source.status(name) if source is not None else HealthStatus.UNKNOWN

    async def check_now(self, name: str) -> HealthStatus:
        """Run check `name` now and return its status.

        Raises:
            KeyError: When no source knows `name` (verification reports it as missing).
        """
        source = self._source(name)
        if source is None:
            raise KeyError(name)
        status = await source.check_now(name)
        if status is HealthStatus.UNKNOWN:
            # ProgramHealth's answer for a name that is no program: say "no such check".
            raise KeyError(name)
        return status
