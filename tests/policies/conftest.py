"""Fixtures of the policy tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import selfheal


@pytest.fixture(autouse=True)
def _no_test_mode() -> Iterator[None]:
    # The retry switches are process-wide: a test that turns one must not leak it.
    selfheal.set_testing(False)
    selfheal.set_active(True)
    yield
    selfheal.set_testing(False)
    selfheal.set_active(True)
