"""What each action does, and how the engine survives actions that misbehave.

Commands run as real processes, webhooks reach a real HTTP server on 127.0.0.1; actions that
users write may return odd values, raise before awaiting, or hang in a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sys
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from recovery_helpers import RESTART, crash, outcomes, settle
from selfheal import Event, EventBus
from selfheal.recovery import (
    ActionContext,
    CallFunction,
    CallWebhook,
    DegradeFeature,
    RecoveryEngine,
    Rule,
    RunCommand,
)
from selfheal.testing import FakeClock, FakeProgramControl
from supervisor_helpers import alive


@pytest.mark.anyio
async def test_action_timeout_on_the_fake_clock(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    programs = FakeProgramControl("web")
    programs.hang = True
    rule = Rule(on="process.*.exited", steps=RESTART, timeout=7)
    async with RecoveryEngine(bus, [rule], programs=programs, clock=fclock) as eng:
        crash(bus)
        await settle(eng)
    assert outcomes(seen)[:2] == ["started", "failed"]
    assert seen[1].data["error"] == "restart timed out after 7s"
    assert fclock.monotonic() == pytest.approx(7)


@pytest.mark.anyio
async def test_degrade_feature_sync_method_in_a_thread(
    real_bus: EventBus, real_seen: list[Event]
) -> None:
    class Features:
        def __init__(self) -> None:
            self.degraded: list[str] = []

        def degrade(self, name: str) -> None:
            self.degraded.append(name)

    features = Features()
    rule = Rule(on="breaker.*.opened", steps=(DegradeFeature("{subject}"),))
    # The real clock: a sync degrade() runs in a thread, which fake time must not race.
    async with RecoveryEngine(real_bus, [rule], features=features) as eng:
        real_bus.emit("breaker.recommendations.opened", "breaker")
        await settle(eng)
    assert features.degraded == ["recommendations"]
    assert outcomes(real_seen) == ["started", "succeeded"]


@pytest.mark.anyio
async def test_command_action_runs_argv_without_a_shell(
    real_bus: EventBus, real_seen: list[Event]
) -> None:
    code = "import sys; print(sys.argv[1]); sys.exit(3)"
    rule = Rule(
        on="app.*.failed",
        steps=(RunCommand((sys.executable, "-c", code, "{data.msg}")),),
        timeout=20,
    )
    async with RecoveryEngine(real_bus, [rule]) as eng:
        real_bus.emit("app.x.failed", "t", msg="a; echo injected")
        await settle(eng)
    failed = next(e for e in real_seen if e.type.endswith(".failed"))
    assert failed.data["error"] == "command failed: ActionError: command exited with 3: " + (
        "a; echo injected"
    )


@pytest.mark.anyio
async def test_shell_command_quotes_placeholders(
    real_bus: EventBus, real_seen: list[Event]
) -> None:
    rule = Rule(on="app.*.failed", steps=(RunCommand(("echo {data.msg}",), shell=True),))
    async with RecoveryEngine(real_bus, [rule]) as eng:
        real_bus.emit("app.x.failed", "t", msg="$(echo pwned); echo injected")
        await settle(eng)
    done = real_seen[-1]
    assert done.type == "recovery.x.succeeded"
    assert done.data["tries"][0]["result"]["output"] == "$(echo pwned); echo injected"


@pytest.mark.anyio
async def test_a_command_past_its_deadline_is_killed_with_its_children(
    real_bus: EventBus, real_seen: list[Event], tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    child = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    # Through a shell, so the sleeper is a grandchild: the whole process group must die.
    line = f'{sys.executable} -c "{child}"; echo never'
    rule = Rule(on="app.*.failed", steps=(RunCommand((line,), shell=True),), timeout=1.0)
    async with RecoveryEngine(real_bus, [rule]) as eng:
        real_bus.emit("app.x.failed", "t")
        await settle(eng)
    assert real_seen[1].data["error"] == "command timed out after 1s"
    pid = int(pidfile.read_text())

    async def gone() -> None:
        while alive(pid):  # noqa: ASYNC110 - a process we do not own: polling is the way
            await asyncio.sleep(0.02)

    await asyncio.wait_for(gone(), 10)


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


class ReturnsOdd:
    """A user-written action (the `Action` protocol) whose run returns a non-mapping."""

    kind = "odd"

    def __init__(self, value: object) -> None:
        self.value = value
        self.runs = 0

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}

    async def run(self, ctx: ActionContext) -> Mapping[str, Any] | None:
        self.runs += 1
        return self.value  # type: ignore[return-value]


class RaisesSynchronously:
    """An action whose `run` is a plain function that raises before any awaitable exists."""

    kind = "sync"

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def run(self, ctx: ActionContext) -> Mapping[str, Any] | None:
        raise RuntimeError("boom before any await")


@pytest.mark.anyio
@pytest.mark.parametrize("value", [True, "restarted", 1, ["a"]])
async def test_an_action_returning_a_non_mapping_does_not_hold_the_subject_forever(
    bus: EventBus, seen: list[Event], fclock: FakeClock, value: object
) -> None:
    # dict(result) raised outside the action's error handling: the recovery task died
    # without ending the run, so the subject stayed "active" and every later failure of it
    # was suppressed as a duplicate, for ever.
    action = ReturnsOdd(value)
    rule = Rule(on="process.*.exited", steps=(action,), cooldown=0)
    async with RecoveryEngine(bus, [rule], clock=fclock) as eng:
        bus.emit("process.web.exited", "supervisor", "error")
        await settle(eng)
        assert eng.active == {}
        bus.emit("process.web.exited", "supervisor", "error")
        await settle(eng)
    assert action.runs == 2
    assert outcomes(seen) == ["started", "succeeded", "started", "succeeded"]


@pytest.mark.anyio
async def test_an_action_raising_synchronously_fails_the_recovery_and_releases_it(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    rule = Rule(on="process.*.exited", steps=(RaisesSynchronously(),), cooldown=0)  # type: ignore[arg-type]
    async with RecoveryEngine(bus, [rule], clock=fclock) as eng:
        bus.emit("process.web.exited", "supervisor", "error")
        await settle(eng)
        bus.emit("process.web.exited", "supervisor", "error")
        await settle(eng)
        assert eng.active == {}
    assert outcomes(seen) == ["started", "failed", "escalated:ladder_exhausted"] * 2
    assert "boom before any await" in seen[1].data["error"]


@pytest.mark.anyio
async def test_a_hung_sync_recovery_function_does_not_take_a_shared_pool_worker(
    real_bus: EventBus, real_seen: list[Event]
) -> None:
    # Sync functions ran in the loop's default executor: one that hangs past the rule's
    # timeout kept its worker for good, and a few of them starved everything else that
    # uses asyncio.to_thread (the journal's and the engine's own shutdown among them).
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    loop.set_default_executor(pool)
    release = threading.Event()

    def hang(event: Event) -> None:
        release.wait(10)

    rule = Rule(on="app.*.failed", steps=(CallFunction(hang),), timeout=0.05)
    try:
        async with RecoveryEngine(real_bus, [rule]) as eng:
            real_bus.emit("app.x.failed", "t")
            await settle(eng)
            assert "timed out" in real_seen[1].data["error"]
            assert await asyncio.wait_for(asyncio.to_thread(lambda: 42), 2) == 42
    finally:
        release.set()
        pool.shutdown(wait=False)


DSN = "postgresql://app:hunter2@db.internal:5432/app"


@pytest.mark.anyio
async def test_secrets_in_action_errors_and_output_never_reach_events(
    real_bus: EventBus, real_seen: list[Event]
) -> None:
    # The events go to the journal, which only masks secret-looking keys, never strings:
    # a command's output or an exception message holding a DSN was stored as it was.

    async def connect(event: Event) -> None:
        raise ConnectionError(f"cannot connect to {DSN}")

    fails = f"import sys; print('using {DSN} password=hunter2'); sys.exit(2)"
    works = f"print('reconnected to {DSN}')"
    rules = [
        Rule(on="a.*.failed", steps=(RunCommand((sys.executable, "-c", fails)),), timeout=20),
        Rule(on="b.*.failed", steps=(RunCommand((sys.executable, "-c", works)),), timeout=20),
        Rule(on="c.*.failed", steps=(CallFunction(connect),)),
        Rule(
            on="d.*.failed",
            steps=(RunCommand(("true", "--password", "hunter2", "--token=hunter2")),),
        ),
    ]
    async with RecoveryEngine(real_bus, rules) as eng:
        for name in "abcd":
            real_bus.emit(f"{name}.s{name}.failed", "t")
        await settle(eng)
    text = json.dumps([e.to_dict() for e in real_seen])
    assert "hunter2" not in text
    assert "app:***@db.internal" in text  # what it was about is still there
    assert len([e for e in real_seen if e.type.endswith((".failed", ".succeeded"))]) == 4


@pytest.mark.anyio
async def test_a_recovery_function_raising_systemexit_fails_the_recovery(
    real_bus: EventBus, real_seen: list[Event]
) -> None:
    async def exits(event: Event) -> None:
        raise SystemExit(6)

    async with RecoveryEngine(
        real_bus, [Rule(on="a.*.failed", steps=(CallFunction(exits),))]
    ) as eng:
        real_bus.emit("a.x.failed", "t")
        await settle(eng)
    failed = [e for e in real_seen if e.type == "recovery.x.failed"]
    assert failed
    assert "SystemExit: 6" in failed[0].data["error"]
