"""Keys people bring from supervisord: an unknown key that is supervisord's says what to write."""

from __future__ import annotations

import pytest

from selfheal.config import ConfigError, parse_config

SUPERVISORD_HABITS = """
[programs.web]
command = ["sleep", "60"]
autorestart = "unexpected"
startretries = 3
stopsignal = "QUIT"
stopwaitsecs = 10
exitcodes = [0, 2]
directory = "/tmp"
environment = { A = "1" }
stdout_logfile = "/var/log/web.log"
stopasgroup = true
startsecs = 1
"""


def _issues(text: str) -> dict[str, tuple[int | None, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return {i.key: (i.line, i.message) for i in info.value.issues}


def test_supervisords_keys_name_selfheals() -> None:
    issues = _issues(SUPERVISORD_HABITS)
    expected = {
        "autorestart": 'selfheal\'s is restart ("on-failure" for unexpected',
        "startretries": "selfheal's is max_restarts",
        "stopsignal": "selfheal's is stop_signal",
        "stopwaitsecs": "selfheal's is stop_grace",
        "exitcodes": "selfheal's is exit_codes",
        "directory": "selfheal's is cwd",
        "environment": "selfheal's is env",
        "stdout_logfile": "selfheal needs none: output goes to <log_dir>/NAME.log",
        "stopasgroup": "selfheal needs none: the whole process group",
        "startsecs": "selfheal needs none: a program is up at spawn",
    }
    assert set(issues) == {f"programs.web.{key}" for key in expected}
    for key, advice in expected.items():
        line, message = issues[f"programs.web.{key}"]
        assert message.startswith("supervisord's key; "), message
        assert advice in message, (key, message)
        assert "selfheal import" in message
        assert line == 4 + list(expected).index(key)  # each at its own line


def test_a_plain_typo_still_gets_the_plain_answer() -> None:
    issues = _issues('[programs.web]\ncommand = ["sleep", "60"]\ncomand = 1\n')
    assert issues["programs.web.comand"][1].startswith("unknown key (check the spelling")
