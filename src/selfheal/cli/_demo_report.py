"""The demo's closing figures: what the users saw, how fast incidents healed, orders kept."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping
from typing import Any

from selfheal.cli._demo_load import LoadStats

__all__ = ["summary_lines"]


def _secs(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _spread(name: str, spread: Mapping[str, float] | None) -> str:
    if not spread:
        return f"{name}: none"
    return (
        f"{name}: p50 {_secs(spread['p50'])}, p95 {_secs(spread['p95'])}, "
        f"max {_secs(spread['max'])}"
    )


def summary_lines(
    *,
    seed: int,
    elapsed: float,
    load: LoadStats,
    figures: Mapping[str, Any],
    injected: list[tuple[float, str]],
    synthetic: Mapping[str, Mapping[str, Any]],
    recorded: Mapping[str, int],
    outbox_left: int | None,
) -> list[str]:
    """Return the lines printed when the demo ends.

    Args:
        seed: The run's seed (a run with it repeats the same users and faults).
        elapsed: Seconds the demo ran.
        load: What the users saw.
        figures: `Stories.figures`.
        injected: The faults chaos injected, as ``(timestamp, target)``.
        synthetic: The synthetic tester's ``get_status()``.
        recorded: Orders in the shop's database, by id, with how often each is there.
        outbox_left: Orders still queued in the outbox (None: not waited for).
    """
    lines = [f"\nDemo over after {elapsed:.0f} s (seed {seed}: run again to repeat it).", ""]
    if load.sent:
        available = load.availability or 0.0
        failed = ", ".join(f"{n} {why}" for why, n in sorted(load.failures.items())) or "none"
        p99 = statistics.quantiles(load.latencies, n=100)[98] if len(load.latencies) > 1 else 0
        lines += [
            f"  availability  {available:.2%} of {load.sent} user requests answered "
            f"(failed: {failed}); latency p99 {_secs(p99)}",
            f"                {load.degraded} product pages served with the popular-products "
            "fallback while recommendations were down",
        ]
    kinds = Counter(target for _, target in injected)
    chaos = ", ".join(f"{t} x{n}" for t, n in sorted(kinds.items())) or "none"
    lines += [
        f"  chaos         {len(injected)} fault(s) injected: {chaos}",
        f"  incidents     {figures['opened']} opened ({figures['from_chaos']} caused by chaos), "
        f"{figures['healed']} healed",
        "                " + _spread("time to detect", figures["ttd"]),
        "                " + _spread("time to recover", figures["ttr"]),
        "                " + _spread("restarted program serving again", figures["serving_again"]),
    ]
    for name, status in sorted(synthetic.items()):
        runs = int(status.get("success_count", 0)) + int(status.get("failure_count", 0))
        lines.append(
            f"  synthetic     {name}: {status.get('success_count', 0)}/{runs} runs passed "
            f"({status.get('passed_after_retry_count', 0)} after a retry)"
        )
    accepted = load.accepted_orders
    lost = len(accepted - recorded.keys())
    doubled = sum(n - 1 for n in recorded.values() if n > 1)
    queued = "" if outbox_left is None else f", {outbox_left} still queued in the outbox"
    lines += [
        f"  orders        {len(accepted)} accepted, {lost} lost, {doubled} recorded twice{queued}",
        "",
    ]
    return lines
