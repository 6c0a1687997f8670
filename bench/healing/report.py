"""From one run's records to its figures, and the side-by-side table.

Time to recover (TTR), per fault, from the moment the bench injected it:

- ``web-kill``, ``web-hang``: until the first successful user request answered by the web
  process that took the slot after the fault (``X-Shop-Pid``). A hung process that is never
  replaced has not recovered (under the plain loop it stays hung).
- ``worker-kill``: until a new worker process holds the slot (seen in /proc every 10 ms).
- ``recs-stop``, ``recs-kill``: until the first successful product page, sent after the
  fault, whose recommendations came from the service again (not the fallback).
- ``db-down``: until the first checkout, sent after the fault, answered 201 (written to the
  database, not queued). The outage itself lasts the schedule's 2.5-4 s, so this TTR is at
  least that long in both runs.

A fault counts as recovered only if that happens before the next fault on the same target
(or the end of the load). It counts as detected when the shop reacted by itself: a new
process in the slot, or, for dependencies, answers from the fallback (degraded
recommendations, checkouts queued with 202) while it lasted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from healing.faults import Injected
from healing.load import Result

KINDS = ("web-kill", "web-hang", "worker-kill", "recs-stop", "recs-kill", "db-down")
TARGETS = {
    "availability": 0.9995,
    "crash_p50": 0.5,  # web-kill TTR p50, seconds
    "hang_p50": 2.0,  # web-hang TTR p50, seconds
}


@dataclass
class Figures:
    """One run's figures."""

    name: str
    requests: int = 0
    ok: int = 0
    p50: float = 0.0
    p99: float = 0.0
    failed_by_kind: dict[str, int] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)
    detected: dict[str, int] = field(default_factory=dict)
    ttr: dict[str, list[float]] = field(default_factory=dict)
    replaced: dict[str, list[float]] = field(default_factory=dict)  # fault -> new process runs
    checkouts_ok: int = 0
    queued: int = 0
    lost: int = 0
    duplicated: int = 0
    extra: int = 0  # recorded although the user got an error (not a loss, not a duplicate)
    outbox_left: int = 0
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-min load average, start and end
    unplanned: int = 0  # processes replaced with no fault on their slot in the 6 s before
    notes: list[str] = field(default_factory=list)

    @property
    def availability(self) -> float:
        """Share of user requests that succeeded."""
        return self.ok / self.requests if self.requests else 0.0


def quantile(values: list[float], q: float) -> float:
    """Return the `q` quantile (nearest rank) of `values` (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def figures(
    name: str,
    results: list[Result],
    injected: list[Injected],
    history: dict[str, list[tuple[float, int]]],
    load_end: float,
) -> Figures:
    """Return the figures of one run (checkout accounting is filled in by the caller)."""
    f = Figures(name, requests=len(results), ok=sum(r.ok for r in results))
    latencies = [r.latency for r in results]
    f.p50, f.p99 = quantile(latencies, 0.50), quantile(latencies, 0.99)
    for r in results:
        if not r.ok:
            f.failed_by_kind[r.request.kind] = f.failed_by_kind.get(r.request.kind, 0) + 1
    f.checkouts_ok = sum(r.ok for r in results if r.request.kind == "checkout")
    f.queued = sum(r.status == 202 for r in results if r.ok)
    by_end = sorted((r for r in results if r.ok), key=lambda r: r.end)
    for slot, changes in history.items():
        for t, _pid in changes[1:]:
            if not any(i.fault.target == slot and t - 6 < i.t <= t for i in injected):
                f.unplanned += 1
    for i, inj in enumerate(injected):
        kind = inj.fault.kind
        if not inj.pid and kind != "db-down":
            f.notes.append(f"{inj.t:.2f}s {kind}: no process held {inj.fault.target}; not injected")
            continue
        f.injected[kind] = f.injected.get(kind, 0) + 1
        f.ttr.setdefault(kind, [])
        f.detected.setdefault(kind, 0)
        deadline = next(
            (n.t for n in injected[i + 1 :] if n.fault.target == inj.fault.target), load_end
        )
        replaced = [
            (t, pid)
            for t, pid in history.get(inj.fault.target, [])
            if inj.t < t < deadline and pid != inj.pid
        ]
        done, reacted = _recovery(inj, by_end, replaced, deadline)
        if replaced and kind in ("web-kill", "web-hang"):
            f.replaced.setdefault(kind, []).append(replaced[0][0] - inj.t)
        f.detected[kind] += reacted
        if done is not None:
            f.ttr[kind].append(done - inj.t)
    return f


def _recovery(
    inj: Injected, by_end: list[Result], replaced: list[tuple[float, int]], deadline: float
) -> tuple[float | None, bool]:
    """Return (when it recovered or None, whether the shop reacted by itself).

    `replaced` lists (when, pid) of the processes that took the fault's slot after it.
    """
    kind, t0 = inj.fault.kind, inj.t
    if kind in ("web-kill", "web-hang"):
        if not replaced:
            return None, False
        pid = replaced[0][1]
        first = next((r.end for r in by_end if r.pid == pid and r.end > t0), None)
        return (first if first is not None and first < deadline else None), True
    if kind == "worker-kill":
        return (replaced[0][0] if replaced else None), bool(replaced)
    if kind.startswith("recs-"):
        pages = [r for r in by_end if r.request.kind == "product" and r.start > t0]
        first = next((r.end for r in pages if not r.degraded), None)
        fell_back = any(r.degraded and r.end < (first or deadline) for r in pages)
        done = first if first is not None and first < deadline else None
        return done, bool(replaced) or fell_back
    # db-down
    checkouts = [r for r in by_end if r.request.kind == "checkout" and r.start > t0]
    first = next((r.end for r in checkouts if r.status == 201), None)
    queued = any(r.status == 202 and r.end < (first or deadline) for r in checkouts)
    return (first if first is not None and first < deadline else None), queued


def _ms(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _ttr_cell(f: Figures, kind: str) -> str:
    values, n = f.ttr.get(kind, []), f.injected.get(kind, 0)
    if not n:
        return "-"
    cell = f"{_ms(quantile(values, 0.5))} / {_ms(quantile(values, 0.95))}"
    if len(values) < n:
        cell += f" ({n - len(values)} of {n} never)"
    return cell


def table(runs: list[Figures]) -> str:
    """Return the side-by-side table, with the targets met or not for the last run."""
    heal = runs[-1]
    rows: list[tuple[str, list[str], str]] = []
    avail_ok = heal.availability >= TARGETS["availability"]
    rows.append(
        (
            "machine load average (start, end)",
            [f"{f.load[0]:.1f}, {f.load[1]:.1f}" for f in runs],
            "",
        )
    )
    rows.append(("user requests", [f"{f.requests}" for f in runs], ""))
    rows.append(
        (
            "availability",
            [f"{100 * f.availability:.3f}% ({f.requests - f.ok} failed)" for f in runs],
            f">= 99.95%: {'met' if avail_ok else 'NOT met'}",
        )
    )
    rows.append(("latency p50 / p99", [f"{_ms(f.p50)} / {_ms(f.p99)}" for f in runs], ""))
    rows.append(
        (
            "incidents injected / detected",
            [f"{sum(f.injected.values())} / {sum(f.detected.values())}" for f in runs],
            "",
        )
    )
    rows.append(("restarts without a fault", [f"{f.unplanned}" for f in runs], ""))
    for kind in KINDS:
        target = ""
        if kind in ("web-kill", "web-hang"):
            limit = TARGETS["crash_p50" if kind == "web-kill" else "hang_p50"]
            met = _ttr_p50(heal, kind) < limit
            target = f"p50 < {_ms(limit)}: {'met' if met else 'NOT met'}"
        label = f"TTR {kind} p50 / p95 (n={heal.injected.get(kind, 0)})"
        rows.append((label, [_ttr_cell(f, kind) for f in runs], target))
        if kind in ("web-kill", "web-hang"):
            cells = [
                f"{_ms(quantile(f.replaced.get(kind, []), 0.5))} / "
                f"{_ms(quantile(f.replaced.get(kind, []), 0.95))}"
                for f in runs
            ]
            rows.append(("  of which: new process started", cells, ""))
    rows.append(
        (
            "checkouts accepted (queued)",
            [f"{f.checkouts_ok} ({f.queued})" for f in runs],
            "",
        )
    )
    clean = heal.lost == 0 and heal.duplicated == 0
    rows.append(
        (
            "checkouts lost / duplicated",
            [f"{f.lost} / {f.duplicated}" for f in runs],
            f"0 / 0: {'met' if clean else 'NOT met'}",
        )
    )
    rows.append(
        (
            "failed requests by kind",
            [
                ", ".join(f"{k} {v}" for k, v in sorted(f.failed_by_kind.items())) or "-"
                for f in runs
            ],
            "",
        )
    )
    head = ["", *(f.name for f in runs), f"target ({heal.name})"]
    body = [[label, *cells, target] for label, cells, target in rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in body
    ]
    return "\n".join(lines)


def _ttr_p50(f: Figures, kind: str) -> float:
    """Return the TTR p50 of `kind`, a fault never recovered counting as infinitely long."""
    values, n = f.ttr.get(kind, []), f.injected.get(kind, 0)
    return quantile(values + [math.inf] * (n - len(values)), 0.5) if n else 0.0


def targets_met(f: Figures) -> bool:
    """Return whether the run meets every target."""
    return (
        f.availability >= TARGETS["availability"]
        and _ttr_p50(f, "web-kill") < TARGETS["crash_p50"]
        and _ttr_p50(f, "web-hang") < TARGETS["hang_p50"]
        and f.lost == 0
        and f.duplicated == 0
    )
