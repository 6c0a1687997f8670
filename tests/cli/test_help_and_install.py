"""Help that ships with the package, the version, and a bare install that explains itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import selfheal
from cli_helpers import cli

ROOT = Path(__file__).resolve().parents[2]


def test_version_and_help_topics() -> None:
    code, out = cli("--version")
    assert code == 0
    assert out == f"selfheal {selfheal.__version__}\n"
    assert selfheal.__version__ not in ("", "0+unknown")
    code, out = cli("help")
    assert code == 0
    assert "supervisor " in out
    assert "configuration " in out
    code, out = cli("help", "superv")  # a unique prefix is enough
    assert code == 0
    assert out.startswith("# The supervisor")
    code, out = cli("help", "start")  # a command: its --help
    assert code == 0
    assert "Start NAMES" in out
    assert "--timeout" in out
    code, out = cli("help", "nothing")
    assert code == 2
    assert "unknown help topic 'nothing'; topics: supervisor, configuration" in out


@pytest.mark.parametrize(("word", "title"), [("retry", "# "), ("k8s", "# "), ("monkey", "# ")])
def test_help_knows_the_words_people_type(word: str, title: str) -> None:
    code, out = cli("help", word)
    assert code == 0, out
    assert out.startswith(title)
    if word == "retry":
        assert "retrying(" in out  # the policies page, where retry lives


def test_error_messages_point_to_help_that_ships() -> None:
    code, out = cli("check", str(ROOT / "pyproject.toml"))
    assert code == 2
    assert "selfheal help configuration" in out
    assert "docs/" not in out


@pytest.mark.slow
def test_a_wheel_without_extras_explains_itself(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-q", str(ROOT), "-w", str(wheels)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = wheels.glob("selfheal-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(python), "install", "-q", "--no-index", "--no-deps", str(wheel)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False
        )

    assert run(str(python), "-c", "import click").returncode != 0  # really bare
    version = run("selfheal", "--version")
    assert version.returncode == 0
    assert version.stdout == f"selfheal {selfheal.__version__}\n"
    for command in (["status"], ["run", "x.toml"], []):
        bare = run("selfheal", *command)
        assert bare.returncode == 2
        assert "Traceback" not in bare.stderr
        (line,) = bare.stderr.splitlines()
        assert "needs the 'server' extra: pip install 'selfheal[server]'" in line
    docs = run("selfheal", "help", "supervisor")
    assert docs.returncode == 0
    assert docs.stdout.startswith("# The supervisor")  # the docs are in the wheel
    for what in ("from selfheal.web import health_app", "import selfheal.web.control"):
        failed = run(str(python), "-c", what)
        assert failed.returncode == 1
        last = failed.stderr.splitlines()[-1]
        assert last.startswith("selfheal.errors.MissingExtraError: selfheal.web.")
        assert last.endswith("needs the 'server' extra: pip install 'selfheal[server]' "
                             "(missing module: starlette)")  # fmt: skip
    # What claims to need only the standard library does.
    stdlib = run(
        str(python),
        "-c",
        "import selfheal, selfheal.supervisor, selfheal.health, selfheal.events, "
        "selfheal.policies, selfheal.store, selfheal.recovery, selfheal.testing, "
        "selfheal.features, selfheal.scheduling, selfheal.synthetic, selfheal.chaos\n"
        "for name in selfheal.__all__: getattr(selfheal, name)\n"
        "print(selfheal.__version__)",
    )
    assert stdlib.returncode == 0, stdlib.stderr
    assert stdlib.stdout.strip() == selfheal.__version__
    # What needs httpx says so when used, naming the extra, with no ModuleNotFoundError.
    for what, feature in BARE_HTTP_USES.items():
        failed = run(str(python), "-c", what)
        assert failed.returncode == 1, (what, failed.stdout)
        last = failed.stderr.splitlines()[-1]
        assert last == (
            f"selfheal.errors.MissingExtraError: {feature} needs the 'server' extra: "
            "pip install 'selfheal[server]' (missing module: httpx)"
        ), (what, failed.stderr)
    # The supervisor runs bare; an http probe, which needs httpx, fails saying so.
    supervised = run(str(python), "-c", BARE_SUPERVISOR, str(tmp_path / "state"))
    assert supervised.returncode == 0, supervised.stderr
    state, probe = supervised.stdout.strip().split(" ", 1)
    assert state == "STARTING"
    assert probe == (
        "readiness probe http http://127.0.0.1:9/: MissingExtraError: an http probe needs the "
        "'server' extra: pip install 'selfheal[server]' (missing module: httpx)"
    )


# Each, run in the bare venv, must fail with the MissingExtraError of that feature.
BARE_HTTP_USES = {
    "from selfheal.health.checks import http_check\nhttp_check('http://127.0.0.1:9/')": (
        "http_check"
    ),
    "from selfheal.web.client import ControlClient\n"
    "ControlClient.connect(state_dir='/nonexistent').status()": "ControlClient",
    "from selfheal.chaos.experiment import HttpProvider, ActivityContext\n"
    "HttpProvider(url='http://127.0.0.1:9/').run(None)": "the http provider",
}

# Runs in the bare venv: a program whose readiness is an http probe, until the probe has run.
BARE_SUPERVISOR = """
import asyncio, sys
from selfheal.supervisor import ProbeSpec, ProgramSpec, Supervisor

async def main():
    probe = ProbeSpec("http", "http://127.0.0.1:9/", interval=0.05)
    spec = ProgramSpec("web", ("/bin/sleep", "30"), readiness=probe, ready="probe")
    sup = Supervisor([spec], state_dir=sys.argv[1])
    await sup.start()
    try:
        async with asyncio.timeout(20):
            while not sup.status()[0]["probe"]:
                await asyncio.sleep(0.02)
        entry = sup.status()[0]
        print(entry["state"], entry["probe"])
    finally:
        await sup.stop()

asyncio.run(main())
"""
