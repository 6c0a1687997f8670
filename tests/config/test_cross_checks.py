"""What only the whole file can check: rules naming what exists, log files of one owner each."""

from __future__ import annotations

import pytest

from selfheal.config import ConfigError, parse_config

PROGRAMS = """
[programs.web]
command = ["sleep", "60"]
group = "front"

[programs.worker]
command = ["sleep", "60"]
numprocs = 2

[health.checks.web-http]
tcp = "127.0.0.1:9"

[synthetic.checkout]
base_url = "http://127.0.0.1:9"
steps = [{ path = "/" }]
"""


def _issues(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return {i.key: i.message for i in info.value.issues}


@pytest.mark.parametrize(
    ("rule", "key"),
    [
        ('action = { restart = "db" }', "recovery[0].action.restart"),
        ('steps = [{ restart = "web" }, { restart = "cache:*" }]', "recovery[0].steps[1].restart"),
        ('action = {}\nescalate = [{ restart = "dbb" }]', "recovery[0].escalate[0].restart"),
    ],
)
def test_a_rule_restarting_no_program_is_an_error_naming_the_step(rule: str, key: str) -> None:
    issues = _issues(PROGRAMS + f'[[recovery]]\non = "process.*.exited"\n{rule}\n')
    assert list(issues) == [key]
    assert "which is no program" in issues[key]
    assert "web, worker" in issues[key]


def test_a_rule_verifying_an_unknown_check_is_an_error() -> None:
    rule = '[[recovery]]\non = "a.*"\naction = {}\nverify = { checks = ["web-http", "nope"] }\n'
    issues = _issues(PROGRAMS + rule)
    assert list(issues) == ["recovery[0].verify.checks[1]"]
    assert (
        "'nope', which is no health check, scenario or program"
        in issues["recovery[0].verify.checks[1]"]
    )


def test_every_name_the_supervisor_and_the_health_sources_know_is_valid() -> None:
    restarts = ["{subject}", "all", "web", "worker", "worker:1", "worker:*", "front:*", "front:web"]
    steps = ", ".join(f'{{ restart = "{name}" }}' for name in restarts)
    verify = '{ checks = ["web-http", "checkout", "web", "worker:0", "{subject}"] }'
    rule = f'[[recovery]]\non = "process.*.exited"\nsteps = [{steps}]\nverify = {verify}\n'
    config = parse_config(PROGRAMS + rule)
    assert len(config.recovery[0].steps) == len(restarts)


def test_a_program_whose_log_file_is_another_process_s_is_an_error() -> None:
    text = PROGRAMS + '[programs.worker_1]\ncommand = ["sleep", "60"]\n'
    issues = _issues(text)
    assert list(issues) == ["programs.worker_1"]
    message = issues["programs.worker_1"]
    assert "process worker_1 and process worker:1 would both write worker_1.log" in message
