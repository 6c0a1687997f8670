"""tenacity's and stamina's keywords given to our retry: an error that names our equivalent."""

from __future__ import annotations

import re
from typing import Any

import pytest

import selfheal
from policy_helpers import Flaky
from selfheal import RetryError, StopAfterAttempts
from selfheal.testing import FakeClock

# keyword, value, the library it comes from, what the message must name as ours
TENACITY = [
    ("wait", 1, r"backoff="),
    ("retry", None, r"on=.*retry_on_result="),
    ("before", print, r"bus=.*retry\.<name>\.retrying"),
    ("after", print, r"bus=.*retry\.<name>\.retrying"),
    ("before_sleep", print, r"bus=.*retry\.<name>\.retrying"),
    ("retry_error_callback", print, r"selfheal\.fallback\(.*on=RetryError\)"),
    ("retry_error_cls", RetryError, r"RetryError.*reraise=True"),
    ("sleep", print, r"clock="),
]
STAMINA = [
    ("timeout", 45.0, r"deadline="),
    ("wait_initial", 0.1, r"backoff=ExponentialBackoff\(initial="),
    ("wait_max", 5.0, r"backoff=ExponentialBackoff\(max="),
    ("wait_jitter", 1.0, r"backoff=ExponentialBackoff\(jitter="),
    ("wait_exp_base", 2, r"backoff=ExponentialBackoff\(multiplier="),
]


@pytest.mark.parametrize("entry", ["retry", "retrying"])
@pytest.mark.parametrize(
    ("library", "keyword", "value", "ours"),
    [("tenacity", *t) for t in TENACITY] + [("stamina", *s) for s in STAMINA],
)
def test_a_peer_keyword_names_our_equivalent(
    entry: str, library: str, keyword: str, value: Any, ours: str
) -> None:
    build = getattr(selfheal, entry)
    with pytest.raises(TypeError) as info:
        build(on=ValueError, **{keyword: value})
    message = str(info.value)
    assert message.startswith(f"{entry}() got {library}'s keyword '{keyword}='")
    assert re.search(ours, message), message
    assert "selfheal help policies" in message


def test_backoff_librarys_keywords_too() -> None:
    with pytest.raises(TypeError, match=r"backoff's keyword 'max_tries=': use attempts="):
        selfheal.retry(max_tries=3)
    with pytest.raises(TypeError, match=r"backoff's keyword 'max_time=': use deadline="):
        selfheal.retry(max_time=3)


def test_keywords_we_share_with_them_just_work(clock: FakeClock) -> None:
    # stamina's on= and attempts=, tenacity's reraise= and stop= (with our Stop) mean the same.
    flaky = Flaky(100, ValueError("down"))
    fn = selfheal.retry(on=ValueError, attempts=2, reraise=True, backoff=0, clock=clock)(flaky)
    with pytest.raises(ValueError, match="down"):
        fn()
    assert flaky.calls == 2
    flaky = Flaky(100, ValueError("down"))
    with pytest.raises(RetryError):
        selfheal.retry(on=ValueError, stop=StopAfterAttempts(4), clock=clock)(flaky)()
    assert flaky.calls == 3  # attempts=3 by default, or'ed with the stop


def test_tenacity_stop_objects_name_attempts_and_deadline() -> None:
    import tenacity

    with pytest.raises(TypeError, match=r"tenacity's stop_after_attempt\(5\): use attempts=5"):
        selfheal.retry(on=ValueError, stop=tenacity.stop_after_attempt(5))
    with pytest.raises(TypeError, match=r"tenacity's stop_after_delay\(30\): use deadline=30"):
        selfheal.retry(stop=tenacity.stop_after_delay(30))
    with pytest.raises(TypeError, match=r"stop= takes a selfheal Stop.*tenacity's stop_any"):
        selfheal.retry(stop=tenacity.stop_after_attempt(5) | tenacity.stop_after_delay(9))
    with pytest.raises(TypeError, match=r"stop= takes a selfheal Stop .*got 5"):
        selfheal.retry(stop=5)  # type: ignore[arg-type]


def test_a_tenacity_strategy_given_positionally() -> None:
    import tenacity

    with pytest.raises(TypeError, match=r"retry\(\) got tenacity's stop_after_attempt"):
        selfheal.retry(tenacity.stop_after_attempt(3))


@pytest.mark.parametrize(
    ("keyword", "suggestion"),
    [("attempt", "attempts"), ("backof", "backoff"), ("dead_line", "deadline"), ("bsu", "bus")],
)
def test_unknown_keywords_suggest_a_close_one_and_list_the_valid(
    keyword: str, suggestion: str
) -> None:
    with pytest.raises(TypeError) as info:
        selfheal.retry(**{keyword: 1})
    message = str(info.value)
    assert f"retry() got an unexpected keyword '{keyword}=': did you mean '{suggestion}='?" in (
        message
    )
    assert (
        "valid keywords: on, attempts, backoff, deadline, stop, hint, budget, reraise," in message
    )
    assert message.endswith("name, retry_on_result) (see selfheal help policies)")


def test_unknown_keyword_without_a_close_match() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword 'colour=' \(valid keywords: on,"):
        selfheal.retry(colour="blue")
    with pytest.raises(TypeError, match=r"retrying\(\) got an unexpected keyword 'colour='"):
        selfheal.retrying(colour="blue")


def test_several_bad_keywords_are_reported_together() -> None:
    with pytest.raises(TypeError) as info:
        selfheal.retry(wait=1, timeout=3, stop=None)
    message = str(info.value)
    assert "tenacity's keyword 'wait='" in message
    assert "stamina's keyword 'timeout='" in message


def test_retrying_has_no_result_to_retry_on() -> None:
    with pytest.raises(TypeError, match=r"retrying\(\) got retry_on_result=: .*raise"):
        selfheal.retrying(retry_on_result=lambda r: r is None)
    policy = selfheal.retry(on=ValueError, retry_on_result=lambda r: r is None)
    with pytest.raises(TypeError, match=r"retry_on_result"):
        policy.retrying()
