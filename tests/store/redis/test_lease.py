"""Recovery leases: one holder at a time, growing fencing tokens, no acting on a lost lease."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fleet_helpers import node_env, wait_until
from selfheal.store.redis import LeaseInfo, RecoveryLease, connect


def _lease(url: str, prefix: str, holder: str, ttl: float = 5.0) -> RecoveryLease:
    return RecoveryLease(url, "recovery:db", ttl=ttl, holder=holder, prefix=prefix)


def test_one_holder_at_a_time_and_the_token_says_which(redis_url: str, prefix: str) -> None:
    a, b = _lease(redis_url, prefix, "a"), _lease(redis_url, prefix, "b")
    token = a.acquire()
    assert token is not None
    assert b.acquire() is None
    assert a.info() == LeaseInfo(token, "a", "running")
    assert a.is_current(token)
    assert b.is_current(token)  # anyone can check a token, e.g. the resource it guards


def test_renew_and_release_need_the_current_token(redis_url: str, prefix: str) -> None:
    a, b = _lease(redis_url, prefix, "a"), _lease(redis_url, prefix, "b")
    token = a.acquire()
    assert token is not None
    assert not b.renew(token + 1)
    assert not b.release(token + 1)
    assert a.renew(token)
    assert a.release(token)
    assert a.info() is None
    assert not a.release(token)  # twice: it is gone


def test_an_expired_lease_goes_to_the_next_node_with_a_larger_token(
    redis_url: str, prefix: str
) -> None:
    a, b = _lease(redis_url, prefix, "a", ttl=0.2), _lease(redis_url, prefix, "b", ttl=5)
    old = a.acquire()
    assert old is not None
    # The lease expires on Redis's clock; a takes no more action on it from here.
    wait_until(lambda: a.info() is None, 3)
    new = b.acquire()
    assert new is not None
    assert new > old
    # The late node learns it lost: it can neither act, renew nor delete the new lease.
    assert not a.is_current(old)
    assert not a.renew(old)
    assert not a.release(old)
    assert b.is_current(new)


def test_finish_keeps_the_lease_so_nobody_repeats_the_work(redis_url: str, prefix: str) -> None:
    a, b = _lease(redis_url, prefix, "a"), _lease(redis_url, prefix, "b")
    token = a.acquire()
    assert token is not None
    assert a.finish(token, hold=5)
    info = b.info()
    assert info is not None
    assert info.state == "done"
    assert info.holder == "a"
    assert b.acquire() is None
    redis = connect(redis_url)
    assert 0 < redis.pttl(a.key) <= 5000


@pytest.mark.anyio
async def test_async_twins(redis_url: str, prefix: str) -> None:
    a, b = _lease(redis_url, prefix, "a"), _lease(redis_url, prefix, "b")
    token = await a.aacquire()
    assert token is not None
    assert await b.aacquire() is None
    assert await a.arenew(token)
    assert await b.ais_current(token)
    assert await a.afinish(token, hold=1)
    info = await b.ainfo()
    assert info is not None
    assert info.state == "done"
    assert await a.arelease(token)
    assert await b.ainfo() is None
    await a.aclose()
    await b.aclose()


_RACER = """
import sys
from selfheal.store.redis import RecoveryLease
lease = RecoveryLease(sys.argv[1], "recovery:db", ttl=30, holder=sys.argv[3], prefix=sys.argv[2])
sys.stdin.readline()  # start together
print(lease.acquire())
"""


def test_exactly_one_of_three_processes_gets_the_lease(redis_url: str, prefix: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, redis_url, prefix, f"node{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=node_env(),
        )
        for i in range(3)
    ]
    outs = [p.communicate("go\n", timeout=30)[0].strip() for p in procs]
    assert sorted(outs) == ["1", "None", "None"]


def test_bad_arguments_say_what_is_valid(redis_url: str) -> None:
    with pytest.raises(ValueError, match="ttl must be seconds > 0"):
        RecoveryLease(redis_url, "x", ttl=0)
    with pytest.raises(ValueError, match="name must not be empty"):
        RecoveryLease(redis_url, "")
