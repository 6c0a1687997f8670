"""The socket side of the fault proxy: each proxy's listener and links, and who moves them.

A link whose proxy has no toxic is moved by the forwarder thread (`_forward`); adding a toxic
to its proxy takes the link back onto the event loop (`Link.go_slow`), and once the last toxic
is gone and nothing is queued it goes back to the thread. `FaultProxy` decides what the faults
are; `Connections` only keeps every link with the right owner.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from dataclasses import field

from selfheal._clock import Clock
from selfheal.chaos.proxy import _forward
from selfheal.chaos.proxy._link import READ_SIZE, EffectFactory, Link, Mode
from selfheal.chaos.proxy._model import STREAMS, ProxyConfig, ProxyState, Toxic
from selfheal.chaos.proxy._sockets import bind, dial, nodelay

__all__ = ["Connections", "Entry"]

logger = logging.getLogger("selfheal.chaos.proxy")


@dataclasses.dataclass(eq=False)
class Entry:
    """One proxy: its config and toxics, its listener, links and dead-man timers."""

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
        """Return what the API shows of it."""
        ordered = [t for s in STREAMS for t in self.toxics.values() if t.stream == s]
        return ProxyState(
            self.config.name, self.listen, self.config.upstream, self.enabled, tuple(ordered)
        )


class Connections:
    """Listeners and links of every proxy, on one loop and (fast path) one forwarder thread.

    Args:
        clock: Times the toxics of links on the loop.
        make_effect: Builds a toxic's effect for one direction of a link.
        fast_path: Move toxic-free links in the forwarder thread (when available here).
    """

    def __init__(self, clock: Clock, make_effect: EffectFactory, *, fast_path: bool) -> None:
        self.clock = clock
        self.make_effect = make_effect
        self.fast_path = fast_path and _forward.available()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._forwarder: _forward.Forwarder | None = None
        self._buffer = bytearray(READ_SIZE)  # the loop path's receive buffer

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """Return the loop (RuntimeError before `start`)."""
        if self._loop is None:
            raise RuntimeError("FaultProxy is not started: await start() first")
        return self._loop

    def start(self) -> None:
        """Take the running loop; start the forwarder thread."""
        self._loop = asyncio.get_running_loop()
        if self.fast_path:
            self._forwarder = _forward.Forwarder(self._loop, self._fast_finished)
            self._forwarder.start()

    def stop(self) -> None:
        """Stop the forwarder thread (disable every proxy first)."""
        if self._forwarder is not None:
            self._forwarder.stop()
            self._forwarder = None
        self._loop = None

    async def enable(self, proxy: Entry) -> None:
        """Listen for `proxy` (ProxyError when its address cannot be bound)."""
        loop = self.loop
        proxy.listener, proxy.listen = await bind(loop, proxy.listen)
        proxy.enabled = True
        loop.add_reader(proxy.listener.fileno(), self._accept, proxy)

    async def disable(self, proxy: Entry) -> None:
        """Close the listener of `proxy` and every connection through it."""
        proxy.enabled = False
        if proxy.listener is not None:
            self.loop.remove_reader(proxy.listener.fileno())
            proxy.listener.close()
            proxy.listener = None
        for task in list(proxy.dialing):
            task.cancel()
        await self._release(proxy)
        for link in list(proxy.links):
            link.close()

    async def take_back(self, proxy: Entry) -> None:
        """Bring every fast link of `proxy` onto the loop, its toxics applied."""
        toxics = list(proxy.toxics.values())
        for link in await self._release(proxy):
            link.go_slow(toxics, self.make_effect)

    def idle(self, proxy: Entry, link: Link) -> None:
        """Hand `link` back to the thread if its proxy has no toxic and nothing is queued."""
        if self._forwarder is not None and not proxy.toxics and link.leave_slow():
            link.mode = Mode.FAST
            self._forwarder.adopt(link)

    def _accept(self, proxy: Entry) -> None:
        loop = self.loop
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

    async def _connect(self, proxy: Entry, client: socket.socket) -> None:
        loop = self.loop
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
            on_idle=lambda link: self.idle(proxy, link),
            buffer=self._buffer,
        )
        proxy.links.add(link)
        if proxy.toxics or self._forwarder is None:
            link.go_slow(list(proxy.toxics.values()), self.make_effect)
        else:
            link.mode = Mode.FAST
            self._forwarder.adopt(link)

    async def _release(self, proxy: Entry) -> list[Link]:
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

    def _fast_finished(self, link: Link) -> None:
        if link.mode in (Mode.FAST, Mode.MOVING):
            link.mode = Mode.MOVING  # not FAST any more: the thread let go of it
            link.close()
