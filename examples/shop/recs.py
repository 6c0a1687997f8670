"""The shop's recommendation service: products often bought with a given one.

A separate process so that it can be slow or fail on its own (chaos stops it with SIGSTOP,
kills it, or puts latency in front of it with the fault proxy); the web app then falls back to
the popular products through ``FeatureManager``.
"""

from __future__ import annotations

import argparse
import os
import random

import uvicorn
from shopdata import catalog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PRODUCTS = catalog()


async def recommend(request: Request) -> JSONResponse:
    """Return five products related to ``product_id`` (same kind first)."""
    try:
        product_id = int(request.query_params["product_id"])
    except (KeyError, ValueError):
        return JSONResponse({"error": "give ?product_id=N"}, status_code=400)
    kind = next((p.kind for p in PRODUCTS if p.id == product_id), None)
    rng = random.Random(product_id)
    same = [p for p in PRODUCTS if p.kind == kind and p.id != product_id]
    picks = rng.sample(same, min(5, len(same)))
    return JSONResponse({"product_id": product_id, "products": [p.to_dict() for p in picks]})


async def healthz(request: Request) -> JSONResponse:
    """Answer while the process serves."""
    return JSONResponse({"status": "pass"})


app = Starlette(routes=[Route("/recommend", recommend), Route("/healthz", healthz)])


def main() -> None:
    """Serve on 127.0.0.1:$PORT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8001")))
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
