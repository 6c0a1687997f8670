"""``selfheal chaos stop`` / ``resume``: the kill-switch file, from the command line."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from selfheal.chaos import KillSwitch, Safeguards
from selfheal.cli._chaos_switch import commands


@click.group()
def chaos() -> None:
    """The group the commands are attached to in the real CLI."""


for command in commands:
    chaos.add_command(command)


def test_stop_engages_and_resume_releases(tmp_path: Path) -> None:
    state = tmp_path / "state"
    runner = CliRunner()
    result = runner.invoke(chaos, ["stop", "--state-dir", str(state), "--reason", "incident 7"])
    assert result.exit_code == 0, result.output
    assert "kill switch" in result.output
    switch = KillSwitch(state)
    assert switch.reason() == "incident 7"
    assert Safeguards(kill_switch=switch).stop_reason() is not None
    result = runner.invoke(chaos, ["resume", "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert not switch.engaged()
    result = runner.invoke(chaos, ["resume", "--state-dir", str(state)])
    assert "was not engaged" in result.output


def test_state_dir_comes_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text('[control]\nstate_dir = "var/sh"\n')
    result = CliRunner().invoke(chaos, ["stop", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert KillSwitch(tmp_path / "var" / "sh").engaged()


def test_a_bad_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text("[control]\nstate_dir = 3\n")
    result = CliRunner().invoke(chaos, ["stop", "-c", str(config)])
    assert result.exit_code == 2
    assert "state_dir" in result.output
    assert "Traceback" not in result.output
