"""A fuzzing campaign of hostile ``selfheal.toml`` files: how many get a clear answer.

Generates configs with the strategies of ``tests/config_strategies.py`` (every key of every
section, hostile values, deep nesting, long chains, damaged text) and, for each, runs
``selfheal check`` in-process as ``tests/config/test_fuzz.py`` does: a clear error (exit 2)
or a valid file (exit 0, its plan compiled and its daemon built, not started). A sample also
goes through a real ``selfheal run``: an invalid file must exit 2 at once, a valid one must
run and stop on SIGTERM, neither with a traceback.

    PYTHONPATH=src python bench/fuzz_config.py --examples 2500 --runs 60 --out /tmp/fuzz

Prints the figures: configs tried, valid, clear errors, tracebacks (target 0) and hangs
(target 0); the files of any traceback or hang are saved in ``--out`` to reproduce them.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hypothesis import HealthCheck, Phase, given, settings

from config_strategies import config_texts

HANG_SECONDS = 30


class _HangError(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _HangError


def check_one(text: str, directory: Path) -> str:
    """Return how ``check`` (then the plan and the daemon) answered: ok, error, traceback."""
    from click.testing import CliRunner

    from selfheal.cli import main
    from selfheal.cli.daemon import Daemon
    from selfheal.runtime import compile_plan

    path = directory / "selfheal.toml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(path)])
    if isinstance(result.exception, _HangError):
        raise result.exception
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback"
    out = result.output
    if "Traceback" in out or result.exit_code not in (0, 2):
        return "traceback"
    if result.exit_code == 2:
        return "error" if out.startswith("error: ") and "problem(s)" in out else "traceback"
    try:
        Daemon(compile_plan(path))
    except _HangError:
        raise
    except Exception:  # counted: a valid file whose daemon cannot be built
        return "traceback"
    return "ok"


def run_one(text: str, directory: Path, valid: bool) -> str:
    """Return how a real ``selfheal run`` answered: ok, error, traceback or hang."""
    path = directory / "selfheal.toml"
    path.write_text(text, encoding="utf-8")
    err = directory / "daemon.err"
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "selfheal", "run", str(path)],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        code = proc.wait(timeout=2.0 if valid else HANG_SECONDS)
    except subprocess.TimeoutExpired:
        if not valid:
            proc.kill()
            proc.wait()
            return "hang"
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=HANG_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return "hang"
    output = err.read_text(errors="replace")
    if "Traceback" in output:
        return "traceback"
    if valid:
        return "ok" if code in (0, 1) else "traceback"  # 1: e.g. a port taken, said in a line
    return "error" if code == 2 and output.startswith("error: ") else "traceback"


def main() -> int:
    """Run the campaign; print the figures as JSON; exit 1 on any traceback or hang."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2500)
    parser.add_argument("--runs", type=int, default=60, help="configs also given to `run`")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "fuzz-config")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    kept: list[tuple[str, str]] = []  # (verdict, text) of a sample, for `run`
    rng = random.Random(args.seed)
    started = time.monotonic()
    signal.signal(signal.SIGALRM, _alarm)

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(text=config_texts())
    def campaign(text: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            signal.alarm(HANG_SECONDS)
            try:
                verdict = check_one(text, Path(tmp))
            except _HangError:
                verdict = "hang"
            finally:
                signal.alarm(0)
        counts["tried"] += 1
        counts[verdict] += 1
        if verdict in ("traceback", "hang"):
            (args.out / f"{verdict}-{counts[verdict]}.toml").write_text(text, encoding="utf-8")
        if len(kept) < args.runs:
            kept.append((verdict, text))
        elif rng.random() < args.runs / max(1, counts["tried"]):
            kept[rng.randrange(len(kept))] = (verdict, text)

    campaign()
    check_seconds = time.monotonic() - started
    runs: Counter[str] = Counter()
    for verdict, text in kept:
        if verdict not in ("ok", "error"):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            answer = run_one(text, Path(tmp), valid=verdict == "ok")
        runs["tried"] += 1
        runs[f"{'valid' if verdict == 'ok' else 'invalid'}: {answer}"] += 1
        if answer in ("traceback", "hang"):
            (args.out / f"run-{answer}-{runs['tried']}.toml").write_text(text, encoding="utf-8")
    report = {
        "check": {
            "configs tried": counts["tried"],
            "valid": counts["ok"],
            "clear errors": counts["error"],
            "tracebacks": counts["traceback"],
            "hangs": counts["hang"],
            "seconds": round(check_seconds, 1),
        },
        "run": dict(sorted(runs.items())),
        "saved": str(args.out),
    }
    print(json.dumps(report, indent=2))
    bad = counts["traceback"] + counts["hang"]
    bad += sum(n for k, n in runs.items() if k.endswith(("traceback", "hang")))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
