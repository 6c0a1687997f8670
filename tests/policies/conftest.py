"""Fixtures of the policy tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import selfheal


@pytest.fixture(autouse=True)
def _no_test_mode() -> Iterator[None]:
    # The retry test mode is process-wide: a test that switches it on must not leak it.
    selfheal.set_testing(False)
    yield
    selfheal.set_testing(False)
