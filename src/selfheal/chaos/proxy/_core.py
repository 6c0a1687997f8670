"""`FaultProxy`: named TCP proxies with toxics, the dead-man switch, and their events.

Operations mirror Toxiproxy's API one to one (the HTTP layer in ``_api`` only translates), and
are serialised by one lock, so a toxic is applied to every existing connection before the call
that added it returns. A connection without toxics is moved by the forwarder thread; adding a
toxic to its proxy takes it back onto the loop, removing the last one hands it back. While the
kill switch is engaged (`Safeguards`), every fault is rolled back and new ones are refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Mapping
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.chaos._safety import Safeguards
from selfheal.chaos.proxy._conns import Connections, Entry
from selfheal.chaos.proxy._effects import Effect, make_effect
from selfheal.chaos.proxy._link import Mode
from selfheal.chaos.proxy._model import (
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
from selfheal.chaos.proxy._switch import SwitchWatch
from selfheal.events import EventBus, Severity

__all__ = ["FaultProxy"]

logger = logging.getLogger("selfheal.chaos.proxy")

_DOWN = ""  # the timer key of a proxy taken down (toxic names are never empty)


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
        safeguards: Their ``kill_switch`` file (``selfheal chaos stop``) is looked at every
            ``poll_interval``; the in-process `kill_switch()` is heard without them. While one
            is engaged, every toxic is removed, every proxy taken down comes back up, and new
            toxics or downs are refused with a 403.
    """

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        seed: int | None = None,
        max_fault_duration: float | None = None,
        fast_path: bool = True,
        safeguards: Safeguards | None = None,
    ) -> None:
        if max_fault_duration is not None and not max_fault_duration > 0:
            raise ValueError(f"max_fault_duration must be > 0 s, got {max_fault_duration!r}")
        self.clock = clock
        self.bus = bus
        self.max_fault_duration = max_fault_duration
        self._rng = random.Random(seed)  # noqa: S311 - fault draws, not secrets
        self._proxies: dict[str, Entry] = {}
        self._lock = asyncio.Lock()
        self._conns = Connections(clock, self._effect, fast_path=fast_path)
        self._started = False
        self._switch = SwitchWatch(safeguards or Safeguards(), clock, self._kill_switch_engaged)

    def __repr__(self) -> str:
        return f"FaultProxy({len(self._proxies)} proxies)"

    async def start(self) -> None:
        """Start the forwarder thread; proxies can be created from now on."""
        if self._started:
            return
        self._started = True
        self._conns.start()
        self._switch.start()

    async def stop(self) -> None:
        """Close every listener and connection, cancel the timers; safe to call twice."""
        if not self._started:
            return
        self._switch.stop()
        async with self._lock:
            for proxy in self._proxies.values():
                await self._conns.disable(proxy)
                for task in proxy.timers.values():
                    task.cancel()
                proxy.timers.clear()
        self._conns.stop()
        self._started = False

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
            proxy = Entry(config, config.listen)
            if config.enabled:
                await self._conns.enable(proxy)
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
                await self._conns.disable(proxy)
                proxy.config = ProxyConfig(name, upstream, listen, proxy.config.enabled)
                proxy.listen = listen
                if was:
                    await self._conns.enable(proxy)
            enabled = fields.get("enabled", proxy.enabled)
            if enabled and not proxy.enabled:
                await self._bring_up(proxy, "rolled_back")
            elif not enabled and proxy.enabled:
                self._refuse_faults()
                await self._conns.disable(proxy)
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
            await self._conns.disable(proxy)
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
        await self._roll_back(every_proxy=True)

    async def _roll_back(self, *, every_proxy: bool, **data: Any) -> None:
        """Remove every toxic; bring up the proxies taken down as faults, or `every_proxy`."""
        async with self._lock:
            for proxy in self._proxies.values():
                if not proxy.enabled and (every_proxy or proxy.down_injected):
                    await self._bring_up(proxy, "rolled_back", **data)
                for toxic in list(proxy.toxics.values()):
                    await self._drop_toxic(proxy, toxic, "rolled_back", **data)

    async def _kill_switch_engaged(self, reason: str) -> None:
        logger.warning("fault proxy: rolling every fault back: %s", reason)
        try:
            await self._roll_back(every_proxy=False, reason=f"kill switch: {reason}")
        except ProxyError as exc:  # a listen address taken meanwhile: the toxics are gone
            logger.error("fault proxy: a proxy could not come back up: %s", exc)

    def _refuse_faults(self) -> None:
        reason = self._switch.refusal()
        if reason is not None:
            raise ProxyError(f"chaos is stopped, no new fault: {reason}", 403)

    # -- toxics -------------------------------------------------------------------------

    async def add_toxic(self, proxy_name: str, body: Toxic | Mapping[str, Any]) -> Toxic:
        """Add a toxic (a `Toxic` or Toxiproxy's JSON) to every connection of a proxy.

        Raises:
            ProxyError: 400 bad field, 404 unknown proxy, 409 toxic name taken.
        """
        async with self._lock:
            proxy = self._get(proxy_name)
            self._refuse_faults()
            if isinstance(body, Toxic):
                toxic = dataclasses.replace(body, time_limit=self._limit(body.time_limit))
            else:
                toxic = self._parse(body)
            if toxic.name in proxy.toxics:
                raise ProxyError(f"toxic already exists: {toxic.name!r}", 409)
            proxy.toxics[toxic.name] = toxic
            await self._conns.take_back(proxy)
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
            self._refuse_faults()
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

    def _get(self, name: str) -> Entry:
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

    def _emit(self, proxy: Entry, what: str, **data: Any) -> None:
        if self.bus is not None:
            severity = Severity.INFO if what == "rolled_back" else Severity.WARNING
            self.bus.emit(f"chaos.{proxy.config.name}.{what}", "fault-proxy", severity, **data)

    async def _drop_toxic(self, proxy: Entry, toxic: Toxic, how: str, **data: Any) -> None:
        del proxy.toxics[toxic.name]
        self._cancel_timer(proxy, toxic.name)
        now = self.clock.monotonic()
        for link in list(proxy.links):
            if link.mode is Mode.SLOW:
                link.remove_toxic(toxic, now)
        if not proxy.toxics:
            for link in list(proxy.links):
                self._conns.idle(proxy, link)
        self._emit(proxy, how, toxic=toxic.to_json(), **data)

    def _arm(self, proxy: Entry, key: str, seconds: float | None) -> None:
        """(Re)start the dead-man timer `key`: a toxic's name, or _DOWN for the proxy."""
        self._cancel_timer(proxy, key)
        if seconds is not None:
            deadline = (
                self.clock.monotonic() + seconds
            )  # counted from now, not from when the task runs
            task = self._conns.loop.create_task(self._expire(proxy, key, deadline))
            proxy.timers[key] = task

    def _cancel_timer(self, proxy: Entry, key: str) -> None:
        task = proxy.timers.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _expire(self, proxy: Entry, key: str, deadline: float) -> None:
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

    async def _bring_up(self, proxy: Entry, how: str, **data: Any) -> None:
        """Enable `proxy`; if it was taken down as a fault, that fault ends (`how`)."""
        await self._conns.enable(proxy)
        self._cancel_timer(proxy, _DOWN)
        if proxy.down_injected:
            proxy.down_injected = False
            self._emit(proxy, how, fault="down", **data)
