"""The process-wide retry switches, as stamina's users call them: test mode and on/off."""

from __future__ import annotations

import pytest
import stamina

import selfheal
from selfheal.testing import FakeClock


def failing(calls: list[int]) -> None:
    calls.append(1)
    raise OSError("down")


def run_ours(attempts: int) -> int:
    calls: list[int] = []
    fn = selfheal.retry(on=OSError, attempts=attempts, reraise=True, clock=FakeClock())(
        lambda: failing(calls)
    )
    with pytest.raises(OSError, match="down"):
        fn()
    return len(calls)


def run_stamina(attempts: int) -> int:
    calls: list[int] = []
    fn = stamina.retry(on=OSError, attempts=attempts)(lambda: failing(calls))
    with pytest.raises(OSError, match="down"):
        fn()
    return len(calls)


@pytest.mark.parametrize(
    ("policy", "testing", "cap"), [(2, 4, False), (6, 4, False), (2, 4, True), (6, 4, True)]
)
def test_test_mode_counts_attempts_as_staminas_does(policy: int, testing: int, cap: bool) -> None:
    with stamina.set_testing(True, attempts=testing, cap=cap):
        theirs = run_stamina(policy)
    with selfheal.set_testing(True, attempts=testing, cap=cap):
        ours = run_ours(policy)
    assert ours == theirs
    assert ours == (min(policy, testing) if cap else testing)


def test_test_mode_in_a_with_block_comes_back_off() -> None:
    assert not selfheal.is_testing()
    with selfheal.set_testing(True, attempts=2):
        assert selfheal.is_testing()
        assert run_ours(5) == 2
    assert not selfheal.is_testing()
    selfheal.set_testing(True, attempts=3)  # without a with block it stays on
    assert selfheal.is_testing()


def test_with_retrying_off_every_call_makes_one_attempt() -> None:
    assert selfheal.is_active()
    with selfheal.set_active(False):
        assert not selfheal.is_active()
        assert run_ours(5) == 1
    assert selfheal.is_active()
    with selfheal.set_testing(True, attempts=5):
        assert run_ours(5) == 5
    stamina.set_active(False)
    try:
        assert run_stamina(5) == 1  # what stamina does off, for comparison
    finally:
        stamina.set_active(True)
