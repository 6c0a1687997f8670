"""``selfheal status`` prints what programs say as text: brackets are never markup.

A program's sd_notify ``STATUS=`` and the reason of a failed spawn (``[Errno 2] ...``) are
written by others; read as rich markup, ``[/bold]`` crashed the command and ``[Errno 2]``
vanished from the line.
"""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import StartDaemon, cli
from supervisor_helpers import PY, wait_until

NOTIFIER = (
    "import os, socket, time; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
    "s.sendto(b'READY=1\\nSTATUS=[/bold] [red]half[/red] done', os.environ['NOTIFY_SOCKET']); "
    "time.sleep(120)"
)


def test_status_shows_program_text_with_its_brackets(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(
        '[control]\nstate_dir = "state"\n'
        f"[programs.notes]\ncommand = [{json.dumps(PY)}, '-c', {json.dumps(NOTIFIER)}]\n"
        'ready = "notify"\n'
        '[programs.missing]\ncommand = ["/nonexistent/selfheal-test-program"]\n'
        "backoff_initial = 60\nbackoff_max = 60\n"
    )
    start_daemon(config)

    def states() -> dict[str, dict[str, object]]:
        code, out = cli("status", "--json", "-c", str(config))
        assert code == 0, out
        return {p["name"]: p for p in json.loads(out)["processes"]}

    assert wait_until(
        lambda: (
            (s := states())["notes"]["state"] == "RUNNING"
            and s["notes"].get("status")
            and s["missing"]["state"] != "STARTING"
        ),
        20,
    )
    code, out = cli("status", "-c", str(config))
    assert code == 0, out
    assert "Traceback" not in out
    assert "[/bold] [red]half[/red] done" in "".join(out.split("\u2502"))  # table borders
    assert "[Errno 2]" in out
