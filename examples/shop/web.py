"""The shop's web app: search, product pages with recommendations, checkout.

Run by the supervisor as several processes on one port (``SO_REUSEPORT``), so a killed or
hung process costs only the requests it held. Each dependency is guarded where it is used:

- recommendations: a timeout and a circuit breaker, with ``FeatureManager`` falling back to
  the most popular products while the service is slow, failing or its breaker is open;
- orders: a circuit breaker around the database; while it is open or the write fails, the
  order goes to the local outbox (durable) and the client gets 202, never a lost order;
- health: ``/livez`` (this process's event loop) and ``/readyz`` (dependencies as warnings, so
  a database outage does not take every web process out of rotation at once).

Environment: ``SHOP_DB`` (``sqlite:///shop.db`` or ``postgresql://...``), ``SHOP_OUTBOX``
(a SQLite file), ``SHOP_RECS_URL`` (the recommendation service), ``PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from shopdata import Outbox, Product, catalog, open_orders, popular, search
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import selfheal
from selfheal.health.checks import event_loop_lag_check
from selfheal.web import health_app

PRODUCTS = catalog()
BY_ID = {p.id: p for p in PRODUCTS}
POPULAR = popular(PRODUCTS)


def build_app(db_url: str, outbox_path: str, recs_url: str) -> Starlette:
    """Return the shop's ASGI app."""
    orders = open_orders(db_url)
    outbox = Outbox(outbox_path)
    http = httpx.AsyncClient(base_url=recs_url, timeout=1.0)
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
        fallback_func=lambda product_id: [p.to_dict() for p in POPULAR],
        fallback_on=(Exception,),
    )

    @recs_breaker
    @selfheal.Timeout(0.3, name="recommendations")
    async def fetch_recommendations(product_id: int) -> list[dict[str, Any]]:
        response = await http.get("/recommend", params={"product_id": product_id})
        response.raise_for_status()
        return list(response.json()["products"])

    async def ping_db() -> None:
        await asyncio.to_thread(orders.ping)

    async def ping_recs() -> None:
        (await http.get("/healthz", timeout=0.5)).raise_for_status()

    monitor.register("event-loop", event_loop_lag_check(max_lag=2.0), interval=1, kind="liveness")
    monitor.register("database", ping_db, interval=1, timeout=1, critical=False)
    monitor.register("recommendations", ping_recs, interval=1, timeout=1, critical=False)

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
        recs = await features.use_feature("recommendations", fetch_recommendations, item.id)
        degraded = not features.is_available("recommendations") or recs == _dicts(POPULAR)
        return JSONResponse(
            {"product": item.to_dict(), "recommendations": recs, "degraded": degraded}
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
        try:
            await db_breaker.acall(asyncio.to_thread, orders.put, order)
        except Exception:  # any database failure: keep the order locally
            await asyncio.to_thread(outbox.add, order)
            return JSONResponse({"order_id": order["order_id"], "status": "queued"}, 202)
        return JSONResponse({"order_id": order["order_id"], "status": "recorded"}, 201)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await monitor.start()
        try:
            yield
        finally:
            await monitor.stop()
            await http.aclose()

    return Starlette(
        routes=[
            Route("/", home),
            Route("/search", find),
            Route("/product/{product_id}", product),
            Route("/checkout", checkout, methods=["POST"]),
            Mount("/", health_app(monitor, manage_monitor=False)),
        ],
        lifespan=lifespan,
    )


def _dicts(products: list[Product]) -> list[dict[str, Any]]:
    return [p.to_dict() for p in products]


def main() -> None:
    """Serve the shop on 127.0.0.1:$PORT, sharing the port with the other web processes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args()
    app = build_app(
        os.environ.get("SHOP_DB", "sqlite:///shop.db"),
        os.environ.get("SHOP_OUTBOX", "outbox.db"),
        os.environ.get("SHOP_RECS_URL", "http://127.0.0.1:8001"),
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
