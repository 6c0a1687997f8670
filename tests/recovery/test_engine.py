"""The recovery engine end to end on the bus, with a FakeClock for every wait it makes.

The program controller and health source here are small in-memory implementations of the
`ProgramControl` and `HealthSource` protocols, so each test controls exactly when a check
passes; the real-process tests are in test_recovery_process.py.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from selfheal import Event, EventBus, interfaces
from selfheal.interfaces import HealthStatus
from selfheal.recovery import (
    CallFunction,
    CallWebhook,
    DegradeFeature,
    FlapPolicy,
    RateLimit,
    RecoveryEngine,
    RestartProgram,
    Rule,
    RunCommand,
    Verify,
)
from selfheal.testing import FakeClock


class Programs:
    """ProgramControl over an in-memory set of names; records every restart."""

    def __init__(self, *names: str, on_restart: Callable[[str], None] | None = None) -> None:
        self.names = list(names)
        self.restarts: list[str] = []
        self.on_restart = on_restart
        self.hang = False

    def program_names(self) -> list[str]:
        return list(self.names)

    async def start_program(self, name: str) -> None:
        await self.restart_program(name)

    async def stop_program(self, name: str) -> None:
        if name not in self.names:
            raise KeyError(name)

    async def restart_program(self, name: str) -> None:
        if name not in self.names:
            raise KeyError(name)
        self.restarts.append(name)
        if self.on_restart:
            self.on_restart(name)
        if self.hang:
            await asyncio.Event().wait()


class Health:
    """HealthSource whose checks pass when the test says so."""

    def __init__(self) -> None:
        self.passing: set[str] = set()
        self.calls: list[str] = []

    def status(self, name: str) -> HealthStatus:
        return HealthStatus.PASS if name in self.passing else HealthStatus.FAIL

    async def check_now(self, name: str) -> HealthStatus:
        self.calls.append(name)
        return self.status(name)


def test_fakes_implement_the_contracts() -> None:
    assert isinstance(Programs(), interfaces.ProgramControl)
    assert isinstance(Health(), interfaces.HealthSource)


@pytest.fixture
def fclock() -> FakeClock:
    return FakeClock(autojump=True)


@pytest.fixture
def bus(fclock: FakeClock) -> EventBus:
    return EventBus(clock=fclock)


@pytest.fixture
def seen(bus: EventBus) -> list[Event]:
    out: list[Event] = []
    bus.subscribe("recovery.*", out.append)
    return out


def kinds(events: list[Event]) -> list[str]:
    return [
        e.type.rsplit(".", 1)[1] + (f":{e.data['reason']}" if "reason" in e.data else "")
        for e in events
    ]


async def settle(engine: RecoveryEngine) -> None:
    for _ in range(5):
        await asyncio.sleep(0)
    await engine.wait_idle()


def crash(bus: EventBus, name: str = "web", code: int = 1) -> None:
    bus.emit(f"process.{name}.exited", "supervisor", "error", exit_code=code)


RESTART = (RestartProgram("{subject}"),)


def pager(paged: list[str], attr: str = "subject") -> Callable[[Event], Awaitable[None]]:
    # Async on purpose: with an autojumping FakeClock a thread (what a sync function gets)
    # could let fake time jump to the action's deadline before it finishes.
    async def page(event: Event) -> None:
        paged.append(getattr(event, attr))

    return page


@pytest.mark.anyio
async def test_restart_and_verify_succeeds(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    health = Health()
    programs = Programs("web", on_restart=health.passing.add)
    rule = Rule(
        on="process.*.exited",
        when={"data.exit_code": {"ne": 0}},
        steps=RESTART,
        verify=Verify(("web",), within=10, interval=1),
    )
    async with RecoveryEngine(bus, [rule], programs=programs, health=health, clock=fclock) as eng:
        crash(bus, code=0)  # a clean exit does not match the rule
        crash(bus)
        await settle(eng)
    assert programs.restarts == ["web"]
    assert kinds(seen) == ["started", "succeeded"]
    done = seen[-1]
    assert done.type == "recovery.web.succeeded"
    assert done.data["tries"][0]["checks"] == {"web": "pass"}
    assert done.data["recovery_id"] == seen[0].data["recovery_id"]


@pytest.mark.anyio
async def test_verified_check_names_are_templates(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    # One rule for every program: each recovery verifies the program it restarted.
    health = Health()
    programs = Programs("web", "api", on_restart=health.passing.add)
    rule = Rule(on="process.*.exited", steps=RESTART, verify=Verify(("{subject}",), within=5))
    async with RecoveryEngine(bus, [rule], programs=programs, health=health, clock=fclock) as eng:
        crash(bus, "api")
        await settle(eng)
    assert health.calls == ["api"]
    assert seen[-1].type == "recovery.api.succeeded"
    assert seen[-1].data["tries"][0]["checks"] == {"api": "pass"}


@pytest.mark.anyio
async def test_hundred_identical_events_at_once_give_one_recovery(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    programs = Programs("web")
    rule = Rule(on="process.*.exited", steps=RESTART)
    async with RecoveryEngine(bus, [rule], programs=programs, clock=fclock) as eng:
        # From four threads at once, as a flood of signals would arrive.
        threads = [threading.Thread(target=lambda: [crash(bus) for _ in range(25)]) for _ in "abcd"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        await settle(eng)
    assert programs.restarts == ["web"]
    assert kinds(seen) == ["started", "suppressed:dedup", "succeeded"]
    assert seen[-1].data["deduplicated"] == 99


@pytest.mark.anyio
async def test_overlapping_patterns_decide_once_first_rule_wins(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    programs = Programs("web", "other")
    rules = [
        Rule(on="process.*.exited", when={"data.exit_code": 1}, steps=RESTART),
        Rule(on="process.*", steps=(RestartProgram("other"),)),
    ]
    async with RecoveryEngine(bus, rules, programs=programs, clock=fclock) as eng:
        crash(bus, code=1)
        await settle(eng)
        crash(bus, "x", code=2)  # only the second rule matches
        await settle(eng)
    assert programs.restarts == ["web", "other"]
    assert kinds(seen) == ["started", "succeeded", "started", "succeeded"]
    assert seen[1].data["deduplicated"] == 0


@pytest.mark.anyio
async def test_cooldown_suppresses_then_allows(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    programs = Programs("web")
    rule = Rule(on="process.*.exited", steps=RESTART, cooldown=30)
    async with RecoveryEngine(bus, [rule], programs=programs, clock=fclock) as eng:
        crash(bus)
        await settle(eng)
        fclock.advance(29)
        crash(bus)
        crash(bus)  # folded into the previous suppression
        await settle(eng)
        assert programs.restarts == ["web"]
        fclock.advance(1)
        crash(bus)
        await settle(eng)
    assert programs.restarts == ["web", "web"]
    assert kinds(seen) == ["started", "succeeded", "suppressed:cooldown", "started", "succeeded"]
    assert seen[2].data["cooldown_until"] == pytest.approx(30)


@pytest.mark.anyio
async def test_failed_verification_climbs_the_ladder(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    health = Health()
    # The web program only comes back once its database was restarted.
    programs = Programs("web", "db", on_restart=lambda n: n == "db" and health.passing.add("web"))
    rule = Rule(
        on="process.*.exited",
        steps=(RestartProgram("{subject}"), RestartProgram("db")),
        verify=Verify(("web",), within=5, interval=1),
    )
    async with RecoveryEngine(bus, [rule], programs=programs, health=health, clock=fclock) as eng:
        start = fclock.monotonic()
        crash(bus)
        await settle(eng)
    assert programs.restarts == ["web", "db"]
    assert kinds(seen) == ["started", "escalated:step_failed", "succeeded"]
    escalated = seen[1]
    assert escalated.data["to_step"] == 1
    assert "web not passing within 5s" in escalated.data["error"]
    assert seen[-1].data["step"] == 1
    # Verification waited out its five seconds of fake time, polling every second.
    assert fclock.monotonic() - start == pytest.approx(5)
    assert health.calls.count("web") == 7  # 0..5 on step one, once on step two


@pytest.mark.anyio
async def test_exhausted_ladder_fails_and_pages_a_person(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    paged: list[str] = []
    rule = Rule(
        on="process.*.exited",
        steps=RESTART,
        verify=Verify(("web",), within=2, interval=1),
        escalate=(CallFunction(pager(paged, "type"), name="pager"),),
        retries=1,
        retry_delay=3,
    )
    engine = RecoveryEngine(bus, [rule], programs=Programs("web"), health=Health(), clock=fclock)
    async with engine:
        crash(bus)
        await settle(engine)
    assert kinds(seen) == ["started", "failed", "escalated:ladder_exhausted"]
    assert paged == ["process.web.exited"]
    failed = seen[1]
    assert len(failed.data["tries"]) == 2
    assert "verification failed" in failed.data["error"]
    assert 3 in fclock.sleeps  # the retry delay, on the fake clock
    notified = seen[2].data["notified"]
    assert notified[0]["ok"]
    assert notified[0]["action"] == {"kind": "call", "function": "pager"}


@pytest.mark.anyio
async def test_breaker_stops_after_k_failed_recoveries(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    programs = Programs("web")
    rule = Rule(
        on="process.*.exited",
        steps=RESTART,
        verify=Verify(("web",), within=1, interval=1),
        cooldown=0,
        breaker_failures=2,
        breaker_reset=300,
        flap=None,
    )
    async with RecoveryEngine(bus, [rule], programs=programs, health=Health(), clock=fclock) as e:
        for _ in range(3):
            crash(bus)
            await settle(e)
        assert e.status("web")["failures"] == 2
    assert programs.restarts == ["web", "web"]
    assert kinds(seen) == [
        "started",
        "failed",
        "escalated:ladder_exhausted",
        "started",
        "failed",
        "escalated:breaker_open",
        "suppressed:breaker_open",
    ]


@pytest.mark.anyio
async def test_flapping_subject_is_left_alone_and_escalated(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    paged: list[str] = []
    programs = Programs("web")
    rule = Rule(
        on="process.*.exited",
        steps=RESTART,
        cooldown=0,
        flap=FlapPolicy(window=300, high=4, low=1),
        escalate=(CallFunction(pager(paged)),),
    )
    async with RecoveryEngine(bus, [rule], programs=programs, clock=fclock) as eng:
        for _ in range(4):
            crash(bus)
            await settle(eng)
            fclock.advance(10)
        assert eng.status("web")["flapping"]
        fclock.advance(300)  # the changes age out of the window: automatic action resumes
        crash(bus)
        await settle(eng)
    assert programs.restarts == ["web", "web", "web"]
    assert kinds(seen) == [
        "started",
        "succeeded",
        "started",
        "succeeded",
        "suppressed:flapping",
        "escalated:flapping",
        # the fourth crash repeats the same suppression: counted, not published again
        "started",
        "succeeded",
    ]
    assert paged == ["web"]


@pytest.mark.anyio
async def test_global_rate_limit(bus: EventBus, seen: list[Event], fclock: FakeClock) -> None:
    programs = Programs("a", "b", "c")
    rule = Rule(on="process.*.exited", steps=RESTART)
    engine = RecoveryEngine(
        bus, [rule], programs=programs, clock=fclock, rate_limit=RateLimit(1 / 60, burst=1)
    )
    async with engine:
        crash(bus, "a")
        crash(bus, "b")
        await settle(engine)
        fclock.advance(60)
        crash(bus, "c")
        await settle(engine)
    assert programs.restarts == ["a", "c"]
    assert [e.type for e in seen if e.data.get("reason") == "rate_limited"] == [
        "recovery.b.suppressed"
    ]


@pytest.mark.anyio
async def test_dry_run_records_what_it_would_do(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    programs = Programs("web")
    rule = Rule(
        on="process.*.exited",
        steps=RESTART,
        verify=Verify(("web",)),
        escalate=(CallWebhook("https://u:pw@pager.invalid/x?token=s3cret"),),
        cooldown=10,
    )
    engine = RecoveryEngine(
        bus, [rule], programs=programs, health=Health(), clock=fclock, dry_run=True
    )
    async with engine:
        crash(bus)
        crash(bus)
        await settle(engine)
    assert programs.restarts == []
    assert kinds(seen) == ["suppressed:dry_run", "suppressed:cooldown"]
    plan = seen[0].data
    assert plan["dry_run"] is True
    assert plan["steps"] == [{"kind": "restart", "program": "{subject}"}]
    assert plan["verify"]["checks"] == ["web"]
    assert plan["would_escalate"][0]["url"] == "https://u:***@pager.invalid/x?token=***"
    assert "s3cret" not in json.dumps([e.to_dict() for e in seen])


@pytest.mark.anyio
async def test_action_timeout_on_the_fake_clock(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    programs = Programs("web")
    programs.hang = True
    rule = Rule(on="process.*.exited", steps=RESTART, timeout=7)
    async with RecoveryEngine(bus, [rule], programs=programs, clock=fclock) as eng:
        crash(bus)
        await settle(eng)
    assert kinds(seen)[:2] == ["started", "failed"]
    assert seen[1].data["error"] == "restart timed out after 7s"
    assert fclock.monotonic() == pytest.approx(7)


@pytest.mark.anyio
async def test_retry_then_success(bus: EventBus, seen: list[Event], fclock: FakeClock) -> None:
    calls: list[int] = []

    async def flaky(event: Event) -> dict[str, int]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("not yet")
        return {"attempts": len(calls)}

    rule = Rule(on="app.*.failed", steps=(CallFunction(flaky),), retries=2, retry_delay=2)
    async with RecoveryEngine(bus, [rule], clock=fclock) as eng:
        bus.emit("app.cache.failed", "app")
        await settle(eng)
    assert kinds(seen) == ["started", "succeeded"]
    tries = seen[1].data["tries"]
    assert tries[0]["error"] == "call failed: RuntimeError: not yet"
    assert tries[1]["result"] == {"attempts": 2}


@pytest.mark.anyio
async def test_own_reports_never_trigger_rules(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    async def boom(event: Event) -> None:
        raise RuntimeError("no")

    rule = Rule(on="*.*.failed", steps=(CallFunction(boom),), cooldown=0, flap=None)
    async with RecoveryEngine(bus, [rule], clock=fclock) as eng:
        bus.emit("health.db.failed", "health")
        await settle(eng)
        await settle(eng)
    assert kinds(seen) == ["started", "failed", "escalated:ladder_exhausted"]


@pytest.mark.anyio
async def test_degrade_feature_sync_method_in_a_thread() -> None:
    class Features:
        def __init__(self) -> None:
            self.degraded: list[str] = []

        def degrade(self, name: str) -> None:
            self.degraded.append(name)

    features = Features()
    rule = Rule(on="breaker.*.opened", steps=(DegradeFeature("{subject}"),))
    # The real clock: a sync degrade() runs in a thread, which fake time must not race.
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("recovery.*", seen.append)
    async with RecoveryEngine(bus, [rule], features=features) as eng:
        bus.emit("breaker.recommendations.opened", "breaker")
        await settle(eng)
    assert features.degraded == ["recommendations"]
    assert kinds(seen) == ["started", "succeeded"]


def test_missing_collaborators_are_named(bus: EventBus) -> None:
    with pytest.raises(ValueError, match="no ProgramControl"):
        RecoveryEngine(bus, [Rule(on="a.*", steps=RESTART)])
    with pytest.raises(ValueError, match="no HealthSource"):
        RecoveryEngine(bus, [Rule(on="a.*", steps=(RunCommand(("true",)),), verify=Verify(("x",)))])
    with pytest.raises(ValueError, match="no feature manager"):
        RecoveryEngine(bus, [Rule(on="a.*", steps=(DegradeFeature("x"),))])
    with pytest.raises(ValueError, match="at least one step"):
        Rule(on="a.*", steps=())
    with pytest.raises(ValueError, match="event pattern"):
        Rule(on="a..b", steps=RESTART)


# ------------------------------------------------------------------ real commands and HTTP


@pytest.mark.anyio
async def test_command_action_runs_argv_without_a_shell() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("recovery.*", seen.append)
    code = "import sys; print(sys.argv[1]); sys.exit(3)"
    rule = Rule(
        on="app.*.failed",
        steps=(RunCommand((sys.executable, "-c", code, "{data.msg}")),),
        timeout=20,
    )
    async with RecoveryEngine(bus, [rule]) as eng:
        bus.emit("app.x.failed", "t", msg="a; echo injected")
        await settle(eng)
    failed = next(e for e in seen if e.type.endswith(".failed"))
    assert failed.data["error"] == "command failed: ActionError: command exited with 3: " + (
        "a; echo injected"
    )


@pytest.mark.anyio
async def test_shell_command_quotes_placeholders() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("recovery.*", seen.append)
    rule = Rule(on="app.*.failed", steps=(RunCommand(("echo {data.msg}",), shell=True),))
    async with RecoveryEngine(bus, [rule]) as eng:
        bus.emit("app.x.failed", "t", msg="$(echo pwned); echo injected")
        await settle(eng)
    done = seen[-1]
    assert done.type == "recovery.x.succeeded"
    assert done.data["tries"][0]["result"]["output"] == "$(echo pwned); echo injected"


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {"path": self.path, "auth": self.headers["Authorization"], "body": json.loads(body)}
            )
            self.send_response(500 if "fail" in self.path else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.anyio
async def test_webhook_sends_the_event_and_keeps_secrets_out_of_events(
    hook_server: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = hook_server
    monkeypatch.setenv("PAGER_TOKEN", "tok-123")
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("*", seen.append)
    hook = CallWebhook(
        url + "/page?key=${PAGER_TOKEN}", headers={"Authorization": "Bearer ${PAGER_TOKEN}"}
    )
    failing = CallWebhook(url + "/fail")
    rule = Rule(on="app.*.failed", steps=(failing,), escalate=(hook,), timeout=10)
    async with RecoveryEngine(bus, [rule]) as eng:
        bus.emit("app.pay.failed", "t", error="boom")
        await settle(eng)
    assert [r["path"] for r in received] == ["/fail", "/page?key=tok-123"]
    assert received[1]["auth"] == "Bearer tok-123"
    assert received[1]["body"]["subject"] == "pay"
    assert received[1]["body"]["event"]["data"] == {"error": "boom"}
    escalated = seen[-1]
    assert escalated.type == "recovery.pay.escalated"
    assert escalated.data["notified"][0]["ok"] is True
    assert escalated.data["notified"][0]["action"]["headers"] == {"Authorization": "***"}
    assert "tok-123" not in json.dumps([e.to_dict() for e in seen])
    failed = next(e for e in seen if e.type == "recovery.pay.failed")
    assert failed.data["error"].endswith("HTTP 500")


@pytest.mark.anyio
async def test_dry_run_never_notifies_but_says_whom_it_would(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    paged: list[str] = []
    rule = Rule(
        on="process.*.exited",
        steps=RESTART,
        flap=FlapPolicy(window=100, high=4, low=1),
        escalate=(CallFunction(pager(paged), name="pager"),),
    )
    engine = RecoveryEngine(bus, [rule], programs=Programs("web"), clock=fclock, dry_run=True)
    async with engine:
        # Health seen elsewhere flips the subject: bad, good, bad, good.
        for good in (False, True, False, True):
            engine.observe("web", good=good)
        crash(bus)
        await settle(engine)
    assert kinds(seen) == ["suppressed:flapping", "escalated:flapping"]
    assert paged == []
    assert seen[1].data["notified"] == [
        {"ok": None, "would_run": {"kind": "call", "function": "pager"}}
    ]


def test_engine_manager_and_journal_are_components(bus: EventBus, tmp_path: Path) -> None:
    from selfheal.interfaces import Component
    from selfheal.recovery import RecoveryManager
    from selfheal.store import Journal

    assert isinstance(RecoveryEngine(bus, []), Component)
    assert isinstance(RecoveryManager(bus), Component)
    assert isinstance(Journal(bus, tmp_path / "j.db"), Component)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not yet reaped


@pytest.mark.anyio
async def test_a_command_past_its_deadline_is_killed_with_its_children(tmp_path: Path) -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("recovery.*", seen.append)
    pidfile = tmp_path / "pid"
    child = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    # Through a shell, so the sleeper is a grandchild: the whole process group must die.
    line = f'{sys.executable} -c "{child}"; echo never'
    rule = Rule(on="app.*.failed", steps=(RunCommand((line,), shell=True),), timeout=1.0)
    async with RecoveryEngine(bus, [rule]) as eng:
        bus.emit("app.x.failed", "t")
        await settle(eng)
    assert seen[1].data["error"] == "command timed out after 1s"
    pid = int(pidfile.read_text())

    async def gone() -> None:
        while _alive(pid):  # noqa: ASYNC110 - a process we do not own: polling is the way
            await asyncio.sleep(0.02)

    await asyncio.wait_for(gone(), 10)
