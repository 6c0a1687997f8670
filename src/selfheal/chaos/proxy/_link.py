"""One proxied connection, and the event-loop path its bytes take while it has toxics.

A `Link` holds the client's socket and the upstream socket, each an `End` that records what is
owed to it (``pending``) and how far each direction got (EOF read, write side shut). Those
fields are all the state a direction has between reads, so a link can move between the
forwarder thread (no toxic: `selfheal.chaos.proxy._forward`) and the event loop (toxics)
without losing a byte.

On the loop, each direction is a `Side`: data read from its source goes through the
direction's `Chain` of toxic effects; items due now are written at once, later ones wait in a
FIFO queue drained by one task per direction (never one per chunk), which sleeps on the
injected `Clock`. A source is paused while more than `HIGH_WATER` bytes wait for its
destination, so a slow toxic holds back the sender instead of filling memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import socket
import struct
from collections.abc import Callable

from selfheal._clock import Clock
from selfheal.chaos.proxy._effects import Chain, Effect, End, Item
from selfheal.chaos.proxy._model import Toxic

__all__ = [
    "HIGH_WATER",
    "LOW_WATER",
    "READ_SIZE",
    "EffectFactory",
    "Link",
    "Mode",
    "Side",
    "Socket",
]

#: Bytes waiting for a destination above which its source is no longer read.
HIGH_WATER = 1 << 20
#: ...and below which it is read again.
LOW_WATER = 1 << 18
#: Bytes read per receive call.
READ_SIZE = 1 << 18

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends an RST

EffectFactory = Callable[[Toxic, Effect | None], Effect]


class Mode(enum.Enum):
    """Who moves a link's bytes."""

    NEW = "new"
    FAST = "fast"  # the forwarder thread
    MOVING = "moving"  # between the two, touched by nobody
    SLOW = "slow"  # the event loop, through toxics
    CLOSED = "closed"


class Socket:
    """One socket of a link and what is owed to it; shared by the thread and the loop path."""

    __slots__ = (
        "eof_in",
        "fd",
        "link",
        "mask",
        "peer",
        "pending",
        "pipe",
        "piped",
        "reading",
        "shut_out",
        "sock",
        "splice",
        "want_shut",
    )

    def __init__(self, sock: socket.socket, link: Link) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.link = link
        self.peer: Socket = self
        self.pending = bytearray()  # bytes read from the peer, not yet written here
        self.reading = True  # whether this socket's data is being read now
        self.eof_in = False  # the peer of this socket sent FIN: nothing more to read
        self.want_shut = False  # shut the write side once `pending` is written
        self.shut_out = False  # write side shut
        self.mask = -1  # the forwarder's epoll mask (-1: not registered)
        # The forwarder's splice path (see _forward): large chunks read from this socket go
        # through a pipe to the peer, whose bytes owed in that pipe are `piped` (never both
        # `piped` and `pending` at once). The loop path never sees a pipe: the forwarder
        # empties it into `pending` before it lets a link go.
        self.splice = False  # read this socket with splice (into the peer's pipe)
        self.pipe: tuple[int, int] | None = None  # (read end, write end) of bytes owed here
        self.piped = 0

    def shut(self) -> None:
        """Shut the write side (raises OSError when the socket is gone)."""
        self.want_shut = False
        self.shut_out = True
        self.sock.shutdown(socket.SHUT_WR)


class Link:
    """A client connection and its upstream connection.

    Args:
        proxy: The proxy's name.
        client: The accepted socket (non-blocking).
        upstream: The connected upstream socket (non-blocking).
        loop: The loop that owns the link whenever it is not fast.
        clock: Times items and waits for them.
        on_closed: Called once when the link is closed.
        on_idle: Called when a slow link has nothing queued any more (it may go fast).
        buffer: Where the loop path receives into; shared by the links of one loop.
    """

    __slots__ = (
        "buffer",
        "client",
        "clock",
        "loop",
        "mode",
        "on_closed",
        "on_idle",
        "proxy",
        "sides",
        "upstream",
    )

    def __init__(
        self,
        proxy: str,
        client: socket.socket,
        upstream: socket.socket,
        *,
        loop: asyncio.AbstractEventLoop,
        clock: Clock,
        on_closed: Callable[[Link], None],
        on_idle: Callable[[Link], None],
        buffer: bytearray,
    ) -> None:
        self.proxy = proxy
        self.buffer = buffer
        self.loop, self.clock = loop, clock
        self.on_closed, self.on_idle = on_closed, on_idle
        self.client = Socket(client, self)
        self.upstream = Socket(upstream, self)
        self.client.peer, self.upstream.peer = self.upstream, self.client
        self.mode = Mode.NEW
        self.sides = {"upstream": Side(self, self.client), "downstream": Side(self, self.upstream)}

    def __repr__(self) -> str:
        return f"Link({self.proxy}, fd {self.client.fd}<->{self.upstream.fd}, {self.mode.value})"

    @property
    def done(self) -> bool:
        """Return whether both directions ended cleanly (read EOF, write side shut)."""
        c, u = self.client, self.upstream
        return c.eof_in and u.eof_in and c.shut_out and u.shut_out

    # -- the loop path ------------------------------------------------------------------

    def go_slow(self, toxics: list[Toxic], make: EffectFactory) -> None:
        """Take the link onto the loop with chains for `toxics` (from NEW or MOVING)."""
        now = self.clock.monotonic()
        self.mode = Mode.SLOW
        for toxic in toxics:
            self.add_toxic(toxic, make(toxic, None), now)
        for side in self.sides.values():
            side.src.reading = False
            side.throttle()  # reads the source unless it ended or too much waits
            if side.dst.pending:
                self.loop.add_writer(side.dst.fd, side.flush)
            elif side.dst.want_shut:
                side.shut_dst()
            if self.mode is Mode.CLOSED:
                return

    def add_toxic(self, toxic: Toxic, effect: Effect, now: float) -> None:
        """Start applying `toxic` (no-op when its direction has it already)."""
        side = self.sides[toxic.stream]
        if toxic.name not in side.chain.names():
            side.emit(side.chain.add(toxic.name, effect, now), now)

    def update_toxic(self, toxic: Toxic, make: EffectFactory, now: float) -> None:
        """Apply the updated `toxic`: a fresh effect (new toxicity draw) keeping its state."""
        side = self.sides[toxic.stream]
        side.drop_ends_by(toxic.name)
        effect = make(toxic, side.chain.effect(toxic.name))
        side.emit(side.chain.replace(toxic.name, effect, now), now)

    def remove_toxic(self, toxic: Toxic, now: float) -> None:
        """Stop applying `toxic`; what it held back is released at once."""
        side = self.sides[toxic.stream]
        items = side.chain.remove(toxic.name, now)
        side.release(toxic.name)
        side.emit(items, now)

    def idle(self) -> bool:
        """Return whether nothing is queued in either direction (drain tasks only wait)."""
        return all(not s.queue for s in self.sides.values())

    def leave_slow(self) -> bool:
        """Stop the loop path if it is idle (mode MOVING); return whether it did."""
        if self.mode is not Mode.SLOW or not self.idle():
            return False
        self._unwatch()
        self.mode = Mode.MOVING
        return True

    def close(self, *, reset: bool = False) -> None:
        """Close both sockets (with an RST when `reset`); the link must not be FAST."""
        if self.mode is Mode.CLOSED:
            return
        if self.mode is Mode.SLOW:
            self._unwatch()
        self.mode = Mode.CLOSED
        for end in (self.client, self.upstream):
            if reset:
                with contextlib.suppress(OSError):
                    end.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            end.sock.close()
        self.on_closed(self)

    def _unwatch(self) -> None:
        for side in self.sides.values():
            if side.task is not None:
                side.task.cancel()
                side.task = None
            for fd in (side.src.fd, side.dst.fd):
                self.loop.remove_reader(fd)
                self.loop.remove_writer(fd)
            if side.flushed is not None and not side.flushed.done():
                side.flushed.cancel()


class Side:
    """One direction of a slow link: reads `src`, writes `src.peer` through the toxics."""

    __slots__ = ("chain", "flushed", "link", "queue", "queued", "src", "task", "wakeup")

    def __init__(self, link: Link, src: Socket) -> None:
        self.link = link
        self.src = src
        self.chain = Chain()
        self.queue: collections.deque[Item] = collections.deque()
        self.queued = 0
        self.task: asyncio.Task[None] | None = None
        self.flushed: asyncio.Future[None] | None = None
        self.wakeup: asyncio.Future[None] | None = None

    @property
    def dst(self) -> Socket:
        """Return the socket this direction writes to."""
        return self.src.peer

    def on_readable(self) -> None:
        """Read what the source sent and send it through the chain."""
        try:
            n = self.src.sock.recv_into(self.link.buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.link.close()
            return
        now = self.link.clock.monotonic()
        data = bytes(memoryview(self.link.buffer)[:n])
        if not data:
            self.src.eof_in = True
            self.src.reading = False
            self.link.loop.remove_reader(self.src.fd)
            self.emit(self.chain.push(Item(now, end=End.EOF)), now)
        else:
            self.emit(self.chain.push(Item(now, data)), now)

    def emit(self, items: list[Item], now: float) -> None:
        """Write the items due now (in order); queue the rest for the drain task."""
        for item in items:
            if not self.queue and item.at <= now and self._ready(item):
                self._apply(item)
                if self.link.mode is not Mode.SLOW:
                    return
            else:
                self.queue.append(item)
                self.queued += len(item.data)
        if self.queue:
            if self.task is None:
                self.task = self.link.loop.create_task(self._drain())
            elif self.wakeup is not None and not self.wakeup.done():
                self.wakeup.set_result(None)
        self.throttle()

    def release(self, name: str) -> None:
        """Make every queued item held back by toxic `name` due now; wake the drain task."""
        now = self.link.clock.monotonic()
        changed = False
        for item in self.queue:
            if item.by == name and item.at > now:
                item.at, changed = now, True
        if changed and self.task is not None:
            self.task.cancel()
            self.task = self.link.loop.create_task(self._drain())

    def drop_ends_by(self, name: str) -> None:
        """Forget the ends toxic `name` scheduled (it is being replaced and will reschedule)."""
        kept = [i for i in self.queue if not (i.end is not None and i.by == name)]
        if len(kept) != len(self.queue):
            self.queue = collections.deque(kept)

    def _ready(self, item: Item) -> bool:
        # A close waits for the bytes before it to be written (a reset does not).
        return item.end is not End.CLOSE or not self.dst.pending

    def _apply(self, item: Item) -> None:
        if item.end is None:
            self._write(item.data)
        elif item.end is End.EOF:
            self.dst.want_shut = True
            if not self.dst.pending:
                self.shut_dst()
        else:
            self.link.close(reset=item.end is End.RESET)

    async def _drain(self) -> None:
        # One task per direction, for as long as the direction has toxics: it waits for the
        # head of the queue to be due, or for the queue to fill again.
        clock = self.link.clock
        try:
            while self.link.mode is Mode.SLOW:
                if not self.queue:
                    if not self.chain:
                        break  # nothing can be held back any more: the link may go fast
                    self.wakeup = self.link.loop.create_future()
                    await self.wakeup
                    continue
                item = self.queue[0]
                wait = item.at - clock.monotonic()
                if wait > 0:
                    await clock.asleep(wait)
                    continue
                if not self._ready(item) or len(self.dst.pending) > HIGH_WATER:
                    self.flushed = self.link.loop.create_future()
                    await self.flushed
                    continue
                self.queue.popleft()
                self.queued -= len(item.data)
                self._apply(item)
                self.throttle()
        finally:
            if self.task is asyncio.current_task():
                self.task = None
        if self.link.mode is Mode.SLOW and self.link.idle():
            self.link.on_idle(self.link)

    def _write(self, data: bytes) -> None:
        dst = self.dst
        if dst.pending:
            dst.pending += data
            return
        try:
            sent = dst.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.link.close()
            return
        if sent < len(data):
            dst.pending += data[sent:]
            self.link.loop.add_writer(dst.fd, self.flush)

    def flush(self) -> None:
        """Write what is pending to the destination (called when it is writable)."""
        dst = self.dst
        try:
            sent = dst.sock.send(dst.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.link.close()
            return
        del dst.pending[:sent]
        if dst.pending:
            return
        self.link.loop.remove_writer(dst.fd)
        if dst.want_shut:
            self.shut_dst()
        if self.flushed is not None and not self.flushed.done():
            self.flushed.set_result(None)
        if self.link.mode is Mode.SLOW:
            self.throttle()

    def shut_dst(self) -> None:
        """Shut the destination's write side; close the link once both directions ended."""
        try:
            self.dst.shut()
        except OSError:
            self.link.close()
            return
        if self.link.done:
            self.link.close()

    def throttle(self) -> None:
        """Pause reading the source while too much waits for the destination, else read."""
        backlog = self.queued + len(self.dst.pending)
        if self.src.reading and backlog > HIGH_WATER:
            self.src.reading = False
            self.link.loop.remove_reader(self.src.fd)
        elif not self.src.reading and backlog < LOW_WATER and not self.src.eof_in:
            self.src.reading = True
            self.link.loop.add_reader(self.src.fd, self.on_readable)
