"""FaultProxy in-process: real loopback sockets, time on a FakeClock where toxics wait."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from health_helpers import until
from proxy_helpers import EchoServer, address
from selfheal.chaos import (
    FaultProxy,
    KillSwitch,
    ProxyError,
    Safeguards,
    kill_switch,
    release_kill_switch,
)
from selfheal.chaos.proxy import _forward
from selfheal.chaos.proxy._link import Mode
from selfheal.events import Event, EventBus
from selfheal.testing import FakeClock

pytestmark = pytest.mark.anyio


@pytest.fixture(params=[True, False], ids=["fast", "loop"])
async def proxied(
    request: pytest.FixtureRequest, clock: FakeClock
) -> AsyncIterator[tuple[FaultProxy, EchoServer, list[Event]]]:
    bus = EventBus(clock=clock)
    events: list[Event] = []
    bus.subscribe("chaos.*", events.append)
    fault_proxy = FaultProxy(clock=clock, bus=bus, fast_path=request.param, seed=1)
    async with EchoServer() as echo:
        await fault_proxy.start()
        await fault_proxy.create({"name": "echo", "upstream": echo.address})
        try:
            yield fault_proxy, echo, events
        finally:
            await fault_proxy.stop()


async def open_client(
    fault_proxy: FaultProxy, name: str = "echo"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*address(fault_proxy.proxy(name).listen))


async def echo_once(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> bytes:
    writer.write(payload)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(payload)), 5)


async def test_bytes_pass_untouched_without_toxics(proxied: tuple) -> None:
    fault_proxy, _, _ = proxied
    reader, writer = await open_client(fault_proxy)
    payload = os.urandom(3 * 1024 * 1024)
    writer.write(payload)
    got = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
    assert got == payload
    writer.close()


async def test_half_close_reaches_the_other_side(proxied: tuple) -> None:
    fault_proxy, _, _ = proxied
    reader, writer = await open_client(fault_proxy)
    writer.write(b"last words")
    writer.write_eof()
    # The echo server answers after our EOF, then sends its own: both directions close.
    assert await asyncio.wait_for(reader.read(), 5) == b"last words"
    writer.close()


async def test_latency_holds_data_until_the_clock_says(proxied: tuple, clock: FakeClock) -> None:
    fault_proxy, _, events = proxied
    reader, writer = await open_client(fault_proxy)
    assert await echo_once(reader, writer, b"before") == b"before"
    await fault_proxy.add_toxic("echo", {"type": "latency", "attributes": {"latency": 1000}})
    writer.write(b"held")
    read = asyncio.ensure_future(reader.readexactly(4))
    await clock.wait_for_sleepers(1)
    clock.advance(0.999)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not read.done()
    clock.advance(0.001)
    assert await asyncio.wait_for(read, 5) == b"held"
    assert [e.type for e in events] == ["chaos.echo.injected"]
    writer.close()


async def test_removing_latency_releases_held_data_at_once(
    proxied: tuple, clock: FakeClock
) -> None:
    fault_proxy, _, events = proxied
    reader, writer = await open_client(fault_proxy)
    await fault_proxy.add_toxic("echo", {"type": "latency", "attributes": {"latency": 60_000}})
    writer.write(b"held")
    read = asyncio.ensure_future(reader.readexactly(4))
    await clock.wait_for_sleepers(1)
    await fault_proxy.remove_toxic("echo", "latency_downstream")
    assert await asyncio.wait_for(read, 5) == b"held"
    assert await echo_once(reader, writer, b"after") == b"after"
    assert [e.type for e in events] == ["chaos.echo.injected", "chaos.echo.rolled_back"]
    writer.close()


async def test_limit_data_passes_n_bytes_then_closes(proxied: tuple) -> None:
    fault_proxy, _, _ = proxied
    reader, writer = await open_client(fault_proxy)
    assert await echo_once(reader, writer, b"warm") == b"warm"
    await fault_proxy.add_toxic(
        "echo", {"type": "limit_data", "stream": "downstream", "attributes": {"bytes": 6}}
    )
    writer.write(b"0123456789")
    assert await asyncio.wait_for(reader.read(), 5) == b"012345"
    writer.close()


async def test_a_toxic_with_toxicity_zero_changes_nothing(proxied: tuple) -> None:
    fault_proxy, _, _ = proxied
    reader, writer = await open_client(fault_proxy)
    await fault_proxy.add_toxic(
        "echo", {"type": "timeout", "toxicity": 0, "attributes": {"timeout": 0}}
    )
    assert await echo_once(reader, writer, b"through") == b"through"
    writer.close()


async def test_taking_a_proxy_down_closes_connections_and_refuses_new_ones(
    proxied: tuple,
) -> None:
    fault_proxy, _, events = proxied
    reader, writer = await open_client(fault_proxy)
    assert await echo_once(reader, writer, b"up") == b"up"
    listen = fault_proxy.proxy("echo").listen
    await fault_proxy.update("echo", {"enabled": False})
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(*address(listen))
    await fault_proxy.update("echo", {"enabled": True})
    assert fault_proxy.proxy("echo").listen == listen  # the same port again
    reader, writer = await open_client(fault_proxy)
    assert await echo_once(reader, writer, b"back") == b"back"
    assert [(e.type, e.data["fault"]) for e in events] == [
        ("chaos.echo.injected", "down"),
        ("chaos.echo.rolled_back", "down"),
    ]
    writer.close()


async def test_connections_survive_toxics_coming_and_going(proxied: tuple) -> None:
    # Every byte arrives, in order, while the link moves between the thread and the loop.
    fault_proxy, _, _ = proxied
    reader, writer = await open_client(fault_proxy)
    payload = os.urandom(4 * 1024 * 1024)

    async def send() -> None:
        for i in range(0, len(payload), 100_000):
            writer.write(payload[i : i + 100_000])
            await writer.drain()

    sender = asyncio.ensure_future(send())
    received = bytearray()
    toggles = 0
    while len(received) < len(payload):
        received += await asyncio.wait_for(reader.read(65536), 10)
        if toggles < 40 and len(received) > toggles * 50_000:
            toggles += 1
            if toggles % 2:
                await fault_proxy.add_toxic(
                    "echo", {"type": "slicer", "attributes": {"average_size": 3000}}
                )
            else:
                await fault_proxy.remove_toxic("echo", "slicer_downstream")
    await sender
    assert toggles == 40
    assert bytes(received) == payload
    writer.close()


async def test_a_stalled_reader_gets_every_byte_once_it_reads(proxied: tuple) -> None:
    fault_proxy, _, _ = proxied
    reader, writer = await open_client(fault_proxy)
    payload = os.urandom(8 * 1024 * 1024)
    writer.write(payload)  # nobody reads for a while: every buffer on the way fills up
    for _ in range(200):
        await asyncio.sleep(0)
    got = await asyncio.wait_for(reader.readexactly(len(payload)), 20)
    assert got == payload
    writer.close()


async def test_toxic_time_limit_expires_on_the_clock(proxied: tuple, clock: FakeClock) -> None:
    fault_proxy, _, events = proxied
    reader, writer = await open_client(fault_proxy)
    await fault_proxy.add_toxic(
        "echo", {"type": "timeout", "attributes": {"timeout": 0, "time_limit": 2000}}
    )
    writer.write(b"dropped")
    await clock.wait_for_sleepers(1)
    clock.advance(1.999)
    for _ in range(20):
        await asyncio.sleep(0)
    assert [t.name for t in fault_proxy.proxy("echo").toxics] == ["timeout_downstream"]
    clock.advance(0.001)
    await until(lambda: not fault_proxy.proxy("echo").toxics)
    # Removing a timeout toxic closes the connections it stalled, as in Toxiproxy.
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert [e.type for e in events] == ["chaos.echo.injected", "chaos.echo.expired"]
    assert events[0].data["time_limit"] == 2.0
    writer.close()
    reader, writer = await open_client(fault_proxy)
    assert await echo_once(reader, writer, b"fine") == b"fine"
    writer.close()


async def test_a_toxic_removed_in_time_never_expires(proxied: tuple, clock: FakeClock) -> None:
    fault_proxy, _, events = proxied
    await fault_proxy.add_toxic(
        "echo", {"type": "latency", "attributes": {"latency": 5, "time_limit": 1000}}
    )
    await fault_proxy.remove_toxic("echo", "latency_downstream")
    await fault_proxy.add_toxic("echo", {"type": "latency", "attributes": {"latency": 5}})
    clock.advance(5)
    for _ in range(50):
        await asyncio.sleep(0)
    assert [t.name for t in fault_proxy.proxy("echo").toxics] == ["latency_downstream"]
    assert [e.type for e in events] == [
        "chaos.echo.injected",
        "chaos.echo.rolled_back",
        "chaos.echo.injected",
    ]


async def test_updating_the_time_limit_restarts_it(proxied: tuple, clock: FakeClock) -> None:
    fault_proxy, _, _ = proxied
    await fault_proxy.add_toxic(
        "echo", {"type": "latency", "attributes": {"latency": 5, "time_limit": 1000}}
    )
    clock.advance(0.8)
    await fault_proxy.update_toxic(
        "echo", "latency_downstream", {"attributes": {"time_limit": 1000}}
    )
    clock.advance(0.8)  # 1.6 s after it was added, 0.8 s after the update
    for _ in range(50):
        await asyncio.sleep(0)
    assert fault_proxy.proxy("echo").toxics
    clock.advance(0.2)
    await until(lambda: not fault_proxy.proxy("echo").toxics)


async def test_max_fault_duration_expires_toxics_and_downtime(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    events: list[Event] = []
    bus.subscribe("chaos.*", events.append)
    fault_proxy = FaultProxy(clock=clock, bus=bus, max_fault_duration=30)
    async with EchoServer() as echo:
        await fault_proxy.start()
        try:
            await fault_proxy.create({"name": "e", "upstream": echo.address})
            toxic = await fault_proxy.add_toxic(
                "e", {"type": "latency", "attributes": {"latency": 1, "time_limit": 3_600_000}}
            )
            assert toxic.time_limit == 30
            assert toxic.to_json()["attributes"]["time_limit"] == 30_000
            await fault_proxy.update("e", {"enabled": False})
            clock.advance(30)
            await until(lambda: fault_proxy.proxy("e").enabled)
            await until(lambda: not fault_proxy.proxy("e").toxics)
            assert sorted((e.type, e.data.get("fault", "toxic")) for e in events) == [
                ("chaos.e.expired", "down"),
                ("chaos.e.expired", "toxic"),
                ("chaos.e.injected", "down"),
                ("chaos.e.injected", "toxic"),
            ]
        finally:
            await fault_proxy.stop()


async def test_reset_enables_everything_and_removes_every_toxic(proxied: tuple) -> None:
    fault_proxy, echo, events = proxied
    await fault_proxy.create({"name": "other", "upstream": echo.address, "enabled": False})
    await fault_proxy.add_toxic("echo", {"type": "latency", "stream": "upstream"})
    await fault_proxy.add_toxic("echo", {"type": "bandwidth", "attributes": {"rate": 1}})
    await fault_proxy.reset()
    states = fault_proxy.proxies()
    assert all(s.enabled and not s.toxics for s in states.values())
    assert (
        sorted(e.type for e in events)
        == ["chaos.echo.injected"] * 2 + ["chaos.echo.rolled_back"] * 2
    )
    reader, writer = await open_client(fault_proxy)
    assert await echo_once(reader, writer, b"clean") == b"clean"
    writer.close()


async def test_proxy_errors_have_toxiproxys_statuses(proxied: tuple) -> None:
    fault_proxy, echo, _ = proxied
    with pytest.raises(ProxyError) as caught:
        await fault_proxy.create({"name": "echo", "upstream": echo.address})
    assert caught.value.status == 409
    with pytest.raises(ProxyError) as caught:
        await fault_proxy.add_toxic("nope", {"type": "latency"})
    assert (caught.value.status, caught.value.message) == (404, "proxy not found: 'nope'")
    await fault_proxy.add_toxic("echo", {"type": "latency"})
    with pytest.raises(ProxyError) as caught:
        await fault_proxy.add_toxic("echo", {"type": "latency"})
    assert caught.value.status == 409
    with pytest.raises(ProxyError) as caught:
        await fault_proxy.remove_toxic("echo", "nope")
    assert caught.value.status == 404
    with pytest.raises(ProxyError) as caught:
        await fault_proxy.create({"name": "x", "upstream": "nowhere"})
    assert "upstream must be host:port" in caught.value.message
    taken = fault_proxy.proxy("echo").listen
    with pytest.raises(ProxyError) as caught:
        await fault_proxy.create({"name": "y", "upstream": echo.address, "listen": taken})
    assert caught.value.status == 500
    assert "address already in use" in caught.value.message.lower()


async def test_an_unreachable_upstream_closes_the_client(clock: FakeClock) -> None:
    fault_proxy = FaultProxy(clock=clock)
    await fault_proxy.start()
    try:
        async with EchoServer() as echo:
            dead = echo.address
        await fault_proxy.create({"name": "dead", "upstream": dead})
        reader, writer = await open_client(fault_proxy, "dead")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await fault_proxy.stop()


async def test_links_return_to_the_forwarder_when_the_last_toxic_goes(clock: FakeClock) -> None:
    fault_proxy = FaultProxy(clock=clock)
    async with EchoServer() as echo:
        await fault_proxy.start()
        try:
            await fault_proxy.create({"name": "echo", "upstream": echo.address})
            reader, writer = await open_client(fault_proxy)
            assert await echo_once(reader, writer, b"one") == b"one"
            links = fault_proxy._proxies["echo"].links  # the modes are not part of the API
            assert [link.mode for link in links] == [Mode.FAST]
            await fault_proxy.add_toxic("echo", {"type": "latency", "attributes": {"latency": 10}})
            assert [link.mode for link in links] == [Mode.SLOW]
            read = asyncio.ensure_future(echo_once(reader, writer, b"two"))
            await clock.wait_for_sleepers(1)
            clock.advance(0.01)
            assert await read == b"two"
            await fault_proxy.remove_toxic("echo", "latency_downstream")
            assert [link.mode for link in links] == [Mode.FAST]
            assert await echo_once(reader, writer, b"three") == b"three"
            writer.close()
        finally:
            await fault_proxy.stop()


async def test_the_kill_switch_rolls_every_fault_back_and_refuses_new_ones(
    clock: FakeClock, tmp_path: Path
) -> None:
    bus = EventBus(clock=clock)
    events: list[Event] = []
    bus.subscribe("chaos.*", events.append)
    switch = KillSwitch(tmp_path)
    safeguards = Safeguards(kill_switch=switch, poll_interval=5)
    fault_proxy = FaultProxy(clock=clock, bus=bus, safeguards=safeguards)
    async with EchoServer() as echo:
        await fault_proxy.start()
        try:
            await fault_proxy.create({"name": "echo", "upstream": echo.address})
            await fault_proxy.create({"name": "down", "upstream": echo.address})
            await fault_proxy.create({"name": "off", "upstream": echo.address, "enabled": False})
            reader, writer = await open_client(fault_proxy)
            await fault_proxy.add_toxic("echo", {"type": "latency", "attributes": {"latency": 1e6}})
            await fault_proxy.update("down", {"enabled": False})
            writer.write(b"held")
            read = asyncio.ensure_future(reader.readexactly(4))
            switch.engage("incident 9")
            clock.advance(4.9)
            for _ in range(100):  # give the watcher every chance to look too early
                await asyncio.sleep(0)
            assert fault_proxy.proxy("echo").toxics  # not looked at yet
            clock.advance(0.1)
            await until(lambda: not fault_proxy.proxy("echo").toxics)
            assert await asyncio.wait_for(read, 5) == b"held"  # released at once
            await until(lambda: fault_proxy.proxy("down").enabled)
            assert not fault_proxy.proxy("off").enabled  # created disabled: not a fault
            rolled = [e for e in events if e.type.endswith("rolled_back")]
            assert sorted(e.type for e in rolled) == [
                "chaos.down.rolled_back",
                "chaos.echo.rolled_back",
            ]
            assert all(str(switch.path) in e.data["reason"] for e in rolled)
            for fault in (
                fault_proxy.add_toxic("echo", {"type": "latency"}),
                fault_proxy.update("echo", {"enabled": False}),
            ):
                with pytest.raises(ProxyError) as refused:
                    await fault
                assert refused.value.status == 403
                assert "chaos is stopped" in refused.value.message
                assert "selfheal chaos resume" in refused.value.message
            assert fault_proxy.proxy("echo").enabled
            await fault_proxy.create({"name": "new", "upstream": echo.address})  # not a fault
            switch.release()
            await fault_proxy.add_toxic("echo", {"type": "latency"})  # allowed again at once
            writer.close()
        finally:
            await fault_proxy.stop()


async def test_the_in_process_kill_switch_is_heard_at_once(proxied: tuple) -> None:
    fault_proxy, _, events = proxied
    await fault_proxy.add_toxic("echo", {"type": "timeout", "attributes": {"timeout": 0}})
    try:
        kill_switch("from a test")
        await until(lambda: not fault_proxy.proxy("echo").toxics)
        with pytest.raises(ProxyError, match="in-process kill switch is engaged"):
            await fault_proxy.add_toxic("echo", {"type": "latency"})
    finally:
        release_kill_switch()
    assert events[-1].type == "chaos.echo.rolled_back"
    assert (
        events[-1].data["reason"] == "kill switch: the in-process kill switch is engaged "
        "(from a test); release_kill_switch() lifts it"
    )
    await fault_proxy.add_toxic("echo", {"type": "latency"})


async def fill_the_chain(writer: asyncio.StreamWriter) -> bytes:
    """Write random MiBs until the client itself is held back: every buffer on the way is full.

    How much the sockets on the way take depends on the machine (TCP autotuning), so the test
    writes until the back-pressure reaches the writer rather than a fixed amount.
    """
    payload = bytearray()
    while writer.transport.get_write_buffer_size() < 4 << 20:
        assert len(payload) < 512 << 20, "the chain never filled up"
        block = os.urandom(1 << 20)
        payload += block
        writer.write(block)
        await asyncio.sleep(0)
    return bytes(payload)


async def until_still(probe: Any, turns: int = 20, limit: float = 10.0) -> None:
    """Wait until `probe()` gave the same value `turns` times in a row, 1 ms apart."""
    deadline = time.monotonic() + limit
    last, same = probe(), 0
    while same < turns:
        assert time.monotonic() < deadline, "still moving"
        await asyncio.sleep(0.001)
        now = probe()
        same = same + 1 if now == last else 0
        last = now


async def test_large_chunks_are_spliced_and_survive_a_takeover_in_the_pipe(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    spliced: list[int] = []
    held: list[int] = []
    real_splice, real_close = os.splice, _forward.Forwarder._close_pipe

    def splice(src: int, dst: int, count: int, *args: object, **kw: object) -> int:
        moved = real_splice(src, dst, count, *args, **kw)  # type: ignore[arg-type]
        spliced.append(moved)
        return moved

    def close_pipe(self: _forward.Forwarder, end: Any) -> None:
        held.append(end.piped)  # bytes still in the pipe when the thread lets the link go
        real_close(self, end)

    monkeypatch.setattr(os, "splice", splice)
    monkeypatch.setattr(_forward.Forwarder, "_close_pipe", close_pipe)
    fault_proxy = FaultProxy(clock=clock)
    async with EchoServer() as echo:
        await fault_proxy.start()
        try:
            await fault_proxy.create({"name": "echo", "upstream": echo.address})
            reader, writer = await open_client(fault_proxy)
            try:
                assert await echo_once(reader, writer, b"small") == b"small"
                assert spliced == []  # small messages are copied, never spliced
                payload = await fill_the_chain(writer)  # nobody reads: buffers and pipes fill
                await until_still(lambda: (len(spliced), writer.transport.get_write_buffer_size()))
                assert len(spliced) > 8
                await fault_proxy.add_toxic("echo", {"type": "latency", "stream": "upstream"})
                assert any(held), held  # the takeover found bytes in a pipe...
                got = await asyncio.wait_for(reader.readexactly(len(payload)), 20)
                assert got == payload  # ...and none was lost or reordered
                await fault_proxy.remove_toxic("echo", "latency_upstream")
                assert await echo_once(reader, writer, b"again") == b"again"
            finally:
                writer.close()
        finally:
            await fault_proxy.stop()
