"""``selfheal events`` and ``selfheal incidents`` on a real journal file."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli_helpers import cli_streams
from selfheal import EventBus
from selfheal.cli import main
from selfheal.store import Journal
from selfheal.testing import FakeClock


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "journal.db"
    clock = FakeClock()
    bus = EventBus(clock=clock)
    with Journal(bus, path, clock=clock):
        bus.emit("health.db.passed", "health")
        clock.advance(10)
        bus.emit("health.db.failed", "health", "error", error="connection refused [x]")
        clock.advance(2.5)
        bus.emit("health.db.passed", "health")
        bus.emit("process.web.exited", "supervisor", "error", exit_code=1)
        bus.emit("app.deploy", "ci", version="1.2")
    return path


def test_events_table(db: Path) -> None:
    code, out, _ = cli_streams("events", "--db", str(db))
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 5
    assert "health.db.failed" in lines[1]
    assert "connection refused [x]" in lines[1]  # data is shown literally, not as markup
    assert lines[0].startswith("2023-11-14 22:13:20")


def test_events_json_type_and_limit(db: Path) -> None:
    code, out, _ = cli_streams(
        "events", "--db", str(db), "--json", "--type", "health.*", "--limit", "2"
    )
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["type"], r["subject"]) for r in rows] == [
        ("health.db.failed", "db"),
        ("health.db.passed", "db"),
    ]
    assert rows[0]["data"] == {"error": "connection refused [x]"}
    assert rows[0]["severity"] == "error"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("events", "--limit", "0"), "0 is not in the range 1<=x<=1000000000"),
        (("events", "--type", "a..b"), "--type 'a..b' is not an event pattern: use dotted"),
        (("events", "--db", "x.db", "--config", "y.toml"), "give --db or --config, not both"),
        (("incidents", "--limit", "x"), "'x' is not a valid integer"),
    ],
)
def test_bad_arguments_are_clear_errors(db: Path, args: tuple[str, ...], message: str) -> None:
    code, out, err = cli_streams(*args)
    assert code == 2
    assert message in err
    assert "Traceback" not in out + err


def test_missing_journal_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = cli_streams("incidents", "--db", str(tmp_path / "none.db"))
    assert code == 2
    assert f"error: no journal at {tmp_path / 'none.db'}" in err
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b""])
def test_a_file_that_is_not_a_journal_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "other.db"
    path.write_bytes(content)
    for command in ("events", "incidents"):
        code, out, err = cli_streams(command, "--db", str(path))
        assert code == 2
        assert "error: cannot read the journal" in err
        assert "Traceback" not in out + err


def test_journal_found_through_the_config(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(f'[journal]\nurl = "sqlite:///{db}"\n')
    code, out, _ = cli_streams("events", "--config", str(config), "--json", "--limit", "1")
    assert code == 0
    assert json.loads(out)["type"] == "app.deploy"
    config.write_text('[journal]\nurl = "postgres://x"\n')
    code, _, err = cli_streams("events", "--config", str(config))
    assert code == 2
    assert "line 2: journal.url" in err


def test_incidents_table_and_mttr(db: Path) -> None:
    code, out, _ = cli_streams("incidents", "--db", str(db))
    assert code == 0
    assert "Incidents (newest first)" in out
    assert "MTTR per subject" in out
    db_row = next(line for line in out.splitlines() if "│ db " in line and "2.50s" in line)
    assert "10.00s" in db_row  # time to detect: since the last passing check
    assert "open" in next(line for line in out.splitlines() if "│ web " in line)


def test_incidents_json(db: Path) -> None:
    code, out, _ = cli_streams("incidents", "--db", str(db), "--json")
    assert code == 0
    doc = json.loads(out)
    incidents = {i["subject"]: i for i in doc["incidents"]}
    assert incidents["db"]["ttr"] == 2.5
    assert incidents["db"]["ttd"] == 10.0
    assert incidents["db"]["ttd_source"] == "last_good"
    assert incidents["web"]["open"] is True
    mttr = {s["subject"]: s for s in doc["mttr"]}
    assert mttr["db"]["mttr"] == 2.5
    assert mttr["web"]["open"] == 1
    code, out, _ = cli_streams("incidents", "--db", str(db), "--json", "--open")
    assert [i["subject"] for i in json.loads(out)["incidents"]] == ["web"]


def test_follow_prints_events_as_the_daemon_writes(db: Path) -> None:
    cmd = [sys.executable, "-m", "selfheal", "events", "--db", str(db), "--follow", "--json"]
    cmd += ["--type", "live.*", "--limit", "5"]
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
        try:
            bus = EventBus()
            with Journal(bus, db) as journal:
                for i in range(3):
                    bus.emit("live.worker.tick", "w", n=i)
                    bus.emit("other.x.tick", "w")
                assert journal.flush(10)
                got = [json.loads(lines.get(timeout=15)) for _ in range(3)]
            assert [g["data"]["n"] for g in got] == [0, 1, 2]
        finally:
            os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()


FOREIGN = {
    # Tables of the same names with other columns (another tool's database).
    "other-columns": [
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, payload TEXT)",
        "INSERT INTO events VALUES (1, 'x')",
        "CREATE TABLE incidents (id INTEGER PRIMARY KEY)",
        "INSERT INTO incidents VALUES (1)",
    ],
    # The right columns, wrong values (hand-edited, or written by an older bug).
    "odd-values": [
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, type TEXT,"
        " source TEXT, severity TEXT, subject TEXT, ts REAL, data TEXT)",
        "INSERT INTO events (id, type, source, severity, subject, ts, data)"
        " VALUES ('a', 'x.y.z', 's', 'info', 'y', 'yesterday', 42)",
        "INSERT INTO events (id, type, source, severity, subject, ts, data)"
        " VALUES ('b', 'x.y.z', 's', 'info', 'y', NULL, NULL)",
    ],
}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
@pytest.mark.parametrize("command", [("events",), ("events", "--json"), ("incidents",)])
def test_foreign_sqlite_file_is_a_clear_error(
    tmp_path: Path, kind: str, command: tuple[str, ...]
) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        for statement in FOREIGN[kind]:
            conn.execute(statement)
    conn.close()
    result = CliRunner().invoke(main, [*command, "--db", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 1, 2)
    if result.exit_code != 0:
        assert "journal" in result.stderr


@pytest.mark.parametrize("command", ["events", "incidents"])
def test_a_huge_limit_is_a_clear_error(tmp_path: Path, command: str) -> None:
    # SQLite integers are 64-bit: --limit 10**20 ended in an OverflowError traceback.
    path = tmp_path / "j.db"
    bus = EventBus()
    with Journal(bus, path):
        bus.emit("health.db.failed", "health", "error")
    result = CliRunner().invoke(main, [command, "--db", str(path), "--limit", str(10**20)])
    assert result.exit_code == 2, result.output
    assert "--limit" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_events_json_is_valid_json_even_for_nan_an_older_journal_holds(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute('UPDATE events SET data = \'{"ratio": NaN, "peak": -Infinity}\'')

    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")

    code, out, _ = cli_streams("events", "--db", str(db), "--json")
    assert code == 0
    rows = [json.loads(line, parse_constant=refuse) for line in out.splitlines()]
    assert rows[0]["data"] == {"ratio": None, "peak": None}


AS_NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")


@pytest.mark.skipif(
    os.geteuid() != 0 or not SYSTEM_PYTHON.exists(),
    reason="needs root to run the CLI as nobody, and a system python of this version",
)
def test_a_journal_the_user_cannot_reach_is_a_clear_error(db: Path, tmp_path: Path) -> None:
    # A second, unprivileged user: nobody cannot enter the test's directory.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    src = str(Path(__file__).resolve().parents[2] / "src")
    run = subprocess.run(
        [*AS_NOBODY, str(SYSTEM_PYTHON), "-m", "selfheal", "events", "--db", str(db)],
        env={"PYTHONPATH": f"{src}:{site}", "PATH": "/usr/bin:/bin"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert f"error: cannot read the journal at {db}: Permission denied" in run.stderr
