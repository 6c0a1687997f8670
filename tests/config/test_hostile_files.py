"""Hostile config files: what is not a file, too big, too deep or too long gets one clear line.

``selfheal check`` (in-process, as a person types it) and a real ``selfheal run`` must answer
each with exit status 2 and a sentence, never a traceback, a hang or a MemoryError.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cli_helpers import RunningDaemon, cli
from selfheal.config import MAX_CONFIG_BYTES, load_config
from selfheal.errors import ConfigError
from supervisor_helpers import PY, wait_until


def _check(path: Path | str) -> tuple[int, str]:
    code, out = cli("check", str(path))
    assert "Traceback" not in out, out
    return code, out


@pytest.mark.timeout(10)
def test_a_fifo_is_refused_at_once_instead_of_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "selfheal.toml"
    os.mkfifo(fifo)
    code, out = _check(fifo)
    assert code == 2
    assert "not a regular file" in out


def test_a_device_is_refused_before_a_byte_is_read() -> None:
    code, out = _check("/dev/zero")
    assert code == 2
    assert "not a regular file" in out


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path)


def test_a_file_over_the_size_limit_is_refused_with_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "selfheal.toml"
    big.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    code, out = _check(big)
    assert code == 2
    assert "too large" in out
    assert "1 MiB" in out


def test_an_included_fifo_is_refused_too(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "more.toml")
    (tmp_path / "selfheal.toml").write_text('include = ["*.toml"]\n')
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path / "selfheal.toml")


@pytest.mark.parametrize(
    "value",
    [
        "{a = " * 330 + "1" + "}" * 330,
        "[" * 500 + "1" + "]" * 500,
        "{a = " * 40 + "1" + "}" * 40,
    ],
    ids=["inline-tables-330", "arrays-500", "inline-tables-40"],
)
def test_deep_nesting_is_an_error_naming_the_key(tmp_path: Path, value: str) -> None:
    path = tmp_path / "selfheal.toml"
    path.write_text(f"[programs.web]\ncommand = ['x']\nenv = {value}\n")
    code, out = _check(path)
    assert code == 2
    assert "nested" in out
    assert "programs.web.env" in out


def _chain(n: int, *, autostart: bool = True) -> str:
    lines = ["[control]\nstate_dir = 'state'\n"]
    for i in range(n):
        deps = f"depends_on = ['p{i + 1}']\n" if i < n - 1 else ""
        auto = "" if autostart else "autostart = false\n"
        lines.append(f"[programs.p{i}]\ncommand = ['sleep', '60']\n{auto}{deps}")
    return "".join(lines)


def test_a_long_dependency_chain_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "selfheal.toml"
    path.write_text(_chain(1000))
    code, out = _check(path)
    assert code == 0, out
    assert "1000 program(s)" in out


def test_a_long_dependency_cycle_is_found(tmp_path: Path) -> None:
    path = tmp_path / "selfheal.toml"
    text = _chain(1000).replace("[programs.p999]\n", "[programs.p999]\ndepends_on = ['p0']\n")
    path.write_text(text)
    code, out = _check(path)
    assert code == 2
    assert "dependency cycle: p0 -> p1 -> p2" in out
    assert len(out) < 2000, "the cycle is named, not printed whole"


def test_a_long_value_is_not_echoed_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "selfheal.toml"
    long = "x" * 100_000
    path.write_text(f"[programs.web]\ncommand = '{long} {long}'\n")
    code, out = _check(path)
    assert code == 2
    assert "programs.web.command" in out
    assert len(out) < 2000


def test_forty_thousand_problems_are_counted_located_and_not_all_printed(
    tmp_path: Path,
) -> None:
    # Each issue's line was found by scanning the whole file: 40,000 scans of 40,000 lines.
    path = tmp_path / "selfheal.toml"
    path.write_text("".join(f"[programs.p{i}]\nrestart = 'x'\n" for i in range(20_000)))
    code, out = _check(path)
    assert code == 2
    assert "40000 problem(s)" in out
    assert "line 4: programs.p1.restart" in out
    assert "... and 39950 more" in out
    assert len(out.splitlines()) < 100


def test_keys_are_printed_without_terminal_control_characters(tmp_path: Path) -> None:
    path = tmp_path / "selfheal.toml"
    path.write_text('[control]\n"\\u001bc\\u202e" = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    # Not the CLI's output: click strips escapes when it does not write to a terminal.
    message = str(info.value)
    assert "\x1b" not in message
    assert "\u202e" not in message
    assert "control.\\x1bc\\u202e: unknown key" in message


@pytest.mark.slow
def test_run_refuses_a_device_and_stops_a_long_chain_without_recursion(tmp_path: Path) -> None:
    run = subprocess.run(
        [PY, "-m", "selfheal", "run", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 2
    assert "not a regular file" in run.stderr
    assert "Traceback" not in run.stderr
    # 400 programs in one chain (none started): starting and stopping walk the chain.
    config = tmp_path / "selfheal.toml"
    config.write_text(_chain(400, autostart=False))
    with RunningDaemon(config) as daemon:
        assert wait_until((tmp_path / "state" / "control.json").exists, 30)
    assert daemon.returncode == 0, daemon.err
    assert "RecursionError" not in daemon.err
    assert "Traceback" not in daemon.err


@pytest.mark.timeout(20)
@pytest.mark.parametrize("command", ["status", "reload", "tail"])
def test_control_commands_refuse_a_fifo_config_at_once(tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "selfheal.toml"
    os.mkfifo(fifo)
    args = [command, "-c", str(fifo)] + (["web"] if command == "tail" else [])
    code, out = cli(*args)
    assert code != 0
    assert "Traceback" not in out
    assert "not a regular file" in out


@pytest.mark.timeout(20)
def test_import_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "supervisord.conf"
    os.mkfifo(fifo)
    for source in (str(fifo), "/dev/zero"):
        code, out = cli("import", source)
        assert code == 2
        assert "Traceback" not in out
        assert f"cannot read {source}: not a regular file" in out
