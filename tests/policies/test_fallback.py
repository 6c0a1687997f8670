from __future__ import annotations

import pytest

import selfheal
from selfheal import Event, EventBus, Fallback


def _down(*args: object, **kwargs: object) -> str:
    raise ConnectionError("down")


def test_value_fallback_and_event() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("fallback.*.used", seen.append)

    @selfheal.fallback([], bus=bus)
    def recommendations(user_id: int) -> list[str]:
        raise ConnectionError("recommender down")

    assert recommendations(7) == []
    assert [e.type for e in seen] == ["fallback.recommendations.used"]
    assert "recommender down" in seen[0].data["error"]


def test_function_fallback_gets_the_same_arguments() -> None:
    fn = selfheal.fallback(lambda user_id, *, limit: [f"popular-{user_id}-{limit}"])(_down)
    assert fn(3, limit=2) == ["popular-3-2"]


def test_only_the_given_exceptions_fall_back() -> None:
    fn = selfheal.fallback("cached", on=ConnectionError)(_down)
    assert fn() == "cached"

    def bad_request() -> str:
        raise ValueError("your fault")

    with pytest.raises(ValueError, match="your fault"):
        selfheal.fallback("cached", on=ConnectionError)(bad_request)()


def test_success_is_untouched() -> None:
    assert selfheal.fallback(0)(lambda: 5)() == 5


def test_a_function_as_a_value_and_bad_arguments() -> None:
    assert Fallback(value=len).call(_down) is len
    with pytest.raises(TypeError, match="exactly one of value= and func="):
        Fallback()
    with pytest.raises(TypeError, match="exactly one"):
        Fallback(value=1, func=len)
    with pytest.raises(TypeError, match="on must be exception types"):
        Fallback(value=1, on=(int,))  # type: ignore[arg-type]
    assert repr(Fallback(value=1, on=KeyError)) == "Fallback(value=1, on=(<class 'KeyError'>,))"


@pytest.mark.anyio
async def test_async_fallbacks_sync_and_async() -> None:
    async def adown(x: int) -> int:
        raise ConnectionError

    async def afallback(x: int) -> int:
        return -x

    assert await selfheal.fallback(afallback)(adown)(4) == -4
    assert await selfheal.fallback(lambda x: x + 1)(adown)(4) == 5
    assert await selfheal.fallback(None).acall(adown, 1) is None

    async def fine(x: int) -> int:
        return x

    assert await selfheal.fallback(0)(fine)(9) == 9


def test_dotted_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Fallback: name must be .* without '\.' or '\*'"):
        selfheal.fallback(0, name="a.b")
