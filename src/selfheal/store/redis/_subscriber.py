"""The shared breaker store's subscriber: a trip on any node reaches this one's cache."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from selfheal.store.redis._client import connect

if TYPE_CHECKING:
    from selfheal.store.redis._breaker import RedisBreakerStore

__all__ = ["Subscriber"]

logger = logging.getLogger("selfheal.breaker.redis")


class Subscriber:
    """Listens on the store's channel in a thread; reconnects and asks for a resync."""

    def __init__(self, store: RedisBreakerStore) -> None:
        self.store = store
        self._stop = threading.Event()
        #: Set while subscribed (and the records reloaded after subscribing are on their way).
        self.subscribed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="selfheal-breakers-sub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        store = self.store
        delay = 0.05
        while not self._stop.is_set():
            pubsub = None
            try:
                # No read timeout: a quiet channel is normal; get_message polls with its own.
                client = connect(store._url, timeout=None)
                pubsub = client.pubsub()
                pubsub.subscribe(store.channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is None:
                        continue
                    if message.get("type") == "message":
                        store._on_message(message["data"])
                    elif message.get("type") == "subscribe":
                        # Changes made before the subscription took effect were not heard:
                        # reload every record now that none can be missed.
                        delay = 0.05
                        store.request_resync()
                        self.subscribed.set()
            except store._errors as exc:
                self.subscribed.clear()
                logger.debug("breaker store subscriber: %r", exc)
                self._stop.wait(delay)
                delay = min(delay * 2, 1.0)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # closing a dead connection
                        logger.debug("breaker store subscriber: close failed", exc_info=True)
