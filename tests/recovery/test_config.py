"""``[[recovery]]`` rules from TOML: valid rules build engines, bad ones name key and line."""

from __future__ import annotations

import importlib

import pytest

from recovery_helpers import crash, outcomes, settle
from selfheal import Event, EventBus
from selfheal.config import ConfigError, parse_config, validate_model
from selfheal.recovery import (
    CallFunction,
    CallWebhook,
    DegradeFeature,
    NoAction,
    RateLimit,
    RecoveryEngine,
    RestartProgram,
    RunCommand,
)
from selfheal.recovery.config import RecoveryEngineConfig, rules_from_config
from selfheal.testing import FakeClock

FULL = """
[[recovery]]
name = "web crashed"
on = "process.*.exited"
when = { "data.exit_code" = { ne = 0 }, severity = { in = ["error", "critical"] } }
verify = { checks = ["web-http"], within = 20, interval = 0.5 }
steps = [
  { restart = "{subject}" },
  { command = ["systemctl", "restart", "postgresql"], cwd = "/", env = { A = "1" } },
]
escalate = [
  { webhook = "https://pager.example/hook", headers = { Authorization = "Bearer ${TOKEN}" } },
]
cooldown = 30
timeout = 10
retries = 1
retry_delay = 2
dedup_key = "{source}:{subject}"
breaker = { failures = 5, reset = 900 }
flap = { window = 300, high = 8, low = 3 }

[[recovery]]
on = "breaker.*.opened"
action = { degrade = "{subject}" }
flap = false

[[recovery]]
on = "synthetic.*.failed"
action = { call = "json:dumps" }

[[recovery]]
on = "app.*.failed"
action = { command = "echo {subject} | logger", shell = true }

[health.checks.web-http]
http = "http://127.0.0.1:8000/healthz"
"""


def test_a_full_config_builds_rules() -> None:
    cfg = parse_config(FULL)
    web, breaker, synthetic, shell = rules_from_config(cfg.recovery)
    assert web.name == "web crashed"
    assert web.steps[0] == RestartProgram("{subject}")
    assert web.steps[1] == RunCommand(
        ("systemctl", "restart", "postgresql"), cwd="/", env={"A": "1"}
    )
    assert isinstance(web.escalate[0], CallWebhook)
    assert web.escalate[0].headers == {"Authorization": "Bearer ${TOKEN}"}
    assert web.verify is not None
    assert (web.verify.checks, web.verify.within, web.verify.interval) == (("web-http",), 20, 0.5)
    assert (web.cooldown, web.timeout, web.retries, web.retry_delay) == (30, 10, 1, 2)
    assert (web.breaker_failures, web.breaker_reset) == (5, 900)
    assert web.flap is not None
    assert (web.flap.window, web.flap.high, web.flap.low) == (300, 8, 3)
    assert web.dedup_key == "{source}:{subject}"
    assert len(web.conditions) == 2
    assert breaker.steps == (DegradeFeature("{subject}"),)
    assert breaker.flap is None
    assert isinstance(synthetic.steps[0], CallFunction)
    assert synthetic.steps[0].fn is importlib.import_module("json").dumps
    assert shell.steps == (RunCommand(("echo {subject} | logger",), shell=True),)


def test_an_empty_action_only_verifies() -> None:
    cfg = parse_config('[[recovery]]\non = "a.*"\naction = {}\n')
    (rule,) = rules_from_config(cfg.recovery)
    assert rule.steps == (NoAction(),)


@pytest.mark.parametrize(
    ("body", "key", "line", "message"),
    [
        ('on = "a.*"\n', "recovery[0]", 2, "give either action"),
        (
            'on = "a.*"\naction = { restart = "x" }\nsteps = [{ restart = "y" }]\n',
            "recovery[0]",
            2,
            "not both",
        ),
        ('on = "a..b"\naction = {}\n', "recovery[0].on", 3, "dotted non-empty segments"),
        (
            'on = "a.*"\naction = { restart = "x", degrade = "y" }\n',
            "recovery[0].action",
            4,
            "exactly one of",
        ),
        ('on = "a.*"\naction = { command = "rm -rf /" }\n', "recovery[0].action", 4, "argv"),
        (
            'on = "a.*"\naction = { command = ["x"], shell = true }\n',
            "recovery[0].action",
            4,
            "one string",
        ),
        (
            'on = "a.*"\naction = { restart = "x", shell = true }\n',
            "recovery[0].action",
            4,
            "only go with command",
        ),
        ('on = "a.*"\naction = { webhook = "ftp://x" }\n', "recovery[0].action", 4, "http"),
        (
            'on = "a.*"\naction = { call = "no_such_module_x:f" }\n',
            "recovery[0].action",
            4,
            "cannot import",
        ),
        ('on = "a.*"\naction = { call = "json" }\n', "recovery[0].action", 4, "module:function"),
        (
            'on = "a.*"\naction = {}\nwhen = { "exit_code" = 1 }\n',
            "recovery[0].when",
            5,
            "unknown field",
        ),
        (
            'on = "a.*"\naction = {}\nflap = { high = 3, low = 3 }\n',
            "recovery[0].flap",
            5,
            "below high",
        ),
        (
            'on = "a.*"\naction = {}\ncooldown = -1\n',
            "recovery[0].cooldown",
            5,
            "greater than or equal",
        ),
        (
            'on = "a.*"\naction = {}\nverify = { checks = [] }\n',
            "recovery[0].verify.checks",
            5,
            "at least 1",
        ),
        ('on = "a.*"\naction = {}\nretry = 3\n', "recovery[0].retry", 5, "unknown key"),
    ],
)
def test_bad_rules_name_key_line_and_what_is_valid(
    body: str, key: str, line: int, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("\n[[recovery]]\n" + body)
    (issue,) = info.value.issues
    assert issue.key == key
    assert issue.line == line
    assert message in issue.message


def test_engine_settings() -> None:
    cfg = validate_model(
        RecoveryEngineConfig, {"dry_run": True, "rate_limit": {"per_minute": 6, "burst": 2}}
    )
    limit = cfg.limit()
    assert limit is not None
    assert (limit.per_second, limit.burst) == (0.1, 2)
    assert cfg.dry_run
    assert RecoveryEngineConfig().limit() == RateLimit(per_second=1.0, burst=20)
    text = "[recovery_engine]\nrate_limit = { per_minute = 0 }\n"
    with pytest.raises(ConfigError) as info:
        validate_model(RecoveryEngineConfig, {"rate_limit": {"per_minute": 0}}, text=text)
    (issue,) = info.value.issues
    assert issue.key == "rate_limit.per_minute"
    assert "greater than 0" in issue.message


@pytest.mark.anyio
async def test_a_rule_storm_is_held_by_the_default_rate_limit(fclock: FakeClock) -> None:
    # No cooldown, no flap detection, no [recovery_engine]: a storm of failures of distinct
    # subjects once started a recovery for every one of them (10.6k in 75 s).
    names = [f"p{i}" for i in range(200)]
    programs = "".join(f"[programs.{n}]\ncommand = ['sleep', '60']\n" for n in names)
    rule = '[[recovery]]\non = "process.*.exited"\naction = {}\ncooldown = 0\nflap = false\n'
    config = parse_config(programs + rule)
    limit = config.recovery_engine.limit()
    assert limit is not None
    bus = EventBus(clock=fclock)
    seen: list[Event] = []
    bus.subscribe("recovery.*", seen.append)
    rules = rules_from_config(config.recovery)
    async with RecoveryEngine(bus, rules, clock=fclock, rate_limit=limit) as engine:
        for name in names:
            crash(bus, name)
        await settle(engine)
        fclock.advance(60)
        for name in names:
            crash(bus, name)
        await settle(engine)
    started = outcomes(seen).count("started")
    assert started == 2 * limit.burst  # a full bucket, and a minute later a full one again
    assert "suppressed:rate_limited" in outcomes(seen)
