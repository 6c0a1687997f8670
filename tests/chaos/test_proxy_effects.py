"""Each toxic's decisions, fed items with chosen times: no sockets, no clock."""

from __future__ import annotations

import random

import pytest

from selfheal.chaos.proxy._effects import (
    Chain,
    End,
    Item,
    Passthrough,
    make_effect,
)
from selfheal.chaos.proxy._model import ProxyError, parse_toxic, update_toxic


def toxic(kind: str, toxicity: float = 1.0, **attributes: float) -> object:
    return parse_toxic({"type": kind, "toxicity": toxicity, "attributes": attributes})


def chain_of(*specs: object, seed: int = 1, now: float = 0.0) -> tuple[Chain, list[Item]]:
    chain = Chain()
    rng = random.Random(seed)
    started: list[Item] = []
    for spec in specs:
        started += chain.add(spec.name, make_effect(spec, rng), now)  # type: ignore[attr-defined]
    return chain, started


def data(at: float, payload: bytes) -> Item:
    return Item(at, payload)


def test_latency_delays_each_chunk_from_its_arrival() -> None:
    chain, _ = chain_of(toxic("latency", latency=100))
    out = chain.push(data(5.0, b"a")) + chain.push(data(5.5, b"b"))
    assert [(round(i.at, 6), i.data) for i in out] == [(5.1, b"a"), (5.6, b"b")]
    assert {i.by for i in out} == {"latency_downstream"}


def test_latency_jitter_stays_within_bounds_and_repeats_with_the_seed() -> None:
    def delays(seed: int) -> list[float]:
        chain, _ = chain_of(toxic("latency", latency=100, jitter=20), seed=seed)
        return [chain.push(data(0.0, b"x"))[0].at for _ in range(200)]

    first = delays(7)
    assert all(0.08 <= d <= 0.12 for d in first)
    assert max(first) - min(first) > 0.03  # jitter really varies
    assert delays(7) == first
    assert delays(8) != first


def test_latency_never_goes_below_zero_when_jitter_exceeds_it() -> None:
    chain, _ = chain_of(toxic("latency", latency=1, jitter=50))
    assert all(chain.push(data(1.0, b"x"))[0].at >= 1.0 for _ in range(100))


def test_ends_pass_latency_without_delay() -> None:
    chain, _ = chain_of(toxic("latency", latency=100))
    (end,) = chain.push(Item(2.0, end=End.EOF))
    assert (end.at, end.end) == (2.0, End.EOF)


def test_bandwidth_spaces_bytes_by_rate_in_tenth_second_slices() -> None:
    chain, _ = chain_of(toxic("bandwidth", rate=10))  # 10 KB/s = 10_000 bytes/s
    out = chain.push(data(0.0, b"x" * 2500))
    assert [len(i.data) for i in out] == [1000, 1000, 500]
    assert [round(i.at, 6) for i in out] == [0.1, 0.2, 0.25]
    # The link stays busy: the next chunk waits for the previous one.
    (later,) = chain.push(data(0.1, b"y" * 100))
    assert round(later.at, 6) == 0.26


def test_bandwidth_zero_is_unlimited() -> None:
    chain, _ = chain_of(toxic("bandwidth", rate=0))
    assert chain.push(data(3.0, b"z" * 10_000))[0].at == 3.0


def test_timeout_drops_data_and_closes_after_its_timeout() -> None:
    chain, started = chain_of(toxic("timeout", timeout=500), now=10.0)
    assert [(i.at, i.end) for i in started] == [(10.5, End.CLOSE)]
    assert chain.push(data(10.1, b"lost")) == []


def test_timeout_zero_stalls_for_ever_and_its_removal_closes() -> None:
    chain, started = chain_of(toxic("timeout", timeout=0))
    assert started == []
    assert chain.push(data(1.0, b"lost")) == []
    (closed,) = chain.remove("timeout_downstream", now=7.0)
    assert (closed.at, closed.end) == (7.0, End.CLOSE)
    assert chain.push(data(8.0, b"ok"))[0].data == b"ok"


def test_reset_peer_resets_after_first_data_and_swallows_the_rest() -> None:
    chain, _ = chain_of(toxic("reset_peer", timeout=200))
    (reset,) = chain.push(data(1.0, b"PING"))
    assert (round(reset.at, 6), reset.end) == (1.2, End.RESET)
    assert chain.push(data(1.1, b"more")) == []
    assert chain.push(Item(1.3, end=End.EOF)) == []


def test_slow_close_passes_data_and_delays_the_end() -> None:
    chain, _ = chain_of(toxic("slow_close", delay=300))
    assert chain.push(data(1.0, b"x"))[0].at == 1.0
    (end,) = chain.push(Item(2.0, end=End.EOF))
    assert (round(end.at, 6), end.end) == (2.3, End.EOF)


def test_limit_data_cuts_at_the_limit_then_closes() -> None:
    chain, _ = chain_of(toxic("limit_data", bytes=5))
    first = chain.push(data(0.0, b"abc"))
    assert [i.data for i in first] == [b"abc"]
    second = chain.push(data(0.1, b"defgh"))
    assert [(i.data, i.end) for i in second] == [(b"de", None), (b"", End.CLOSE)]
    assert chain.push(data(0.2, b"late")) == []


def test_limit_data_keeps_its_count_across_an_update() -> None:
    spec = toxic("limit_data", bytes=4)
    chain, _ = chain_of(spec)
    chain.push(data(0.0, b"abc"))
    bigger = update_toxic(spec, {"attributes": {"bytes": 6}})  # type: ignore[arg-type]
    effect = make_effect(bigger, random.Random(1), chain.effect("limit_data_downstream"))
    chain.replace("limit_data_downstream", effect, 0.0)
    out = chain.push(data(0.1, b"defgh"))
    assert [(i.data, i.end) for i in out] == [(b"def", None), (b"", End.CLOSE)]


def test_slicer_cuts_into_pieces_delay_apart_keeping_every_byte() -> None:
    chain, _ = chain_of(toxic("slicer", average_size=10, size_variation=3, delay=1000))
    payload = bytes(range(256)) * 2
    out = chain.push(data(0.0, payload))
    assert b"".join(i.data for i in out) == payload
    assert all(7 <= len(i.data) <= 13 for i in out[:-1])
    assert len(out[-1].data) <= 13
    assert [round(i.at, 6) for i in out[:3]] == [0.0, 0.001, 0.002]


def test_toxicity_applies_to_that_share_of_connections_repeatably() -> None:
    spec = toxic("latency", toxicity=0.25, latency=100)

    def draws(seed: int) -> list[bool]:
        rng = random.Random(seed)
        return [not isinstance(make_effect(spec, rng), Passthrough) for _ in range(2000)]  # type: ignore[arg-type]

    hits = draws(3)
    assert 0.2 < sum(hits) / len(hits) < 0.3
    assert draws(3) == hits
    never = toxic("latency", toxicity=0.0, latency=100)
    rng = random.Random(1)
    assert all(isinstance(make_effect(never, rng), Passthrough) for _ in range(100))  # type: ignore[arg-type]


def test_a_chain_applies_toxics_in_the_order_added() -> None:
    chain, _ = chain_of(
        toxic("latency", latency=100),
        parse_toxic({"type": "limit_data", "attributes": {"bytes": 2}}),
    )
    out = chain.push(data(0.0, b"abc"))
    assert [(i.data, i.end, round(i.at, 6)) for i in out] == [
        (b"ab", None, 0.1),
        (b"", End.CLOSE, 0.1),
    ]
    assert chain.names() == ["latency_downstream", "limit_data_downstream"]


def test_items_remember_which_toxic_held_them_back() -> None:
    slow = parse_toxic({"type": "latency", "name": "slow", "attributes": {"latency": 50}})
    slower = parse_toxic({"type": "latency", "name": "slower", "attributes": {"latency": 70}})
    chain, _ = chain_of(slow, slower)
    (item,) = chain.push(data(0.0, b"x"))
    assert item.by == "slower"
    chain.remove("slower", now=0.01)
    (item,) = chain.push(data(0.0, b"y"))
    assert item.by == "slow"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "latncy"}, "invalid toxic type: 'latncy' (valid: bandwidth, latency,"),
        ({"type": "latency", "stream": "sideways"}, "stream was invalid"),
        ({"type": "latency", "toxicity": 2}, "toxicity must be a number from 0 to 1, got 2"),
        (
            {"type": "latency", "attributes": {"latncy": 1}},
            "unknown attribute 'latncy' for latency",
        ),
        (
            {"type": "latency", "attributes": {"latency": -1}},
            "attributes.latency must be a number >= 0",
        ),
        (
            {"type": "latency", "attributes": {"latency": "1"}},
            "attributes.latency must be a number",
        ),
        (
            {"type": "latency", "attributes": {"latency": True}},
            "attributes.latency must be a number",
        ),
        ({"type": "latency", "attributes": {"time_limit": 0}}, "attributes.time_limit must be > 0"),
        (
            {"type": "slicer", "attributes": {"average_size": 0}},
            "attributes.average_size must be >= 1",
        ),
        (
            {"type": "slicer", "attributes": {"average_size": 5, "size_variation": 5}},
            "size_variation must be less than average_size",
        ),
        ({"type": "latency", "attributes": [1]}, "attributes must be an object"),
        ([1], "bad request body: expected a JSON object, got list"),
    ],
)
def test_bad_toxics_are_refused_naming_the_field(body: object, message: str) -> None:
    with pytest.raises(ProxyError) as caught:
        parse_toxic(body)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_toxic_defaults_and_json_are_toxiproxys() -> None:
    spec = parse_toxic({"type": "latency", "attributes": {"latency": 10}})
    assert spec.to_json() == {
        "attributes": {"latency": 10, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }


def test_time_limit_is_an_attribute_capped_by_the_max_fault_duration() -> None:
    asked = {"type": "timeout", "attributes": {"time_limit": 5000}}
    assert parse_toxic(asked).time_limit == 5.0
    assert parse_toxic(asked, max_duration=2.0).time_limit == 2.0
    assert parse_toxic({"type": "timeout"}, max_duration=2.0).time_limit == 2.0
    assert parse_toxic({"type": "timeout"}).time_limit is None
    assert parse_toxic(asked).to_json()["attributes"] == {"timeout": 0, "time_limit": 5000}
