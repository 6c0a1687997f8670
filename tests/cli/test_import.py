"""``selfheal import``: real supervisord and circus configs become a selfheal.toml that runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

import supervisor  # the dev extra: supervisord's own sample and test configs
from cli_helpers import StartDaemon, cli, cli_streams
from supervisor_helpers import PY, wait_until

FIXTURES = Path(supervisor.__file__).parent / "tests" / "fixtures"
ECHO_CONF = shutil.which("echo_supervisord_conf", path=str(Path(PY).parent))


def sample_config() -> str:
    """Return the sample config supervisord ships (echo_supervisord_conf)."""
    assert ECHO_CONF is not None
    return subprocess.run([ECHO_CONF], capture_output=True, text=True, check=True).stdout


# Says its number and a variable of its environment, then waits.
SAY = (
    "import os, sys, time; print(sys.argv[1], os.environ['GREETING'], flush=True); time.sleep(120)"
)
PROGRAMS = """
[program:web]
command={py} -c "{say}" %(process_num)02d
process_name=%(program_name)s_%(process_num)02d
numprocs=2
directory=%(here)s
autorestart=unexpected
exitcodes=0,2
stopsignal=INT
stopwaitsecs=5
environment=GREETING="hello, world",PCT="100%%"
stdout_logfile=/var/log/web.log
stdout_logfile_maxbytes=1MB
startsecs=3
priority=10

[program:worker.x]
command=/bin/sh -c "echo worker; exec sleep 120"
redirect_stderr=true

[group:backend]
programs=web,worker.x
priority=100

[eventlistener:crashmail]
command=crashmail -a -m root@localhost
events=PROCESS_STATE_EXITED
"""


def test_the_sample_config_of_supervisord_converts_and_runs(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    source = tmp_path / "supervisord.conf"
    text = sample_config().replace("file=/tmp/supervisor.sock", f"file={tmp_path}/ctl.sock")
    source.write_text(text + PROGRAMS.format(py=PY, say=SAY))
    target = tmp_path / "selfheal.toml"
    code, stdout, stderr = cli_streams("import", str(source), "-o", str(target))
    assert code == 0, stderr
    assert stdout == ""
    assert "converted 2 program(s)" in stderr
    assert "[eventlistener:crashmail] (whole section): event listeners" in stderr
    assert "[program:web] stdout_logfile = /var/log/web.log: selfheal writes output to" in stderr
    assert "[supervisord] pidfile: selfheal pid prints the daemon's pid" in stderr
    assert "'worker.x' becomes 'worker_x'" in stderr
    config = tomllib.loads(target.read_text())
    assert target.read_text().startswith("# Converted from")
    assert config["control"] == {"socket": f"{tmp_path}/ctl.sock"}
    web = config["programs"]["web"]
    assert web["command"][-1] == "%(process_num)02d"
    assert web["env"] == {"GREETING": "hello, world", "PCT": "100%"}
    assert web["cwd"] == str(tmp_path)  # supervisord's %(here)s, made absolute
    assert (web["restart"], web["exit_codes"], web["stop_signal"]) == ("on-failure", [0, 2], "INT")
    assert (web["stop_grace"], web["log_max_bytes"], web["priority"]) == (5.0, 1048576, 10)
    assert (web["group"], web["redirect_stderr"]) == ("backend", False)
    worker = config["programs"]["worker_x"]
    assert (worker["priority"], worker["redirect_stderr"]) == (100, True)
    code, out = cli("check", str(target))
    assert code == 0, out

    # It runs: each process gets its number and its environment, as under supervisord.
    target.write_text(target.read_text() + "\n[journal]\nenabled = false\n")
    text = target.read_text().replace("[control]\n", '[control]\nstate_dir = "state"\n')
    target.write_text(text)
    start_daemon(target)

    def tails() -> list[str]:
        code, out = cli("status", "--json", "-c", str(target))
        assert code == 0, out
        return [p["state"] for p in json.loads(out)["processes"]]

    assert wait_until(lambda: tails() == ["RUNNING"] * 3)
    code, out = cli("tail", "web:1", "-c", str(target))
    assert "01 hello, world" in out


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.conf")))
def test_supervisords_own_test_configs_convert_or_say_why(fixture: str, tmp_path: Path) -> None:
    target = tmp_path / "selfheal.toml"
    code, stdout, stderr = cli_streams("import", str(FIXTURES / fixture), "-o", str(target))
    assert "Traceback" not in stdout + stderr
    if code == 2:  # nothing to convert: only event listeners or the daemon's own settings
        assert "no [program:x] or [watcher:x] section to convert" in stderr
        return
    assert code in (0, 1), stderr
    config = tomllib.loads(target.read_text())
    assert config["programs"]
    for name, program in config["programs"].items():
        assert program["command"], name
        assert all("%(here)s" not in arg for arg in program["command"])
    if code == 1:  # converted, but this machine lacks something it names
        assert "does not pass selfheal check yet" in stderr


CIRCUS = """
[circus]
check_delay = 5
endpoint = tcp://127.0.0.1:5555
umask = 002

[watcher:myprogram]
cmd = python3
args = -u myprogram.py $(circus.wid) $(CIRCUS.ENV.HOME)
numprocesses = 3
working_dir = /srv
respawn = false
graceful_timeout = 5
priority = 10
stop_signal = QUIT
stderr_stream.class = FileStream

[watcher:sockets]
cmd = chaussette --fd $(circus.sockets.web) app.wsgi
use_sockets = True

[env:myprogram]
PATH = $PATH:/opt/bin

[socket:web]
host = 127.0.0.1
port = 8888
"""


def test_a_circus_ini_converts(tmp_path: Path) -> None:
    source = tmp_path / "circus.ini"
    source.write_text(CIRCUS)
    code, stdout, stderr = cli_streams("import", str(source))
    assert code == 0, stderr
    config = tomllib.loads(stdout)
    program = config["programs"]["myprogram"]
    assert program["command"] == ["python3", "-u", "myprogram.py", "%(process_num)d", "${HOME}"]
    assert (program["numprocs"], program["numprocs_start"]) == (3, 1)  # circus counts from 1
    assert (program["restart"], program["stop_grace"], program["stop_signal"]) == (
        "never", 5.0, "QUIT"
    )  # fmt: skip
    assert program["priority"] == 989  # circus starts the highest first
    assert program["env"] == {"PATH": "${PATH}:/opt/bin"}
    assert (program["umask"], program["redirect_stderr"]) == ("002", False)
    assert "sockets" not in config["programs"]
    assert "[watcher:sockets] (whole section): $(circus.sockets.*)" in stderr
    assert "[socket:web] (whole section)" in stderr


def test_what_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    code, out = cli("import", str(tmp_path / "missing.conf"))
    assert code == 2
    assert "cannot read" in out
    bad = tmp_path / "bad.conf"
    bad.write_text("command=no section header\n")
    code, out = cli("import", str(bad))
    assert code == 2
    assert f"{bad} is not an ini file" in out
    existing = tmp_path / "selfheal.toml"
    existing.write_text("# mine\n")
    good = tmp_path / "good.conf"
    good.write_text("[program:a]\ncommand=/bin/true\n")
    code, out = cli("import", str(good), "-o", str(existing))
    assert code == 2
    assert "exists; --force overwrites it" in out
    assert existing.read_text() == "# mine\n"
