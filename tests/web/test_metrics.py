"""Prometheus metrics of the health monitor, read back with prometheus-client's own parser."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from health_helpers import HealthAppSetup


@pytest.mark.anyio
async def test_metrics_parse_with_prometheus_parser(
    setup: HealthAppSetup, client: httpx.AsyncClient
) -> None:
    setup.db.fail = "down"
    await setup.refresh()
    setup.db.fail = None
    await setup.refresh()
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    status = {
        (s.labels["check"], s.labels["status"]): s.value
        for s in families["selfheal_health_check_status"].samples
    }
    assert status[("db", "pass")] == 1
    assert status[("db", "fail")] == 0
    assert sum(v for (check, _), v in status.items() if check == "cache") == 1
    counts = {
        s.labels["check"]: s.value
        for s in families["selfheal_health_check_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert counts == {"db": 3, "cache": 3, "loop": 3}  # the fixture ran each once
    transitions = {
        (s.labels["from_status"], s.labels["to_status"]): s.value
        for s in families["selfheal_health_check_transitions"].samples
        if s.name.endswith("_total") and s.labels["check"] == "db"
    }
    # unknown -> pass (setup), pass -> fail, fail -> pass
    assert transitions == {("unknown", "pass"): 1, ("pass", "fail"): 1, ("fail", "pass"): 1}
    runs = {
        (s.labels["check"], s.labels["result"]): s.value
        for s in families["selfheal_health_check_runs"].samples
        if s.name.endswith("_total")
    }
    assert runs[("db", "failed")] == 1
    probes = {s.labels["probe"]: s.value for s in families["selfheal_health_probe_status"].samples}
    assert probes == {"livez": 1, "readyz": 1, "healthz": 1}
