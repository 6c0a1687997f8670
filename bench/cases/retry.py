"""Retry success path: selfheal against tenacity, stamina, backoff (sync) and tenacity, hyx (async).

Every decorated function is a trivial call that succeeds, retrying on `Exception` at most three
attempts, so the rows measure the cost of being ready to retry. The "deadline" groups add an
overall deadline of 10 s (stamina's retries always have one), which selfheal publishes to the
call (`selfheal.remaining()`) on its own path; their "selfheal @retry" row is the bare
decorator, whose defaults have such a deadline (45 s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _harness import Case

import selfheal


def _plain() -> int:
    return 1


async def _aplain() -> int:
    return 1


def _bare() -> Callable[[], Any]:
    return _plain


def _selfheal() -> Callable[[], Any]:
    return selfheal.retry(on=Exception, attempts=3)(_plain)


def _tenacity() -> Callable[[], Any]:
    from tenacity import retry, stop_after_attempt

    return retry(stop=stop_after_attempt(3))(_plain)


def _stamina() -> Callable[[], Any]:
    import stamina

    return stamina.retry(on=Exception, attempts=3)(_plain)


def _backoff() -> Callable[[], Any]:
    import backoff

    return backoff.on_exception(backoff.expo, Exception, max_tries=3)(_plain)


def _abare() -> Callable[[], Any]:
    return _aplain


def _aselfheal() -> Callable[[], Any]:
    return selfheal.retry(on=Exception, attempts=3)(_aplain)


def _atenacity() -> Callable[[], Any]:
    from tenacity import retry, stop_after_attempt

    return retry(stop=stop_after_attempt(3))(_aplain)


def _ahyx() -> Callable[[], Any]:
    from hyx.retry import retry

    return retry(on=Exception, attempts=3)(_aplain)


def _selfheal_deadline() -> Callable[[], Any]:
    return selfheal.retry(on=Exception, attempts=3, deadline=10)(_plain)


def _selfheal_bare() -> Callable[[], Any]:
    return selfheal.retry(_plain)


def _aselfheal_bare() -> Callable[[], Any]:
    return selfheal.retry(_aplain)


def _stamina_deadline() -> Callable[[], Any]:
    import stamina

    return stamina.retry(on=Exception, attempts=3, timeout=10)(_plain)


def _backoff_deadline() -> Callable[[], Any]:
    import backoff

    return backoff.on_exception(backoff.expo, Exception, max_tries=3, max_time=10)(_plain)


def _aselfheal_deadline() -> Callable[[], Any]:
    return selfheal.retry(on=Exception, attempts=3, deadline=10)(_aplain)


def _astamina_deadline() -> Callable[[], Any]:
    import stamina

    return stamina.retry(on=Exception, attempts=3, timeout=10)(_aplain)


CASES: list[Case] = [
    Case("sync retry", "bare", _bare),
    Case("sync retry", "selfheal", _selfheal),
    Case("sync retry", "tenacity", _tenacity),
    Case("sync retry", "stamina", _stamina),
    Case("sync retry", "backoff", _backoff),
    Case("async retry", "bare", _abare, is_async=True),
    Case("async retry", "selfheal", _aselfheal, is_async=True),
    Case("async retry", "tenacity", _atenacity, is_async=True),
    Case("async retry", "hyx", _ahyx, is_async=True),
    Case("sync retry, deadline", "bare", _bare),
    Case("sync retry, deadline", "selfheal", _selfheal_deadline),
    Case("sync retry, deadline", "selfheal @retry", _selfheal_bare),
    Case("sync retry, deadline", "stamina", _stamina_deadline),
    Case("sync retry, deadline", "backoff", _backoff_deadline),
    Case("async retry, deadline", "bare", _abare, is_async=True),
    Case("async retry, deadline", "selfheal", _aselfheal_deadline, is_async=True),
    Case("async retry, deadline", "selfheal @retry", _aselfheal_bare, is_async=True),
    Case("async retry, deadline", "stamina", _astamina_deadline, is_async=True),
]
