"""Every value has a range: what passes ``selfheal check`` cannot crash or starve ``run``.

Each hostile value below once passed the check and then broke the daemon (an ``inf`` timer,
an OverflowError on every retention pass, a busy loop, memory for 10**12 processes); each is
now an error naming its key. The last test runs a real daemon on a config of the largest
values allowed, which must start and stop cleanly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import RunningDaemon
from selfheal._bounds import DAY, MAX_COUNT, MAX_PROCESSES, MIN_PERIOD, YEAR
from selfheal.config import ConfigError, parse_config
from supervisor_helpers import wait_until

PROGRAM = "[programs.web]\ncommand = ['sleep', '60']\n"


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (PROGRAM + "watchdog_sec = inf\n", "programs.web.watchdog_sec"),
        (PROGRAM + "watchdog_sec = 1e308\n", "programs.web.watchdog_sec"),
        (PROGRAM + "start_timeout = 1e308\n", "programs.web.start_timeout"),
        (PROGRAM + "stop_grace = 1e300\n", "programs.web.stop_grace"),
        (PROGRAM + "numprocs = 1_000_000_000_000\n", "programs.web.numprocs"),
        (PROGRAM + "backoff_factor = 1e200\n", "programs.web.backoff_factor"),
        (PROGRAM + "backoff_max = 1e300\n", "programs.web.backoff_max"),
        (PROGRAM + "max_restarts = 1_000_000_000_000\n", "programs.web.max_restarts"),
        (PROGRAM + "restart_window = 1e300\n", "programs.web.restart_window"),
        (PROGRAM + "log_max_bytes = 9_000_000_000_000_000_000\n", "programs.web.log_max_bytes"),
        (PROGRAM + "log_backups = 1_000_000\n", "programs.web.log_backups"),
        (PROGRAM + "priority = 9_000_000_000_000_000_000\n", "programs.web.priority"),
        (PROGRAM + "numprocs_start = 9_000_000_000_000_000_000\n", "programs.web.numprocs_start"),
        (PROGRAM + "exit_codes = [0, 256]\n", "programs.web.exit_codes[1]"),
        (PROGRAM + "liveness = { tcp = '127.0.0.1:1', interval = 1e-300 }\n", "interval"),
        (PROGRAM + "liveness = { tcp = '127.0.0.1:1', timeout = 1e300 }\n", "timeout"),
        (
            PROGRAM + "readiness = { tcp = '127.0.0.1:1', failure_threshold = 10_000_000 }\n",
            "failure_threshold",
        ),
        ("[journal]\nmax_rows = 1_000_000_000_000_000\n", "journal.max_rows"),
        ("[journal]\nmax_pending = 1_000_000_000\n", "journal.max_pending"),
        ("[journal]\nmax_age_days = 1e300\n", "journal.max_age_days"),
        ("[journal]\nblock_timeout = 1e300\n", "journal.block_timeout"),
        ("[health]\ndrain_seconds = 1e300\n", "health.drain_seconds"),
        ("[health.checks.c]\ntcp = '127.0.0.1:1'\ninterval = 1e-300\n", "health.checks.c.interval"),
        ("[health.checks.c]\ntcp = '127.0.0.1:1'\ninterval = 1e300\n", "health.checks.c.interval"),
        (
            "[health.checks.c]\ntcp = '127.0.0.1:1'\nfailure_threshold = 10_000_000\n",
            "failure_threshold",
        ),
        (
            "[health.checks.c]\nhttp = 'http://127.0.0.1:1/'\nexpect_status = [99]\n",
            "expect_status",
        ),
        ("[recovery_engine]\nrate_limit = { per_minute = 1e300 }\n", "per_minute"),
        (
            "[[recovery]]\non = 'a.*'\naction = {}\ncooldown = 1e300\n",
            "recovery[0].cooldown",
        ),
        (
            "[[recovery]]\non = 'a.*'\naction = {}\nretries = 1_000_000_000\n",
            "recovery[0].retries",
        ),
        (
            "[[recovery]]\non = 'a.*'\naction = {}\nverify = { checks = ['x'], interval = 1e-9 }\n",
            "interval",
        ),
        ("[synthetic.s]\nbase_url = 'http://127.0.0.1:1'\ninterval = 1e-300\n", "interval"),
        ("[synthetic.s]\nbase_url = 'http://127.0.0.1:1'\nretries = 1_000_000_000\n", "retries"),
    ],
)
def test_a_value_out_of_range_is_an_error_naming_its_key(text: str, key: str) -> None:
    message = _error(text)
    assert key in message


def test_the_processes_of_all_programs_together_are_bounded() -> None:
    text = "".join(
        f"[programs.p{i}]\ncommand = ['sleep', '60']\nnumprocs = {MAX_PROCESSES // 4}\n"
        for i in range(5)
    )
    message = _error(text)
    assert f"at most {MAX_PROCESSES}" in message


@pytest.mark.parametrize(
    "key",
    ["host", "socket", "state_dir", "log_dir"],
)
@pytest.mark.parametrize("value", ["a\\u0000b", "\\u202e\\u200b", "x\\ny"])
def test_control_hosts_and_paths_are_printable(key: str, value: str) -> None:
    message = _error(f'[control]\n{key} = "{value}"\n')
    assert f"control.{key}" in message


def test_a_host_is_an_address_or_a_host_name() -> None:
    assert "control.host" in _error('[control]\nhost = "web server"\n')
    for host in ("127.0.0.1", "::1", "localhost", "node-1.example.com", "0.0.0.0"):
        assert parse_config(f'[control]\nhost = "{host}"\n').control.host == host


@pytest.mark.parametrize("url", ["sqlite:///a\\u0000b.db", "sqlite:///\\u202e.db"])
def test_the_journal_url_is_printable(url: str) -> None:
    assert "journal.url" in _error(f'[journal]\nurl = "{url}"\n')


@pytest.mark.parametrize(
    "token",
    [
        " aaaaaaaaaaaaaaaaaaaa",
        "aaaaaaaaaaaaaaaaaaaa ",
        "aaaaaaaaaa\\naaaaaaaaaa",
        "aaaaaaaaaaaaaaaaaaé",
    ],
    ids=["leading-space", "trailing-space", "newline", "non-ascii"],
)
def test_a_token_a_header_cannot_carry_is_refused(token: str) -> None:
    message = _error(f'[control]\ntoken = "{token}"\n')
    assert "control.token" in message
    assert "printable ASCII" in message
    assert "aaaaaaaaaa" not in message  # a token is never echoed


def test_the_smallest_and_largest_values_allowed_are_valid() -> None:
    config = parse_config(_extremes())
    web = config.programs["web"]
    assert web.watchdog_sec == DAY
    assert web.liveness is not None
    assert web.liveness.interval == MIN_PERIOD
    assert config.journal.max_age_days == YEAR / DAY * 100


def _extremes() -> str:
    return f"""
[control]
state_dir = "state"
status_requires_token = true

[journal]
max_age_days = {YEAR / DAY * 100}
max_rows = 1_000_000_000_000
max_pending = 1_000_000
block_timeout = 60

[health]
drain_seconds = 0

[health.checks.port]
tcp = "127.0.0.1:9"
interval = {DAY}
timeout = {DAY}
failure_threshold = {MAX_COUNT}
success_threshold = {MAX_COUNT}

[programs.web]
command = ["sleep", "600"]
watchdog_sec = {DAY}
start_timeout = {DAY}
stop_grace = 1
backoff_initial = {DAY}
backoff_factor = 10
backoff_max = {DAY}
backoff_reset = {YEAR}
max_restarts = {MAX_COUNT}
restart_window = {YEAR}
log_max_bytes = 1_099_511_627_776
log_backups = 1000
numprocs = 2
numprocs_start = 1_000_000
priority = 1_000_000
exit_codes = [0, 255]
liveness = {{ tcp = "127.0.0.1:9", interval = {MIN_PERIOD}, initial_delay = {DAY} }}

[[recovery]]
on = "process.*.exited"
action = {{ restart = "web" }}
cooldown = {YEAR}
retries = 1000
retry_delay = {DAY}
timeout = {DAY}
verify = {{ checks = ["port"], within = {DAY}, interval = {DAY} }}
breaker = {{ failures = {MAX_COUNT}, reset = {YEAR} }}
flap = {{ window = {YEAR}, high = {MAX_COUNT}, low = 0 }}

[recovery_engine]
rate_limit = {{ per_minute = 1_000_000, burst = {MAX_COUNT} }}
"""


@pytest.mark.slow
def test_a_daemon_runs_and_stops_on_the_largest_values_allowed(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(_extremes())
    with RunningDaemon(config) as daemon:
        assert wait_until((tmp_path / "state" / "control.json").exists, 30)
        assert wait_until((tmp_path / "state" / "logs" / "web_1000000.log").exists, 10)
    assert daemon.returncode == 0, daemon.err
    assert "Traceback" not in daemon.err
    assert "Error" not in daemon.err
