"""Which processes a name given to a control command stands for (supervisorctl's forms).

``all``; a program (``web``: all its processes); one process (``worker:1``); every process of
a program or of a group (``worker:*``, ``backend:*``); a program of a group
(``backend:web``). Several names add up, each process once, in the order given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from selfheal.supervisor._child import Child, children_of
from selfheal.supervisor._spec import ProgramSpec

__all__ = ["ALL", "select"]

#: The name that stands for every process.
ALL = "all"


def select(
    names: Iterable[str], specs: Mapping[str, ProgramSpec], children: Mapping[str, Child]
) -> list[Child]:
    """Return the processes `names` stand for.

    Args:
        names: As typed after ``selfheal start``.
        specs: The configured programs, by name.
        children: Every process, by instance name, in config order.

    Returns:
        Each process once, in the order of `names` (then config order within a name).

    Raises:
        KeyError: For a name that matches nothing; the message lists what would.
    """
    out: dict[str, Child] = {}
    for name in names:
        for child in _one(name, specs, children):
            out.setdefault(child.name, child)
    return list(out.values())


def _one(name: str, specs: Mapping[str, ProgramSpec], children: Mapping[str, Child]) -> list[Child]:
    if name == ALL:
        return list(children.values())
    if name in children:
        return [children[name]]
    if name in specs and (found := children_of(children, name)):
        return found
    prefix, sep, rest = name.rpartition(":")
    if sep and prefix:
        members = [c for c in children.values() if c.spec.group == prefix]
        if rest == "*":
            found = children_of(children, prefix) if prefix in specs else members
        else:
            found = [c for c in members if c.spec.name == rest]
        if found:
            return found
    raise KeyError(_unknown(name, specs, children))


def _unknown(name: str, specs: Mapping[str, ProgramSpec], children: Mapping[str, Child]) -> str:
    known = []
    for program, spec in specs.items():
        numbers = [c.number for c in children_of(children, program)]
        several = spec.numprocs > 1 and numbers
        known.append(
            f"{program} ({program}:{min(numbers)}..{max(numbers)})" if several else program
        )
    groups = sorted({s.group for s in specs.values() if s.group})
    valid = ", ".join(known) or "none configured"
    more = f"; groups: {', '.join(f'{g}:*' for g in groups)}" if groups else ""
    return f"no program or process {name!r}; known: {valid}{more} (or all)"
