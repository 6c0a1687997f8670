"""The control commands against a real daemon, as an operator used to supervisorctl types them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cli_helpers import StartDaemon, cli, cli_streams
from health_helpers import free_port
from supervisor_helpers import PY, alive, wait_until

SLEEPER = "import sys, time; print(sys.argv[1], 'up', flush=True); time.sleep(120)"

CONFIG = """
[control]
state_dir = "state"

[programs.db]
command = [{py}, "-c", "{sleeper}", "db"]

[programs.app]
command = [{py}, "-c", "{sleeper}", "app"]
depends_on = ["db"]

[programs.worker]
command = [{py}, "-c", "{sleeper}", "worker-%(process_num)d"]
numprocs = {workers}
group = "back"

[programs.slow]
command = ["/bin/sh", "-c", "echo warming up; echo still cold >&2; exec sleep 120"]
readiness = {{ tcp = "127.0.0.1:{port}", interval = 0.1, timeout = 0.5 }}
redirect_stderr = false
autostart = false
"""


def write_config(d: Path, port: int, workers: int = 2) -> Path:
    path = d / "selfheal.toml"
    path.write_text(CONFIG.format(py=json.dumps(PY), sleeper=SLEEPER, port=port, workers=workers))
    return path


def processes(config: Path) -> dict[str, dict[str, object]]:
    code, out = cli("status", "--json", "-c", str(config))
    assert code == 0, out
    return {p["name"]: p for p in json.loads(out)["processes"]}


@pytest.fixture
def closed_port() -> int:
    """A port of 127.0.0.1 where nothing listens: the readiness probe of `slow` fails."""
    return free_port()


@pytest.fixture
def config(tmp_path: Path, closed_port: int, start_daemon: StartDaemon) -> Path:
    path = write_config(tmp_path, closed_port)
    start_daemon(path)
    assert wait_until(lambda: processes(path)["worker:1"]["state"] == "RUNNING")
    return path


def test_several_names_groups_and_dependents(config: Path) -> None:
    c = str(config)
    code, out = cli("status", "back:*", "-c", c)
    assert code == 0, out
    assert "worker:0" in out
    assert "worker:1" in out
    assert "db" not in out

    code, out = cli("stop", "db", "-c", c)
    assert code == 0, out
    assert "db: STOPPED" in out
    assert "app: STOPPED (stopped with db, which it depends on)" in out
    code, out = cli("status", "app", "-c", c)
    assert code == 3, out  # LSB: not running

    code, out = cli("start", "db", "app", "-c", c)
    assert code == 0, out
    assert "db: RUNNING" in out
    assert "app: RUNNING" in out

    before = processes(config)
    code, out = cli("restart", "worker:*", "-c", c)
    assert code == 0, out
    after = processes(config)
    assert after["worker:0"]["pid"] != before["worker:0"]["pid"]
    assert after["db"]["pid"] == before["db"]["pid"]

    code, out = cli("start", "all", "--no-wait", "-c", c)
    assert code == 0, out
    assert "slow: STARTING" in out
    code, out = cli("stop", "nope", "worker:0", "-c", c)
    assert code == 1
    assert "no program or process 'nope'; known: db, app, worker (worker:0..1), slow" in out


def test_signal_pid_avail_and_the_stderr_log(config: Path) -> None:
    c = str(config)
    info = processes(config)
    code, out = cli("signal", "CONT", "worker:0", "db", "-c", c)
    assert code == 0, out
    assert f"worker:0: sent SIGCONT to pid {info['worker:0']['pid']}" in out
    code, out = cli("signal", "HUP", "slow", "-c", c)
    assert code == 1
    assert "slow: not running (no signal sent)" in out

    code, stdout, stderr = cli_streams("pid", "db", "worker:*", "-c", c)
    assert code == 0, stderr
    assert stdout.split() == [str(info[n]["pid"]) for n in ("db", "worker:0", "worker:1")]
    code, stdout, stderr = cli_streams("pid", "slow", "-c", c)
    assert code == 1
    assert stdout == ""  # never a 0 that `kill $(selfheal pid slow)` would take
    assert "not running: slow (STOPPED)" in stderr
    code, stdout, _ = cli_streams("pid", "-c", c)
    daemon_pid = int(stdout)
    assert alive(daemon_pid)

    config.write_text(config.read_text() + '\n[programs.extra]\ncommand = ["true"]\n')
    code, out = cli("avail", "-c", c)
    assert code == 0, out
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["db"].split()[1:4] == ["in", "use", "auto"]
    assert lines["slow"].split()[1:3] == ["avail", "manual"]
    assert "not loaded" in lines["extra"]
    assert "selfheal reload adds it" in lines["extra"]

    code, out = cli("start", "slow", "--no-wait", "-c", c)
    assert code == 0, out
    state = config.parent / "state" / "logs"
    assert wait_until((state / "slow.stderr.log").exists)
    assert wait_until(lambda: "still cold" in cli("tail", "slow", "--stderr", "-c", c)[1])
    code, out = cli("tail", "slow", "-c", c)
    assert "warming up" in out
    assert "still cold" not in out
    code, out = cli("logs", "db", "--stderr", "-c", c)
    assert code == 2
    assert "db writes stderr into its output log (redirect_stderr = true): selfheal tail db" in out


def test_a_start_that_cannot_finish_gives_up_and_says_why(config: Path) -> None:
    code, stdout, stderr = cli_streams("start", "slow", "--timeout", "1.5", "-c", str(config))
    assert code == 1
    assert "slow: STARTING (pid " in stdout
    assert "readiness probe tcp 127.0.0.1:" in stdout  # which check fails, and how
    assert "    | warming up" in stdout  # its last lines, stdout and stderr
    assert "    | still cold" in stdout
    assert "start still in progress after 1.5 s; gave up waiting (it goes on)" in stderr
    assert "... slow: STARTING" in stderr  # progress while it waited
    assert processes(config)["slow"]["state"] == "STARTING"


def test_a_typo_in_the_config_does_not_lock_the_operator_out(config: Path) -> None:
    c = str(config)
    good = config.read_text()
    before = processes(config)
    config.write_text(good.replace("[programs.app]", "[programs.app\n"))  # broken TOML
    code, out = cli("status", "-c", c)
    assert code == 0, out
    code, out = cli("stop", "worker:1", "-c", c)
    assert code == 0, out
    code, out = cli("reload", "-c", c)
    assert code == 1
    assert "not valid TOML" in out
    config.write_text(good.replace("numprocs = 2", 'numprocs = "two"'))
    code, out = cli("reload", "-c", c)
    assert code == 1
    assert "programs.worker.numprocs" in out
    after = processes(config)  # the daemon runs the old config, untouched
    assert after["db"]["pid"] == before["db"]["pid"]
    assert set(after) == set(before)


def test_reload_of_numprocs_keeps_the_other_processes(config: Path, closed_port: int) -> None:
    before = processes(config)
    write_config(config.parent, closed_port, workers=3)
    code, out = cli("reload", "-c", str(config))
    assert code == 0, out
    assert "scaled: worker (+worker:2; the other processes kept running)" in out
    after = processes(config)
    assert [after[n]["pid"] for n in ("worker:0", "worker:1", "db")] == [
        before[n]["pid"] for n in ("worker:0", "worker:1", "db")
    ]
    assert wait_until(lambda: processes(config)["worker:2"]["state"] == "RUNNING")


def test_reread_shows_what_update_would_do_and_touches_nothing(
    config: Path, closed_port: int
) -> None:
    # supervisorctl's habit: `reread` lists the changes, `update` applies them.
    code, out = cli("reread", "-c", str(config))
    assert code == 0, out
    assert "No config updates to processes" in out
    before = processes(config)
    text = config.read_text().replace('"app"]\ndepends_on', '"app2"]\ndepends_on')
    text = text.replace(
        "[programs.slow]", '[programs.extra]\ncommand = ["sleep", "60"]\n\n[programs.slow]'
    )
    config.write_text(text.replace("numprocs = 2", "numprocs = 3"))
    code, out = cli("reread", "-c", str(config))
    assert code == 0, out
    assert out.splitlines() == [
        "app: changed",
        "worker: changed (numprocs: +worker:2; the other processes keep running)",
        "extra: available",
    ]

    def pids(procs: dict[str, dict[str, object]]) -> dict[str, object]:
        return {name: p["pid"] for name, p in procs.items()}

    assert pids(processes(config)) == pids(before)  # nothing applied
    code, out = cli("update", "-c", str(config))
    assert code == 0, out
    assert "added: extra" in out
    assert "changed: app" in out
    after = processes(config)
    assert after["app"]["pid"] != before["app"]["pid"]
    assert after["worker:0"]["pid"] == before["worker:0"]["pid"]
    code, out = cli("reread", "-c", str(config))
    assert "No config updates to processes" in out


def test_reread_of_a_broken_file_names_the_errors(config: Path) -> None:
    config.write_text(config.read_text() + "\n[programs.bad]\ncommand = 3\n")
    code, out = cli("reread", "-c", str(config))
    assert code == 1
    assert "programs.bad.command" in out


def test_shutdown_stops_the_programs_then_the_daemon(
    tmp_path: Path, closed_port: int, start_daemon: StartDaemon
) -> None:
    config = write_config(tmp_path, closed_port)
    daemon = start_daemon(config)
    assert wait_until(lambda: processes(config)["app"]["state"] == "RUNNING")
    pids = [p["pid"] for p in processes(config).values() if p["pid"]]
    code, out = cli("shutdown", "-c", str(config))
    assert code == 0, out
    assert f"shut down: the daemon (pid {daemon.pid}) has exited" in out
    assert daemon.wait(timeout=10) == 0
    assert not any(alive(p) for p in pids)  # type: ignore[arg-type]
    assert not (tmp_path / "state" / "control.json").exists()
    log = (tmp_path / "daemon.err").read_text()
    assert f"selfheal stopping (pid {daemon.pid})" in log
    assert f"selfheal stopped (pid {daemon.pid}) after " in log


def test_run_refuses_users_it_cannot_switch_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text('[programs.web]\ncommand = ["true"]\nuser = "nobody"\n')
    monkeypatch.setattr(os, "geteuid", lambda: 4321)  # as if selfheal ran as a plain user
    code, out = cli("run", str(config))
    assert code == 2
    assert "programs.web.user: cannot run as user 'nobody'" in out
    assert "only root can switch users" in out
    assert not (tmp_path / ".selfheal").exists()  # nothing was started


def test_include_adds_programs_from_other_files(tmp_path: Path, start_daemon: StartDaemon) -> None:
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    config = tmp_path / "selfheal.toml"
    config.write_text('include = ["conf.d/*.toml"]\n[control]\nstate_dir = "state"\n')
    program = "[programs.{name}]\ncommand = [{py}, '-c', \"{sleeper}\", '{name}']\n"
    (conf_d / "a.toml").write_text(program.format(name="a", py=json.dumps(PY), sleeper=SLEEPER))
    code, out = cli("check", str(config))
    assert code == 0, out
    start_daemon(config)
    assert wait_until(lambda: processes(config)["a"]["state"] == "RUNNING")
    (conf_d / "b.toml").write_text(program.format(name="b", py=json.dumps(PY), sleeper=SLEEPER))
    code, out = cli("reload", "-c", str(config))
    assert code == 0, out
    assert "added: b" in out
    assert wait_until(lambda: processes(config)["b"]["state"] == "RUNNING")
    (conf_d / "c.toml").write_text(program.format(name="a", py=json.dumps(PY), sleeper=SLEEPER))
    code, out = cli("reload", "-c", str(config))
    assert code == 1
    assert "c.toml: 1 problem(s)" in out
    assert "programs.a: program 'a' is also in" in out


def test_the_daemon_logs_for_people_and_for_shippers(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    config = tmp_path / "selfheal.toml"
    crash = "import sys; print('boom', flush=True); sys.exit(3)"
    config.write_text(
        '[control]\nstate_dir = "state"\n'
        f"[programs.crash]\ncommand = [{json.dumps(PY)}, '-c', \"{crash}\"]\n"
        "max_restarts = 1\nbackoff_initial = 0.01\n"
    )
    for fmt in ("text", "json"):
        (tmp_path / "daemon.err").unlink(missing_ok=True)
        daemon = start_daemon(config, "--log-format", fmt)
        assert wait_until(lambda: processes(config)["crash"]["state"] == "FATAL")
        daemon.terminate()
        assert daemon.wait(timeout=20) == 0
        log = (tmp_path / "daemon.err").read_text()
        if fmt == "json":
            records = [json.loads(line) for line in log.splitlines()]
            levels = {r["message"].split(":")[0]: r["level"] for r in records}
            assert levels["spawned"] == "info"
            assert levels["exited"] == "error"  # the event's severity, not a guess
            assert levels["gave up"] == "critical"
            fatal = next(r for r in records if r.get("event") == "process.crash.fatal")
            assert fatal["data"]["reason"] == "more than 1 restarts in 60 s"
            started = next(r for r in records if r.get("event") == "daemon.started")
            assert started["programs"] == ["crash"]
            continue
        assert "Traceback" not in log
        assert f"selfheal 0.1.0 started (pid {daemon.pid}): config {config};" in log
        assert "1 program(s), 1 process(es): crash; control http://127.0.0.1:" in log
        assert "spawned: 'crash' with pid" in log
        assert "ERROR exited: crash (exit status 3; not expected, after" in log
        assert "CRITICAL gave up: crash entered FATAL state, more than 1 restarts in 60 s" in log
        assert "{'" not in log  # no Python reprs
        assert f"selfheal stopped (pid {daemon.pid}) after" in log


def test_the_start_line_of_many_processes_stays_one_readable_line(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    config = tmp_path / "selfheal.toml"
    sleeper = f"[{json.dumps(PY)}, '-c', 'import time; time.sleep(60)']"
    config.write_text(
        f'[control]\nstate_dir = "state"\n[programs.worker]\ncommand = {sleeper}\nnumprocs = 20\n'
    )
    daemon = start_daemon(config)
    daemon.terminate()
    assert daemon.wait(timeout=20) == 0
    (line,) = [x for x in (tmp_path / "daemon.err").read_text().splitlines() if " started (" in x]
    assert "1 program(s), 20 process(es): worker:0, worker:1," in line
    assert "worker:11 and 8 more (selfheal status); control http" in line
    assert "worker:12" not in line


def test_status_of_an_unknown_daemon_never_reads_more_than_the_state_dir(
    tmp_path: Path,
) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text('[control]\nstate_dir = "elsewhere"\n[programs.x]\ncomand = 1\n')
    code, out = cli("status", "-c", str(config))
    assert code == 2
    assert f"no daemon is running with state dir {tmp_path / 'elsewhere'}" in out
    config.write_bytes(b'[control]\nstate_dir = "s2"\n[programs.caf\xe9]\n')
    code, out = cli("stop", "x", "-c", str(config))
    assert code == 2
    assert f"state dir {tmp_path / 's2'}" in out  # read from the [control] table alone
    assert "is not UTF-8 text" in out  # and told, in case it matters
    proc = subprocess.run(
        [PY, "-m", "selfheal", "status", "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
