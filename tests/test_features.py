from __future__ import annotations

import pickle
import threading
from enum import Enum

import pytest

from selfheal import Event, EventBus, FeatureManager, FeatureUnavailableError
from selfheal.interfaces import HealthSource, HealthStatus
from selfheal.testing import FakeClock


class Check:
    def __init__(self, healthy: bool = True) -> None:
        self.healthy = healthy
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.healthy


def _manager(clock: FakeClock, **kwargs: float) -> tuple[FeatureManager, list[Event]]:
    bus = EventBus(clock=clock)
    seen: list[Event] = []
    bus.subscribe("feature.*", seen.append)
    return FeatureManager(clock=clock, bus=bus, **kwargs), seen


def test_check_is_cached_for_its_ttl(clock: FakeClock) -> None:
    features, seen = _manager(clock, ttl=10)
    check = Check()
    features.register("search", check, fallback_func=lambda q: f"basic:{q}")
    for _ in range(100):
        assert features.use_feature("search", lambda q: f"smart:{q}", "shoes") == "smart:shoes"
    assert check.calls == 1
    check.healthy = False
    clock.advance(9.9)
    assert features.is_available("search")
    clock.advance(0.1)
    assert features.use_feature("search", lambda q: f"smart:{q}", "shoes") == "basic:shoes"
    assert check.calls == 2
    assert [(e.type, e.data["reason"]) for e in seen] == [("feature.search.degraded", "check")]
    check.healthy = True
    clock.advance(10)
    assert features.is_available("search")
    assert [e.type for e in seen][-1] == "feature.search.restored"


def test_a_raising_check_means_unavailable(clock: FakeClock) -> None:
    features, _ = _manager(clock)

    def broken() -> bool:
        raise ConnectionError("cannot even ask")

    features.register("recs", broken)
    assert not features.is_available("recs")
    with pytest.raises(FeatureUnavailableError, match="'recs' is unavailable"):
        features.use_feature("recs", lambda: "never")


class State(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class FakeBreaker:
    def __init__(self) -> None:
        self.state = State.CLOSED


def test_availability_follows_a_breaker_state(clock: FakeClock) -> None:
    features, seen = _manager(clock)
    breaker = FakeBreaker()
    features.register("payments", breaker, fallback_func=lambda: "queued")
    assert features.use_feature("payments", lambda: "charged") == "charged"
    breaker.state = State.OPEN
    assert features.use_feature("payments", lambda: "charged") == "queued"
    breaker.state = State.HALF_OPEN
    assert features.is_available("payments")
    assert [e.type for e in seen] == ["feature.payments.degraded", "feature.payments.restored"]


class FakeHealth:
    def __init__(self) -> None:
        self.statuses = {"search_service": HealthStatus.PASS}
        self.asked: list[str] = []

    def status(self, name: str) -> HealthStatus:
        self.asked.append(name)
        return self.statuses.get(name, HealthStatus.UNKNOWN)

    async def check_now(self, name: str) -> HealthStatus:
        return self.status(name)


def test_availability_follows_a_health_source(clock: FakeClock) -> None:
    features, _ = _manager(clock)
    health = FakeHealth()
    assert isinstance(health, HealthSource)
    features.register("advanced_search", health, health_name="search_service")
    assert features.is_available("advanced_search")
    health.statuses["search_service"] = HealthStatus.WARN
    assert features.is_available("advanced_search")
    health.statuses["search_service"] = HealthStatus.FAIL
    assert not features.is_available("advanced_search")
    features.register("other", health)
    assert not features.is_available("other")  # UNKNOWN is not available
    assert health.asked[-1] == "other"


def test_manual_degrade_and_restore(clock: FakeClock) -> None:
    features, seen = _manager(clock)
    check = Check()
    features.register("recs", check, fallback_func=lambda: "popular")
    assert features.is_available("recs")
    features.degrade("recs")
    assert features.use_feature("recs", lambda: "personal") == "popular"
    features.restore("recs")
    assert features.use_feature("recs", lambda: "personal") == "personal"
    assert [(e.type, e.data["reason"]) for e in seen] == [
        ("feature.recs.degraded", "manual"),
        ("feature.recs.restored", "manual"),
    ]
    assert check.calls == 2  # restore asks the check afresh
    with pytest.raises(KeyError, match="unknown feature 'nope'; registered: \\['recs'\\]"):
        features.degrade("nope")


def test_unknown_features_and_bad_registration(clock: FakeClock) -> None:
    features, _ = _manager(clock)
    assert not features.is_available("ghost")
    with pytest.raises(FeatureUnavailableError, match="not registered"):
        features.use_feature("ghost", lambda: 1)
    with pytest.raises(TypeError, match="check must be"):
        features.register("x", 42)

    async def acheck() -> bool:
        return True

    with pytest.raises(TypeError, match="is async"):
        features.register("x", acheck)
    with pytest.raises(ValueError, match="name must be a non-empty str"):
        features.register("", Check())
    features.register("flag", True)
    assert features.is_available("flag")
    assert "flag" in features
    assert features.names == ["flag"]


def test_fallback_on_errors_of_the_feature(clock: FakeClock) -> None:
    features, _ = _manager(clock)
    features.register(
        "recs", Check(), fallback_func=lambda: "popular", fallback_on=(ConnectionError,)
    )

    def flaky() -> str:
        raise ConnectionError

    assert features.use_feature("recs", flaky) == "popular"

    def bug() -> str:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        features.use_feature("recs", bug)


@pytest.mark.anyio
async def test_async_feature_functions(clock: FakeClock) -> None:
    features, _ = _manager(clock)
    check = Check()

    async def personal(user: str) -> str:
        return f"for {user}"

    async def popular(user: str) -> str:
        return "popular"

    features.register("recs", check, fallback_func=popular)
    assert await features.use_feature("recs", personal, "ann") == "for ann"
    features.degrade("recs")
    assert await features.use_feature("recs", personal, "ann") == "popular"


def test_one_change_is_announced_once_under_threads(clock: FakeClock) -> None:
    features, seen = _manager(clock, ttl=0)
    check = Check(healthy=False)
    features.register("recs", check)
    barrier = threading.Barrier(16)

    def hammer() -> None:
        barrier.wait()
        for _ in range(200):
            features.is_available("recs")

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [e.type for e in seen] == ["feature.recs.degraded"]


def test_feature_unavailable_error_pickles() -> None:
    err = FeatureUnavailableError("search", "is not registered")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.name, str(copy)) == ("search", str(err))


@pytest.mark.anyio
async def test_async_feature_errors_use_the_fallback_on_await(clock: FakeClock) -> None:
    # The error of an async feature surfaces when its coroutine is awaited, after
    # use_feature has returned: fallback_on used to miss it entirely.
    features, _ = _manager(clock)

    async def personal(user: str) -> str:
        raise ConnectionError("recs service down")

    async def popular(user: str) -> str:
        return f"popular for {user}"

    def popular_sync(user: str) -> str:
        return "popular (sync)"

    async def buggy(user: str) -> str:
        raise KeyError("bug")

    features.register("recs", Check(), fallback_func=popular, fallback_on=(ConnectionError,))
    assert await features.use_feature("recs", personal, "ann") == "popular for ann"
    with pytest.raises(KeyError):
        await features.use_feature("recs", buggy, "ann")
    features.register("recs2", Check(), fallback_func=popular_sync, fallback_on=(ConnectionError,))
    assert await features.use_feature("recs2", personal, "ann") == "popular (sync)"


def test_an_async_callable_object_as_check_is_refused(clock: FakeClock) -> None:
    # bool() of the coroutine it returns is always True: the feature looked always available.
    features, _ = _manager(clock)

    class AsyncCheck:
        async def __call__(self) -> bool:
            return False

    with pytest.raises(TypeError, match="check for 'recs' is async"):
        features.register("recs", AsyncCheck())


@pytest.mark.parametrize("bad", ["search.v2", "recs*", ""])
def test_names_are_one_event_segment(clock: FakeClock, bad: str) -> None:
    # "feature.search.v2.degraded" would escape a "feature.*.degraded" subscription.
    features, _ = _manager(clock)
    with pytest.raises(
        ValueError, match=r"name must be a non-empty str(ing)? without '\.' or '\*'"
    ):
        features.register(bad, True)


@pytest.mark.anyio
async def test_an_async_feature_with_a_sync_fallback_can_always_be_awaited(
    clock: FakeClock,
) -> None:
    # The caller of an async feature awaits use_feature; while degraded, a sync fallback's
    # plain value came back instead and `await` raised TypeError.
    features, _ = _manager(clock)

    async def personal(user: str) -> str:
        return f"for {user}"

    def popular(user: str) -> str:
        return "popular"

    features.register("recs", Check(), fallback_func=popular)
    assert await features.use_feature("recs", personal, "ann") == "for ann"
    features.degrade("recs")
    assert await features.use_feature("recs", personal, "ann") == "popular"
    assert features.use_feature("recs", popular, "ann") == "popular"  # sync stays sync
