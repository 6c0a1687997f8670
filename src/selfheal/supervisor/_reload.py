"""What a reload changes: programs added, removed, changed, left alone, or only scaled.

A pure comparison of the old and new specs; the `Supervisor` carries it out. A program whose
only change is ``numprocs`` is *scaled*: its processes that remain keep running, the new ones
start, the extra ones stop (unless something in it refers to ``%(numprocs)d``, whose value
every process would then see change: it is restarted like any changed program).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from selfheal.supervisor._spec import ProgramSpec

__all__ = ["ReloadResult", "diff_programs", "only_scaled", "preview_reload"]


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What `Supervisor.apply` did, by program name (and, for scaled programs, by process)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    scaled: tuple[str, ...] = ()
    processes_added: tuple[str, ...] = ()
    processes_removed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        """Return a JSON-ready dict."""
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
            "unchanged": list(self.unchanged),
            "scaled": list(self.scaled),
            "processes_added": list(self.processes_added),
            "processes_removed": list(self.processes_removed),
        }


def only_scaled(old: ProgramSpec, new: ProgramSpec) -> bool:
    """Whether `new` differs from `old` in ``numprocs`` alone (nothing refers to it)."""
    if old.numprocs == new.numprocs or replace(old, numprocs=new.numprocs) != new:
        return False
    fields = [*new.command, *(v for _, v in new.env), new.cwd or ""]
    for probe in (new.liveness, new.readiness):
        if probe is not None:
            fields += [probe.target, *probe.argv]
    return not any("%(numprocs)" in f for f in fields)


def diff_programs(
    old: Mapping[str, ProgramSpec], new: Mapping[str, ProgramSpec]
) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """Compare two configs.

    Returns:
        added, removed, changed, unchanged and scaled program names, each in config order
        (the new config's, the old one's for removed).
    """
    removed = [n for n in old if n not in new]
    added = [n for n in new if n not in old]
    scaled = [n for n in new if n in old and only_scaled(old[n], new[n])]
    changed = [n for n in new if n in old and old[n] != new[n] and n not in scaled]
    unchanged = [n for n in new if n in old and old[n] == new[n]]
    return added, removed, changed, unchanged, scaled


def preview_reload(
    current: Mapping[str, ProgramSpec], programs: Iterable[ProgramSpec]
) -> ReloadResult:
    """What `Supervisor.apply` would do with `programs`, touching nothing (a dry run).

    Args:
        current: The running specs by program name.
        programs: The new complete list.
    """
    new = {p.name: p for p in programs}
    added, removed, changed, unchanged, scaled = diff_programs(current, new)
    born: list[str] = []
    gone: list[str] = []
    for name in scaled:
        # By process number, as `Supervisor.apply` keeps them ("web" and "web:0" are one).
        before = {num: cname for cname, num in current[name].instances()}
        after = {num: cname for cname, num in new[name].instances()}
        born += [cname for num, cname in after.items() if num not in before]
        gone += [cname for num, cname in before.items() if num not in after]
    return ReloadResult(
        tuple(added),
        tuple(removed),
        tuple(changed),
        tuple(unchanged),
        tuple(scaled),
        tuple(born),
        tuple(gone),
    )
