"""A small shop served by a real uvicorn on 127.0.0.1, for the synthetic tester's tests.

The shop keeps every request it saw (method, path, headers), so tests can check what a
scenario really sent: the synthetic-traffic header, the cleanup that ran after a failure.
"""

from __future__ import annotations

import asyncio
import html
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from health_helpers import until
from selfheal.synthetic import SyntheticTester
from selfheal.testing import FakeClock


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Shop:
    """The shop's state; tests change it between runs (`broken`, `flaky`, `delay`)."""

    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    next_id: int = 1
    broken: bool = False  # POST /orders answers 500
    flaky: int = 0  # GET /flaky answers 503 this many more times
    delay: float = 0.0  # fake seconds GET /profile takes (advanced on `clock`)
    clock: FakeClock | None = None
    gate: threading.Event = field(default_factory=threading.Event)  # releases GET /slow
    entered: threading.Event = field(default_factory=threading.Event)  # GET /slow started
    csrf: dict[str, str] = field(default_factory=dict)

    def reset(self) -> None:
        self.orders.clear()
        self.seen.clear()
        self.next_id = 1
        self.broken = False
        self.flaky = 0
        self.delay = 0.0
        self.clock = None
        self.gate.set()  # a hung handler of the previous test ends now
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.csrf.clear()

    def requests(self, method: str | None = None, prefix: str = "/") -> list[Seen]:
        return [
            s
            for s in list(self.seen)
            if (method is None or s.method == method) and s.path.startswith(prefix)
        ]

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/orders", self._create, methods=["POST"]),
                Route("/orders/{oid:int}", self._read, methods=["GET"]),
                Route("/orders/{oid:int}", self._delete, methods=["DELETE"]),
                Route("/flaky", self._flaky),
                Route("/slow", self._slow),
                Route("/profile", self._profile),
                Route("/echo", self._echo, methods=["GET", "POST"]),
                Route("/login", self._login_page, methods=["GET"]),
                Route("/login", self._login, methods=["POST"]),
                Route("/search", self._search),
            ]
        )

    def _note(self, request: Request) -> None:
        self.seen.append(Seen(request.method, request.url.path, dict(request.headers)))

    async def _create(self, request: Request) -> Response:
        self._note(request)
        if self.broken:
            return JSONResponse({"error": "database is down"}, status_code=500)
        oid, self.next_id = self.next_id, self.next_id + 1
        self.orders[oid] = {"id": oid, "status": "new", **(await request.json())}
        location = {"Location": f"/orders/{oid}"}
        return JSONResponse(self.orders[oid], status_code=201, headers=location)

    async def _read(self, request: Request) -> Response:
        self._note(request)
        order = self.orders.get(request.path_params["oid"])
        if order is None:
            return JSONResponse({"error": "no such order"}, status_code=404)
        return JSONResponse(order)

    async def _delete(self, request: Request) -> Response:
        self._note(request)
        self.orders.pop(request.path_params["oid"], None)
        return Response(status_code=204)

    async def _flaky(self, request: Request) -> Response:
        self._note(request)
        if self.flaky > 0:
            self.flaky -= 1
            return PlainTextResponse("try again", status_code=503)
        return JSONResponse({"ok": True})

    async def _slow(self, request: Request) -> Response:
        self._note(request)
        self.entered.set()
        gate = self.gate
        # A threading.Event, set from the test's thread: polled, not awaited.
        while not gate.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        return PlainTextResponse("finally")

    async def _profile(self, request: Request) -> Response:
        self._note(request)
        if self.clock is not None and self.delay:
            self.clock.advance(self.delay)  # the response "takes" this long on the fake clock
        return JSONResponse(
            {"user": {"id": 1, "name": "ada", "roles": ["admin"]}, "version": "2.1"},
            headers={"X-Version": "2.1", "Cache-Control": "no-store"},
        )

    async def _echo(self, request: Request) -> Response:
        self._note(request)
        body = await request.body()
        return JSONResponse({"body": body.decode(), "query": dict(request.query_params)})

    async def _login_page(self, request: Request) -> Response:
        self._note(request)
        token = secrets.token_hex(8)
        self.csrf[token] = "issued"
        page = f'<form method="post"><input name="csrf_token" value="{token}"></form>'
        return HTMLResponse(page)

    async def _login(self, request: Request) -> Response:
        self._note(request)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if self.csrf.pop(form.get("csrf_token", ""), None) is None:
            return HTMLResponse("Invalid CSRF token", status_code=403)
        if (form.get("username"), form.get("password")) != ("test_user", "test_password"):
            return HTMLResponse("Wrong password", status_code=401)
        return HTMLResponse(f"<h1>Welcome back, {html.escape(form['username'])}</h1>")

    async def _search(self, request: Request) -> Response:
        self._note(request)
        term = request.query_params.get("q", "")
        if self.broken:
            return HTMLResponse("<p>Error: No results found</p>", status_code=200)
        return HTMLResponse(f"<ul><li>{html.escape(term)} deluxe</li></ul>")


async def settled(tester: SyntheticTester, name: str, runs: int) -> None:
    """Wait until scenario `name` recorded `runs` runs and its loop waits for the next one.

    Only then does `clock.advance` wake it for its next run (an advance before the loop went
    to sleep would be lost on it).
    """

    def done() -> bool:
        report = tester.report(name)
        return report.successes + report.failures >= runs and report.next_run is not None

    await until(done)


def counting(fn: Callable[[str], Any] | None = None) -> tuple[list[str], Callable[[str], Any]]:
    """Return a list of the URLs an async scenario was called with, and the scenario."""
    calls: list[str] = []

    async def scenario(base_url: str) -> Any:
        calls.append(base_url)
        if fn is not None:
            return fn(base_url)
        return None

    return calls, scenario


def shop_answers(base_url: str) -> None:
    """A scenario for ``call = "synthetic_helpers:shop_answers"`` in config tests."""
    import httpx

    httpx.get(f"{base_url}/flaky", timeout=5).raise_for_status()
