"""One try of a recovery step: the action within its deadline, then its verification."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from selfheal._deadline import timeout_after
from selfheal._redact import redact, redact_value
from selfheal.interfaces import HealthStatus
from selfheal.recovery._actions import Action, ActionContext
from selfheal.recovery._rules import Verify
from selfheal.recovery._templates import render

__all__ = ["try_step"]

logger = logging.getLogger("selfheal.recovery")

# The status recorded for a verification check name the health source does not know.
_MISSING_CHECK = "missing"


async def try_step(
    action: Action, ctx: ActionContext, limit: float, verify: Verify | None
) -> tuple[bool, dict[str, Any]]:
    """Run `action` within `limit` seconds, then wait for `verify` (if any) to pass.

    Nothing here raises: an action's failure, timeout or failed verification is data.

    Args:
        action: The step's action.
        ctx: What it may use; its clock times the deadline, its health source verifies.
        limit: Seconds the action may take.
        verify: Checks that must pass afterwards, or None to trust the action.

    Returns:
        Whether the try succeeded, and what the journal records of it (the action, its
        result, the checks' statuses, the error), secrets redacted.
    """
    detail: dict[str, Any] = {"action": action.describe()}
    try:
        async with timeout_after(limit, ctx.clock, name=action.kind):
            result = await action.run(ctx)
    except TimeoutError:
        detail["error"] = f"{action.kind} timed out after {limit:g}s"
        return False, detail
    except Exception as exc:  # noqa: BLE001 - an action's failure is data, not a crash
        # Recorded in events and the journal, which does not scan strings: an exception
        # or a command's output may hold a DSN or a token.
        detail["error"] = redact(f"{action.kind} failed: {type(exc).__name__}: {exc}")
        return False, detail
    # Actions return a mapping or None; anything else (a user's action returning True)
    # is not an error, but not a record either.
    if isinstance(result, Mapping) and result:
        detail["result"] = redact_value(dict(result))
    if verify is None:
        return True, detail
    ok, checks = await _verify(verify, ctx)
    detail["checks"] = checks
    if not ok:
        bad = sorted(
            name
            for name, status in checks.items()
            if status not in (HealthStatus.PASS, _MISSING_CHECK)
        )
        missing = sorted(name for name, status in checks.items() if status == _MISSING_CHECK)
        problems = []
        if missing:
            problems.append(f"no such health check: {', '.join(missing)}")
        if bad:
            problems.append(f"{', '.join(bad)} not passing within {verify.within:g}s")
        detail["error"] = f"verification failed: {'; '.join(problems)}"
    return ok, detail


async def _verify(verify: Verify, ctx: ActionContext) -> tuple[bool, dict[str, str]]:
    health, clock = ctx.health, ctx.clock
    assert health is not None  # the engine refuses rules that verify without one
    # Names are templates like actions' targets, so one rule can verify `{subject}`.
    names = [render(name, ctx.fields) for name in verify.checks]
    deadline = clock.monotonic() + verify.within
    while True:
        statuses: dict[str, str] = {}
        for name in names:
            remaining = max(deadline - clock.monotonic(), verify.interval)
            try:
                async with timeout_after(remaining, clock, name=name):
                    status = await health.check_now(name)
            except asyncio.CancelledError:
                raise
            except KeyError:
                # A template that rendered to no check: say so, not "not passing".
                statuses[name] = _MISSING_CHECK
                continue
            except Exception as exc:  # noqa: BLE001 - a broken check is a failing check
                logger.debug("check %s raised during verification: %r", name, exc)
                status = HealthStatus.FAIL
            statuses[name] = str(status)
        if all(s == HealthStatus.PASS for s in statuses.values()):
            return True, statuses
        now = clock.monotonic()
        if now >= deadline:
            return False, statuses
        await clock.asleep(min(verify.interval, deadline - now))
