"""The ``[programs]`` and ``[control]`` models: errors name the key, the line, what is valid."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from selfheal.config import ConfigError, ConfigIssue, parse_config, validate_model
from selfheal.runtime import load_daemon_config
from selfheal.supervisor.config import ProgramsTable

FULL = """
[control]
port = 0
state_dir = "run"

[programs.db]
command = ["postgres", "-D", "data"]
ready = "notify"
watchdog_sec = 5
stop_signal = "INT"
stop_grace = 30

[programs.web]
command = ["python", "-m", "app"]
cwd = "srv"
env = { PORT = "8000" }
depends_on = ["db"]
numprocs = 2
group = "front"
strategy = "one_for_all"
backoff_initial = 0.5
max_restarts = 3
restart_window = 30

[programs.web.liveness]
http = "http://127.0.0.1:8000/healthz"
interval = 2
failure_threshold = 2
"""


def issues(text: str) -> dict[str, ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="selfheal.toml")
    return {i.key: i for i in info.value.issues}


def test_full_program_to_spec(tmp_path: Path) -> None:
    cfg = parse_config(FULL)
    web = cfg.programs["web"].to_spec("web", base_dir=tmp_path)
    assert web.cwd == str(tmp_path / "srv")
    assert web.env == (("PORT", "8000"),)
    assert web.instance_names() == ["web:0", "web:1"]
    assert web.liveness is not None
    assert web.liveness.kind == "http"
    assert web.liveness.failure_threshold == 2
    assert web.intensity.max_restarts == 3
    assert web.backoff.initial == 0.5
    db = cfg.programs["db"].to_spec("db")
    assert db.stop_signal == signal.SIGINT
    assert db.watchdog_sec == 5
    assert cfg.control.state_dir == "run"


def test_bad_values_name_key_line_and_valid_values() -> None:
    found = issues(
        """
[programs.web]
command = ["x"]
strategy = "one_for_some"
stop_signal = "TERMINATE"
numprocs = 0

[programs.web.liveness]
tcp = "localhost"
"""
    )
    strategy = found["programs.web.strategy"]
    assert strategy.line == 4
    assert "'one_for_one', 'one_for_all' or 'rest_for_one'" in strategy.message
    assert "'TERM'" in found["programs.web.stop_signal"].message
    assert found["programs.web.numprocs"].line == 6
    tcp = found["programs.web.liveness.tcp"]
    assert "host:port" in tcp.message
    assert tcp.line == 9


def test_probe_needs_exactly_one_kind() -> None:
    found = issues(
        """
[programs.web]
command = ["x"]
[programs.web.readiness]
http = "http://127.0.0.1/"
tcp = "127.0.0.1:80"
"""
    )
    issue = found["programs.web.readiness"]
    assert "exactly one of 'http', 'tcp' or 'command'" in issue.message
    assert issue.line == 4


def test_shell_is_opt_in_and_takes_one_string() -> None:
    found = issues('[programs.s]\ncommand = ["a", "b"]\nshell = true\n')
    assert "one string" in found["programs.s"].message
    spec = parse_config('[programs.s]\ncommand = ["a | b"]\nshell = true\n').programs["s"]
    assert spec.to_spec("s").argv() == ["/bin/sh", "-c", "a | b"]
    plain = parse_config('[programs.p]\ncommand = ["a | b"]\n').programs["p"]
    assert plain.to_spec("p").argv() == ["a | b"]  # no shell unless asked


GRAPH = """
[programs.a]
command = ["x"]
depends_on = ["b"]

[programs.b]
command = ["x"]
depends_on = ["a", "nope"]

[programs.c]
command = ["x"]
group = "g"

[programs.d]
command = ["x"]
group = "g"
strategy = "rest_for_one"

[programs.e]
command = ["x"]
strategy = "one_for_all"
"""


def test_cross_program_errors_have_lines() -> None:
    import tomllib

    with pytest.raises(ConfigError) as info:
        validate_model(ProgramsTable, tomllib.loads(GRAPH), text=GRAPH, source="s.toml")
    by_key = {i.key: i for i in info.value.issues}
    nope = by_key["programs.b.depends_on[1]"]
    assert "unknown program 'nope'; valid: 'a', 'c', 'd', 'e'" in nope.message
    assert nope.line == 8
    cycle = by_key["programs.a.depends_on"]
    assert "dependency cycle: a -> b -> a" in cycle.message
    assert cycle.line == 4
    assert "group 'g' already has strategy 'one_for_one'" in by_key["programs.d.strategy"].message
    assert by_key["programs.d.strategy"].line == 17
    assert "needs a 'group'" in by_key["programs.e.strategy"].message


def test_load_daemon_config_runs_the_graph_checks(tmp_path: Path) -> None:
    path = tmp_path / "selfheal.toml"
    path.write_text(GRAPH)
    with pytest.raises(ConfigError, match=r"line 8: programs\.b\.depends_on\[1\]: unknown"):
        load_daemon_config(path)
    path.write_text(FULL)
    assert set(load_daemon_config(path).programs) == {"db", "web"}


def test_control_token_must_be_long_enough() -> None:
    found = issues('[control]\ntoken = "short"\n')
    assert found["control.token"].line == 2


def test_what_exec_would_refuse_is_a_config_error() -> None:
    # Caught by `selfheal check`, not at the first spawn as a crash loop ending in FATAL.
    text = (
        "[programs.a]\n"
        'command = ["x", "a\\u0000b"]\n'
        'env = { "A=B" = "1", "" = "2", C = "nul\\u0000" }\n'
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert "line 2: programs.a.command" in message
    assert "NUL" in message
    assert "line 3: programs.a.env" in message
    assert "'A=B'" in message
    assert "nul" not in message.replace("NUL", "")  # env values are not echoed


def test_a_readiness_probe_gates_readiness_unless_told_otherwise() -> None:
    # As in docs/configuration.md: a dependent of `web` starts once web's probe passes.
    probe = '[programs.{n}.readiness]\nhttp = "http://127.0.0.1:8080/healthz"\n'
    text = (
        '[programs.web]\ncommand = ["w"]\n'
        + probe.format(n="web")
        + '[programs.fast]\ncommand = ["f"]\nready = "spawn"\n'
        + probe.format(n="fast")
        + '[programs.plain]\ncommand = ["p"]\n'
    )
    programs = parse_config(text).programs
    assert programs["web"].to_spec("web").ready == "probe"
    assert programs["fast"].to_spec("fast").ready == "spawn"  # said so explicitly
    assert programs["plain"].to_spec("plain").ready == "spawn"


def test_start_timeout_must_be_positive() -> None:
    text = '[programs.web]\ncommand = ["python3"]\nstart_timeout = 0\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    (issue,) = info.value.issues
    assert issue.key == "programs.web.start_timeout"
    assert issue.line == 3
    assert "greater than or equal to 0.01" in issue.message


def test_a_command_given_as_a_string_says_how_to_write_it() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[programs.web]\ncommand = "python app.py --port 80"\n')
    (issue,) = info.value.issues
    assert issue.key == "programs.web.command"
    assert issue.line == 2
    assert 'command = ["python", "app.py", "--port", "80"]' in issue.message
    assert "shell = true" in issue.message
