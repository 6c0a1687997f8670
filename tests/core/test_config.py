"""selfheal.toml: one model of the whole file, errors naming the key, its line and what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfheal.config import ConfigError, load_config, parse_config

GOOD = """
[programs.web]
command = ["python", "-m", "http.server"]
restart = "on-failure"

[programs.worker]
command = ["python", "worker.py"]
depends_on = ["web"]

[[recovery]]
on = "process.*.exited"
action = { restart = "web" }
"""


def test_valid_config() -> None:
    cfg = parse_config(GOOD)
    assert cfg.programs["web"].restart == "on-failure"
    assert cfg.programs["worker"].depends_on == ["web"]
    assert cfg.recovery[0].on == "process.*.exited"
    assert cfg.control.host == "127.0.0.1"


def test_errors_name_key_line_and_valid_values() -> None:
    text = """
[programs.web]
command = ["python"]
restart = "sometimes"

[programs.worker]
comand = ["python"]
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="selfheal.toml")
    issues = {i.key: i for i in info.value.issues}
    assert issues["programs.web.restart"].line == 4
    assert "'always', 'on-failure' or 'never'" in issues["programs.web.restart"].message
    assert issues["programs.worker.comand"].line == 7
    assert "unknown key" in issues["programs.worker.comand"].message
    assert issues["programs.worker.command"].message == "required key is missing"
    assert issues["programs.worker.command"].line == 6
    assert "selfheal.toml: 3 problem(s)" in str(info.value)


def test_error_in_array_of_tables_points_at_the_right_entry() -> None:
    text = """
[[recovery]]
on = "a.*"
action = {}

[[recovery]]
on = ""
action = {}
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    (issue,) = info.value.issues
    assert issue.key == "recovery[1].on"
    assert issue.line == 7


def test_bad_toml_names_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[programs.web]\ncommand = [\n")
    assert info.value.issues[0].line is not None
    assert "not valid TOML" in info.value.issues[0].message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_cross_program_errors_are_reported_with_lines() -> None:
    text = """
[programs.web]
command = ["python"]
depends_on = ["db"]
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    (issue,) = info.value.issues
    assert issue.key.startswith("programs.web.depends_on")
    assert issue.line == 4
    assert "db" in issue.message


def test_errors_never_echo_secret_values() -> None:
    text = (
        "[programs.web]\n"
        'command = ["a", "b"]\n'
        "shell = true\n"
        "env = { DB_PASSWORD = 987654321 }\n"
        "[programs.api]\n"
        'command = ["x"]\n'
        'env = { TOKEN = ["s3cr3t-list"] }\n'
        "[control]\n"
        "token = 11112222333344445555\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    for secret in ("987654321", "s3cr3t", "11112222333344445555"):
        assert secret not in message, message
    # The problems themselves are still named, with their lines.
    assert "line 4: programs.web.env.DB_PASSWORD" in message
    assert "line 7: programs.api.env.TOKEN" in message
    assert "line 9: control.token" in message
    # A check of a whole table must not print the table (and its env) back.
    shell = '[programs.web]\ncommand = ["a", "b"]\nshell = true\nenv = { API = "hunter2" }\n'
    with pytest.raises(ConfigError) as info:
        parse_config(shell)
    assert "programs.web: with shell = true" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_journal_lives_in_the_state_dir_unless_its_url_is_set(tmp_path: Path) -> None:
    default = parse_config("[control]\nstate_dir = 'run/state'\n")
    assert default.journal_path(tmp_path) == tmp_path / "run" / "state" / "journal.db"
    assert parse_config("").journal_path(tmp_path) == tmp_path / ".selfheal" / "journal.db"
    explicit = parse_config(
        "[control]\nstate_dir = 'run/state'\n[journal]\nurl = 'sqlite:///data/j.db'\n"
    )
    assert explicit.journal_path(tmp_path) == tmp_path / "data" / "j.db"
    absolute = parse_config(f"[journal]\nurl = 'sqlite:///{tmp_path}/abs.db'\n")
    assert absolute.journal_path("/elsewhere") == tmp_path / "abs.db"
