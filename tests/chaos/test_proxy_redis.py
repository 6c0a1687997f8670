"""The stock toxiproxy-python client drives our proxy in front of a private redis-server."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import redis
from proxy_helpers import ThreadedProxy, address, connect, read_until_closed, threaded_proxy, timed
from redis.backoff import NoBackoff
from redis.retry import Retry
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy.proxy import Proxy

from health_helpers import RedisServer, redis_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis_upstream() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def server() -> Iterator[ThreadedProxy]:
    with threaded_proxy() as proxy:
        yield proxy


@pytest.fixture
def proxy(server: ThreadedProxy, redis_upstream: RedisServer) -> Proxy:
    return server.client().create(upstream=f"127.0.0.1:{redis_upstream.port}", name="redis")


def client_for(proxy: Proxy, **options: float) -> redis.Redis:
    # No retries: a fault must surface at once, not after redis-py's reconnect attempts.
    host, port = address(proxy.listen)
    return redis.Redis(host=host, port=port, retry=Retry(NoBackoff(), 0), **options)


def test_a_proxy_passes_redis_traffic(proxy: Proxy) -> None:
    r = client_for(proxy)
    assert r.ping() is True
    r.set("k", b"v" * 100_000)
    assert r.get("k") == b"v" * 100_000
    r.close()


def test_latency_toxic_delays_a_ping_until_removed(proxy: Proxy) -> None:
    r = client_for(proxy)
    r.ping()
    proxy.add_toxic(type="latency", attributes={"latency": 300, "jitter": 0})
    assert [t.type for t in proxy.toxics().values()] == ["latency"]
    _, took = timed(r.ping)
    assert took >= 0.3
    proxy.destroy_toxic("latency_downstream")
    _, took = timed(r.ping)
    assert took < 0.3
    r.close()


def test_upstream_latency_delays_requests(proxy: Proxy) -> None:
    r = client_for(proxy)
    r.ping()
    proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 250})
    _, took = timed(r.ping)
    assert took >= 0.25
    r.close()


def test_timeout_toxic_stalls_then_closes_when_removed(proxy: Proxy) -> None:
    r = client_for(proxy, socket_timeout=0.5)
    r.ping()
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    with pytest.raises(redis.TimeoutError):
        r.ping()
    proxy.destroy_toxic("timeout_downstream")
    r.connection_pool.disconnect()
    assert r.ping() is True
    r.close()


def test_timeout_toxic_with_a_timeout_closes_the_connection(proxy: Proxy) -> None:
    sock = connect(proxy.listen)
    proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 300})
    sock.sendall(b"PING\r\n")
    data, took = timed(read_until_closed, sock)
    assert data == b""  # the PING never reached redis, and the connection was closed
    assert took >= 0.25
    sock.close()


def test_reset_peer_resets_the_connection(proxy: Proxy) -> None:
    r = client_for(proxy)
    r.ping()
    proxy.add_toxic(type="reset_peer", stream="upstream", attributes={"timeout": 0})
    with pytest.raises(redis.ConnectionError, match="reset by peer"):
        r.ping()
    r.close()


def test_limit_data_closes_after_n_bytes(proxy: Proxy) -> None:
    sock = connect(proxy.listen)
    sock.sendall(b"PING\r\n")
    assert sock.recv(100) == b"+PONG\r\n"
    proxy.add_toxic(type="limit_data", attributes={"bytes": 10})
    sock.sendall(b"PING\r\nPING\r\n")
    assert read_until_closed(sock) == b"+PONG\r\n+PO"
    sock.close()


def test_bandwidth_toxic_limits_the_rate(proxy: Proxy) -> None:
    r = client_for(proxy)
    r.set("big", b"x" * 50_000)
    proxy.add_toxic(type="bandwidth", attributes={"rate": 100})  # 100 KB/s
    value, took = timed(r.get, "big")
    assert value == b"x" * 50_000
    assert took >= 0.45
    r.close()


def test_slicer_and_slow_close_keep_the_data_intact(proxy: Proxy) -> None:
    r = client_for(proxy)
    r.set("sliced", bytes(range(256)) * 100)
    proxy.add_toxic(type="slicer", attributes={"average_size": 64, "size_variation": 32})
    proxy.add_toxic(type="slow_close", attributes={"delay": 300})
    assert r.get("sliced") == bytes(range(256)) * 100
    sock = connect(proxy.listen)
    sock.sendall(b"QUIT\r\n")  # redis answers, then closes; the close reaches us 300 ms later
    data, took = timed(read_until_closed, sock)
    assert data == b"+OK\r\n"
    assert took >= 0.25
    sock.close()
    r.close()


def test_disabling_the_proxy_refuses_connections(proxy: Proxy) -> None:
    r = client_for(proxy, socket_timeout=2)
    r.ping()
    with proxy.down():
        with pytest.raises(redis.ConnectionError):
            r.ping()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address(proxy.listen), timeout=2)
    assert r.ping() is True
    r.close()


def test_reset_clears_toxics_and_enables_proxies(server: ThreadedProxy, proxy: Proxy) -> None:
    client = server.client()
    proxy.add_toxic(type="latency", attributes={"latency": 1000})
    proxy.add_toxic(type="timeout", name="stall", stream="upstream")
    proxy.disable()
    assert client.get_proxy("redis").enabled is False
    assert client.reset() is True
    again = client.get_proxy("redis")
    assert again.enabled is True
    assert again.toxics() == {}
    r = client_for(again)
    _, took = timed(r.ping)
    assert took < 1.0
    r.close()


def test_populate_create_destroy_and_errors(
    server: ThreadedProxy, redis_upstream: RedisServer
) -> None:
    client = server.client()
    upstream = f"127.0.0.1:{redis_upstream.port}"
    made = client.populate([{"name": "a", "upstream": upstream, "listen": "127.0.0.1:0"}])
    assert [p.name for p in made] == ["a"]
    assert sorted(client.proxies()) == ["a"]
    with pytest.raises(ProxyExists):
        client.create(upstream=upstream, name="a")
    a = client.get_proxy("a")
    with pytest.raises(InvalidToxic, match=r"unknown attribute .*latncy.* for latency"):
        a.add_toxic(type="latency", attributes={"latncy": 5})
    with pytest.raises(NotFound):
        a.destroy_toxic("nothing")
    assert client.version() is not None
    client.destroy_all()
    assert client.proxies() == {}


def test_toxicity_zero_never_applies(proxy: Proxy) -> None:
    r = client_for(proxy)
    proxy.add_toxic(type="latency", toxicity=0.0, attributes={"latency": 2000})
    started = time.perf_counter()
    for _ in range(5):
        r.ping()
    assert time.perf_counter() - started < 2.0
    r.close()
