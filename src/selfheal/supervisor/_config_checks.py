"""Checks of ``[programs]`` that span programs, and of what the daemon's user may do.

`check_programs` (unknown or cyclic ``depends_on``, groups that disagree on their strategy,
two processes writing one log file) raises a pydantic `ValidationError` whose locations name
the offending key; `check_privileges` lists what only root could do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from selfheal._bounds import MAX_PROCESSES
from selfheal.supervisor._logs import log_path
from selfheal.supervisor._proc import SwitchUserError, resolve_user
from selfheal.supervisor._spec import ProgramSpec

if TYPE_CHECKING:
    from selfheal.supervisor.config import ProgramConfig

__all__ = ["check_privileges", "check_programs"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


def check_programs(programs: Mapping[str, ProgramConfig]) -> None:
    """Check what no single program can: names, dependencies and groups.

    Args:
        programs: The ``[programs]`` table.

    Raises:
        ValidationError: Located at ``programs.NAME.KEY`` for each problem.
    """
    errors: list[InitErrorDetails] = []

    def err(loc: tuple[str | int, ...], value: object, message: str) -> None:
        errors.append(
            InitErrorDetails(
                type=PydanticCustomError("program_graph", message),
                loc=("programs", *loc),
                input=value,
            )
        )

    names = list(programs)
    for name, prog in programs.items():
        if not _NAME.match(name):
            err((name,), name, "a program name uses only letters, digits, '_' and '-'")
        for i, dep in enumerate(prog.depends_on):
            if dep == name:
                err((name, "depends_on", i), dep, "a program cannot depend on itself")
            elif dep not in programs:
                valid = ", ".join(repr(n) for n in names if n != name) or "no other programs"
                err((name, "depends_on", i), dep, f"unknown program {dep!r}; valid: {valid}")
    _check_processes(programs, err)
    graph = {n: [d for d in p.depends_on if d in programs] for n, p in programs.items()}
    cycle = _find_cycle(graph)
    if cycle:
        err((cycle[0], "depends_on"), cycle, f"dependency cycle: {' -> '.join(cycle)}")
    strategies: dict[str, tuple[str, str]] = {}
    for name, prog in programs.items():
        if prog.group is None:
            if prog.strategy != "one_for_one":
                err((name, "strategy"), prog.strategy, "a strategy needs a 'group'")
            continue
        first = strategies.setdefault(prog.group, (name, prog.strategy))
        if first[1] != prog.strategy:
            err(
                (name, "strategy"),
                prog.strategy,
                f"group {prog.group!r} already has strategy {first[1]!r} (from {first[0]!r}); "
                "every member must use the same one",
            )
    if errors:
        raise ValidationError.from_exception_data("programs", errors)


def _check_processes(
    programs: Mapping[str, ProgramConfig], err: Callable[[tuple[str | int, ...], object, str], None]
) -> None:
    """Check that the processes of all programs fit in a daemon and in distinct log files."""
    total = sum(p.numprocs for p in programs.values())
    if total > MAX_PROCESSES:
        err((), total, f"{total} processes in all; a daemon runs at most {MAX_PROCESSES}")
        return
    # Program api_1 and process api:1 of api would both write api_1.log.
    owner: dict[str, str] = {}
    for name, prog in programs.items():
        spec = ProgramSpec(
            name=name, command=("",), numprocs=prog.numprocs, numprocs_start=prog.numprocs_start
        )
        for instance in spec.instance_names():
            file = log_path("", instance).name
            other = owner.setdefault(file, instance)
            if other != instance:
                err(
                    (name,),
                    name,
                    f"process {instance} and process {other} would both write {file}; "
                    "rename one of the programs",
                )
                break


def check_privileges(programs: Iterable[ProgramSpec]) -> list[str]:
    """Return why this process could not run some programs as their ``user``.

    Only root can switch users; a program whose user is the current one needs nothing.

    Returns:
        One line per program that cannot run (``programs.NAME.user: ...``); empty if all can.
    """
    problems = []
    for spec in programs:
        if spec.user is None:
            continue
        try:
            problem = resolve_user(spec.user).problem()
        except SwitchUserError as exc:
            problem = str(exc)
        if problem is not None:
            problems.append(f"programs.{spec.name}.user: {problem}")
    return problems


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str]:
    # Iterative depth-first search: a chain of a thousand programs must not hit the
    # interpreter's recursion limit.
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    for root in graph:
        if color[root] != white:
            continue
        color[root] = grey
        path = [root]
        todo = [iter(graph[root])]
        while todo:
            dep = next(todo[-1], None)
            if dep is None:
                color[path.pop()] = black
                todo.pop()
            elif color[dep] == grey:
                return [*path[path.index(dep) :], dep]
            elif color[dep] == white:
                color[dep] = grey
                path.append(dep)
                todo.append(iter(graph[dep]))
    return []
