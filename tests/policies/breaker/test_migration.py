"""pybreaker's and circuitbreaker's keywords, given to our breaker, say what to write here."""

from __future__ import annotations

import inspect

import circuitbreaker
import pybreaker
import pytest

from selfheal import CircuitBreaker
from selfheal.policies.breaker._policy import PEER_KEYWORDS


@pytest.mark.parametrize(
    ("keyword", "ours"),
    [
        ("fail_max", "failure_threshold="),
        ("reset_timeout", "recovery_timeout="),
        ("exclude", "ignore="),
        ("state_storage", "store="),
        ("expected_exception", "ignore="),
    ],
)
def test_a_peers_keyword_names_ours(keyword: str, ours: str) -> None:
    with pytest.raises(TypeError) as error:
        CircuitBreaker(**{keyword: 1})
    message = str(error.value)
    assert f"CircuitBreaker() got {PEER_KEYWORDS[keyword][0]}'s keyword '{keyword}='" in message
    assert ours in message
    assert "see selfheal help breaker" in message


def test_every_keyword_of_the_peers_is_ours_or_explained() -> None:
    # If a new pybreaker or circuitbreaker adds a keyword, this says it needs a line.
    ours = set(inspect.signature(CircuitBreaker.__init__).parameters)
    for peer in (pybreaker.CircuitBreaker, circuitbreaker.CircuitBreaker):
        theirs = set(inspect.signature(peer.__init__).parameters) - {"self"}
        assert theirs <= ours | set(PEER_KEYWORDS), (peer, theirs - ours - set(PEER_KEYWORDS))


def test_circuitbreakers_own_names_work_as_they_are() -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=10, name="db")
    assert breaker.name == "db"
