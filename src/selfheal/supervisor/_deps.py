"""Dependencies, priorities and groups: who waits for whom, what stops together, in what order.

Questions about the children as they are now, with no I/O: the driver asks them and acts on
the answers. A program ``depends_on`` others when every process of those must be RUNNING
(ready) before it starts, and is stopped with them (systemd's ``BindsTo=``); a program waits
for the programs of a lower ``priority`` that are being started (supervisord's start order);
programs of one ``group`` restart together by its ``strategy``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from selfheal.supervisor._child import Child, children_of
from selfheal.supervisor._spec import ProgramSpec
from selfheal.supervisor._states import ACTIVE, ProcessState

__all__ = [
    "blockers",
    "dependents",
    "deps_coming",
    "group_to_restart",
    "levels",
    "stop_order",
    "unready_deps",
]


def unready_deps(child: Child, children: Mapping[str, Child]) -> list[str]:
    """Return the dependencies of `child` that have a process not RUNNING."""
    return [
        dep
        for dep in child.spec.depends_on
        if any(c.life.state is not ProcessState.RUNNING for c in children_of(children, dep))
    ]


def blockers(child: Child, children: Mapping[str, Child]) -> list[str]:
    """Return what `child` waits for before it starts.

    Its unready dependencies, then the programs of a lower priority being started (STARTING).
    """
    waits = unready_deps(child, children)
    prio = child.spec.priority
    for c in children.values():
        name = c.spec.name
        if c.spec.priority < prio and c.life.state is ProcessState.STARTING and name not in waits:
            waits.append(name)
    return waits


def dependents(programs: Iterable[str], children: Mapping[str, Child]) -> list[Child]:
    """Return the instances of every program that depends on `programs`, directly or not.

    In the children's order; the programs themselves are not included.
    """
    bound = set(programs)
    found: list[str] = []
    grew = True
    while grew:
        grew = False
        for child in children.values():
            name = child.spec.name
            if name not in bound and any(d in bound for d in child.spec.depends_on):
                bound.add(name)
                found.append(name)
                grew = True
    return [c for c in children.values() if c.spec.name in found]


def deps_coming(child: Child, children: Mapping[str, Child]) -> bool:
    """Whether every unready dependency of `child` is on its way to being ready.

    A dependency that waits itself is on its way when its own dependencies are, all the way
    down; a cycle of waiting programs is not. Walked with a stack, not recursion: a chain of
    a thousand programs must not hit the interpreter's recursion limit.
    """
    coming: set[str] = set()  # waiting children already found on their way
    path = [child.name]
    todo = [iter(_unready(child, children))]
    while todo:
        d = next(todo[-1], None)
        if d is None:
            coming.add(path.pop())
            todo.pop()
            continue
        life = d.life
        if life.state in (ProcessState.STARTING, ProcessState.BACKOFF, ProcessState.RUNNING):
            continue
        if life.state is ProcessState.STOPPING and life.then_start:
            continue
        if d.waiting and d.name not in path:
            if d.name not in coming:
                path.append(d.name)
                todo.append(iter(_unready(d, children)))
            continue
        return False
    return True


def _unready(child: Child, children: Mapping[str, Child]) -> Iterator[Child]:
    for dep in unready_deps(child, children):
        yield from children_of(children, dep)


def levels(specs: Mapping[str, ProgramSpec], children: Mapping[str, Child]) -> list[list[Child]]:
    """Group `children` by dependency depth: level 0 depends on nothing.

    Args:
        specs: The configured programs, by name (a dependency's own dependencies).
        children: The instances to group, in config order.

    Returns:
        The levels, shallowest first; a cycle is cut where it closes.
    """
    depth: dict[str, int] = {}

    def deps(name: str, path: list[str]) -> Iterator[str]:
        spec = specs.get(name)
        return iter([d for d in (spec.depends_on if spec else ()) if d not in path])

    def depth_of(root: str) -> int:
        # Iterative (a long chain must not recurse): each frame is a program, its remaining
        # dependencies and the deepest of those seen so far.
        path: list[str] = []
        frames: list[tuple[str, Iterator[str], list[int]]] = []
        if root not in depth:
            frames.append((root, deps(root, path), [-1]))
            path.append(root)
        while frames:
            name, todo, deepest = frames[-1]
            dep = next(todo, None)
            if dep is None:
                depth[name] = 1 + deepest[0]
                frames.pop()
                path.pop()
                if frames:
                    frames[-1][2][0] = max(frames[-1][2][0], depth[name])
            elif dep in depth:
                deepest[0] = max(deepest[0], depth[dep])
            else:
                frames.append((dep, deps(dep, path), [-1]))
                path.append(dep)
        return depth[root]

    by_level: dict[int, list[Child]] = {}
    for child in children.values():
        by_level.setdefault(depth_of(child.spec.name), []).append(child)
    return [by_level[k] for k in sorted(by_level)]


def stop_order(
    specs: Mapping[str, ProgramSpec], children: Mapping[str, Child]
) -> list[list[Child]]:
    """Return `children` in batches to stop one after the other.

    Dependents before their dependencies; among programs of one dependency depth, the higher
    ``priority`` numbers first (supervisord's shutdown order). The children of a batch stop
    together.
    """
    batches: dict[tuple[int, int], list[Child]] = {}
    for depth, level in enumerate(levels(specs, children)):
        for child in level:
            batches.setdefault((depth, child.spec.priority), []).append(child)
    return [batches[k] for k in sorted(batches, reverse=True)]


def group_to_restart(failed: Child, children: Mapping[str, Child]) -> list[Child]:
    """Return the running members of `failed`'s group that its strategy restarts with it."""
    spec = failed.spec
    if spec.group is None or spec.strategy == "one_for_one":
        return []
    members = [c for c in children.values() if c.spec.group == spec.group]
    if spec.strategy == "rest_for_one":
        members = members[members.index(failed) + 1 :]
    return [c for c in members if c is not failed and c.life.state in ACTIVE]
