"""Bare ``@selfheal.retry`` and ``retry()``: safe defaults, stamina's habit (issue 9, item 5)."""

from __future__ import annotations

from typing import Any

import pytest

import selfheal
from policy_helpers import Flaky
from selfheal import RetryError
from selfheal.testing import FakeClock


class Down(Exception):
    """Any failure: the bare retry catches every Exception."""


def test_bare_decorator_retries_then_reraises_the_original_error() -> None:
    # Test mode: the bare decorator sleeps on the system clock, test mode skips the sleeps.
    selfheal.set_testing(True, attempts=10)
    last = Down("still down")
    flaky = Flaky(100, last)

    @selfheal.retry
    def fetch() -> str:
        return str(flaky())

    with pytest.raises(Down) as info:
        fetch()
    assert info.value is last
    assert flaky.calls == 3  # the default bound, below test mode's cap of 10
    assert fetch.__name__ == "fetch"


def test_bare_decorator_recovers_and_passes_arguments() -> None:
    selfheal.set_testing(True, attempts=10)
    flaky = Flaky(2, Down("blip"))

    @selfheal.retry
    def fetch(*args: Any, **kwargs: Any) -> Any:
        return flaky(*args, **kwargs)

    assert fetch(1, key=2) == "ok"
    assert flaky.calls == 3
    assert flaky.args == ((1,), {"key": 2})


@pytest.mark.anyio
async def test_bare_decorator_on_async_functions() -> None:
    selfheal.set_testing(True, attempts=10)
    calls = 0

    @selfheal.retry
    async def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise Down(str(calls))
        return "ok"

    assert await fetch() == "ok"
    calls = -10
    with pytest.raises(Down, match="-7"):
        await fetch()


def test_bare_decorator_on_methods_classmethods_and_staticmethods() -> None:
    selfheal.set_testing(True, attempts=10)

    class Client:
        def __init__(self) -> None:
            self.flaky = Flaky(1, Down())

        @selfheal.retry
        def get(self, path: str) -> str:
            return f"{self.flaky()} {path}"

        @selfheal.retry
        @classmethod
        def build(cls) -> str:
            return cls.__name__

        @selfheal.retry
        @staticmethod
        def ping() -> str:
            return "pong"

    client = Client()
    assert client.get("/") == "ok /"
    assert client.flaky.calls == 2
    assert Client.build() == "Client"
    assert Client.ping() == "pong"


def test_retry_with_parentheses_has_the_same_defaults(clock: FakeClock) -> None:
    # No `on=`: every Exception is retried, 3 attempts, jittered exponential waits, and the
    # original error at the end.
    flaky = Flaky(100, KeyError("gone"))
    fn = selfheal.retry(clock=clock)(flaky)
    with pytest.raises(KeyError) as info:
        fn()
    assert info.value is flaky.exc
    assert flaky.calls == 3
    first, second = clock.sleeps
    assert 0.1 <= first <= 0.2
    assert 0.2 <= second <= 0.3


def test_defaults_bound_the_total_time(clock: FakeClock) -> None:
    # attempts=None leaves only the default time bound: 45 s from the first attempt.
    seen: list[float | None] = []

    def slow() -> None:
        seen.append(selfheal.remaining())
        clock.advance(10)
        raise TimeoutError("slow")

    fn = selfheal.retry(attempts=None, clock=clock)(slow)
    with pytest.raises(TimeoutError):
        fn()
    # Attempts start at 0, ~10, ~20, ~31, ~42 s (10 s each plus short waits); the next one
    # could only start after 45 s.
    assert len(seen) == 5
    assert seen[0] == 45.0
    assert all(left is not None and left > 0 for left in seen)
    assert clock.monotonic() == pytest.approx(50 + sum(clock.sleeps))
    assert selfheal.retry().deadline == 45.0


def test_bare_defaults_never_catch_base_exceptions(clock: FakeClock) -> None:
    flaky = Flaky(1, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        selfheal.retry(clock=clock)(flaky)()
    assert flaky.calls == 1


def test_on_keeps_the_established_defaults(clock: FakeClock) -> None:
    # With on= (the article's, and every existing call's form) giving up is a RetryError.
    flaky = Flaky(100, Down())
    with pytest.raises(RetryError) as info:
        selfheal.retry(on=Down, clock=clock)(flaky)()
    assert info.value.attempts == 3
    assert clock.sleeps == [0.1, 0.2]
    assert selfheal.retry(on=Down).deadline is None


def test_reraise_can_be_chosen_either_way(clock: FakeClock) -> None:
    with pytest.raises(RetryError):
        selfheal.retry(reraise=False, backoff=0, clock=clock)(Flaky(100, Down()))()
    with pytest.raises(Down):
        selfheal.retry(on=Down, reraise=True, backoff=0, clock=clock)(Flaky(100, Down()))()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: selfheal.retry(ConnectionError), r"on=ConnectionError"),
        (lambda: selfheal.retry((KeyError, OSError)), r"on=\(KeyError, OSError\)"),
        (lambda: selfheal.retry(print, attempts=2), r"not both; write retry\(attempts=2\)\(fn\)"),
        (lambda: selfheal.retry(3), r"a function to decorate"),
    ],
)
def test_positional_misuse_says_what_to_write(call: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call()
