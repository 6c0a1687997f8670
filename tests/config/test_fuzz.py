"""Generated hostile ``selfheal.toml`` files: ``check`` answers each in one clear way.

Exit status 2 with ``error: FILE: N problem(s)`` lines, or 0 for a valid file, never a
traceback or a hang; and a file that passes is compiled into the daemon's plan and its
daemon built (not started) without an error, since what passes ``check`` must not crash
``run``. The files come from `config_strategies`; ``bench/fuzz_config.py`` runs the same
strategies as a long campaign. A few hostile files also go through a real ``selfheal run``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from cli_helpers import cli
from config_strategies import config_texts
from selfheal.cli.daemon import Daemon
from selfheal.runtime import compile_plan
from supervisor_helpers import PY


def judge(text: str, directory: Path) -> str:
    """Check `text` as a config file in `directory`; return ``"ok"`` or ``"error"``.

    Raises:
        AssertionError: For a traceback, an unexpected exit status or an unclear error, or a
            valid file whose plan or daemon cannot be built.
    """
    path = directory / "selfheal.toml"
    path.write_text(text, encoding="utf-8")
    code, out = cli("check", str(path))
    assert "Traceback" not in out, out[-2000:]
    assert code in (0, 2), out[-2000:]
    if code == 2:
        assert out.startswith("error: "), out[:500]
        assert "problem(s)" in out, out[:500]
        assert len(out) < 30_000, "errors are shortened"
        return "error"
    Daemon(compile_plan(path))  # built, not started: what passes check must not crash run
    return "ok"


@settings(
    max_examples=int(os.environ.get("SELFHEAL_FUZZ_EXAMPLES", "60")),
    deadline=None,  # a check takes milliseconds, or seconds under load: never a verdict
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=config_texts())
def test_check_answers_every_generated_file_clearly(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        judge(text, Path(tmp))


HOSTILE = {
    "nested-tables": "x = " + "{a = " * 330 + "1" + "}" * 330 + "\n",
    "nested-arrays": "x = " + "[" * 500 + "1" + "]" * 500 + "\n",
    "inf-watchdog": "[programs.web]\ncommand = ['sleep', '60']\nwatchdog_sec = inf\n",
    "nul-host": '[control]\nhost = "127.0.0.1\\u0000"\n',
    "bidi-host": '[control]\nhost = "\\u202e\\u200b"\n',
    "huge-numprocs": "[programs.web]\ncommand = ['sleep', '60']\nnumprocs = 1_000_000_000_000\n",
    "huge-max-rows": "[journal]\nmax_rows = 1_000_000_000_000_000_000_000_000_000\n",
    "spaced-token": '[control]\ntoken = " aaaaaaaaaaaaaaaaaaaa "\n',
    "long-command": "[programs.web]\ncommand = '" + "x" * 100_000 + "'\n",
    "cycle": "".join(
        f"[programs.p{i}]\ncommand = ['true']\ndepends_on = ['p{(i + 1) % 300}']\n"
        for i in range(300)
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_run_refuses_a_hostile_file_with_one_clear_error(tmp_path: Path, name: str) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(HOSTILE[name])
    run = subprocess.run(
        [PY, "-m", "selfheal", "run", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.startswith("error: "), run.stderr[:500]
    assert "Traceback" not in run.stderr
    assert len(run.stderr) < 30_000
