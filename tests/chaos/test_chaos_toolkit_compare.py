"""The same Chaos Toolkit experiment file, run by ``chaos run`` and by ``selfheal chaos run``.

A small HTTP service on 127.0.0.1 can be broken and fixed over HTTP. The experiment checks it
with all three providers (http, process, python) and several tolerance kinds (status code,
JSONPath, regex, exact string), and its method either breaks it or does nothing. Both tools
must agree on the outcome; they differ, on purpose, in one exit code: when the steady state
already fails before the method, Chaos Toolkit exits 0 and we exit 3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parents[1]  # tests/, where chaos_probes.py lives
CHAOS = Path(sys.executable).parent / "chaos"

SERVER = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state = {"broken": False}

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if state["broken"]:
            self._send(500, {"status": "broken", "load": 0.9})
        else:
            self._send(200, {"status": "ok", "load": 0.2})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path == "/break":
            state["broken"] = True
        elif self.path == "/fix":
            state["broken"] = False
        self._send(200, {"broken": state["broken"]})

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


PRINT_STATUS = "import chaos_probes, sys; print(chaos_probes.health_status(sys.argv[1]))"


def _probe(name: str, provider: dict[str, Any], tolerance: Any) -> dict[str, Any]:
    return {"type": "probe", "name": name, "provider": provider, "tolerance": tolerance}


def _http(path: str, method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "url": "${base}" + path, "method": method, "timeout": 3}


EXPERIMENT: dict[str, Any] = {
    "version": "1.0.0",
    "title": "The service stays healthy",
    "description": "Compared between Chaos Toolkit and selfheal",
    "tags": ["compare"],
    "configuration": {"base": "http://127.0.0.1:1", "action": "noop"},
    "steady-state-hypothesis": {
        "title": "healthy",
        "probes": [
            _probe("answers 200", _http("/health"), 200),
            _probe(
                "reports ok",
                _http("/health"),
                {"type": "jsonpath", "path": "$.status", "expect": "ok", "target": "body"},
            ),
            _probe(
                "python sees ok",
                {
                    "type": "python",
                    "module": "chaos_probes",
                    "func": "health_status",
                    "arguments": {"url": "${base}/health"},
                },
                "ok",
            ),
            _probe(
                "process sees ok",
                {
                    "type": "process",
                    "path": sys.executable,
                    "arguments": ["-c", PRINT_STATUS, "${base}/health"],
                },
                {"type": "regex", "pattern": "^ok$", "target": "stdout"},
            ),
        ],
    },
    "method": [
        {"type": "action", "name": "maybe break it", "provider": _http("/${action}", "POST")},
        {"type": "probe", "name": "look", "provider": _http("/health")},
    ],
    "rollbacks": [{"type": "action", "name": "fix it", "provider": _http("/fix", "POST")}],
}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _post(url: str) -> None:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=5) as response:
        response.read()


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}


def run_chaostoolkit(experiment: Path, tmp: Path, **variables: str) -> tuple[int, str]:
    """Run Chaos Toolkit; return its exit code and the outcome its journal shows, in our terms."""
    assert CHAOS.exists(), "the dev extra installs chaostoolkit"
    journal = tmp / "ctk-journal.json"
    args = [str(CHAOS), "--no-version-check", "--no-log-file", "--settings", str(tmp / "s.yaml")]
    args += ["run", "--journal-path", str(journal)]
    for key, value in variables.items():
        args += ["--var", f"{key}={value}"]
    proc = subprocess.run(
        [*args, str(experiment)],
        env=_env(),
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    data = json.loads(journal.read_text())
    before = data["steady_states"]["before"]
    if before is not None and not before["steady_state_met"]:
        outcome = "not_met"
    elif data["deviated"]:
        outcome = "deviated"
    else:
        outcome = "held" if data["status"] == "completed" else str(data["status"])
    return proc.returncode, outcome


def selfheal_json(experiment: Path, tmp: Path, **variables: str) -> tuple[int, dict[str, Any], str]:
    """Run ``selfheal chaos run --json``; return its exit code, its record and its stderr."""
    args = [sys.executable, "-m", "selfheal", "chaos", "run", "--json", str(experiment)]
    for key, value in variables.items():
        args += ["--var", f"{key}={value}"]
    proc = subprocess.run(
        args, env=_env(), cwd=tmp, capture_output=True, text=True, timeout=120, check=False
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def run_selfheal(experiment: Path, tmp: Path, **variables: str) -> tuple[int, str]:
    code, record, _ = selfheal_json(experiment, tmp, **variables)
    return code, record["outcome"]


def _write(tmp: Path, fmt: str) -> Path:
    path = tmp / f"experiment.{fmt}"
    text = json.dumps(EXPERIMENT, indent=2) if fmt == "json" else yaml.safe_dump(EXPERIMENT)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("fmt", "action", "broken_before", "ctk_exit", "our_exit", "outcome"),
    [
        ("json", "noop", False, 0, 0, "held"),
        ("json", "break", False, 1, 1, "deviated"),
        ("yaml", "break", False, 1, 1, "deviated"),
        # Chaos Toolkit exits 0 here: the steady state failed, nothing was tried.
        ("json", "noop", True, 0, 3, "not_met"),
    ],
)
def test_same_file_same_outcome(
    service: str,
    tmp_path: Path,
    fmt: str,
    action: str,
    broken_before: bool,
    ctk_exit: int,
    our_exit: int,
    outcome: str,
) -> None:
    experiment = _write(tmp_path, fmt)
    results = {}
    for name, runner in (("chaostoolkit", run_chaostoolkit), ("selfheal", run_selfheal)):
        _post(f"{service}/{'break' if broken_before else 'fix'}")
        results[name] = runner(experiment, tmp_path, base=service, action=action)
    assert results["chaostoolkit"] == (ctk_exit, outcome)
    assert results["selfheal"] == (our_exit, outcome)


def _python(func: str, **arguments: str) -> dict[str, Any]:
    return {"type": "python", "module": "chaos_probes", "func": func, "arguments": arguments}


def _leaving(tmp: Path, how: str) -> Path:
    experiment = {
        "title": f"an extension calls exit_{how}",
        "description": "chaoslib.exit",
        "method": [
            {"type": "action", "name": "inject", "provider": _python("touch", path="fault")},
            {"type": "action", "name": "leave", "provider": _python("leave", how=how)},
            {"type": "action", "name": "never", "provider": _python("touch", path="too-far")},
        ],
        "rollbacks": [
            {"type": "action", "name": "roll back", "provider": _python("touch", path="rolled")}
        ],
    }
    path = tmp / f"leave-{how}.json"
    path.write_text(json.dumps(experiment))
    return path


@pytest.mark.parametrize("how", ["gracefully", "ungracefully"])
def test_chaoslib_exit_ends_the_run_and_we_always_roll_back(tmp_path: Path, how: str) -> None:
    # Extensions end a run with chaoslib.exit (SIGUSR1, SIGUSR2). Chaos Toolkit's default
    # rollback strategy then skips the rollbacks of the interrupted run; ours ends the method at
    # once and rolls back: a fault must not outlive its run.
    experiment = _leaving(tmp_path, how)
    ctk_exit, ctk_outcome = run_chaostoolkit(experiment, tmp_path)
    assert (ctk_exit, ctk_outcome) == (1, "interrupted")
    assert (tmp_path / "fault").exists()
    assert not (tmp_path / "rolled").exists()
    for name in ("fault", "rolled"):
        (tmp_path / name).unlink(missing_ok=True)
    # The activities' prints go to stderr: stdout holds the record alone.
    code, record, stderr = selfheal_json(experiment, tmp_path)
    assert code == 2, stderr
    assert record["outcome"] == "aborted"
    assert record["interrupted_by"] == {"gracefully": "SIGUSR1", "ungracefully": "SIGUSR2"}[how]
    assert f"exit_{how}" in record["reason"]
    assert [r["status"] for r in record["method"]] == ["succeeded", "interrupted"]
    assert (tmp_path / "rolled").exists()
    assert not (tmp_path / "too-far").exists()
    assert "touched" in stderr


def test_an_empty_method_checks_only_the_steady_state_in_both(service: str, tmp_path: Path) -> None:
    experiment = tmp_path / "steady-only.json"
    experiment.write_text(json.dumps({**EXPERIMENT, "method": [], "rollbacks": []}))
    _post(f"{service}/fix")
    assert run_chaostoolkit(experiment, tmp_path, base=service) == (0, "held")
    assert run_selfheal(experiment, tmp_path, base=service) == (0, "held")
