"""Three nodes in three processes on one private Redis: the fleet behaves as one.

Each node is `fleet_node.py` in its own process (real threads, real connections); the test
drives it through stdin and reads its reports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet_helpers import FleetRedis, node_env, wait_until
from selfheal.interfaces import BreakerRecord, BreakerState
from selfheal.store.redis import RedisBreakerStore, connect

pytestmark = pytest.mark.slow

NODE = str(Path(__file__).with_name("fleet_node.py"))


class Node:
    """A node process: send it words, read its JSON reports."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, NODE, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=node_env(),
        )
        self.ready = self.read()

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"node exited with {self.proc.wait(5)}")
        report: dict[str, Any] = json.loads(line)
        return report

    def ask(self, word: str) -> dict[str, Any]:
        self.send(word)
        return self.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for node in started:
        node.stop()


def _trip(url: str, prefix: str) -> None:
    store = RedisBreakerStore(url, prefix=prefix)
    try:
        assert store.ready(10)
        store.save("dep", BreakerRecord(BreakerState.OPEN, time.time()))
        assert store.sync(10)
    finally:
        store.close()


@pytest.mark.parametrize("trials", [1, 3])
def test_half_open_lets_exactly_n_trials_through_across_48_threads(
    nodes: list[Node], redis_url: str, prefix: str, trials: int
) -> None:
    nodes += [Node("halfopen", redis_url, prefix, str(trials)) for _ in range(3)]
    _trip(redis_url, prefix)
    for node in nodes:
        wait_until(lambda node=node: node.ask("state")["state"] == "open", 10)
    for node in nodes:
        node.send("go")
    # 0.3 s recovery timeout; the trial calls hang until released, so every call that gets
    # through meanwhile is a trial.
    time.sleep(1.5)
    entered = [node.ask("count")["entered"] for node in nodes]
    assert sum(entered) == trials, entered
    closed = [node.ask("release") for node in nodes]
    wait_until(lambda: connect(redis_url).hget(f"{prefix}:breaker:dep", "st") == "closed", 10)
    assert all(report["released"] for report in closed)


def test_a_partition_leaves_every_node_serving_then_reconciles(
    nodes: list[Node], own_redis: FleetRedis
) -> None:
    nodes += [Node("serve", own_redis.url, "p") for _ in range(3)]
    own_redis.pause()
    try:
        before = [node.ask("report")["served"] for node in nodes]
        nodes[0].send("fail")  # its dependency fails: it trips on its own
        wait_until(lambda: nodes[0].ask("report")["state"] == "open", 10)
        time.sleep(0.3)
        during = [node.ask("report") for node in nodes]
    finally:
        own_redis.resume()
    # Every node kept serving on its own state while Redis did not answer.
    for start, report in zip(before[1:], during[1:], strict=True):
        assert report["served"] > start
        assert report["state"] == "closed"
    assert during[0]["degraded"]
    # Back: the trip decided alone reaches the whole fleet.
    for node in nodes:
        wait_until(lambda node=node: node.ask("report")["state"] == "open", 10)
    wait_until(lambda: nodes[0].ask("report")["fleet"] == ["fleet.redis.down", "fleet.redis.up"])
    assert not nodes[0].ask("report")["degraded"]


def _engine_reports(node: Node, until: tuple[str, ...]) -> list[dict[str, Any]]:
    """Return the node's reports up to the first whose last type segment or reason is in `until`."""
    seen = []
    while True:
        report = node.read()
        seen.append(report)
        words = {report.get("type", "").rsplit(".", 1)[-1], report.get("reason")}
        if words & set(until):
            return seen


def test_one_incident_one_recovery_across_three_engines(
    nodes: list[Node], redis_url: str, prefix: str
) -> None:
    nodes += [Node("engine", redis_url, prefix, "5", "0.5") for _ in range(3)]
    for node in nodes:
        node.send("fail")  # every node sees the database fail
    outcomes = [_engine_reports(node, ("succeeded", "fleet_done")) for node in nodes]
    actions = connect(redis_url).lrange(f"{prefix}:actions", 0, -1)
    assert len(actions) == 2, actions  # one start, one done: one node acted
    acted = [node for node in nodes if f"{node.ready['node']}:start" in actions]
    assert len(acted) == 1
    kinds = sorted(
        r[-1]["type"].rsplit(".", 1)[1] + ":" + str(r[-1].get("reason")) for r in outcomes
    )
    assert kinds == ["succeeded:None", "suppressed:fleet_done", "suppressed:fleet_done"]


def test_the_acting_node_killed_mid_recovery_is_taken_over(
    nodes: list[Node], redis_url: str, prefix: str
) -> None:
    nodes += [Node("engine", redis_url, prefix, "1", "3") for _ in range(3)]
    redis = connect(redis_url)
    nodes[0].send("fail")
    wait_until(lambda: redis.llen(f"{prefix}:actions") == 1, 10)
    for node in nodes[1:]:
        node.send("fail")
        assert _engine_reports(node, ("suppressed",))[-1]["reason"] == "fleet_active"
    killed_at = time.monotonic()
    os.kill(nodes[0].proc.pid, signal.SIGKILL)
    # After its lease (1 s) expires, one of the others takes over and finishes the work.
    wait_until(lambda: redis.llen(f"{prefix}:actions") == 3, 15)
    actions = redis.lrange(f"{prefix}:actions", 0, -1)
    first = nodes[0].ready["node"]
    assert actions[0] == f"{first}:start"
    heir = actions[1].split(":")[0]
    assert heir != first
    assert actions[2] == f"{heir}:done"
    assert time.monotonic() - killed_at >= 0.5  # not before the lease could expire
    time.sleep(0.5)
    assert redis.llen(f"{prefix}:actions") == 3  # the third node did not act too
