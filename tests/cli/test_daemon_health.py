"""``selfheal run`` with a ``[health]`` section: the daemon's own /livez /readyz /healthz and
/metrics over real HTTP, and a recovery rule verified by a named health check.

A real HTTP server is supervised with ``restart = "never"`` (only the rule restarts it); the
``web-http`` check requests it. Killing it fails the check, the rule restarts the program and
verifies through ``web-http``, and the metrics count it all.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli_helpers import StartDaemon, cli
from health_helpers import free_port
from supervisor_helpers import PY, wait_until

CONFIG = """
[control]
state_dir = "state"

[programs.web]
command = [{py}, "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
restart = "never"
readiness = {{ tcp = "127.0.0.1:{port}", interval = 0.05 }}

[health.checks.web-http]
http = "http://127.0.0.1:{port}/"
interval = 0.5
timeout = 3

[health.checks.self]
command = ["true"]
kind = "liveness"
interval = 1
timeout = 5

[[recovery]]
on = "process.web.exited"
when = {{ "data.expected" = {{ ne = true }} }}
steps = [{{ restart = "{{subject}}" }}]
verify = {{ checks = ["web-http"], within = 15, interval = 0.1 }}
cooldown = 0.1
"""


@pytest.fixture
def daemon(tmp_path: Path, start_daemon: StartDaemon) -> tuple[Path, str]:
    config = tmp_path / "selfheal.toml"
    config.write_text(CONFIG.format(py=json.dumps(PY), port=free_port()))
    start_daemon(config)
    control = json.loads((tmp_path / "state" / "control.json").read_text())
    return config, str(control["url"])


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=5)


def metrics(url: str) -> dict[str, float]:
    """Return every sample of ``/metrics`` as ``name{labels}`` -> value."""
    response = get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def status_of(url: str, probe: str) -> tuple[int, dict[str, Any]]:
    response = get(f"{url}/{probe}")
    return response.status_code, response.json()


def test_health_endpoints_metrics_and_a_rule_verified_by_a_health_check(
    daemon: tuple[Path, str],
) -> None:
    config, url = daemon
    assert wait_until(lambda: status_of(url, "readyz")[0] == 200, 20)
    code, body = status_of(url, "healthz")
    assert code == 200
    assert body["status"] == "pass"
    verbose = get(f"{url}/healthz?verbose").text
    assert "[+]web-http ok" in verbose
    assert "[+]self ok" in verbose
    assert status_of(url, "livez")[0] == 200
    assert get(f"{url}/readyz/web-http").status_code == 200
    # Statuses are open to everyone; changing state still needs the token.
    assert httpx.post(f"{url}/programs/web/restart", timeout=5).status_code == 401

    code, out = cli("status", "--json", "-c", str(config))
    assert code == 0, out
    (web,) = json.loads(out)["processes"]
    os.kill(web["pid"], signal.SIGKILL)

    def recovered() -> bool:
        code, out = cli("events", "--json", "--config", str(config), "--type", "recovery.*")
        return code == 0 and "recovery.web.succeeded" in out

    assert wait_until(recovered, 30)
    code, out = cli("events", "--json", "--config", str(config), "--type", "recovery.*")
    done = [json.loads(line) for line in out.splitlines()][-1]
    assert done["type"] == "recovery.web.succeeded"
    assert done["data"]["tries"][-1]["checks"] == {"web-http": "pass"}
    assert wait_until(lambda: status_of(url, "readyz")[0] == 200, 20)

    def counted() -> dict[str, float] | None:
        m = metrics(url)
        return m if m.get("selfheal_incidents_open{}") == 0.0 else None

    assert wait_until(lambda: counted() is not None, 20), metrics(url)
    m = counted()
    assert m is not None
    assert m["selfheal_program_state{instance=web,program=web,state=RUNNING}"] == 1.0
    assert m["selfheal_program_state{instance=web,program=web,state=BACKOFF}"] == 0.0
    assert m["selfheal_program_exits_total{cause=signal,program=web}"] == 1.0
    assert m["selfheal_program_restarts_total{program=web}"] == 1.0
    assert m["selfheal_recoveries_total{outcome=succeeded,subject=web}"] == 1.0
    assert m["selfheal_time_to_recover_seconds_count{subject=web}"] == 1.0
    assert m["selfheal_journal_dropped_events_total{}"] == 0.0
    assert m["selfheal_health_check_runs_total{check=web-http,result=ok}"] >= 1.0
    assert m["selfheal_health_check_status{check=self,kind=liveness,status=pass}"] == 1.0
    assert m["selfheal_program_uptime_seconds{instance=web,program=web}"] >= 0.0
    for name in m:
        assert name.startswith("selfheal_"), name


def test_without_health_checks_the_endpoints_still_answer(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text('[control]\nstate_dir = "state"\n')
    start_daemon(config)
    url = json.loads((tmp_path / "state" / "control.json").read_text())["url"]
    assert get(f"{url}/livez").status_code == 200
    assert get(f"{url}/healthz").json()["status"] == "pass"
    m = metrics(url)
    assert m["selfheal_incidents_open{}"] == 0.0


def test_where_status_needs_the_token_metrics_and_the_dashboard_data_do_too(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    # As when other machines may reach the API: nothing about the programs without the token,
    # but load balancers still get the health endpoints' verdicts.
    config = tmp_path / "selfheal.toml"
    config.write_text(
        '[control]\nstate_dir = "state"\nstatus_requires_token = true\n'
        f'[programs.web]\ncommand = [{json.dumps(PY)}, "-c", "import time; time.sleep(60)"]\n'
    )
    start_daemon(config)
    control = json.loads((tmp_path / "state" / "control.json").read_text())
    url, token = control["url"], Path(control["token_file"]).read_text()
    good = {"Authorization": f"Bearer {token}"}
    for path in ("/status", "/metrics", "/dashboard/api/snapshot"):
        assert get(f"{url}{path}").status_code == 401, path
        assert httpx.get(f"{url}{path}", headers=good, timeout=5).status_code == 200, path
    with httpx.stream("GET", f"{url}/dashboard/api/stream", timeout=5) as refused:
        assert refused.status_code == 401
    assert get(f"{url}/livez").status_code == 200
    assert get(f"{url}/dashboard/").status_code == 200  # the page, which asks for the token
    snapshot = httpx.get(f"{url}/dashboard/api/snapshot", headers=good, timeout=5).json()
    assert [p["name"] for p in snapshot["programs"]] == ["web"]
