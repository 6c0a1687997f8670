"""Dependencies and groups: who waits for whom, the order of shutdown, who restarts together.

Questions about the children as they are now, with no I/O: the driver asks them and acts on
the answers. A program ``depends_on`` others when every process of those must be RUNNING
(ready) before it starts; programs of one ``group`` restart together by its ``strategy``.
"""

from __future__ import annotations

from collections.abc import Mapping

from selfheal.supervisor._child import Child, children_of
from selfheal.supervisor._spec import ProgramSpec
from selfheal.supervisor._states import ACTIVE, ProcessState

__all__ = ["deps_coming", "group_to_restart", "levels", "unready_deps"]


def unready_deps(child: Child, children: Mapping[str, Child]) -> list[str]:
    """Return the dependencies of `child` that have a process not RUNNING."""
    return [
        dep
        for dep in child.spec.depends_on
        if any(c.life.state is not ProcessState.RUNNING for c in children_of(children, dep))
    ]


def deps_coming(
    child: Child, children: Mapping[str, Child], seen: frozenset[str] = frozenset()
) -> bool:
    """Whether every unready dependency of `child` is on its way to being ready."""
    for dep in unready_deps(child, children):
        for d in children_of(children, dep):
            life = d.life
            if life.state in (ProcessState.STARTING, ProcessState.BACKOFF):
                continue
            if life.state is ProcessState.STOPPING and life.then_start:
                continue
            if d.waiting and d.name not in seen and deps_coming(d, children, seen | {child.name}):
                continue
            if life.state is ProcessState.RUNNING:
                continue
            return False
    return True


def levels(specs: Mapping[str, ProgramSpec], children: Mapping[str, Child]) -> list[list[Child]]:
    """Group `children` by dependency depth: level 0 depends on nothing.

    Args:
        specs: The configured programs, by name (a dependency's own dependencies).
        children: The instances to group, in config order.

    Returns:
        The levels, shallowest first; a cycle is cut where it closes.
    """
    depth: dict[str, int] = {}

    def depth_of(name: str, seen: frozenset[str]) -> int:
        if name not in depth:
            spec = specs.get(name)
            deps = [d for d in (spec.depends_on if spec else ()) if d not in seen]
            depth[name] = 1 + max((depth_of(d, seen | {name}) for d in deps), default=-1)
        return depth[name]

    by_level: dict[int, list[Child]] = {}
    for child in children.values():
        by_level.setdefault(depth_of(child.spec.name, frozenset()), []).append(child)
    return [by_level[k] for k in sorted(by_level)]


def group_to_restart(failed: Child, children: Mapping[str, Child]) -> list[Child]:
    """Return the running members of `failed`'s group that its strategy restarts with it."""
    spec = failed.spec
    if spec.group is None or spec.strategy == "one_for_one":
        return []
    members = [c for c in children.values() if c.spec.group == spec.group]
    if spec.strategy == "rest_for_one":
        members = members[members.index(failed) + 1 :]
    return [c for c in members if c is not failed and c.life.state in ACTIVE]
