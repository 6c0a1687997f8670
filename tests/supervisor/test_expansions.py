"""${VAR} and %(name)s in a program's command, env, cwd and probes, as real processes see them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from selfheal.config import parse_config
from selfheal.errors import ConfigError
from selfheal.supervisor import ProgramSpec
from selfheal.supervisor.config import ProgramConfig
from supervisor_helpers import PY, make, wait_until

pytestmark = pytest.mark.anyio

# Writes what it was started with (argv, a few variables, cwd) to the file named by $OUT_<N>.
SHOW = (
    "import json, os, sys, time\n"
    "out = {'argv': sys.argv[1:], 'cwd': os.getcwd(),\n"
    "       'env': {k: os.environ.get(k) for k in ('GREETING', 'MSG', 'FMT')}}\n"
    "open(sys.argv[1], 'w').write(json.dumps(out))\n"
    "time.sleep(60)\n"
)


def program(tmp_path: Path, **table: object) -> ProgramSpec:
    """Return program ``w`` as the config file ``tmp_path/selfheal.toml`` would give it."""
    return ProgramConfig.model_validate({"cwd": ".", **table}).to_spec("w", base_dir=tmp_path)


async def test_each_process_sees_its_number_and_the_daemons_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREETING", "hello")
    (tmp_path / "show.py").write_text(SHOW)
    spec = program(
        tmp_path,
        command=[PY, "%(here)s/show.py", "out_%(process_num)02d.json", "${GREETING}", "${NOPE:-x}"],
        env={
            "MSG": "${GREETING} from %(program_name)s of %(numprocs)d",
            # Not one of ours: a Python logging format reaches the program as written.
            "FMT": "%(asctime)s %(message)s $${literal}",
        },
        numprocs=2,
        numprocs_start=1,
    )
    sup, _ = make(tmp_path, spec)
    await sup.start()
    try:
        assert sup.select(["w:*"]) == ["w:1", "w:2"]
        seen = {}
        for n in (1, 2):
            path = tmp_path / f"out_{n:02d}.json"
            assert wait_until(lambda p=path: p.exists() and p.read_text().endswith("}"))
            seen[n] = json.loads(path.read_text())
    finally:
        await sup.stop()
    assert seen[1]["argv"] == ["out_01.json", "hello", "x"]
    assert seen[2]["argv"] == ["out_02.json", "hello", "x"]
    assert seen[1]["env"] == {
        "GREETING": "hello",
        "MSG": "hello from w of 2",
        "FMT": "%(asctime)s %(message)s ${literal}",
    }
    assert seen[1]["cwd"] == str(tmp_path / ".")


def test_a_command_sees_the_programs_own_env_and_a_shell_command_is_left_to_the_shell() -> None:
    spec = ProgramConfig.model_validate(
        {"command": ["echo", "${PORT}"], "env": {"PORT": "8080"}}
    ).to_spec("a")
    assert spec.command == ("echo", "8080")
    shell = ProgramConfig.model_validate(
        {"command": ["echo ${PORT} $HOME"], "shell": True, "env": {"PORT": "1"}}
    ).to_spec("b")
    assert shell.command == ("echo ${PORT} $HOME",)


def test_missing_variables_and_bare_names_are_config_errors_with_their_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SELFHEAL_TEST_UNSET", raising=False)
    text = (
        '[programs.ok]\ncommand = ["x", "%(process_num)d"]\n'
        '[programs.env]\ncommand = ["x"]\nenv = { DB = "${SELFHEAL_TEST_UNSET}" }\n'
        '[programs.bare]\ncommand = ["x", "%(process_num)"]\n'
        '[programs.old]\ncommand = ["x", "%(ENV_SELFHEAL_TEST_UNSET)s"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="t.toml")
    by_key = {i.key: i for i in caught.value.issues}
    assert set(by_key) == {"programs.env", "programs.bare", "programs.old"}
    env = by_key["programs.env"]
    assert env.line == 3
    assert "env.DB: ${SELFHEAL_TEST_UNSET} is not set in the daemon's environment" in env.message
    assert "${SELFHEAL_TEST_UNSET:-value}" in env.message
    assert by_key["programs.bare"].line == 6
    assert "%(process_num) needs a conversion: %(process_num)s or %(process_num)d" in (
        by_key["programs.bare"].message
    )
    assert "SELFHEAL_TEST_UNSET is not set" in by_key["programs.old"].message


async def test_probes_are_expanded_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_DIR", str(tmp_path))
    # Process N is ready once its readiness command finds ready_N: one per process.
    spec = program(
        tmp_path,
        command=[PY, "-c", "import time; time.sleep(60)"],
        numprocs=2,
        readiness={
            "command": [
                PY,
                "-c",
                "import os,sys; sys.exit(not os.path.exists(sys.argv[1]))",
                "${PROBE_DIR}/ready_%(process_num)d",
            ],
            "interval": 0.05,
        },
    )
    sup, rec = make(tmp_path, spec)
    await sup.start()
    try:
        (tmp_path / "ready_1").touch()
        await rec.wait("process.w.ready")
        assert sup.state("w:1").value == "RUNNING"
        assert sup.state("w:0").value == "STARTING"

        def probe_of_0() -> str:
            return str(sup.status(["w:0"])[0]["probe"])

        async with asyncio.timeout(10):
            while not probe_of_0():  # noqa: ASYNC110 - a probe failure publishes no event
                await asyncio.sleep(0.01)
        assert probe_of_0().startswith("readiness probe command ")
        assert f"{tmp_path}/ready_0: " in probe_of_0()
    finally:
        await sup.stop()
