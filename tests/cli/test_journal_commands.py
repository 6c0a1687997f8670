"""``selfheal events`` and ``selfheal incidents`` on a real journal file."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

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


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_events_table(db: Path) -> None:
    code, out, _ = run("events", "--db", str(db))
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 5
    assert "health.db.failed" in lines[1]
    assert "connection refused [x]" in lines[1]  # data is shown literally, not as markup
    assert lines[0].startswith("2023-11-14 22:13:20")


def test_events_json_type_and_limit(db: Path) -> None:
    code, out, _ = run("events", "--db", str(db), "--json", "--type", "health.*", "--limit", "2")
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
    code, out, err = run(*args)
    assert code == 2
    assert message in err
    assert "Traceback" not in out + err


def test_missing_journal_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = run("incidents", "--db", str(tmp_path / "none.db"))
    assert code == 2
    assert f"error: no journal at {tmp_path / 'none.db'}" in err
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b""])
def test_a_file_that_is_not_a_journal_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "other.db"
    path.write_bytes(content)
    for command in ("events", "incidents"):
        code, out, err = run(command, "--db", str(path))
        assert code == 2
        assert "error: cannot read the journal" in err
        assert "Traceback" not in out + err


def test_journal_found_through_the_config(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(f'[journal]\nurl = "sqlite:///{db}"\n')
    code, out, _ = run("events", "--config", str(config), "--json", "--limit", "1")
    assert code == 0
    assert json.loads(out)["type"] == "app.deploy"
    config.write_text('[journal]\nurl = "postgres://x"\n')
    code, _, err = run("events", "--config", str(config))
    assert code == 2
    assert "line 2: journal.url" in err


def test_incidents_table_and_mttr(db: Path) -> None:
    code, out, _ = run("incidents", "--db", str(db))
    assert code == 0
    assert "Incidents (newest first)" in out
    assert "MTTR per subject" in out
    db_row = next(line for line in out.splitlines() if "│ db " in line and "2.50s" in line)
    assert "10.00s" in db_row  # time to detect: since the last passing check
    assert "open" in next(line for line in out.splitlines() if "│ web " in line)


def test_incidents_json(db: Path) -> None:
    code, out, _ = run("incidents", "--db", str(db), "--json")
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
    code, out, _ = run("incidents", "--db", str(db), "--json", "--open")
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
