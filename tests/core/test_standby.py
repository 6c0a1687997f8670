"""``python -m selfheal._standby``: preload, wait for the go line, run the program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from selfheal._standby import go_message

SCRIPT = """\
import json, os, sys
print(json.dumps({
    "name": __name__,
    "argv": sys.argv,
    "path0": sys.path[0],
    "cwd": os.getcwd(),
    "env": os.environ.get("INSTANCE"),
    "preloaded": "decimal" in sys.modules,
    "stdin": sys.stdin.read(),
}))
sys.exit(int(os.environ.get("CODE", "0")))
"""


def _standby(tmp_path: Path, *program: str, preload: str = "decimal") -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "selfheal._standby", "--preload", preload, "--", *program],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={**os.environ, "INSTANCE": "standby's own"},
    )


def test_the_go_line_runs_the_script_as_main_with_the_instances_environment(
    tmp_path: Path,
) -> None:
    script = tmp_path / "app" / "prog.py"
    script.parent.mkdir()
    script.write_text(SCRIPT)
    proc = _standby(tmp_path, str(script), "--flag", "x")
    env = {**os.environ, "INSTANCE": "web:1", "CODE": "3"}
    out, err = proc.communicate(go_message(env, cwd=str(script.parent)), timeout=30)
    assert proc.returncode == 3, err.decode()
    seen = json.loads(out)
    assert seen["name"] == "__main__"
    assert seen["argv"] == [str(script), "--flag", "x"]
    assert seen["path0"] == str(script.parent)
    assert seen["cwd"] == str(script.parent)
    assert seen["env"] == "web:1"
    assert seen["preloaded"] is True
    assert seen["stdin"] == ""  # stdin is /dev/null once the program runs


def test_a_module_runs_with_dash_m(tmp_path: Path) -> None:
    (tmp_path / "progmod.py").write_text(SCRIPT)
    proc = _standby(tmp_path, "-m", "progmod", "a")
    out, err = proc.communicate(go_message({**os.environ, "INSTANCE": "i"}), timeout=30)
    assert proc.returncode == 0, err.decode()
    seen = json.loads(out)
    assert seen["name"] == "__main__"
    assert seen["argv"][1:] == ["a"]
    assert seen["argv"][0].endswith("progmod.py")


def test_end_of_input_without_a_line_runs_nothing(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text("raise SystemExit('must not run')\n")
    proc = _standby(tmp_path, str(script))
    out, err = proc.communicate(b"", timeout=30)
    assert (proc.returncode, out, err) == (0, b"", b"")


def test_a_failing_preload_fails_before_waiting(tmp_path: Path) -> None:
    proc = _standby(tmp_path, "prog.py", preload="no_such_module_here")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert b"No module named 'no_such_module_here'" in err
