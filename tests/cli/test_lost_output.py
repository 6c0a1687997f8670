"""Program output the daemon cannot write (a full disk, a file size limit) is counted.

The daemon runs under ``prlimit --fsize``: past that size every write of a log file fails
(EFBIG), as on a full disk. The output is still drained (the program never blocks on its
pipe), its last lines are still kept for ``status`` and the ``.exited`` events, and the bytes
that never reached the file are counted in ``output_lost``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_helpers import RunningDaemon
from selfheal.cli._client import connect
from supervisor_helpers import PY, wait_until

PROGRAM = (
    "import sys, time\n"
    "for i in range(3000):\n"
    "    sys.stdout.write(f'{i:06d} ' + 'x' * 93 + '\\n')\n"
    "sys.stdout.write('all written\\n'); sys.stdout.flush()\n"
    "time.sleep(120)\n"
)


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
def test_output_that_cannot_be_written_is_counted_and_its_tail_kept(tmp_path: Path) -> None:
    (tmp_path / "chatty.py").write_text(PROGRAM)
    config = tmp_path / "selfheal.toml"
    config.write_text(
        '[control]\nstate_dir = "state"\n[journal]\nenabled = false\n'
        f"[programs.chatty]\ncommand = [{json.dumps(PY)}, 'chatty.py']\n"
        "log_max_bytes = 10_000_000\n"
    )
    limit = 64 * 1024
    with RunningDaemon(config, prefix=("prlimit", f"--fsize={limit}")) as daemon:
        assert wait_until((tmp_path / "state" / "control.json").exists, 30)

        def chatty() -> dict[str, object]:
            _, body = connect(str(config), None).request("GET", "/status", params={"tail": 1})
            (p,) = body["processes"]
            return dict(p)

        assert wait_until(lambda: int(str(chatty().get("output_lost") or 0)) > 0, 20)
        assert wait_until(lambda: chatty()["tail"] == ["all written"], 20)
        p = chatty()
        assert p["state"] == "RUNNING"
        written = (tmp_path / "state" / "logs" / "chatty.log").stat().st_size
        assert written <= limit
        assert written + int(str(p["output_lost"])) == 3000 * 101 + len("all written\n")
    assert "cannot write the output of chatty" in daemon.err
