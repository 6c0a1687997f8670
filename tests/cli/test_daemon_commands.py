"""`selfheal run` as a real daemon process, and the CLI and control API that talk to it."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from cli_helpers import StartDaemon, cli
from supervisor_helpers import PY, alive, kill_quietly, wait_until

SPAWNER = """
import os, subprocess, sys, time
p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(os.environ["PIDS"], "w").write(f"{os.getpid()} {p.pid}")
print("spawner up", flush=True)
time.sleep(120)
"""

CONFIG = """
[control]
state_dir = "state"

[programs.spawner]
command = [{py}, "spawner.py"]
env = {{ PIDS = "pids.txt" }}

[programs.other]
command = [{py}, "-c", "import time; print('other up', flush=True); time.sleep(120)"]
env = {{ VERSION = "{version}" }}
"""


def write_config(d: Path, version: str = "1") -> Path:
    (d / "spawner.py").write_text(SPAWNER)
    path = d / "selfheal.toml"
    path.write_text(CONFIG.format(py=json.dumps(PY), version=version))
    return path


def pids(d: Path) -> tuple[int, int]:
    path = d / "pids.txt"
    assert wait_until(lambda: path.exists() and len(path.read_text().split()) == 2)
    child, grandchild = path.read_text().split()
    return int(child), int(grandchild)


@pytest.fixture
def daemon(tmp_path: Path, start_daemon: StartDaemon) -> tuple[Path, subprocess.Popen[bytes]]:
    config = write_config(tmp_path)
    return config, start_daemon(config)


def test_status_control_and_token_enforcement(
    daemon: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    config, _ = daemon
    state = str(config.parent / "state")
    code, out = cli("status", "--json", "--state-dir", state)
    assert code == 0, out
    body = json.loads(out)
    assert {p["name"]: p["state"] for p in body["processes"]} == {
        "spawner": "RUNNING",
        "other": "RUNNING",
    }
    code, out = cli("status", "-c", str(config))
    assert code == 0
    assert "spawner" in out
    assert "RUNNING" in out

    info = json.loads((config.parent / "state" / "control.json").read_text())
    token_file = Path(info["token_file"])
    assert token_file.stat().st_mode & 0o077 == 0
    url = info["url"]
    assert url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{url}/status").status_code == 200  # status is open by default
    assert httpx.post(f"{url}/programs/other/stop").status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * 43}
    assert httpx.post(f"{url}/programs/other/stop", headers=wrong).status_code == 401
    assert httpx.post(f"{url}/reload", headers=wrong).status_code == 401

    code, out = cli("stop", "other", "--state-dir", state)
    assert code == 0, out
    assert "other: STOPPED" in out
    code, out = cli("start", "other", "--state-dir", state)
    assert code == 0
    assert "other: RUNNING" in out
    code, out = cli("restart", "nope", "--state-dir", state)
    assert code == 1
    assert "no program or process 'nope'; known: spawner, other" in out

    code, out = cli("logs", "other", "--state-dir", state)
    assert code == 0
    assert "other up" in out
    code, out = cli("logs", "missing", "--state-dir", state)
    assert code == 2
    assert "no log for 'missing'" in out


def test_reload_restarts_only_the_changed_program(
    daemon: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    config, _ = daemon
    state = str(config.parent / "state")
    before = {
        p["name"]: p["pid"]
        for p in json.loads(cli("status", "--json", "-c", str(config))[1])["processes"]
    }
    write_config(config.parent, version="2")
    code, out = cli("reload", "-c", str(config))
    assert code == 0, out
    assert "changed: other" in out
    assert "unchanged: spawner" in out
    after = {
        p["name"]: p["pid"]
        for p in json.loads(cli("status", "--json", "--state-dir", state)[1])["processes"]
    }
    assert after["spawner"] == before["spawner"]
    assert after["other"] != before["other"]
    environ = Path(f"/proc/{after['other']}/environ").read_bytes().split(b"\0")
    assert b"VERSION=2" in environ

    config.write_text('[programs.other]\ncommand = "not a list"\n')
    code, out = cli("reload", "--state-dir", state)
    assert code == 1  # refused by the daemon, which keeps running as it was
    assert "line 2: programs.other.command" in out
    final = json.loads(cli("status", "--json", "--state-dir", state)[1])["processes"]
    assert {p["name"]: p["pid"] for p in final} == after


def test_sigkilled_daemon_leaves_no_orphans_after_restart(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    config = write_config(tmp_path)
    first = start_daemon(config)
    child, grandchild = pids(tmp_path)
    try:
        assert alive(child)
        assert alive(grandchild)
        first.kill()  # no clean-up at all
        first.wait(timeout=10)
        assert alive(grandchild)  # orphaned, for now
        code, out = cli("status", "-c", str(config))  # its control.json is stale
        assert code == 2
        assert f"no daemon is running (pid {first.pid} in" in out, out
        (tmp_path / "pids.txt").unlink()
        second = start_daemon(config)
        try:
            assert wait_until(lambda: not alive(child) and not alive(grandchild), 10)
            new_child, new_grandchild = pids(tmp_path)
            assert new_child != child
            assert alive(new_grandchild)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=20) == 0
        assert wait_until(lambda: not alive(new_child) and not alive(new_grandchild), 10)
    finally:
        for pid in (child, grandchild):
            kill_quietly(pid)


def test_malformed_config_exits_2_with_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[programs.web]\ncommand = ["x"]\nrestart = "sometimes"\n')
    code, out = cli("run", str(bad))
    assert code == 2
    assert "line 3: programs.web.restart" in out
    assert "'always', 'on-failure' or 'never'" in out
    graph = tmp_path / "graph.toml"
    graph.write_text('[programs.a]\ncommand = ["x"]\ndepends_on = ["zz"]\n')
    code, out = cli("run", str(graph))
    assert code == 2
    assert "line 3: programs.a.depends_on[0]: unknown program 'zz'" in out
    code, out = cli("check", str(bad))
    assert code == 2
    assert "line 3" in out


def test_commands_without_a_daemon_say_so(tmp_path: Path) -> None:
    code, out = cli("status", "--state-dir", str(tmp_path))
    assert code == 2
    assert "no daemon is running" in out
    for junk in ("[1, 2]", '{"pid": "x"}', "{broken", '{"pid": 1, "url": 3}'):
        (tmp_path / "control.json").write_text(junk)
        code, out = cli("stop", "web", "--state-dir", str(tmp_path))
        assert code == 2, (junk, out)
        assert "no daemon is running" in out, out


def test_second_daemon_on_the_same_state_dir_is_refused(
    daemon: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    config, _ = daemon
    result = subprocess.run(
        [PY, "-m", "selfheal", "run", str(config)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 3
    assert b"another supervisor" in result.stderr


def test_run_stops_cleanly_on_sigint(tmp_path: Path, start_daemon: StartDaemon) -> None:
    config = write_config(tmp_path)
    proc = start_daemon(config)
    child, grandchild = pids(tmp_path)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert not alive(child)
    assert wait_until(lambda: not alive(grandchild), 5)
    assert not (tmp_path / "state" / "control.json").exists()
    assert not (tmp_path / "state" / "control.token").exists()  # no credential left behind
    assert not (tmp_path / "state" / "notify.sock").exists()


def test_bad_config_files_are_one_line_errors_not_tracebacks(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[programs.caf\xe9]\ncommand = ["x"]\n')
    for args in (
        ("check", str(latin1)),
        ("run", str(latin1)),
        ("status", "-c", str(latin1)),
        ("logs", "x", "-c", str(latin1)),
    ):
        code, out = cli(*args)
        assert code == 2, (args, out)
        assert "not UTF-8" in out, (args, out)
    broken = tmp_path / "broken.toml"
    broken.write_text("[programs.a\n")
    code, out = cli("logs", "x", "-c", str(broken), "--state-dir", str(tmp_path / "none"))
    assert code == 2, out
    assert "not valid TOML" in out


def test_program_names_reach_the_daemon_intact(
    daemon: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    config, _ = daemon
    state = str(config.parent / "state")
    for name in ("other?x", "other#1", "a/b", "%2e%2e"):
        code, out = cli("stop", name, "--state-dir", state)
        assert code == 1, (name, out)
        assert f"no program or process {name!r}; known: spawner, other" in out, out
    code, out = cli("status", "--json", "--state-dir", state)
    assert {p["name"]: p["state"] for p in json.loads(out)["processes"]}["other"] == "RUNNING"


def test_start_that_cannot_succeed_says_why_at_once(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(
        '[control]\nstate_dir = "state"\n'
        f"[programs.db]\ncommand = [{json.dumps(PY)}, '-c', 'import time; time.sleep(60)']\n"
        "autostart = false\n"
        f"[programs.app]\ncommand = [{json.dumps(PY)}, '-c', 'import time; time.sleep(60)']\n"
        'depends_on = ["db"]\nautostart = false\n'
        '[programs.ghost]\ncommand = ["/nonexistent/binary"]\nautostart = false\n'
    )
    proc = start_daemon(config)
    try:
        code, out = cli("start", "ghost", "-c", str(config))  # answered at its first failure
        assert code == 1, out
        assert "ghost: BACKOFF (cannot execute '/nonexistent/binary'" in out, out
        code, out = cli("start", "app", "-c", str(config))
        assert code == 1, out
        assert "app: STOPPED (waiting for db)" in out
        code, out = cli("start", "db", "-c", str(config))
        assert code == 0, out

        def app_state() -> str:
            body = json.loads(cli("status", "--json", "-c", str(config))[1])
            return str({p["name"]: p["state"] for p in body["processes"]}["app"])

        # The dependent that waited starts once its dependency is ready.
        assert wait_until(lambda: app_state() == "RUNNING")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_a_signal_during_start_up_is_a_clean_shutdown(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen(
            [PY, "-m", "selfheal", "run", str(config)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

        def in_daemon(pid: int = proc.pid) -> bool:
            # Exec'ed into the lean daemon, still importing: no handler is installed yet.
            try:
                return b"selfheal.cli.daemon" in Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                return False

        assert wait_until(in_daemon, 20)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, (sig, proc.returncode, err.decode())
        assert b"Traceback" not in err
        assert not (tmp_path / "state" / "control.json").exists()


def test_reload_applies_recovery_rules_and_names_what_needs_a_restart(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    program = f"[programs.api]\ncommand = [{json.dumps(PY)}, '-c', 'import time; time.sleep(60)']\n"
    config = tmp_path / "selfheal.toml"
    config.write_text('[control]\nstate_dir = "state"\n' + program + 'restart = "never"\n')
    proc = start_daemon(config)

    def api_pid() -> int | None:
        body = json.loads(cli("status", "--json", "-c", str(config))[1])
        return {p["name"]: p["pid"] for p in body["processes"]}["api"]  # type: ignore[no-any-return]

    try:
        config.write_text(
            '[control]\nstate_dir = "state"\nstatus_requires_token = true\n'
            + program
            + 'restart = "never"\n'
            '[[recovery]]\non = "process.api.exited"\nsteps = [{ restart = "api" }]\n'
        )
        code, out = cli("reload", "-c", str(config))
        assert code == 0, out
        assert "unchanged: api" in out
        assert "recovery rules: 1 (reloaded)" in out
        assert "needs a daemon restart: control" in out
        old = api_pid()
        assert old is not None
        kill_quietly(old)
        assert wait_until(lambda: api_pid() not in (None, old), 10)  # the new rule acted
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_the_journal_is_readable_by_its_owner_only(
    daemon: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    # It holds every event, with the last lines of programs' output: like the token, 0600.
    config, _ = daemon
    journal = config.parent / "state" / "journal.db"  # <state_dir>/journal.db
    assert wait_until(journal.exists)
    code, out = cli("stop", "other", "-c", str(config))  # something to write
    assert code == 0, out
    for path in journal.parent.glob("journal.db*"):
        assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))


def test_logs_of_a_program_with_several_processes_names_them(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("worker_0", "worker_1", "my_app"):
        (logs / f"{name}.log").write_text(f"{name} says hi\n")
    code, out = cli("logs", "worker", "--state-dir", str(tmp_path))
    assert code == 2
    assert "'worker' runs several processes: worker:0, worker:1" in out, out
    code, out = cli("logs", "worker:1", "--state-dir", str(tmp_path))
    assert code == 0
    assert "worker_1 says hi" in out
    code, out = cli("logs", "my_app", "--state-dir", str(tmp_path))
    assert code == 0
    assert "my_app says hi" in out


def test_an_unusable_journal_is_a_one_line_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    journal = tmp_path / "state" / "journal.db"  # the default: <state_dir>/journal.db
    journal.parent.mkdir()
    journal.write_bytes(b"not a database, " * 64)
    result = subprocess.run(
        [PY, "-m", "selfheal", "run", str(config)],
        cwd=tmp_path,
        capture_output=True,
        timeout=30,
        check=False,
    )
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "Traceback" not in err
    assert f"cannot open the journal {journal}" in err
    assert "[journal] enabled = false" in err
    assert not (tmp_path / "pids.txt").exists()  # nothing was started


def test_a_second_signal_during_shutdown_does_not_abandon_the_programs(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    config = tmp_path / "selfheal.toml"
    config.write_text(
        '[control]\nstate_dir = "state"\n'
        f"[programs.stubborn]\ncommand = [{json.dumps(PY)}, '-c', {json.dumps(stubborn)}]\n"
        "stop_grace = 1.5\n"
    )
    proc = start_daemon(config)
    body = json.loads(cli("status", "--json", "-c", str(config))[1])
    pid = body["processes"][0]["pid"]
    assert pid is not None
    try:
        proc.send_signal(signal.SIGTERM)
        # The control API goes first: its file's removal says the shutdown has begun.
        assert wait_until(lambda: not (tmp_path / "state" / "control.json").exists(), 10)
        proc.send_signal(signal.SIGINT)  # an impatient Ctrl-C while the program holds out
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert b"Traceback" not in (tmp_path / "daemon.err").read_bytes()
        assert wait_until(lambda: not alive(pid), 5)  # ended, not orphaned
    finally:
        kill_quietly(pid)
