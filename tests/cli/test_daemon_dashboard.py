"""The daemon serves the dashboard: a program killed outside the page shows restarted, live."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx

from cli_helpers import StartDaemon
from supervisor_helpers import PY, wait_until

CONFIG = """
[control]
state_dir = "state"

[programs.sleeper]
command = [{py}, "-c", "import time; time.sleep(600)"]
"""


def test_the_daemon_serves_a_live_dashboard(tmp_path: Path, start_daemon: StartDaemon) -> None:
    from playwright.sync_api import sync_playwright

    config = tmp_path / "selfheal.toml"
    config.write_text(CONFIG.format(py=json.dumps(PY)))
    start_daemon(config)
    control = json.loads((tmp_path / "state" / "control.json").read_text())
    base = f"{control['url'].rstrip('/')}/dashboard/"
    assert httpx.post(f"{base}api/programs/sleeper/restart").status_code == 401

    def pid() -> int | None:
        programs = httpx.get(f"{base}api/snapshot").json()["programs"]
        return programs[0]["pid"] if programs else None

    assert wait_until(lambda: pid() is not None, 20)
    first = pid()
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(base)
            row = page.locator('#programs tr[data-program="sleeper"]')
            row.wait_for()
            assert str(first) in row.inner_text()
            assert first is not None
            os.kill(first, signal.SIGKILL)  # outside the page
            page.wait_for_function(
                "(old) => { const r = document.querySelector("
                "'#programs tr[data-program=sleeper]'); return r && !r.innerText.includes(old)"
                " && r.innerText.includes('RUNNING'); }",
                arg=str(first),
                timeout=3000,  # the restart takes milliseconds; the rest is a loaded machine
            )
        finally:
            browser.close()
    assert errors == []
