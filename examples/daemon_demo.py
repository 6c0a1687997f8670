"""The daemon at work: `selfheal run` keeps two programs up, and a recovery rule proves a fix.

What happens (about ten seconds, everything on 127.0.0.1, all in a temporary directory):

1. `selfheal run` starts a web server (restarted by the supervisor itself) and an API server
   that the supervisor leaves down (``restart = "never"``): only a recovery rule brings it back.
2. The web server is killed with SIGKILL: the supervisor restarts it within milliseconds.
3. The API server is killed: the ``[[recovery]]`` rule restarts it, then verifies through its
   readiness probe before it calls the incident recovered.
4. The journal is read back with ``selfheal incidents``: every incident with its time to recover.
5. The daemon is stopped with SIGTERM: every program is stopped, nothing is left behind.

Run it with ``.venv/bin/python examples/daemon_demo.py`` (``make demo`` runs the shop demo).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
PY = sys.executable

CONFIG = """
[control]
state_dir = "state"

[programs.web]
command = [{py}, {web}]
env = {{ PORT = "{web_port}" }}
readiness = {{ http = "http://127.0.0.1:{web_port}/healthz", interval = 0.05 }}

[programs.api]
command = [{py}, {web}]
env = {{ PORT = "{api_port}" }}
restart = "never"
readiness = {{ http = "http://127.0.0.1:{api_port}/healthz", interval = 0.05 }}

[[recovery]]
name = "api went down"
on = "process.api.exited"
when = {{ "data.expected" = {{ ne = true }} }}
steps = [{{ restart = "{{subject}}" }}]
verify = {{ checks = ["api"], within = 10, interval = 0.05 }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def selfheal(*args: str) -> str:
    # Tables as wide as a terminal would give them, even when the output is piped.
    env = {**os.environ, "COLUMNS": os.environ.get("COLUMNS", "120")}
    out = subprocess.run(
        [PY, "-m", "selfheal", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env=env,
    )
    if out.returncode != 0:
        raise SystemExit(f"selfheal {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def processes(config: Path) -> dict[str, dict[str, Any]]:
    # The control API directly (what `selfheal status --json` asks), so polling is cheap.
    info = json.loads((config.parent / "state" / "control.json").read_text())
    body = httpx.get(f"{info['url']}/status", timeout=5).json()
    return {p["name"]: p for p in body["processes"]}


def wait_for(what: str, predicate: Any, timeout: float = 15.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.005)
    raise SystemExit(f"gave up waiting for {what}")


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="selfheal-demo-") as tmp:
        d = Path(tmp)
        config = d / "selfheal.toml"
        config.write_text(
            CONFIG.format(
                py=json.dumps(PY),
                web=json.dumps(str(HERE / "programs" / "web.py")),
                web_port=free_port(),
                api_port=free_port(),
            )
        )
        say(f"selfheal run {config.name}")
        err = (d / "daemon.log").open("wb")
        daemon = subprocess.Popen(
            [PY, "-m", "selfheal", "run", str(config)], cwd=d, stdout=err, stderr=err
        )
        try:
            control = d / "state" / "control.json"
            wait_for("the daemon", lambda: control.exists() or daemon.poll() is not None)
            if daemon.poll() is not None:
                raise SystemExit((d / "daemon.log").read_text())
            wait_for(
                "both programs to be ready",
                lambda: all(p["state"] == "RUNNING" for p in processes(config).values()),
            )
            print(selfheal("status", "-c", str(config)), end="")

            say("kill -9 web: the supervisor restarts it")
            old = processes(config)["web"]["pid"]
            os.kill(old, signal.SIGKILL)
            took = wait_for(
                "web to come back",
                lambda: processes(config)["web"]["pid"] not in (None, old),
            )
            new = processes(config)["web"]
            print(f"web: pid {old} killed, pid {new['pid']} started {took * 1000:.1f} ms later")
            print("   (as seen by polling the control API; the daemon learns of the exit through")
            print("    a pidfd, and bench/supervisor.py measures kill-to-fork precisely)")

            say("kill -9 api: the supervisor leaves it down, the recovery rule restarts it")
            old = processes(config)["api"]["pid"]
            os.kill(old, signal.SIGKILL)
            took = wait_for(
                "api to be restarted and verified",
                lambda: (
                    processes(config)["api"]["pid"] not in (None, old)
                    and processes(config)["api"]["state"] == "RUNNING"
                ),
            )
            print(f"api: restarted by the rule, ready {took * 1000:.0f} ms after the kill")
            wait_for(
                "the verified recovery in the journal",
                lambda: (
                    "recovery.api.succeeded"
                    in selfheal("events", "--json", "-c", str(config), "--type", "recovery.*")
                ),
            )
            for line in selfheal(
                "events", "--json", "-c", str(config), "--type", "recovery.*"
            ).splitlines():
                event = json.loads(line)
                data = event.get("data", {})
                detail = {
                    "recovery.api.started": f"rule {data.get('rule')!r}",
                    "recovery.api.succeeded": (
                        f"{', '.join(_checks(data)) or 'no checks'} "
                        f"(the recovery took {data.get('duration', 0) * 1000:.0f} ms)"
                    ),
                }.get(event["type"], "")
                print(f"   {event['type']:<26} {detail}")

            say("selfheal incidents: the journal of what happened")
            print(selfheal("incidents", "-c", str(config)), end="")
        finally:
            say("SIGTERM to the daemon: clean shutdown")
            try:
                pids = [p["pid"] for p in processes(config).values() if p["pid"]]
            except (OSError, ValueError, httpx.HTTPError):  # the daemon is gone already
                pids = []
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=30)
            err.close()
            left = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
            print(f"daemon exited with {code}; programs left running: {left or 'none'}")


def _checks(data: dict[str, Any]) -> list[str]:
    """Return what the last try of a recovery verified: ``check: status`` each."""
    tries = data.get("tries") or [{}]
    checks = tries[-1].get("checks") or {}
    if isinstance(checks, dict):
        return [f"verified {name}: {status}" for name, status in checks.items()]
    return [f"verified {c}" for c in checks]


if __name__ == "__main__":
    main()
