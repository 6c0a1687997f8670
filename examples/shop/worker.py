"""The shop's background worker: moves orders from the outbox into the database.

While the database is down the web processes keep orders in the outbox; this worker writes
them as soon as it is back (each write is idempotent on the order id, so a flush interrupted
by a kill and run again records nothing twice). It tells the supervisor it is ready and alive
with sd_notify (``READY=1``, ``WATCHDOG=1``), so a worker that hangs is restarted.
"""

from __future__ import annotations

import os
import signal
import socket
import time

from shopdata import Outbox, open_orders


def notify(message: str) -> None:
    """Send `message` to $NOTIFY_SOCKET if the supervisor gave one."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect("\0" + path[1:] if path.startswith("@") else path)
        sock.send(message.encode())


def main() -> None:
    """Flush the outbox every 100 ms until SIGTERM, a heartbeat after every batch."""
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    orders = open_orders(os.environ.get("SHOP_DB", "sqlite:///shop.db"))
    outbox = Outbox(os.environ.get("SHOP_OUTBOX", "outbox.db"))
    notify("READY=1")
    while not stopping:
        try:
            # Small batches, a heartbeat after each: a backlog of hundreds of orders after an
            # outage must not look like a hung worker to the watchdog.
            moved = outbox.flush(orders, limit=10)
        except Exception as exc:  # the database is down: try again soon
            notify(f"STATUS=database unavailable ({type(exc).__name__}); {outbox.size()} queued")
            moved = 0
        else:
            if moved:
                notify(f"STATUS=wrote {moved} queued order(s)")
        notify("WATCHDOG=1")
        if moved < 10:
            time.sleep(0.1)


if __name__ == "__main__":
    main()
