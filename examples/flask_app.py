"""The article's Flask health endpoint, done with selfheal: ``SelfHeal(app, monitor)``.

The article's ``/health`` view ran every check on every request, one after another, with no
timeout. Here the checks run in a background thread, each on its own interval and under its
own timeout, and ``/livez``, ``/readyz``, ``/healthz`` and ``/metrics`` answer from the latest
results. Run (Flask is not a selfheal dependency)::

    pip install flask gunicorn 'selfheal[server,redis,postgres]'
    flask --app examples.flask_app run --port 8000
    gunicorn -w 4 -b 127.0.0.1:8000 examples.flask_app:app

Then ``curl -i 127.0.0.1:8000/readyz`` or ``curl '127.0.0.1:8000/healthz?verbose'``.

Under gunicorn every worker runs its own monitor (4 workers: 4 schedules); with ``--preload``
each worker restarts the monitor's thread on its first request. For ``/metrics`` summed over
the workers, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before starting gunicorn.
See docs/health.md.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify

from selfheal.health import HealthMonitor
from selfheal.health.checks import http_check, postgres_check, redis_check
from selfheal.web import SelfHeal

app = Flask(__name__)
health = HealthMonitor()

# The article's three checks, with timeouts; the cache can fail without failing the service.
health.register(
    "database",
    postgres_check(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")),
    interval=30,
    timeout=2,
)
health.register(
    "redis_cache",
    redis_check(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")),
    interval=60,
    timeout=1,
    critical=False,
)
health.register(
    "payment_api",
    http_check(os.environ.get("PAYMENT_API_URL", "http://127.0.0.1:8001/health")),
    interval=120,
    timeout=3,
)

# Serves the endpoints and starts the monitor's thread (stopped at exit). Details (check
# output) only with `Authorization: Bearer $HEALTH_TOKEN`.
SelfHeal(app, health, token=os.environ.get("HEALTH_TOKEN") or None)


@app.route("/")
def index() -> object:
    # The article's FeatureManager idea: read the cached status, never run a check here.
    return jsonify(recommendations=health.is_healthy())
