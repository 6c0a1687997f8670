"""TOML, JSON and YAML load into one model; every bad field is named, nothing is a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfheal.chaos.experiment import (
    ExperimentError,
    HttpProvider,
    ProcessProvider,
    PythonProvider,
    default_registry,
    load_experiment,
    parse_experiment,
)

TOML = """
title = "web survives"
name = "web-kill"
description = "kill it"
tags = ["web"]

[configuration]
base = "http://127.0.0.1:9"
port = { type = "env", key = "WEB_PORT", default = 8000, env_var_type = "int" }

[secrets.api]
token = { type = "env", key = "API_TOKEN" }

[steady_state]
title = "web answers"
[[steady_state.probes]]
name = "health"
tolerance = 200
[steady_state.probes.provider]
type = "http"
url = "${base}/health"
timeout = 2
headers = { Authorization = "Bearer ${token}" }

[[method]]
name = "kill"
provider = { type = "process", path = "kill", arguments = ["-9", "${port}"] }
pauses = { before = 0.5, after = 2 }

[[method]]
name = "greet"
type = "probe"
provider = { type = "python", module = "chaos_probes", func = "greet", arguments = { name = "x" } }
background = true

[[rollbacks]]
name = "noop"
provider = { type = "process", path = "true" }

[recovery]
within = 10
interval = 0.5

[during]
interval = 0.25

[abort]
max_duration = 60
interval = 2
[[abort.probes]]
name = "still there"
provider = { type = "process", path = "true" }
tolerance = 0
"""

CTK: dict[str, Any] = {
    "version": "1.0.0",
    "title": "web survives",
    "name": "web-kill",
    "description": "kill it",
    "tags": ["web"],
    "contributions": {"availability": "high"},
    "configuration": {
        "base": "http://127.0.0.1:9",
        "port": {"type": "env", "key": "WEB_PORT", "default": 8000, "env_var_type": "int"},
    },
    "secrets": {"api": {"token": {"type": "env", "key": "API_TOKEN"}}},
    "steady-state-hypothesis": {
        "title": "web answers",
        "probes": [
            {
                "type": "probe",
                "name": "health",
                "provider": {
                    "type": "http",
                    "url": "${base}/health",
                    "timeout": 2,
                    "headers": {"Authorization": "Bearer ${token}"},
                },
                "tolerance": 200,
            }
        ],
    },
    "method": [
        {
            "type": "action",
            "name": "kill",
            "provider": {"type": "process", "path": "kill", "arguments": ["-9", "${port}"]},
            "pauses": {"before": 0.5, "after": 2},
        },
        {
            "type": "probe",
            "name": "greet",
            "provider": {
                "type": "python",
                "module": "chaos_probes",
                "func": "greet",
                "arguments": {"name": "x"},
            },
            "background": True,
        },
    ],
    "rollbacks": [
        {"type": "action", "name": "noop", "provider": {"type": "process", "path": "true"}}
    ],
    "recovery": {"within": 10, "interval": 0.5},
    "during": {"interval": 0.25},
    "abort": {
        "max_duration": 60,
        "interval": 2,
        "probes": [
            {
                "type": "probe",
                "name": "still there",
                "provider": {"type": "process", "path": "true"},
                "tolerance": 0,
            }
        ],
    },
}

ENV = {"API_TOKEN": "s3cret-token", "WEB_PORT": "4321"}


def _summary(exp: Any) -> dict[str, Any]:
    """The parts of an experiment that do not depend on its format."""
    return {
        "name": exp.name,
        "title": exp.title,
        "tags": exp.tags,
        "configuration": dict(exp.configuration),
        "secrets": {k: dict(v) for k, v in exp.secrets.items()},
        "probes": [
            (a.name, a.kind, a.provider.describe(), a.tolerance) for a in exp.steady_state.probes
        ],
        "method": [
            (a.name, a.kind, a.provider.describe(), a.pauses, a.background) for a in exp.method
        ],
        "rollbacks": [a.name for a in exp.rollbacks],
        "recovery": exp.recovery,
        "during": exp.during,
        "abort": (exp.abort.interval, exp.abort.max_duration, [a.name for a in exp.abort.probes]),
    }


def test_toml_json_and_yaml_load_into_the_same_experiment(tmp_path: Path) -> None:
    (tmp_path / "web.toml").write_text(TOML)
    (tmp_path / "web.json").write_text(json.dumps(CTK))
    (tmp_path / "web.yaml").write_text(yaml.safe_dump(CTK))
    loaded = [
        load_experiment(tmp_path / f"web.{ext}", environ=ENV) for ext in ("toml", "json", "yaml")
    ]
    summaries = [_summary(e) for e in loaded]
    assert summaries[0] == summaries[1] == summaries[2]
    assert [e.format for e in loaded] == ["toml", "json", "yaml"]

    exp = loaded[0]
    assert exp.name == "web-kill"
    assert exp.configuration["port"] == 4321  # env_var_type = int
    probe = exp.steady_state.probes[0].provider
    assert isinstance(probe, HttpProvider)
    assert probe.url == "http://127.0.0.1:9/health"
    assert probe.headers["Authorization"] == "Bearer s3cret-token"
    kill = exp.method[0].provider
    assert isinstance(kill, ProcessProvider)
    assert kill.arguments == ("-9", "4321")
    assert Path(kill.path).name == "kill"
    assert isinstance(exp.method[1].provider, PythonProvider)
    assert exp.method[1].background


def test_env_default_is_used_and_variables_override(tmp_path: Path) -> None:
    path = tmp_path / "web.toml"
    path.write_text(TOML)
    exp = load_experiment(
        path, environ={"API_TOKEN": "x" * 8}, variables={"base": "http://127.0.0.1:1"}
    )
    assert exp.configuration["port"] == 8000
    assert exp.steady_state.probes[0].provider.url == "http://127.0.0.1:1/health"


def test_name_defaults_to_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "My Experiment.json"
    body = {k: v for k, v in CTK.items() if k not in ("name", "secrets")}
    path.write_text(json.dumps(body))
    assert load_experiment(path, environ=ENV).name == "my-experiment"


def test_refs_resolve_to_the_named_activity() -> None:
    body = {
        "title": "t",
        "method": [
            {"type": "action", "name": "a", "provider": {"type": "process", "path": "true"}},
            {"ref": "a"},
        ],
    }
    exp = parse_experiment(json.dumps(body), format="json")
    assert [a.name for a in exp.method] == ["a", "a"]
    body["method"][1] = {"ref": "missing"}
    with pytest.raises(ExperimentError, match=r"method\[1\]: ref: no activity named 'missing'"):
        parse_experiment(json.dumps(body), format="json")


def one(provider: str, head: str = "") -> str:
    """A TOML experiment of one method activity whose provider table is `provider`."""
    return f'title = "t"\n{head}[[method]]\nname = "a"\nprovider = {{ {provider} }}\n'


def _errors(text: str, fmt: str = "toml") -> list[str]:
    with pytest.raises(ExperimentError) as info:
        parse_experiment(text, format=fmt, environ={})
    return [str(issue) for issue in info.value.issues]


def test_a_bad_provider_type_names_its_index_and_the_valid_types() -> None:
    method = [
        {"type": "action", "name": f"a{i}", "provider": {"type": "process", "path": "true"}}
        for i in range(2)
    ]
    method.append({"type": "action", "name": "x", "provider": {"type": "shell", "cmd": "ls"}})
    errors = _errors(json.dumps({"title": "t", "method": method}), "json")
    assert errors == ["method[2].provider.type: expected one of process, http, python, got 'shell'"]


def test_every_problem_is_reported_at_once() -> None:
    text = """
title = "t"
tolerence = 1

[[method]]
provider = { type = "process", path = "definitely-not-a-program-here" }

[[method]]
name = "x"
provider = { type = "http", url = "ftp://example" }
pauses = { after = -1 }

[[method]]
name = "y"
provider = { type = "python", module = "chaos_probes", func = "greet", arguments = { nme = "x" } }

[recovery]
within = 5
"""
    errors = _errors(text)
    assert errors == [
        "method[0].name: required: a non-empty string",
        "method[0].provider.path: 'definitely-not-a-program-here' is not an executable file here "
        "or on PATH",
        "method[1].provider.url: expected an http:// or https:// URL, got 'ftp://example'",
        "method[1].pauses.after: expected a number of seconds >= 0, got -1",
        "method[2].provider.arguments: greet() has no parameter 'nme' (it takes: name, "
        "configuration)",
        "recovery: needs a steady state with probes to wait for",
        "tolerence: unknown key (check the spelling; see docs/chaos.md)",
    ]


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("title = ", "toml", "not valid TOML"),
        ('{"title": ', "json", "not valid JSON: Expecting value at line 1 column 11"),
        ("title: [", "yaml", "not valid YAML"),
        ("[1, 2]", "json", "expected a table (an object) at the top level"),
        ('{"title": "t"}', "json", "method: required: a list of activities"),
        (
            '{"title": "t", "steady-state-hypothesis": {}, "method": []}',
            "json",
            "steady-state-hypothesis.title: required",  # as Chaos Toolkit: it needs a title
        ),
        ('{"title": "t", "method": {}}', "json", "method: expected"),
        ('title = "t"\n[[method]]\nname = "a"\n', "toml", "method[0].provider: required: a table"),
        (
            json.dumps({"title": "t", "controls": [], "method": CTK["rollbacks"]}),
            "json",
            "controls: Chaos Toolkit controls are not supported",
        ),
        (
            one('type = "process", path = "echo", arguments = "a | b"'),
            "toml",
            "method[0].provider.arguments: this string needs a shell",
        ),
        (
            'title = "t"\n[configuration]\nport = { type = "env", key = "NOPE_PORT" }\n'
            '[[method]]\nname = "a"\nprovider = { type = "process", path = "true" }\n',
            "toml",
            "configuration.port: environment variable NOPE_PORT is not set and there is no default",
        ),
        (
            one('type = "python", module = "no_such_mod_x", func = "f"'),
            "toml",
            "method[0].provider.module: cannot import 'no_such_mod_x'",
        ),
        (
            one('type = "process", path = "true"', 'name = "Bad.Name"\n'),
            "toml",
            "name: expected lowercase letters, digits, '-' and '_' only",
        ),
        (
            one('type = "process", path = "true"', "[recovery]\ninterval = inf\n"),
            "toml",
            "recovery.interval: expected a number of seconds > 0, got inf",
        ),
        (
            one('type = "process", path = "true"', "[abort]\ninterval = 1\n"),
            "toml",
            "abort: needs probes, max_duration, or both",
        ),
    ],
)
def test_loader_errors_name_the_field(text: str, fmt: str, expected: str) -> None:
    errors = _errors(text, fmt)
    assert any(e.startswith(expected) for e in errors), errors


def test_string_arguments_without_shell_syntax_are_split_like_a_command_line() -> None:
    text = one('type = "process", path = "echo", arguments = "-n \'a b\' c"')
    provider = parse_experiment(text).method[0].provider
    assert provider.arguments == ("-n", "a b", "c")
    shell = one('type = "process", path = "echo", arguments = "a | cat", shell = true')
    assert parse_experiment(shell).method[0].provider.arguments == "a | cat"


def test_a_registered_provider_type_is_accepted() -> None:
    registry = default_registry()

    class Noop:
        def run(self, context: Any) -> str:
            return "ok"

        def describe(self) -> str:
            return "noop"

    registry.register("noop", lambda fields: Noop())
    text = 'title = "t"\n[[method]]\nname = "a"\nprovider = { type = "noop" }\n'
    assert parse_experiment(text, registry=registry).method[0].provider.describe() == "noop"
    with pytest.raises(ExperimentError, match="expected one of process, http, python, got 'noop'"):
        parse_experiment(text)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("noop", lambda fields: Noop())


def test_cli_reports_a_bad_file_in_one_line_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps({"title": "t", "method": [{"name": "a", "provider": {"type": "ssh"}}]})
    )
    proc = subprocess.run(
        [sys.executable, "-m", "selfheal", "chaos", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error: {path}: method[0].provider.type: expected one of process, http, python, got 'ssh'"
    )


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.ini"
    path.write_text("")
    with pytest.raises(ExperimentError, match=r"expected a \.toml, \.json, \.yaml or \.yml file"):
        load_experiment(path)


def test_the_experiment_package_needs_only_the_standard_library() -> None:
    code = (
        "import sys, selfheal.chaos.experiment\n"
        "third = {'pydantic', 'click', 'rich', 'httpx', 'yaml', 'jsonpath_ng', 'chaoslib'}\n"
        "loaded = third & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
