"""A misspelt keyword to a public class says which was meant and which exist."""

from __future__ import annotations

from typing import Any

import pytest

import selfheal
from selfheal._calls import checked_keywords

CASES = [
    (selfheal.CircuitBreaker, {"failure_treshold": 3}, "failure_threshold"),
    (selfheal.Bulkhead, {"max_concurent": 3}, "max_concurrent"),
    (selfheal.ExponentialBackoff, {"initail": 1.0}, "initial"),
    (selfheal.ChaosMonkey, {"enabeld": True}, "enabled"),
    (selfheal.HealthMonitor, {"clok": None}, "clock"),
    (selfheal.FeatureManager, {"clok": None}, "clock"),
    (selfheal.ProcessWatchdog, {"max_restart": 3}, "max_restarts"),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "meant"), CASES, ids=lambda c: getattr(c, "__name__", "")
)
def test_a_misspelt_keyword_is_named_with_a_guess_and_the_valid_ones(
    cls: type, kwargs: dict[str, Any], meant: str
) -> None:
    (bad,) = kwargs
    with pytest.raises(TypeError) as error:
        cls(**kwargs)
    message = str(error.value)
    assert message.startswith(f"{cls.__name__}() got an unexpected keyword '{bad}='")
    assert f"did you mean '{meant}='?" in message
    assert "valid keywords:" in message


def test_retry_also_names_what_a_peers_keyword_is_here() -> None:
    with pytest.raises(TypeError, match=r"Retry\(\) got an unexpected keyword 'attemps='"):
        selfheal.Retry(on=OSError, attemps=3)
    with pytest.raises(TypeError, match=r"tenacity's keyword 'wait=': use backoff="):
        selfheal.Retry(on=OSError, wait=1)


def test_errors_raised_inside_init_are_left_as_they_are() -> None:
    @checked_keywords
    class Strict:
        def __init__(self, size: int = 1) -> None:
            if size < 1:
                raise TypeError("size must be positive")
            self.size = size

    assert Strict(size=2).size == 2
    with pytest.raises(TypeError, match=r"^size must be positive$"):
        Strict(size=0)
    with pytest.raises(TypeError, match="did you mean 'size='"):
        Strict(sise=2)  # type: ignore[call-arg]
