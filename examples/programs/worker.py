"""A worker that speaks sd_notify: READY=1 once set up, then WATCHDOG=1 heartbeats.

Any sd_notify library works the same way (``sdnotify``, ``systemd.daemon``); this one uses
the protocol directly: datagrams to the unix socket named by $NOTIFY_SOCKET.
"""

from __future__ import annotations

import os
import socket
import time


def notify(message: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


if __name__ == "__main__":
    interval = int(os.environ.get("WATCHDOG_USEC", "10000000")) / 1e6 / 2
    time.sleep(0.5)  # pretend to set up
    notify("READY=1\nSTATUS=processing jobs")
    jobs = 0
    while True:
        jobs += 1
        print(f"worker: job {jobs} done", flush=True)
        notify(f"WATCHDOG=1\nSTATUS={jobs} jobs done")
        time.sleep(interval)
