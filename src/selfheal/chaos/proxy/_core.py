"""`FaultProxy`: named TCP proxies with toxics, the dead-man switch, and their events.

Operations mirror Toxiproxy's API one to one (the HTTP layer in ``_api`` only translates), and
are serialised by one lock, so a toxic is applied to every existing connection before the call
that added it returns. A connection without toxics is moved by the forwarder thread; adding a
toxic to its proxy takes it back onto the loop, removing the last one hands it back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import socket
from collections.abc import Mapping
from dataclasses import field
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.chaos.proxy import _forward
from selfheal.chaos.proxy._effects import Effect, make_effect
from selfheal.chaos.proxy._link import READ_SIZE, Link, Mode
from selfheal.chaos.proxy._model import (
    STREAMS,
    TIME_LIMIT,
    ProxyConfig,
    ProxyError,
    ProxyState,
    Toxic,
    parse_proxy,
    parse_proxy_update,
    parse_toxic,
    update_toxic,
)
from selfheal.chaos.proxy._sockets import bind, dial, nodelay
from selfheal.events import EventBus, Severity

__all__ = ["FaultProxy"]

logger = logging.getLogger("selfheal.chaos.proxy")

_DOWN = ""  # the timer key of a proxy taken down (toxic names are never empty)


@dataclasses.dataclass(eq=False)
class _Proxy:
    config: ProxyConfig
    listen: str
    enabled: bool = False
    down_injected: bool = False  # taken down through the API: a fault to roll back
    toxics: dict[str, Toxic] = field(default_factory=dict)
    listener: socket.socket | None = None
    links: set[Link] = field(default_factory=set)
    dialing: set[asyncio.Task[None]] = field(default_factory=set)
    timers: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def state(self) -> ProxyState:
        ordered = [t for s in STREAMS for t in self.toxics.values() if t.stream == s]
        return ProxyState(
            self.config.name, self.listen, self.config.upstream, self.enabled, tuple(ordered)
        )


class FaultProxy:
    """TCP proxies that inject faults (Toxiproxy's toxics), as a daemon component.

    Call its methods from the event loop that started it. The HTTP API
    (`selfheal.chaos.FaultProxyServer`) drives the same methods.

    Args:
        clock: Times toxics and the dead-man switch.
        bus: Receives ``chaos.<proxy>.injected``, ``.rolled_back`` and ``.expired`` events.
        seed: Seeds toxicity draws, jitter and slice sizes, so a run can be repeated.
        max_fault_duration: Seconds after which any toxic, or a proxy taken down, is rolled
            back by the proxy itself: the limit of a toxic without ``time_limit`` and the cap
            of one with a longer one. None: only toxics with a ``time_limit`` expire.
        fast_path: Move toxic-free connections in the forwarder thread (Linux); False keeps
            every byte on the event loop.
    """

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        seed: int | None = None,
        max_fault_duration: float | None = None,
        fast_path: bool = True,
    ) -> None:
        if max_fault_duration is not None and not max_fault_duration > 0:
            raise ValueError(f"max_fault_duration must be > 0 s, got {max_fault_duration!r}")
        self.clock = clock
        self.bus = bus
        self.max_fault_duration = max_fault_duration
        self._rng = random.Random(seed)  # noqa: S311 - fault draws, not secrets
        self._fast_path = fast_path and _forward.available()
        self._proxies: dict[str, _Proxy] = {}
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._forwarder: _forward.Forwarder | None = None
        self._buffer = bytearray(READ_SIZE)  # the loop path's receive buffer

    def __repr__(self) -> str:
        return f"FaultProxy({len(self._proxies)} proxies)"

    async def start(self) -> None:
        """Start the forwarder thread; proxies can be created from now on."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        if self._fast_path:
            self._forwarder = _forward.Forwarder(self._loop, self._fast_finished)
            self._forwarder.start()

    async def stop(self) -> None:
        """Close every listener and connection, cancel the timers; safe to call twice."""
        if self._loop is None:
            return
        async with self._lock:
            for proxy in self._proxies.values():
                await self._disable(proxy)
                for task in proxy.timers.values():
                    task.cancel()
                proxy.timers.clear()
        if self._forwarder is not None:
            self._forwarder.stop()
            self._forwarder = None
        self._loop = None

    # -- reading ------------------------------------------------------------------------

    def proxies(self) -> dict[str, ProxyState]:
        """Return every proxy by name."""
        return {name: p.state() for name, p in self._proxies.items()}

    def proxy(self, name: str) -> ProxyState:
        """Return proxy `name` (ProxyError 404 if there is none)."""
        return self._get(name).state()

    def toxic(self, proxy: str, name: str) -> Toxic:
        """Return toxic `name` of `proxy` (ProxyError 404 if either is unknown)."""
        toxic = self._get(proxy).toxics.get(name)
        if toxic is None:
            raise ProxyError(f"toxic not found: {name!r}", 404)
        return toxic

    # -- proxies ------------------------------------------------------------------------

    async def create(self, config: ProxyConfig | Mapping[str, Any]) -> ProxyState:
        """Create a proxy (listening at once if enabled) from a config or its JSON.

        Raises:
            ProxyError: 400 bad field, 409 name taken, 500 cannot listen.
        """
        if not isinstance(config, ProxyConfig):
            config = parse_proxy(config)
        async with self._lock:
            if config.name in self._proxies:
                raise ProxyError(f"proxy already exists: {config.name!r}", 409)
            proxy = _Proxy(config, config.listen)
            if config.enabled:
                await self._enable(proxy)
            self._proxies[config.name] = proxy
            return proxy.state()

    async def update(self, name: str, changes: Mapping[str, Any]) -> ProxyState:
        """Change a proxy's ``listen``, ``upstream`` or ``enabled`` (Toxiproxy's POST body).

        Taking a proxy down closes its listener and every connection through it. With a
        ``time_limit`` (ms) or a `max_fault_duration`, it comes back up by itself.

        Raises:
            ProxyError: 400 bad field, 404 unknown proxy, 500 cannot listen.
        """
        fields = parse_proxy_update(changes)
        async with self._lock:
            proxy = self._get(name)
            listen = fields.get("listen", proxy.config.listen)
            upstream = fields.get("upstream", proxy.config.upstream)
            if listen not in (proxy.config.listen, proxy.listen) or upstream != (
                proxy.config.upstream
            ):
                was = proxy.enabled
                await self._disable(proxy)
                proxy.config = ProxyConfig(name, upstream, listen, proxy.config.enabled)
                proxy.listen = listen
                if was:
                    await self._enable(proxy)
            enabled = fields.get("enabled", proxy.enabled)
            if enabled and not proxy.enabled:
                await self._bring_up(proxy, "rolled_back")
            elif not enabled and proxy.enabled:
                await self._disable(proxy)
                proxy.down_injected = True
                limit = self._limit(fields.get(TIME_LIMIT))
                self._emit(proxy, "injected", fault="down", time_limit=limit)
                self._arm(proxy, _DOWN, limit)
            return proxy.state()

    async def delete(self, name: str) -> None:
        """Close and forget proxy `name` (its toxics are rolled back).

        Raises:
            ProxyError: 404 unknown proxy.
        """
        async with self._lock:
            proxy = self._get(name)
            await self._disable(proxy)
            for toxic in list(proxy.toxics.values()):
                await self._drop_toxic(proxy, toxic, "rolled_back")
            self._cancel_timer(proxy, _DOWN)
            del self._proxies[name]

    async def populate(self, configs: object) -> list[ProxyState]:
        """Create or replace the proxies a ``/populate`` body (a JSON list) describes.

        A proxy that exists with the same listen and upstream is kept as it is; one that
        differs is replaced. Every entry is checked before anything changes.

        Raises:
            ProxyError: 400 naming the entry and field; on a later failure, the error's
            ``proxies`` holds what was populated before it.
        """
        if not isinstance(configs, list):
            raise ProxyError("bad request body: expected a JSON list of proxies")
        parsed = [parse_proxy(c, where=f" at proxy {i}") for i, c in enumerate(configs, 1)]
        done: list[ProxyState] = []
        for config in parsed:
            existing = self._proxies.get(config.name)
            if existing is not None:
                if (
                    config.listen in (existing.config.listen, existing.listen)
                    and config.upstream == existing.config.upstream
                ):
                    done.append(existing.state())
                    continue
                await self.delete(config.name)
            try:
                done.append(await self.create(config))
            except ProxyError as exc:
                exc.proxies = done
                raise
        return done

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (``POST /reset``)."""
        async with self._lock:
            for proxy in self._proxies.values():
                if not proxy.enabled:
                    await self._bring_up(proxy, "rolled_back")
                for toxic in list(proxy.toxics.values()):
                    await self._drop_toxic(proxy, toxic, "rolled_back")

    # -- toxics -------------------------------------------------------------------------

    async def add_toxic(self, proxy_name: str, body: Toxic | Mapping[str, Any]) -> Toxic:
        """Add a toxic (a `Toxic` or Toxiproxy's JSON) to every connection of a proxy.

        Raises:
            ProxyError: 400 bad field, 404 unknown proxy, 409 toxic name taken.
        """
        async with self._lock:
            proxy = self._get(proxy_name)
            if isinstance(body, Toxic):
                toxic = dataclasses.replace(body, time_limit=self._limit(body.time_limit))
            else:
                toxic = self._parse(body)
            if toxic.name in proxy.toxics:
                raise ProxyError(f"toxic already exists: {toxic.name!r}", 409)
            proxy.toxics[toxic.name] = toxic
            await self._take_back(proxy)
            now = self.clock.monotonic()
            for link in list(proxy.links):
                if link.mode is Mode.SLOW:
                    link.add_toxic(toxic, self._effect(toxic, None), now)
            self._arm(proxy, toxic.name, toxic.time_limit)
            self._emit(proxy, "injected", toxic=toxic.to_json(), time_limit=toxic.time_limit)
            return toxic

    async def update_toxic(self, proxy_name: str, name: str, body: Mapping[str, Any]) -> Toxic:
        """Change a toxic's attributes or toxicity (Toxiproxy's POST/PATCH body).

        Raises:
            ProxyError: 400 bad field, 404 unknown proxy or toxic.
        """
        async with self._lock:
            proxy = self._get(proxy_name)
            old = proxy.toxics.get(name)
            if old is None:
                raise ProxyError(f"toxic not found: {name!r}", 404)
            toxic = update_toxic(old, body, max_duration=self.max_fault_duration)
            proxy.toxics[name] = toxic
            now = self.clock.monotonic()
            for link in list(proxy.links):
                if link.mode is Mode.SLOW:
                    link.update_toxic(toxic, self._effect, now)
            attributes = body.get("attributes") if isinstance(body, Mapping) else None
            if isinstance(attributes, Mapping) and TIME_LIMIT in attributes:
                self._arm(proxy, name, toxic.time_limit)  # a new limit counts from now
            return toxic

    async def remove_toxic(self, proxy_name: str, name: str) -> None:
        """Remove a toxic; what it held back is released at once.

        Raises:
            ProxyError: 404 unknown proxy or toxic.
        """
        async with self._lock:
            proxy = self._get(proxy_name)
            toxic = proxy.toxics.get(name)
            if toxic is None:
                raise ProxyError(f"toxic not found: {name!r}", 404)
            await self._drop_toxic(proxy, toxic, "rolled_back")

    # -- internals ----------------------------------------------------------------------

    def _get(self, name: str) -> _Proxy:
        proxy = self._proxies.get(name)
        if proxy is None:
            raise ProxyError(f"proxy not found: {name!r}", 404)
        return proxy

    def _parse(self, body: Mapping[str, Any]) -> Toxic:
        return parse_toxic(body, max_duration=self.max_fault_duration)

    def _effect(self, toxic: Toxic, previous: Effect | None) -> Effect:
        return make_effect(toxic, self._rng, previous)

    def _limit(self, asked: float | None) -> float | None:
        cap = self.max_fault_duration
        if asked is None or cap is None:
            return asked if asked is not None else cap
        return min(asked, cap)

    def _emit(self, proxy: _Proxy, what: str, **data: Any) -> None:
        if self.bus is not None:
            severity = Severity.INFO if what == "rolled_back" else Severity.WARNING
            self.bus.emit(f"chaos.{proxy.config.name}.{what}", "fault-proxy", severity, **data)

    async def _drop_toxic(self, proxy: _Proxy, toxic: Toxic, how: str) -> None:
        del proxy.toxics[toxic.name]
        self._cancel_timer(proxy, toxic.name)
        now = self.clock.monotonic()
        for link in list(proxy.links):
            if link.mode is Mode.SLOW:
                link.remove_toxic(toxic, now)
        if not proxy.toxics:
            for link in list(proxy.links):
                self._link_idle(link)
        self._emit(proxy, how, toxic=toxic.to_json())

    def _arm(self, proxy: _Proxy, key: str, seconds: float | None) -> None:
        """(Re)start the dead-man timer `key`: a toxic's name, or _DOWN for the proxy."""
        self._cancel_timer(proxy, key)
        if seconds is not None:
            deadline = (
                self.clock.monotonic() + seconds
            )  # counted from now, not from when the task runs
            task = self._require_loop().create_task(self._expire(proxy, key, deadline))
            proxy.timers[key] = task

    def _cancel_timer(self, proxy: _Proxy, key: str) -> None:
        task = proxy.timers.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _expire(self, proxy: _Proxy, key: str, deadline: float) -> None:
        await self.clock.asleep(deadline - self.clock.monotonic())
        async with self._lock:
            if proxy.timers.get(key) is not asyncio.current_task():
                return  # replaced or cancelled while waiting for the lock
            proxy.timers.pop(key)
            if key == _DOWN:
                if not proxy.enabled and self._proxies.get(proxy.config.name) is proxy:
                    try:
                        await self._bring_up(proxy, "expired")
                    except ProxyError as exc:
                        logger.error("proxy %s could not come back up: %s", proxy.listen, exc)
                return
            current = proxy.toxics.get(key)
            if current is not None:
                logger.warning("toxic %s of proxy %s expired", key, proxy.config.name)
                await self._drop_toxic(proxy, current, "expired")

    async def _bring_up(self, proxy: _Proxy, how: str) -> None:
        """Enable `proxy`; if it was taken down as a fault, that fault ends (`how`)."""
        await self._enable(proxy)
        self._cancel_timer(proxy, _DOWN)
        if proxy.down_injected:
            proxy.down_injected = False
            self._emit(proxy, how, fault="down")

    async def _enable(self, proxy: _Proxy) -> None:
        loop = self._require_loop()
        proxy.listener, proxy.listen = await bind(loop, proxy.listen)
        proxy.enabled = True
        loop.add_reader(proxy.listener.fileno(), self._accept, proxy)

    async def _disable(self, proxy: _Proxy) -> None:
        proxy.enabled = False
        if proxy.listener is not None:
            self._require_loop().remove_reader(proxy.listener.fileno())
            proxy.listener.close()
            proxy.listener = None
        for task in list(proxy.dialing):
            task.cancel()
        await self._release(proxy)
        for link in list(proxy.links):
            link.close()

    def _accept(self, proxy: _Proxy) -> None:
        loop = self._require_loop()
        listener = proxy.listener
        for _ in range(64):  # a burst of clients, but the loop gets a turn between bursts
            if listener is None:
                return
            try:
                client, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.warning("proxy %s: accept failed: %s", proxy.config.name, exc)
                return
            task = loop.create_task(self._connect(proxy, client))
            proxy.dialing.add(task)
            task.add_done_callback(proxy.dialing.discard)

    async def _connect(self, proxy: _Proxy, client: socket.socket) -> None:
        loop = self._require_loop()
        try:
            upstream = await dial(loop, proxy.config.upstream)
        except (OSError, asyncio.CancelledError) as exc:
            client.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            logger.info("proxy %s: upstream %s: %s", proxy.config.name, proxy.config.upstream, exc)
            return
        client.setblocking(False)
        nodelay(client)
        link = Link(
            proxy.config.name,
            client,
            upstream,
            loop=loop,
            clock=self.clock,
            on_closed=proxy.links.discard,
            on_idle=self._link_idle,
            buffer=self._buffer,
        )
        proxy.links.add(link)
        if proxy.toxics or self._forwarder is None:
            link.go_slow(list(proxy.toxics.values()), self._effect)
        else:
            link.mode = Mode.FAST
            self._forwarder.adopt(link)

    async def _release(self, proxy: _Proxy) -> list[Link]:
        """Take every fast link of `proxy` back from the thread; return those still open."""
        if self._forwarder is None:
            return []
        fast = [link for link in proxy.links if link.mode is Mode.FAST]
        for link in fast:
            link.mode = Mode.MOVING
        alive = await asyncio.gather(*(self._forwarder.release(link) for link in fast))
        return [
            link for link, ok in zip(fast, alive, strict=True) if ok and link.mode is Mode.MOVING
        ]

    async def _take_back(self, proxy: _Proxy) -> None:
        """Bring every fast link of `proxy` onto the loop, its toxics applied."""
        toxics = list(proxy.toxics.values())
        for link in await self._release(proxy):
            link.go_slow(toxics, self._effect)

    def _link_idle(self, link: Link) -> None:
        proxy = self._proxies.get(link.proxy)
        if (
            self._forwarder is not None
            and proxy is not None
            and not proxy.toxics
            and link.leave_slow()
        ):
            link.mode = Mode.FAST
            self._forwarder.adopt(link)

    def _fast_finished(self, link: Link) -> None:
        if link.mode in (Mode.FAST, Mode.MOVING):
            link.mode = Mode.MOVING  # not FAST any more: the thread let go of it
            link.close()

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("FaultProxy is not started: await start() first")
        return self._loop
