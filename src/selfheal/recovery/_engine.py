"""The recovery engine: rules turn failure events into actions, verified and escalated.

The decisions (dedup, cooldown, flapping, the remediation breaker, the rate limit) are made by
the `Governor` on the event loop's thread, in the order events arrive; this module only runs
the steps (`selfheal.recovery._steps`), and publishes what happened.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from selfheal._calls import checked_keywords
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._redact import redact
from selfheal._tasks import Tasks
from selfheal.events import Event, EventBus, Severity, Subscription
from selfheal.interfaces import (
    Degradable,
    HealthSource,
    LeaseGrant,
    ProgramControl,
    RecoveryLeases,
)
from selfheal.recovery._actions import ActionContext, DegradeFeature, RestartProgram
from selfheal.recovery._governor import Decision, Governor, Verdict
from selfheal.recovery._limits import RateLimit
from selfheal.recovery._ownership import (
    HANDLED_BY,
    RestartOwner,
    SupervisorRestarts,
    handled_program,
)
from selfheal.recovery._rules import Rule
from selfheal.recovery._steps import try_step
from selfheal.recovery._templates import event_fields, render
from selfheal.supervisor import Supervisor

__all__ = ["RecoveryEngine"]

logger = logging.getLogger("selfheal.recovery")

# Unique across restarts too: the journal keys recoveries by this id.
_RID_PREFIX = f"r{os.getpid():x}-{int.from_bytes(os.urandom(4), 'big'):08x}-"
_RID_COUNTER = itertools.count(1)


class _LeaseLostError(Exception):
    """The fleet lease of a running recovery went to another node."""


def _next_rid() -> str:
    return f"{_RID_PREFIX}{next(_RID_COUNTER)}"


@dataclass(slots=True)
class _Run:
    rule: Rule
    key: str
    event: Event
    rid: str
    ctx: ActionContext
    started: float
    duplicates: int = 0
    grant: LeaseGrant | None = None


@checked_keywords
class RecoveryEngine:
    """Reacts to failure events with recovery rules; verifies, escalates and reports.

    Publishes ``recovery.<subject>.started``, ``.succeeded``, ``.failed``, ``.escalated`` and
    ``.suppressed`` (with a ``reason``: dedup, cooldown, flapping, breaker_open, rate_limited,
    dry_run). The first rule (in order) whose pattern and conditions match an event handles
    it; ``recovery.*`` events never trigger rules unless a rule's pattern starts with
    ``recovery.``, so a rule on ``*.failed`` cannot feed on its own reports.

    Restarts have one owner: a program the supervisor restarts by itself is never restarted
    a second time by a rule, nor before its backoff ends (see `RestartProgram`); a recovery
    whose trigger the supervisor handles says ``handled_by = "supervisor"``.

    Args:
        bus: Where triggers come from and reports go.
        rules: The rules.
        programs: The supervisor, needed by restart actions.
        health: The health checks, needed by rules that verify.
        features: Anything with ``degrade(name)``, needed by degrade actions.
        clock: Time for deadlines, polls, cooldowns and windows.
        dry_run: Decide as usual but only record what would have been done.
        rate_limit: Engine-wide limit on started recoveries (None: unlimited).
        restarts: Who restarts programs by itself; by default the supervisor given as
            `programs` (`SupervisorRestarts`), else nobody.
        leases: Fleet leases (`selfheal.store.redis.FleetLeases`): rules with ``fleet`` set
            run on one node only; without, every rule runs locally.

    Raises:
        ValueError: If a rule needs a collaborator that was not given.
    """

    def __init__(
        self,
        bus: EventBus,
        rules: Iterable[Rule],
        *,
        programs: ProgramControl | None = None,
        health: HealthSource | None = None,
        features: Degradable | None = None,
        clock: Clock = SYSTEM_CLOCK,
        dry_run: bool = False,
        rate_limit: RateLimit | None = None,
        restarts: RestartOwner | None = None,
        leases: RecoveryLeases | None = None,
    ) -> None:
        self.bus = bus
        self.leases = leases
        self.rules = tuple(rules)
        self.programs = programs
        if restarts is None and isinstance(programs, Supervisor):
            restarts = SupervisorRestarts(programs)
        self.restarts = restarts
        self.health = health
        self.features = features
        self.clock = clock
        self.dry_run = dry_run
        self.governor = Governor(rate_limit, clock.monotonic())
        for rule in self.rules:
            self._check_rule(rule)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subs: list[Subscription] = []
        self._runs: dict[str, _Run] = {}
        self._tasks = Tasks()
        self._last_event: Event | None = None

    def __repr__(self) -> str:
        return f"RecoveryEngine(rules={len(self.rules)}, dry_run={self.dry_run})"

    def _check_rule(self, rule: Rule) -> None:
        actions = (*rule.steps, *rule.escalate)
        if rule.verify is not None and self.health is None:
            raise ValueError(
                f"rule {rule.name!r} verifies {list(rule.verify.checks)} but the engine has no "
                "HealthSource (pass health=...)"
            )
        if any(isinstance(a, RestartProgram) for a in actions) and self.programs is None:
            raise ValueError(
                f"rule {rule.name!r} restarts programs but the engine has no ProgramControl "
                "(pass programs=...)"
            )
        if any(isinstance(a, DegradeFeature) for a in actions) and self.features is None:
            raise ValueError(
                f"rule {rule.name!r} degrades features but the engine has no feature manager "
                "(pass features=...)"
            )

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Subscribe to the rules' patterns; triggers are then handled on this event loop."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        for pattern in dict.fromkeys(rule.on for rule in self.rules):
            self._subs.append(self.bus.subscribe(pattern, self._on_bus_event))

    async def stop(self) -> None:
        """Unsubscribe and cancel running recoveries (each is reported as failed)."""
        for sub in self._subs:
            sub.unsubscribe()
        self._subs.clear()
        await self._tasks.close()
        self._loop = None

    async def __aenter__(self) -> RecoveryEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_idle(self) -> None:
        """Wait until no recovery (or escalation) is running."""
        await self._tasks.wait()

    @property
    def active(self) -> dict[str, str]:
        """Return running recoveries: subject to recovery id."""
        return {key: run.rid for key, run in self._runs.items()}

    def status(self, subject: str) -> dict[str, Any]:
        """Return the governor's view of `subject` (active, cooldown, breaker, flapping)."""
        return self.governor.snapshot(subject)

    # ----------------------------------------------------------------- triggers

    def _on_bus_event(self, event: Event) -> None:
        # Runs in the publisher's thread: hand over to the loop and return at once, so a
        # publisher never waits on a recovery and all decisions happen on one thread.
        loop = self._loop
        if loop is None or event is self._last_event:
            # Rules with overlapping patterns subscribe twice; one publish, one decision.
            return
        self._last_event = event
        try:
            loop.call_soon_threadsafe(self.handle, event)
        except RuntimeError:
            logger.warning("recovery engine's loop is closed; %s ignored", event.type)

    def _rule_for(self, event: Event) -> Rule | None:
        return next((rule for rule in self.rules if rule.matches(event)), None)

    def handle(self, event: Event) -> Verdict | None:
        """Decide on `event` now and start a recovery if allowed (call on the engine's loop).

        The bus calls this for every subscribed event; tests and other components may call it
        directly.

        Returns:
            The verdict, or None when no rule matched.
        """
        rule = self._rule_for(event)
        if rule is None:
            return None
        fields = event_fields(event)
        # An empty key would make "recovery..started"; the event type is a usable subject.
        key = render(rule.dedup_key, fields) or event.type
        fields["key"] = key
        decision = self.governor.trigger(key, rule.limits, self.clock.monotonic())
        if decision.verdict is Verdict.RUN:
            self._begin(rule, key, event, fields)
            return decision.verdict
        self._suppressed(rule, key, event, decision)
        return decision.verdict

    def observe(self, subject: str, *, good: bool, rule: Rule | None = None) -> None:
        """Feed a state of `subject` seen elsewhere (e.g. a health check) to flap detection.

        Args:
            subject: The subject (dedup key).
            good: Whether it is healthy now.
            rule: Whose flap thresholds apply (default: the first rule's).
        """
        if rule is None and not self.rules:
            return
        limits = (rule or self.rules[0]).limits
        self.governor.observe(subject, limits, good=good, now=self.clock.monotonic())

    def _suppressed(self, rule: Rule, key: str, event: Event, decision: Decision) -> None:
        run = self._runs.get(key)
        if decision.verdict is Verdict.DEDUP and run is not None:
            run.duplicates += 1
        if not decision.first:
            return
        self._emit(
            key,
            "suppressed",
            Severity.WARNING if decision.escalate else Severity.INFO,
            reason=str(decision.verdict),
            rule=rule.name,
            trigger=_trigger(event),
            folded=decision.repeats,
            **({"recovery_id": run.rid} if run is not None else {}),
            **self.governor.snapshot(key),
        )
        if decision.escalate:
            # The same template fields as a recovery's actions get, "key" included.
            ctx = self._context(key, event, {**event_fields(event), "key": key})
            self._spawn(self._escalate(rule, key, ctx, decision.escalate, {}))

    # ----------------------------------------------------------------- recoveries

    def _context(self, key: str, event: Event, fields: Mapping[str, str]) -> ActionContext:
        return ActionContext(
            event=event,
            subject=key,
            fields=fields,
            programs=self.programs,
            health=self.health,
            features=self.features,
            clock=self.clock,
            restarts=self.restarts,
            handled=handled_program(event, self.restarts),
        )

    def _begin(self, rule: Rule, key: str, event: Event, fields: Mapping[str, str]) -> None:
        rid = _next_rid()
        plan: dict[str, Any] = {
            "recovery_id": rid,
            "rule": rule.name,
            "trigger": _trigger(event),
            "steps": [a.describe() for a in rule.steps],
            "verify": rule.verify.describe() if rule.verify is not None else None,
        }
        if handled_program(event, self.restarts) is not None:
            plan["handled_by"] = HANDLED_BY
        if self.dry_run:
            self.governor.begin(key, rid)
            self.governor.finish(key, rule.limits, ok=True, now=self.clock.monotonic(), sim=True)
            escalate = [a.describe() for a in rule.escalate]
            self._emit(key, "suppressed", reason="dry_run", would_escalate=escalate, **plan)
            return
        self.governor.begin(key, rid)
        if self.leases is not None and rule.fleet:
            self._spawn(self._fleet_recover(rule, key, event, fields, plan))
            return
        self._spawn(self._recover(self._start(rule, key, event, fields, plan)))

    def _start(
        self, rule: Rule, key: str, event: Event, fields: Mapping[str, str], plan: dict[str, Any]
    ) -> _Run:
        rid = plan["recovery_id"]
        run = _Run(rule, key, event, rid, self._context(key, event, fields), self.clock.monotonic())
        self._runs[key] = run
        self._emit(key, "started", Severity.WARNING, **plan)
        return run

    async def _fleet_recover(
        self,
        rule: Rule,
        key: str,
        event: Event,
        fields: Mapping[str, str],
        plan: dict[str, Any],
    ) -> None:
        """Run the recovery if this node gets the fleet's lease; else wait for who has it."""

        def waiting(holder: str) -> None:
            self._emit(key, "suppressed", reason="fleet_active", holder=holder, rule=rule.name)

        assert self.leases is not None
        try:
            grant = await self.leases.claim(f"{rule.name}:{key}", on_wait=waiting)
        except asyncio.CancelledError:
            self.governor.finish(key, rule.limits, ok=False, now=self.clock.monotonic(), sim=True)
            raise
        except Exception as exc:  # noqa: BLE001 - no lease, no fleet-wide action: tell a person
            self.governor.finish(key, rule.limits, ok=False, now=self.clock.monotonic(), sim=True)
            error = redact(f"{type(exc).__name__}: {exc}")
            self._emit(key, "suppressed", Severity.WARNING, reason="lease_unavailable", error=error)
            ctx = self._context(key, event, fields)
            await self._escalate(rule, key, ctx, "lease_unavailable", {"error": error})
            return
        if grant is None:  # another node did it
            self.governor.finish(key, rule.limits, ok=True, now=self.clock.monotonic(), sim=True)
            self._emit(key, "suppressed", reason="fleet_done", rule=rule.name)
            return
        run = self._start(rule, key, event, fields, plan)
        run.grant = grant
        try:
            await self._recover(run)
        finally:
            await grant.end(hold=max(rule.cooldown, 1.0))

    def _spawn(self, coro: Awaitable[None]) -> None:
        self._tasks.spawn(coro)

    async def _recover(self, run: _Run) -> None:
        rule, key = run.rule, run.key
        tries: list[dict[str, Any]] = []
        ok = False
        try:
            for index, action in enumerate(rule.steps):
                for attempt in range(rule.retries + 1):
                    if run.grant is not None and not await run.grant.check():
                        # Fenced: another node took the lease over; it acts now, not this one.
                        raise _LeaseLostError
                    ok, detail = await try_step(action, run.ctx, rule.timeout, rule.verify)
                    tries.append({"step": index, "attempt": attempt, **detail})
                    if ok:
                        break
                    if attempt < rule.retries:
                        await self.clock.asleep(rule.retry_delay)
                if ok:
                    break
                if index + 1 < len(rule.steps):
                    self._emit(
                        key,
                        "escalated",
                        Severity.WARNING,
                        recovery_id=run.rid,
                        rule=rule.name,
                        reason="step_failed",
                        from_step=index,
                        to_step=index + 1,
                        error=tries[-1].get("error", ""),
                        next=rule.steps[index + 1].describe(),
                    )
        except asyncio.CancelledError:
            self._end(run, ok=False, tries=tries, error="cancelled: the engine stopped")
            raise
        except _LeaseLostError:
            # Not escalated: the node that holds the lease now carries on.
            self._end(run, ok=False, tries=tries, error="lease lost to another node")
            return
        except Exception as exc:
            # A bug here (or in an action's odd return value) must still end the run: an
            # unended run keeps its subject "active", and every later failure of it would be
            # suppressed as a duplicate for ever.
            logger.exception("recovery %s of %s: internal error", run.rid, key)
            ok = False
            tries.append({"error": redact(f"internal error: {type(exc).__name__}: {exc}")})
        opened = self._end(run, ok=ok, tries=tries, error=tries[-1].get("error", ""))
        if not ok:
            reason = "breaker_open" if opened else "ladder_exhausted"
            await self._escalate(rule, key, run.ctx, reason, {"recovery_id": run.rid})

    def _end(self, run: _Run, *, ok: bool, tries: list[dict[str, Any]], error: str) -> bool:
        self._runs.pop(run.key, None)
        now = self.clock.monotonic()
        opened = self.governor.finish(run.key, run.rule.limits, ok=ok, now=now)
        common = {
            "recovery_id": run.rid,
            "rule": run.rule.name,
            "trigger": _trigger(run.event),
            "duration": now - run.started,
            "tries": tries,
            "deduplicated": run.duplicates,
        }
        if ok:
            self._emit(run.key, "succeeded", Severity.INFO, step=tries[-1]["step"], **common)
        else:
            self._emit(run.key, "failed", Severity.ERROR, error=error, **common)
        return opened

    async def _escalate(
        self,
        rule: Rule,
        key: str,
        ctx: ActionContext,
        reason: str,
        extra: Mapping[str, Any],
    ) -> None:
        notified: list[dict[str, Any]] = []
        for action in rule.escalate:
            if self.dry_run:
                notified.append({"ok": None, "would_run": action.describe()})
                continue
            # Notifications are not verified: the person told is the verification.
            ok, detail = await try_step(action, ctx, rule.timeout, None)
            notified.append({"ok": ok, **detail})
        self._emit(
            key,
            "escalated",
            Severity.CRITICAL,
            reason=reason,
            rule=rule.name,
            notified=notified,
            **extra,
            **self.governor.snapshot(key),
        )

    def _emit(
        self, key: str, outcome: str, severity: str = Severity.INFO, **data: Any
    ) -> Event | None:
        if self.dry_run:
            data["dry_run"] = True
        return self.bus.emit(f"recovery.{key}.{outcome}", "recovery", severity, **data)


def _trigger(event: Event) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "source": event.source}
