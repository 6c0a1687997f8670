"""The shop's web app: search, product pages with recommendations, checkout.

Run by the supervisor as several processes on one port (``SO_REUSEPORT``), so a killed or
hung process costs only the requests it held. Each dependency is guarded where it is used:

- recommendations: a timeout and a circuit breaker, with ``FeatureManager`` falling back to
  the most popular products while the service is slow, failing or its breaker is open;
- orders: a circuit breaker around the database; while it is open or the write fails, the
  order goes to the local outbox (durable) and the client gets 202, never a lost order;
- health: ``/livez`` (this process's event loop) and ``/readyz`` (dependencies as warnings, so
  a database outage does not take every web process out of rotation at once). The monitor
  runs in a thread of its own and, with ``SHOP_ADMIN_PORT``, a thread of its own serves the
  health endpoints on that port: a busy event loop still answers its liveness probe in
  milliseconds (a probe that times out on a process that is only busy would kill it when it
  is needed most), while a stopped process answers nothing, and a loop blocked for several
  seconds fails its event-loop check.

Every answer carries ``X-Shop-Pid`` (the process that served it); product pages also carry
``X-Shop-Degraded: 1`` when the recommendations are the popular-products fallback.

Environment: ``SHOP_DB`` (``sqlite:///shop.db`` or ``postgresql://...``), ``SHOP_OUTBOX``
(a SQLite file), ``SHOP_RECS_URL`` (the recommendation service), ``PORT`` (shared by the web
processes), ``SHOP_ADMIN_PORT`` (optional: a port of this process alone, so that a probe
reaches this process and not whichever one the kernel picks on the shared port), and
``SHOP_PLAIN=1``: the same shop written without any of the guards above (dependencies called
directly, no timeout, breaker, fallback, outbox or health endpoints; the admin port then
serves the shop itself), the baseline of ``bench/healing.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from types import ModuleType
from typing import Any

import uvicorn
from shopdata import OrderStore, Outbox, Product, catalog, open_orders, popular, search
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PRODUCTS = catalog()
BY_ID = {p.id: p for p in PRODUCTS}
POPULAR = popular(PRODUCTS)

Recommend = Callable[[int], Awaitable[tuple[list[dict[str, Any]], bool]]]
Record = Callable[[dict[str, Any]], Awaitable[int]]
Hook = Callable[[], None]


def _httpx() -> ModuleType:
    # httpx imports its command-line client (click, rich, pygments) when they are installed:
    # about a third of this process's start-up, for a tool the shop never runs. A restarted
    # web process serves that much sooner without it.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    import httpx

    return httpx


def build_app(
    db_url: str,
    outbox_path: str,
    recs_url: str,
    *,
    plain: bool = False,
    admin_port: int | None = None,
) -> Starlette:
    """Return the shop's ASGI app (`plain`: without timeouts, breakers and fallbacks).

    Health endpoints are also served on 127.0.0.1:`admin_port` by a thread (not in `plain`).
    """
    orders = open_orders(db_url)
    # Warm before the port is shared: the kernel sends a listening process its share of the
    # connections at once, and a process still importing its database driver (it holds the
    # GIL for a second on a busy machine) lets them wait past the users' patience.
    orders.prepare()
    # No certificate store to load for a plain-HTTP service (a third of the client's set-up).
    http = _httpx().AsyncClient(
        base_url=recs_url, timeout=None if plain else 1.0, verify=recs_url.startswith("https:")
    )

    async def fetch_recommendations(product_id: int) -> list[dict[str, Any]]:
        response = await http.get("/recommend", params={"product_id": product_id})
        response.raise_for_status()
        return list(response.json()["products"])

    if plain:
        recommend, record, extra, start, stop = _plain(fetch_recommendations, orders)
    else:
        recommend, record, extra, start, stop = _guarded(
            fetch_recommendations, orders, Outbox(outbox_path), recs_url, admin_port
        )

    async def home(request: Request) -> JSONResponse:
        return JSONResponse({"shop": "selfheal demo shop", "popular": _dicts(POPULAR)})

    async def find(request: Request) -> JSONResponse:
        query = request.query_params.get("q", "")
        return JSONResponse({"query": query, "results": _dicts(search(PRODUCTS, query))})

    async def product(request: Request) -> JSONResponse:
        try:
            item = BY_ID[int(request.path_params["product_id"])]
        except (KeyError, ValueError):
            return JSONResponse({"error": "no such product"}, status_code=404)
        recs, degraded = await recommend(item.id)
        return JSONResponse(
            {"product": item.to_dict(), "recommendations": recs, "degraded": degraded},
            headers={"x-shop-degraded": "1" if degraded else "0"},
        )

    async def checkout(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            order = {
                "order_id": str(body["order_id"]),
                "product_id": int(body["product_id"]),
                "quantity": int(body.get("quantity", 1)),
            }
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                {"error": "send JSON with order_id (string), product_id and quantity"},
                status_code=400,
            )
        if order["product_id"] not in BY_ID or order["quantity"] < 1:
            return JSONResponse({"error": "unknown product or bad quantity"}, status_code=400)
        status = await record(order)
        state = "recorded" if status == 201 else "queued"
        return JSONResponse({"order_id": order["order_id"], "status": state}, status)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        start()
        try:
            yield
        finally:
            await asyncio.to_thread(stop)
            await http.aclose()

    return Starlette(
        routes=[
            Route("/", home),
            Route("/search", find),
            Route("/product/{product_id}", product),
            Route("/checkout", checkout, methods=["POST"]),
            *extra,
        ],
        lifespan=lifespan,
    )


def _plain(
    fetch_recommendations: Callable[[int], Awaitable[list[dict[str, Any]]]], orders: OrderStore
) -> tuple[Recommend, Record, list[BaseRoute], Hook, Hook]:
    """The naive shop: any dependency failure is the user's 500."""

    async def recommend(product_id: int) -> tuple[list[dict[str, Any]], bool]:
        return await fetch_recommendations(product_id), False

    async def record(order: dict[str, Any]) -> int:
        await asyncio.to_thread(orders.put, order)
        return 201

    return recommend, record, [], lambda: None, lambda: None


def _guarded(
    fetch_recommendations: Callable[[int], Awaitable[list[dict[str, Any]]]],
    orders: OrderStore,
    outbox: Outbox,
    recs_url: str,
    admin_port: int | None,
) -> tuple[Recommend, Record, list[BaseRoute], Hook, Hook]:
    """The shop as it should be: timeouts, breakers, fallbacks, outbox, health endpoints."""
    import selfheal
    from selfheal.health.checks import event_loop_lag_check, http_check
    from selfheal.web import health_app

    monitor = selfheal.HealthMonitor()
    features = selfheal.FeatureManager()
    recs_breaker = selfheal.CircuitBreaker(
        failure_threshold=3, recovery_timeout=2.0, name="recommendations"
    )
    db_breaker = selfheal.CircuitBreaker(failure_threshold=2, recovery_timeout=1.0, name="orders")
    # Open breaker -> unavailable -> the popular products, without waiting on the service.
    features.register(
        "recommendations",
        recs_breaker,
        fallback_func=lambda product_id: _dicts(POPULAR),
        fallback_on=(Exception,),
    )
    guarded_fetch = recs_breaker(
        selfheal.Timeout(0.3, name="recommendations")(fetch_recommendations)
    )

    async def recommend(product_id: int) -> tuple[list[dict[str, Any]], bool]:
        recs = await features.use_feature("recommendations", guarded_fetch, product_id)
        degraded = not features.is_available("recommendations") or recs == _dicts(POPULAR)
        return recs, degraded

    async def record(order: dict[str, Any]) -> int:
        try:
            await db_breaker.acall(asyncio.to_thread, orders.put, order)
        except Exception:  # any database failure: keep the order locally
            await asyncio.to_thread(outbox.add, order)
            return 202
        return 201

    # Sync or on the monitor's own loop: nothing here may need the app's loop to answer.
    monitor.register("database", orders.ping, interval=1, timeout=1, critical=False)
    monitor.register(
        "recommendations", http_check(f"{recs_url}/healthz"), interval=1, timeout=1, critical=False
    )
    admin: list[Any] = []

    def start() -> None:
        loop = asyncio.get_running_loop()
        # A loop that answers nothing for 2 s, three times in a row: blocked (a restart fixes
        # that), not merely busy (a restart would only make the overload worse).
        monitor.register(
            "event-loop",
            event_loop_lag_check(loop, max_lag=2.0),
            interval=1,
            timeout=2.5,
            kind="liveness",
            failure_threshold=3,
        )
        monitor.start_monitoring()
        if admin_port is not None:
            admin.append(_serve_health_in_thread(monitor, admin_port))

    def stop() -> None:
        for server in admin:
            server.shutdown()
            server.server_close()
        monitor.stop_monitoring()

    # No /metrics here: on a port shared by several processes, a scrape would see one of them
    # at random (and prometheus-client would add a tenth to the start-up).
    health = health_app(monitor, manage_monitor=False, metrics=False)
    return recommend, record, [Mount("/", health)], start, stop


def _serve_health_in_thread(monitor: Any, port: int) -> Any:
    """Serve the health endpoints on 127.0.0.1:`port` from a daemon thread; return the server."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from selfheal.web import health_wsgi_app

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    app = health_wsgi_app(monitor, metrics=False, start_monitoring=False)
    server = make_server("127.0.0.1", port, app, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server


def _dicts(products: list[Product]) -> list[dict[str, Any]]:
    return [p.to_dict() for p in products]


class ServedBy:
    """ASGI middleware adding ``X-Shop-Pid`` to every answer (which process served it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"x-shop-pid", str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self.header]
            await send(message)

        await self.app(scope, receive, send_with_pid)


def _listen(port: int, *, shared: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def main() -> None:
    """Serve the shop on 127.0.0.1:$PORT, sharing the port with the other web processes."""
    port = int(os.environ.get("PORT", "8000"))
    if sys.argv[1:]:  # argparse only when asked: its import is a tenth of the start-up
        import argparse

        parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
        parser.add_argument("--port", type=int, default=port)
        port = parser.parse_args().port
    plain = os.environ.get("SHOP_PLAIN", "") == "1"
    admin = os.environ.get("SHOP_ADMIN_PORT")
    admin_port = int(admin) if admin else None
    app = build_app(
        os.environ.get("SHOP_DB", "sqlite:///shop.db"),
        os.environ.get("SHOP_OUTBOX", "outbox.db"),
        os.environ.get("SHOP_RECS_URL", "http://127.0.0.1:8001"),
        plain=plain,
        admin_port=None if plain else admin_port,
    )
    sockets = [_listen(port, shared=True)]
    if plain and admin_port is not None:  # the plain shop has no health endpoints
        sockets.append(_listen(admin_port, shared=False))
    config = uvicorn.Config(
        ServedBy(app), log_level="warning", access_log=False, timeout_graceful_shutdown=2
    )
    asyncio.run(uvicorn.Server(config).serve(sockets=sockets))


if __name__ == "__main__":
    main()
