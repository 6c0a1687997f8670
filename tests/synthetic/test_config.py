"""``[synthetic.NAME]`` tables: errors that name the key, and scenarios that run from config."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import BaseModel, Field

from selfheal.config import validate_model
from selfheal.errors import ConfigError
from selfheal.synthetic import RunOutcome, SyntheticTester
from selfheal.synthetic.config import SyntheticTable, add_scenarios
from selfheal.testing import FakeClock
from synthetic_helpers import Shop


class Doc(BaseModel):
    """What the daemon's config holds of ours: ``synthetic: SyntheticTable``."""

    synthetic: SyntheticTable = Field(default_factory=dict)


def load(text: str) -> Doc:
    return validate_model(Doc, tomllib.loads(text), text=text, source="selfheal.toml")


CHECKOUT = """
[synthetic.checkout]
base_url = "{url}"
interval = 30
retries = 1
retry_delay = 0
suite = "shop"

[[synthetic.checkout.steps]]
name = "create order"
method = "post"
path = "/orders"
json = {{ sku = "A1", qty = 1 }}
conditions = ["[STATUS] == 201", "[BODY].status == new", "[RESPONSE_TIME] < 5000"]
capture = {{ order_id = "[BODY].id" }}

[[synthetic.checkout.steps]]
name = "read order"
path = "/orders/{{order_id}}"
expect.status = 200
expect.json = {{ sku = "A1", qty = 1 }}
expect.headers = {{ content-type = "application/json" }}

[[synthetic.checkout.cleanup]]
name = "delete order"
method = "DELETE"
path = "/orders/{{order_id}}"
expect = {{ status = [200, 204] }}

[synthetic.up]
base_url = "{url}"
call = "synthetic_helpers:shop_answers"
interval = 10
critical = false

[synthetic.off]
enabled = false
steps = [{{ path = "/nowhere" }}]
"""


@pytest.mark.anyio
async def test_scenarios_from_config_run_against_the_service(shop: Shop, shop_url: str) -> None:
    doc = load(CHECKOUT.format(url=shop_url))
    tester = SyntheticTester("http://127.0.0.1:1", clock=FakeClock())

    assert add_scenarios(tester, doc.synthetic) == ["checkout", "up"]

    options = tester.options("checkout")
    assert (options.frequency, options.retries, options.suite) == (30, 1, "shop")
    assert options.timeout == 30  # the smaller of 30 s and the interval
    assert not tester.options("up").critical
    record = await tester.arun("checkout")
    assert record.outcome is RunOutcome.PASSED, record.error
    assert [(s.method, s.path) for s in shop.seen] == [
        ("POST", "/orders"),
        ("GET", "/orders/1"),
        ("DELETE", "/orders/1"),
    ]
    assert all(s.headers["x-selfheal-synthetic"] == "1" for s in shop.seen)
    assert shop.orders == {}
    assert (await tester.arun("up")).passed


@pytest.mark.anyio
async def test_a_scenario_without_base_url_uses_the_testers(shop: Shop, shop_url: str) -> None:
    doc = load(
        '[synthetic.ping]\nsteps = [{ path = "/flaky", conditions = ["[BODY].ok == true"] }]'
    )
    tester = SyntheticTester(shop_url, clock=FakeClock())
    add_scenarios(tester, doc.synthetic)
    record = await tester.arun("ping")
    assert record.passed, record.error
    assert record.steps[0].name == "GET /flaky"


ERRORS = [
    # (config, the key the error names, what the message says)
    (
        '[synthetic.a]\nsteps = [{ path = "/", conditions = ["[STATUS] =! 200"] }]',
        "synthetic.a.steps[0].conditions",
        "'[STATUS] =! 200' is not a condition: use '[STATUS] == 200'",
    ),
    (
        '[synthetic.a]\nsteps = [{ path = "/", conditions = ["[RESPONSE_TIME] > 5"] }]',
        "synthetic.a.steps[0].conditions",
        "use '[RESPONSE_TIME] < N' with N in milliseconds",
    ),
    (
        '[synthetic.a]\nsteps = [{ path = "/", capture = { id = "[BODY" } }]',
        "synthetic.a.steps[0].capture",
        "'[BODY' is not a value to capture",
    ),
    (
        '[synthetic.a]\nsteps = [{ path = "/", method = "FETCH" }]',
        "synthetic.a.steps[0].method",
        "Input should be 'GET', 'POST'",
    ),
    (
        '[synthetic.a]\nsteps = [{ path = "/", timeout = 0 }]',
        "synthetic.a.steps[0].timeout",
        "greater than 0",
    ),
    (
        '[synthetic.a]\nsteps = [{ path = "/", json = {}, body = "x" }]',
        "synthetic.a.steps[0]",
        "give json or body, not both",
    ),
    (
        '[synthetic.a]\nsteps = [{ path = "/", expect = { status = 999 } }]',
        "synthetic.a.steps[0].expect.status",
        "statuses are 100 to 599, got 999",
    ),
    (
        '[synthetic.a]\nsteps = [{ path = "/", expect = { body_matches = "(" } }]',
        "synthetic.a.steps[0].expect.body_matches",
        "not a regular expression",
    ),
    (
        '[synthetic.a]\nsteps = [{ path = "/", expect = { stauts = 200 } }]',
        "synthetic.a.steps[0].expect.stauts",
        "unknown key",
    ),
    (
        '[synthetic.a]\nsteps = [{ path = "/orders/{id}" }]',
        "synthetic.a",
        "steps[0] ('GET /orders/{id}') uses {id}, but no value of that name is given or an "
        "earlier step captures (known there: none)",
    ),
    (
        '[synthetic.a]\nsteps = [{ path = "/" }]\ncleanup = [{ path = "/x/{nope}" }]',
        "synthetic.a",
        "cleanup[0] ('GET /x/{nope}') uses {nope}",
    ),
    ("[synthetic.a]\ninterval = 10", "synthetic.a", "give either steps"),
    (
        '[synthetic.a]\ncall = "os:getcwd"\nsteps = [{ path = "/" }]',
        "synthetic.a",
        "not both",
    ),
    ('[synthetic.a]\ncall = "no_such_module_x:run"', "synthetic.a.call", "cannot import"),
    ('[synthetic.a]\ncall = "os.getcwd"', "synthetic.a.call", "call must be 'module:function'"),
    (
        '[synthetic.a]\ncall = "os:getcwd"\nheaders = { X = "1" }',
        "synthetic.a",
        "headers only go with steps",
    ),
    ('[synthetic.a]\ncall = "os:getcwd"\njitter = 0.9', "synthetic.a.jitter", "0.5"),
    (
        '[synthetic.a]\ncall = "os:getcwd"\nretries = -1',
        "synthetic.a.retries",
        "greater than or equal to 0",
    ),
    (
        '[synthetic.a]\ncall = "os:getcwd"\ninterval = 10\nretries = 20',
        "synthetic.a",
        "retries * retry_delay (20 s) must be less than the timeout (10 s)",
    ),
    (
        '[synthetic.a]\ncall = "os:getcwd"\ninterval = 60\nmax_age = 1',
        "synthetic.a",
        "max_age must be at least",
    ),
    (
        '[synthetic.a]\ncall = "os:getcwd"\nbase_url = "localhost:8000"',
        "synthetic.a.base_url",
        "must be an http:// or https:// URL with a host",
    ),
    (
        '[synthetic."has space"]\ncall = "os:getcwd"',
        "synthetic.has space",
        "scenario names are 1-63 letters, digits",
    ),
    ('[synthetic.a]\ncall = "os:getcwd"\nintervall = 5', "synthetic.a.intervall", "unknown key"),
]


@pytest.mark.parametrize(("text", "key", "message"), ERRORS)
def test_config_errors_name_the_key_and_what_is_valid(text: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(text)
    issues = caught.value.issues
    assert [issue.key for issue in issues] == [key], issues
    assert message in issues[0].message
    assert "\n" not in issues[0].message
    assert issues[0].line is not None


def test_the_error_line_is_the_offending_step() -> None:
    text = (
        '[synthetic.a]\nbase_url = "http://127.0.0.1:1"\n\n'
        '[[synthetic.a.steps]]\npath = "/"\n\n'
        '[[synthetic.a.steps]]\npath = "/x"\nconditions = ["[BODY].x > 1"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(text)
    (issue,) = caught.value.issues
    assert issue.key == "synthetic.a.steps[1].conditions"
    assert issue.line == 9
    assert "[BODY] conditions compare with == only" in issue.message


def test_secrets_in_a_bad_base_url_are_not_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        load('[synthetic.a]\ncall = "os:getcwd"\nbase_url = "ftp://ops:hunter2@host/"')
    assert "hunter2" not in str(caught.value)
    assert "synthetic.a.base_url" in str(caught.value)


def test_a_name_the_tester_already_has_is_refused() -> None:
    doc = load('[synthetic.a]\ncall = "os:getcwd"')
    tester = SyntheticTester("http://127.0.0.1:1", clock=FakeClock())
    add_scenarios(tester, doc.synthetic)
    with pytest.raises(ValueError, match="a scenario named 'a' is already registered"):
        add_scenarios(tester, doc.synthetic)
