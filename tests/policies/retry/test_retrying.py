from __future__ import annotations

import math
import pickle
import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import selfheal
from selfheal import (
    ConstantBackoff,
    DecorrelatedJitter,
    Event,
    EventBus,
    ExponentialBackoff,
    LinearBackoff,
    RandomJitter,
    RetryBudget,
    RetryError,
    StopAfterAttempts,
    StopAfterDelay,
    StopAtDeadline,
)
from selfheal.testing import FakeClock


@pytest.fixture(autouse=True)
def _no_test_mode() -> Iterator[None]:
    selfheal.set_testing(False)
    yield
    selfheal.set_testing(False)


class Flaky:
    """Fails `failures` times with `exc`, then returns `value`."""

    def __init__(self, failures: int, exc: BaseException | None = None, value: Any = "ok") -> None:
        self.failures = failures
        self.exc = exc or ConnectionError("down")
        self.value = value
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.args = (args, kwargs)
        if self.calls <= self.failures:
            raise self.exc
        return self.value


def _collect(bus: EventBus, pattern: str = "*") -> list[Event]:
    seen: list[Event] = []
    bus.subscribe(pattern, seen.append)
    return seen


# --------------------------------------------------------------------- schedules and giving up


def test_success_needs_no_sleep_and_passes_arguments(clock: FakeClock) -> None:
    flaky = Flaky(0)
    fn = selfheal.retry(on=ConnectionError, clock=clock)(flaky)
    assert fn(1, key=2) == "ok"
    assert flaky.args == ((1,), {"key": 2})
    assert clock.sleeps == []


def test_exponential_schedule_is_exact(clock: FakeClock) -> None:
    policy = selfheal.retry(
        on=ConnectionError,
        attempts=5,
        backoff=ExponentialBackoff(initial=0.5, multiplier=2, max=3.0),
        clock=clock,
    )
    flaky = Flaky(4)
    assert policy(flaky)() == "ok"
    assert flaky.calls == 5
    assert clock.sleeps == [0.5, 1.0, 2.0, 3.0]
    assert clock.monotonic() == 6.5


def test_constant_and_linear_schedules(clock: FakeClock) -> None:
    fn = selfheal.retry(on=ValueError, attempts=4, backoff=0.25, clock=clock)(
        Flaky(3, ValueError())
    )
    fn()
    assert clock.sleeps == [0.25, 0.25, 0.25]
    clock.sleeps.clear()
    linear = LinearBackoff(initial=1, increment=2, max=4)
    fn = selfheal.retry(on=ValueError, attempts=4, backoff=linear, clock=clock)(
        Flaky(3, ValueError())
    )
    fn()
    assert clock.sleeps == [1, 3, 4]


def test_gives_up_with_retry_error_carrying_the_last_exception(clock: FakeClock) -> None:
    last = ConnectionError("still down")
    flaky = Flaky(10, last)
    fn = selfheal.retry(on=ConnectionError, attempts=3, backoff=0.1, clock=clock)(flaky)
    with pytest.raises(RetryError) as info:
        fn()
    assert info.value.attempts == 3
    assert info.value.reason == "attempts"
    assert info.value.last_exception is last
    assert info.value.__cause__ is last
    assert flaky.calls == 3
    assert clock.sleeps == [0.1, 0.1]
    assert "gave up after 3 attempt(s)" in str(info.value)


def test_reraise_gives_up_with_the_last_exception_itself(clock: FakeClock) -> None:
    last = ConnectionError("x")
    fn = selfheal.retry(on=ConnectionError, attempts=2, backoff=0, reraise=True, clock=clock)(
        Flaky(5, last)
    )
    with pytest.raises(ConnectionError) as info:
        fn()
    assert info.value is last


def test_other_exceptions_propagate_at_once(clock: FakeClock) -> None:
    flaky = Flaky(1, KeyError("bad request"))
    fn = selfheal.retry(on=(ConnectionError, TimeoutError), clock=clock)(flaky)
    with pytest.raises(KeyError):
        fn()
    assert flaky.calls == 1
    assert clock.sleeps == []


def test_predicate_decides_what_is_retried(clock: FakeClock) -> None:
    def transient(exc: BaseException) -> bool:
        return "503" in str(exc)

    fn = selfheal.retry(on=transient, attempts=3, backoff=0, clock=clock)(Flaky(1, OSError("503")))
    assert fn() == "ok"
    flaky = Flaky(1, OSError("404"))
    fn = selfheal.retry(on=transient, attempts=3, backoff=0, clock=clock)(flaky)
    with pytest.raises(OSError, match="404"):
        fn()
    assert flaky.calls == 1


def test_retry_on_result(clock: FakeClock) -> None:
    results = iter([None, None, 42])
    fn = selfheal.retry(
        on=ConnectionError, attempts=5, backoff=1, retry_on_result=lambda r: r is None, clock=clock
    )(lambda: next(results))
    assert fn() == 42
    assert clock.sleeps == [1, 1]

    fn = selfheal.retry(
        on=ConnectionError, attempts=2, backoff=1, retry_on_result=lambda r: r is None, clock=clock
    )(lambda: None)
    with pytest.raises(RetryError) as info:
        fn()
    assert info.value.last_exception is None
    assert info.value.last_result is None
    assert info.value.attempts == 2


# --------------------------------------------------------------------- hints, stops, deadline


class Throttled(Exception):
    def __init__(self, retry_after: object) -> None:
        super().__init__("429")
        self.retry_after = retry_after


@pytest.mark.parametrize(
    ("hint", "expected"), [(7, 7.0), ("2.5", 2.5), (timedelta(seconds=3), 3.0), ("soon", 0.1)]
)
def test_retry_after_hint_replaces_the_backoff(
    clock: FakeClock, hint: object, expected: float
) -> None:
    fn = selfheal.retry(on=Throttled, attempts=2, backoff=0.1, clock=clock)(
        Flaky(1, Throttled(hint))
    )
    assert fn() == "ok"
    assert clock.sleeps == [expected]


def test_custom_hint_extractor_and_disabled_hints(clock: FakeClock) -> None:
    fn = selfheal.retry(on=ValueError, attempts=2, backoff=0.1, hint=lambda e: 9.0, clock=clock)(
        Flaky(1, ValueError())
    )
    fn()
    assert clock.sleeps == [9.0]
    clock.sleeps.clear()
    fn = selfheal.retry(on=Throttled, attempts=2, backoff=0.1, hint=None, clock=clock)(
        Flaky(1, Throttled(50))
    )
    fn()
    assert clock.sleeps == [0.1]


def test_deadline_never_sleeps_past_it(clock: FakeClock) -> None:
    flaky = Flaky(100)
    fn = selfheal.retry(on=ConnectionError, attempts=None, backoff=1.0, deadline=3.5, clock=clock)(
        flaky
    )
    with pytest.raises(RetryError) as info:
        fn()
    assert info.value.reason == "deadline"
    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert flaky.calls == 4


def test_deadline_is_visible_inside_the_call(clock: FakeClock) -> None:
    seen: list[float | None] = []

    def call() -> str:
        seen.append(selfheal.remaining())
        clock.advance(0.5)
        if len(seen) < 3:
            raise ConnectionError
        return "ok"

    fn = selfheal.retry(on=ConnectionError, attempts=5, backoff=1.0, deadline=10, clock=clock)(call)
    assert fn() == "ok"
    assert seen == [10.0, 8.5, 7.0]
    assert selfheal.remaining() is None
    assert selfheal.current_deadline() is None


def test_stop_conditions_compose(clock: FakeClock) -> None:
    either = StopAfterAttempts(5) | StopAfterDelay(2)
    both = StopAfterAttempts(5) & StopAfterDelay(2)
    assert either(1, 2.0, 0)
    assert either(5, 0, 0)
    assert not either(1, 1.0, 0)
    assert both(5, 2.0, 0)
    assert not both(5, 1.0, 0)
    assert not both(1, 3.0, 0)
    assert StopAtDeadline(3)(1, 2.0, 1.0)
    assert not StopAtDeadline(3)(1, 1.0, 1.0)
    assert repr(either) == "(StopAfterAttempts(attempts=5) | StopAfterDelay(seconds=2))"

    flaky = Flaky(100)
    fn = selfheal.retry(
        on=ConnectionError, attempts=10, backoff=1, stop=StopAfterDelay(2.5), clock=clock
    )(flaky)
    with pytest.raises(RetryError) as info:
        fn()
    assert info.value.reason == "stop"
    assert flaky.calls == 4


def test_backoffs_compose_and_read_well() -> None:
    combined = ConstantBackoff(1) + RandomJitter(0, 0.5, rng=random.Random(1))
    assert repr(combined) == "ConstantBackoff(1) + RandomJitter(low=0, high=0.5)"
    assert 1 <= combined.delay(1, 0) <= 1.5
    assert (0.5 + ConstantBackoff(1)).delay(3, 0) == 1.5
    assert (
        repr(ExponentialBackoff())
        == "ExponentialBackoff(initial=0.1, multiplier=2.0, max=5.0, jitter=0.0)"
    )
    assert ExponentialBackoff(initial=1, max=1e300).delay(5000, 0) == 1e300


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ConstantBackoff(-1), "seconds must be a number >= 0"),
        (lambda: ExponentialBackoff(multiplier=0.5), "multiplier must be a number >= 1"),
        (lambda: DecorrelatedJitter(initial=2, max=1), "max"),
        (lambda: RandomJitter(2, 1), "high"),
        (lambda: StopAfterAttempts(0), "attempts must be an int >= 1"),
        (lambda: selfheal.retry(on=ValueError, attempts=0), "attempts must be an int >= 1"),
        (lambda: selfheal.retry(on=ValueError, attempts=None), "at least one of"),
        (lambda: selfheal.retry(on=ValueError, deadline=-1), "deadline"),
        (lambda: RetryBudget(window=0), "window must be a number > 0"),
    ],
)
def test_bad_options_say_which_and_what_is_valid(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_on_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="on must be an exception type"):
        selfheal.retry(on=(ValueError, 3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on must be"):
        selfheal.retry(on=int)  # type: ignore[arg-type]


@given(
    initial=st.floats(0, 10),
    multiplier=st.floats(1, 10),
    cap=st.floats(0, 100),
    jitter=st.floats(0, 5),
    attempt=st.integers(1, 10_000),
    seed=st.integers(0, 2**32),
)
def test_exponential_delay_is_within_bounds(
    initial: float, multiplier: float, cap: float, jitter: float, attempt: int, seed: int
) -> None:
    backoff = ExponentialBackoff(initial, multiplier, cap, jitter, rng=random.Random(seed))
    delay = backoff.delay(attempt, 0.0)
    assert 0.0 <= delay <= cap
    if jitter == 0:
        assert delay <= ExponentialBackoff(initial, multiplier, cap).delay(attempt + 1, 0)


@given(
    initial=st.floats(0, 10),
    extra=st.floats(0, 100),
    previous=st.floats(0, 1000),
    seed=st.integers(0, 2**32),
)
def test_decorrelated_jitter_is_within_bounds(
    initial: float, extra: float, previous: float, seed: int
) -> None:
    backoff = DecorrelatedJitter(initial, initial + extra, rng=random.Random(seed))
    delay = backoff.delay(3, previous)
    assert initial <= delay <= initial + extra
    assert delay <= max(initial, previous * 3) or math.isclose(delay, initial)


@given(
    initial=st.floats(0, 10),
    increment=st.floats(0, 10),
    cap=st.floats(0, 50),
    n=st.integers(1, 100),
)
def test_linear_delay_is_within_bounds(
    initial: float, increment: float, cap: float, n: int
) -> None:
    delay = LinearBackoff(initial, increment, cap).delay(n, 0)
    assert 0 <= delay <= cap
    assert delay <= LinearBackoff(initial, increment, cap).delay(n + 1, 0)


# --------------------------------------------------------------------- budget


def test_budget_caps_retries_at_a_ratio_of_calls(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=0, window=10, clock=clock)
    bus = EventBus(clock=clock)
    exhausted = _collect(bus, "retry.*.budget_exhausted")
    ok = selfheal.retry(on=ConnectionError, budget=budget, clock=clock)(lambda: "ok")
    for _ in range(10):
        ok()
    assert budget.balance == pytest.approx(2.0)
    failing = selfheal.retry(
        on=ConnectionError, attempts=10, backoff=0, budget=budget, clock=clock, bus=bus, name="db"
    )(Flaky(1000))
    with pytest.raises(RetryError) as info:
        failing()
    # 11 calls deposit 2.2 tokens: two retries, then the budget refuses.
    assert info.value.reason == "budget"
    assert info.value.attempts == 3
    assert [e.type for e in exhausted] == ["retry.db.budget_exhausted"]


def test_budget_window_slides_and_reserve_refills(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.5, window=4, clock=clock)
    assert budget.try_withdraw()
    assert budget.try_withdraw()
    assert not budget.try_withdraw()
    clock.advance(2.0)
    assert not budget.try_withdraw()  # both retries are still inside the window
    clock.advance(2.1)
    assert budget.try_withdraw()
    assert budget.try_withdraw()
    assert not budget.try_withdraw()
    clock.advance(100)
    assert budget.balance == pytest.approx(2.0)


def test_budget_holds_under_64_threads(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.1, min_per_second=1, window=10, clock=clock)
    calls = 0
    lock = threading.Lock()

    def flaky() -> None:
        nonlocal calls
        with lock:
            calls += 1
        raise ConnectionError

    fn = selfheal.retry(on=ConnectionError, attempts=5, backoff=0, budget=budget, clock=clock)(
        flaky
    )
    start = threading.Barrier(64)

    def worker() -> None:
        start.wait()
        for _ in range(20):
            with pytest.raises(RetryError):
                fn()

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    first_attempts = 64 * 20
    retries = calls - first_attempts
    assert retries <= 0.1 * first_attempts + 1 * 10
    assert retries >= 0.1 * first_attempts  # the budget is used, not just refused


# --------------------------------------------------------------------- events, test mode, async


def test_events_retrying_and_gave_up(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    seen = _collect(bus)
    fn = selfheal.retry(
        on=ConnectionError, attempts=3, backoff=0.5, clock=clock, bus=bus, name="users"
    )(Flaky(5))
    with pytest.raises(RetryError):
        fn()
    assert [e.type for e in seen] == [
        "retry.users.retrying",
        "retry.users.retrying",
        "retry.users.gave_up",
    ]
    assert seen[0].data["attempt"] == 1
    assert seen[0].data["delay"] == 0.5
    assert seen[-1].data["attempts"] == 3
    assert seen[-1].data["reason"] == "attempts"


def test_retrying_event_is_not_built_without_subscribers(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    gave_up = _collect(bus, "retry.*.gave_up")

    def fetch() -> None:
        raise ConnectionError

    fn = selfheal.retry(on=ConnectionError, attempts=2, backoff=0, clock=clock, bus=bus)(fetch)
    with pytest.raises(RetryError):
        fn()
    assert [e.type for e in gave_up] == ["retry.fetch.gave_up"]
    assert bus.has_subscribers("retry.fetch.retrying") is False


def test_test_mode_caps_attempts_and_never_sleeps(clock: FakeClock) -> None:
    selfheal.set_testing(True, attempts=2)
    assert selfheal.is_testing()
    flaky = Flaky(5)
    fn = selfheal.retry(on=ConnectionError, attempts=10, backoff=30, clock=clock)(flaky)
    with pytest.raises(RetryError):
        fn()
    assert flaky.calls == 2
    assert clock.sleeps == []
    selfheal.set_testing(False)
    assert not selfheal.is_testing()
    with pytest.raises(ValueError, match="attempts must be an int >= 1"):
        selfheal.set_testing(True, attempts=0)


def test_decorator_keeps_the_name_and_call_form_works(clock: FakeClock) -> None:
    policy = selfheal.retry(on=ConnectionError, backoff=0, clock=clock)

    @policy
    def fetch_user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    assert fetch_user.__name__ == "fetch_user"
    assert fetch_user(3) == {"id": 3}
    assert policy.call(Flaky(1), 1) == "ok"
    assert "Retry(on=<class 'ConnectionError'>" in repr(policy)


@pytest.mark.anyio
async def test_async_retry_schedule_and_give_up() -> None:
    clock = FakeClock(autojump=True)
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError
        return "ok"

    fn = selfheal.retry(
        on=ConnectionError, attempts=3, backoff=ExponentialBackoff(initial=1), clock=clock
    )(fetch)
    assert await fn() == "ok"
    assert clock.sleeps == [1.0, 2.0]

    async def down() -> None:
        raise ConnectionError("down")

    policy = selfheal.retry(on=ConnectionError, attempts=2, backoff=0, clock=clock)
    with pytest.raises(RetryError) as info:
        await policy.acall(down)
    assert info.value.attempts == 2


@pytest.mark.anyio
async def test_async_retry_with_deadline_budget_and_result(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0, min_per_second=0.1, window=10, clock=clock)
    results = iter([None, 5])
    seen: list[float | None] = []

    async def fetch() -> int | None:
        seen.append(selfheal.remaining())
        return next(results)

    fn = selfheal.retry(
        on=ConnectionError,
        backoff=0,
        deadline=2,
        budget=budget,
        retry_on_result=lambda r: r is None,
        clock=clock,
    )(fetch)
    assert await fn() == 5
    assert seen == [2.0, 2.0]
    assert budget.balance == pytest.approx(0.0)


@given(
    ratio=st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0]),
    reserve=st.sampled_from([0.0, 0.5, 1.0]),
    ops=st.lists(
        st.one_of(st.just("call"), st.just("retry"), st.floats(0.01, 4.0, allow_nan=False)),
        max_size=200,
    ),
)
def test_budget_never_grants_more_than_its_ratio_over_the_window(
    ratio: float, reserve: float, ops: list[object]
) -> None:
    clock = FakeClock()
    window = 10.0
    budget = RetryBudget(ratio=ratio, min_per_second=reserve, window=window, clock=clock)
    calls: list[float] = []
    granted: list[float] = []
    for op in ops:
        now = clock.monotonic()
        if op == "call":
            budget.deposit()
            calls.append(now)
        elif op == "retry":
            if budget.try_withdraw():
                granted.append(now)
                # The window is 10 buckets: retries of at least its last 90% are still counted,
                # calls older than the whole window no longer are.
                recent = sum(1 for t in granted if t >= now - 0.9 * window)
                counted_calls = sum(1 for t in calls if t >= now - window)
                assert recent <= ratio * counted_calls + reserve * window + 1e-9
        else:
            clock.advance(float(op))  # type: ignore[arg-type]


def test_retry_error_pickles_for_process_pools() -> None:
    # concurrent.futures.ProcessPoolExecutor pickles a worker's exception to the parent.
    err = RetryError("fetch", 3, "attempts", ValueError("down"), None)
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err)
    assert (copy.name, copy.attempts, copy.reason) == ("fetch", 3, "attempts")
    assert repr(copy.last_exception) == "ValueError('down')"


@pytest.mark.parametrize("mode", ["lean", "full"])
def test_attempts_do_not_chain_onto_the_first_failure(mode: str) -> None:
    # Later attempts used to run inside the `except` of the first one, so the re-raised last
    # error showed "During handling of the above exception, another exception occurred"
    # with attempt 1's error, as if the retry itself had crashed.
    extra: dict[str, Any] = {"retry_on_result": lambda r: False} if mode == "full" else {}
    errors = [ValueError("1"), ValueError("2"), ValueError("3")]

    def down() -> None:
        raise errors.pop(0)

    reraising = selfheal.retry(on=ValueError, backoff=0, reraise=True, **extra)(down)
    with pytest.raises(ValueError, match="3") as info:
        reraising()
    assert info.value.__context__ is None
    assert info.value.__cause__ is None

    errors[:] = [ValueError("1"), KeyError("not retryable")]
    with pytest.raises(KeyError) as key_info:
        reraising()
    assert key_info.value.__context__ is None

    errors[:] = [ValueError("1"), ValueError("2"), ValueError("last")]
    with pytest.raises(RetryError) as retry_info:
        selfheal.retry(on=ValueError, backoff=0, **extra)(down)()
    cause = retry_info.value.__cause__
    assert isinstance(cause, ValueError)
    assert str(cause) == "last"
    assert cause.__context__ is None
    assert cause.__traceback__ is not None
    frames = []
    tb = cause.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert frames[-1] == "down"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["lean", "full"])
async def test_async_attempts_do_not_chain_onto_the_first_failure(mode: str) -> None:
    extra: dict[str, Any] = {"retry_on_result": lambda r: False} if mode == "full" else {}
    errors = [ValueError("1"), ValueError("2"), ValueError("3")]

    async def down() -> None:
        raise errors.pop(0)

    with pytest.raises(ValueError, match="3") as info:
        await selfheal.retry(on=ValueError, backoff=0, reraise=True, **extra)(down)()
    assert info.value.__context__ is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"attempts": True}, ValueError, r"attempts must be an int >= 1 or None, got True"),
        ({"deadline": -1}, ValueError, r"deadline must be a number > 0, got -1"),
        ({"deadline": 0}, ValueError, r"deadline must be a number > 0, got 0"),
        ({"retry_on_result": 3}, TypeError, r"retry_on_result must be a callable"),
        ({"hint": "Retry-After"}, TypeError, r"hint must be a callable .* or None"),
        ({"name": "payments.api"}, ValueError, r"name must be .* without '\.' or '\*'"),
        ({"name": "*"}, ValueError, r"name must be"),
    ],
)
def test_bad_arguments_fail_when_built_not_at_the_first_failure(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    # A non-callable retry_on_result or hint used to be accepted and to blow up only once a
    # call failed; a dotted name made event types that `retry.*.gave_up` cannot match.
    with pytest.raises(error, match=message):
        selfheal.retry(on=ValueError, **kwargs)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ConstantBackoff(True), "ConstantBackoff: seconds must be a number >= 0, got True"),
        (lambda: StopAfterAttempts(True), "StopAfterAttempts: attempts must be an int >= 1"),
        (lambda: StopAfterDelay(False), "StopAfterDelay: seconds must be a number >= 0"),
        (lambda: RetryBudget(ratio=True), "RetryBudget: ratio must be a number >= 0"),
        (lambda: selfheal.retry(on=ValueError, deadline=True), "deadline must be a number > 0"),
        (lambda: selfheal.set_testing(True, attempts=True), "attempts must be an int >= 1"),
    ],
)
def test_booleans_are_not_numbers(build: Any, message: str) -> None:
    # bool is an int subclass: True would silently mean 1 (and Timeout/Bulkhead refuse it).
    with pytest.raises(ValueError, match=message):
        build()


def test_an_enclosing_deadline_stops_the_retry_too(clock: FakeClock) -> None:
    # A sync Timeout only publishes its deadline: a retry inside it used to go on sleeping
    # and retrying long past it (18 s here, under a 5 s timeout).
    calls: list[float] = []

    def down() -> None:
        calls.append(clock.monotonic())
        raise ValueError("down")

    inner = selfheal.retry(on=ValueError, attempts=10, backoff=2, clock=clock)(down)
    with pytest.raises(RetryError) as info:
        selfheal.Timeout(5, clock=clock)(inner)()
    assert info.value.reason == "deadline"
    assert calls == [0.0, 2.0, 4.0]
    assert clock.monotonic() == 4.0


@pytest.mark.anyio
async def test_an_enclosing_async_deadline_stops_the_retry_before_it_fires() -> None:
    clock = FakeClock(autojump=True)
    calls: list[float] = []

    async def down() -> None:
        calls.append(clock.monotonic())
        raise ValueError("down")

    inner = selfheal.retry(on=ValueError, attempts=10, backoff=2, clock=clock)(down)
    with pytest.raises(RetryError) as info:
        await selfheal.Timeout(5, clock=clock)(inner)()
    assert info.value.reason == "deadline"
    assert calls == [0.0, 2.0, 4.0]
