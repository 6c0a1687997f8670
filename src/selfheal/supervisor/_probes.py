"""Probes and deadlines: how the driver learns that a running program is ready or unwell.

Every wait here is on the supervisor's clock (`selfheal._deadline.timeout_after` bounds each
probe run and the start deadline), so tests drive them with `selfheal.testing.FakeClock`. The
functions decide and return; the driver turns their answers into lifecycle triggers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from selfheal._clock import Clock
from selfheal._deadline import timeout_after
from selfheal.supervisor._spec import ProbeSpec

__all__ = ["build_check", "heartbeat_missed", "probe_once", "ready_within", "watch_probe"]


def build_check(probe: ProbeSpec, cwd: str | None) -> Callable[[], Awaitable[Any]]:
    """Return the check `probe` describes: an HTTP GET, a TCP connect or a command.

    Args:
        probe: What to check.
        cwd: Where a command probe runs (the program's working directory).

    Returns:
        An async callable that raises when the check fails.
    """
    from selfheal.health.checks import command_check, http_check, tcp_check

    if probe.kind == "http":
        return http_check(probe.target)
    if probe.kind == "tcp":
        host, _, port = probe.target.rpartition(":")
        return tcp_check(host.strip("[]"), int(port))
    return command_check(probe.argv, cwd=cwd)


async def probe_once(
    check: Callable[[], Awaitable[Any]], limit: float, clock: Clock, *, name: str
) -> str:
    """Run `check` once, bounded by `limit` seconds on `clock`.

    Args:
        check: From `build_check`.
        limit: Seconds before the run counts as failed (the probe's ``timeout``).
        clock: The supervisor's clock.
        name: What is probed, for the timeout error.

    Returns:
        "" when it passed, else why it failed.
    """
    try:
        async with timeout_after(limit, clock, name=name):
            await check()
    except TimeoutError:
        return f"timed out after {limit:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure of the check is a failure
        return f"{type(exc).__name__}: {exc}"
    return ""


async def watch_probe(probe: ProbeSpec, cwd: str | None, clock: Clock, *, liveness: bool) -> str:
    """Run `probe` every ``interval`` seconds until it has something to say.

    A readiness probe returns at its first pass; a liveness probe returns at its
    ``failure_threshold``-th failure in a row (a pass resets the count).

    Args:
        probe: The probe.
        cwd: The program's working directory.
        clock: The supervisor's clock (delay, interval, timeout).
        liveness: Which kind of probe it is.

    Returns:
        "" for a readiness probe; the reason to restart for a liveness probe.
    """
    check = build_check(probe, cwd)
    kind = "liveness" if liveness else "readiness"
    if probe.initial_delay > 0:
        await clock.asleep(probe.initial_delay)
    failures = 0
    while True:
        error = await probe_once(check, probe.timeout, clock, name=kind)
        if not liveness and not error:
            return ""
        failures = failures + 1 if error else 0
        if liveness and failures >= probe.failure_threshold:
            return f"liveness probe failed {failures} times: {error}"
        await clock.asleep(probe.interval)


async def ready_within(limit: float, clock: Clock, ready: Awaitable[None]) -> bool:
    """Wait for `ready`, at most `limit` seconds on `clock` (systemd's TimeoutStartSec).

    Returns:
        Whether it came in time.
    """
    try:
        async with timeout_after(limit, clock, name="start"):
            await ready
    except TimeoutError:
        return False
    return True


async def heartbeat_missed(limit: float, clock: Clock, last_beat: Callable[[], float]) -> None:
    """Return once `limit` seconds passed on `clock` without a heartbeat.

    One timer per `limit`, not one per beat: when it fires early (a beat came meanwhile) it is
    set again for what is left after the last beat.

    Args:
        limit: ``watchdog_sec``.
        clock: The supervisor's clock.
        last_beat: The clock's monotonic time of the last ``WATCHDOG=1``.
    """
    while True:
        left = last_beat() + limit - clock.monotonic()
        if left <= 0:
            return
        await clock.asleep(left)
