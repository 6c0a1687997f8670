"""The article's SyntheticTester example, moved onto selfheal's API.

The scenarios are the article's, against a real shop on 127.0.0.1: ``test_user_login`` gets
the login page, extracts its CSRF token, posts the form and expects "Welcome back";
``test_product_search`` searches for a random term. Only two things change: an
``httpx.Client`` stands in for ``requests.Session`` (httpx is selfheal's HTTP client), and the
tester gets ``clock=`` so that no real time passes between runs. The calls are the article's:
``SyntheticTester(base_url)``, ``register_scenario(name, fn, frequency=)``, ``start()``,
``get_status()``, ``stop()``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import httpx
import pytest

from health_helpers import wait_until
from selfheal.synthetic import HttpScenario, HttpStep, SyntheticTester
from selfheal.testing import FakeClock
from synthetic_helpers import Shop


def extract_csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    if match is None:
        raise Exception("No CSRF token on the login page")
    return match.group(1)


# Example scenarios (the article's, with httpx.Client for requests.Session)
def test_user_login(base_url: str) -> None:
    # Simulate user login flow
    with httpx.Client(timeout=10) as session:
        # Get login page to capture CSRF token
        response = session.get(f"{base_url}/login")

        # Extract CSRF token (implementation depends on your app)
        csrf_token = extract_csrf_token(response.text)

        # Attempt login
        login_response = session.post(
            f"{base_url}/login",
            data={
                "username": "test_user",
                "password": "test_password",
                "csrf_token": csrf_token,
            },
            follow_redirects=True,
        )

    # Verify login was successful
    if "Welcome back" not in login_response.text:
        raise Exception("Login test failed")


def test_product_search(base_url: str) -> None:
    # Test the search functionality
    search_terms = ["laptop", "phone", "headphones", "keyboard"]
    term = random.choice(search_terms)

    response = httpx.get(f"{base_url}/search", params={"q": term}, timeout=10)

    if response.status_code != 200:
        raise Exception(f"Search failed with status {response.status_code}")

    if "No results found" in response.text and "Error" in response.text:
        raise Exception("Search returned error page")


# The article names its scenario functions test_*; they are scenarios, not pytest tests.
test_user_login.__test__ = False  # type: ignore[attr-defined]
test_product_search.__test__ = False  # type: ignore[attr-defined]


def ran(tester: SyntheticTester, counts: dict[str, int]) -> Callable[[], bool]:
    """Return a predicate: every scenario ran this often and its loop waits for the next run."""

    def done() -> bool:
        for name, runs in counts.items():
            report = tester.report(name)
            if report.successes + report.failures < runs or report.next_run is None:
                return False
        return True

    return done


def test_the_article_example_runs_each_scenario_at_its_frequency(shop: Shop, shop_url: str) -> None:
    clock = FakeClock()

    # Usage
    tester = SyntheticTester(shop_url, clock=clock)
    tester.register_scenario("user_login", test_user_login, frequency=600)  # Every 10 min
    tester.register_scenario("product_search", test_product_search, frequency=300)  # Every 5 min
    tester.start()
    try:
        wait_until(ran(tester, {"user_login": 1, "product_search": 1}), 20)
        clock.advance(330)  # past the longest jittered wait of product_search (300 * 1.1)
        wait_until(ran(tester, {"user_login": 1, "product_search": 2}), 20)
        clock.advance(330)  # 660 s in: both again
        wait_until(ran(tester, {"user_login": 2, "product_search": 3}), 20)
        status = tester.get_status()
    finally:
        tester.stop()

    assert status["user_login"]["success_count"] == 2
    assert status["user_login"]["failure_count"] == 0
    assert status["product_search"]["success_count"] == 3
    assert status["product_search"]["failure_count"] == 0
    assert status["user_login"]["last_run"] == pytest.approx(clock.time(), abs=330)
    assert len(shop.requests("POST", "/login")) == 2
    assert len(shop.requests("GET", "/search")) == 3


def test_a_failing_scenario_is_counted_and_says_why(shop: Shop, shop_url: str) -> None:
    tester = SyntheticTester(shop_url, clock=FakeClock())
    tester.register_scenario("product_search", test_product_search, frequency=300)
    shop.broken = True  # the search answers its error page, with status 200

    record = tester.run_scenario("product_search")

    assert not record.passed
    assert record.error == "Exception: Search returned error page"
    status = tester.get_status()["product_search"]
    assert (status["success_count"], status["failure_count"]) == (0, 1)
    assert status["last_error"] == "Exception: Search returned error page"
    assert status["status"] == "failing"


def test_a_wrong_login_fails_the_login_scenario(shop: Shop, shop_url: str) -> None:
    def test_bad_login(base_url: str) -> None:
        with httpx.Client(timeout=10) as session:
            token = extract_csrf_token(session.get(f"{base_url}/login").text)
            page = session.post(
                f"{base_url}/login",
                data={"username": "test_user", "password": "guess", "csrf_token": token},
            )
        if "Welcome back" not in page.text:
            raise Exception("Login test failed")

    tester = SyntheticTester(shop_url, clock=FakeClock())
    tester.register_scenario("user_login", test_bad_login, frequency=600)
    assert tester.run_scenario("user_login").error == "Exception: Login test failed"


def test_the_apps_setup_of_synthetic_tests(shop: Shop, shop_url: str) -> None:
    """``SelfHealingApp.setup_synthetic_tests``: the article's third scenario is a checkout."""
    # The article leaves test_checkout_process undefined; here it is a declarative flow.
    test_checkout_process = HttpScenario(
        [
            HttpStep("order", "POST", "/orders", json={"sku": "A1"}, capture={"id": "[BODY].id"}),
            HttpStep("confirm", "GET", "/orders/{id}", conditions=["[BODY].status == new"]),
        ],
        cleanup=[HttpStep("cancel", "DELETE", "/orders/{id}")],
    )
    synthetic_tester = SyntheticTester(shop_url, clock=FakeClock())

    # Test user login flow
    synthetic_tester.register_scenario(
        "user_login",
        test_user_login,
        frequency=600,  # Every 10 minutes
    )
    # Test product search
    synthetic_tester.register_scenario(
        "product_search",
        test_product_search,
        frequency=300,  # Every 5 minutes
    )
    # Test checkout process
    synthetic_tester.register_scenario(
        "checkout",
        test_checkout_process,
        frequency=1800,  # Every 30 minutes
    )

    for name in synthetic_tester.names():
        assert synthetic_tester.run_scenario(name).passed
    assert synthetic_tester.suite_report().ready
    assert shop.orders == {}
    assert {s.headers.get("x-selfheal-synthetic") for s in shop.requests("POST", "/orders")} == {
        "1"
    }
