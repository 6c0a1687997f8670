"""A private network namespace for the whole bench (loopback up, ``tcp_migrate_req`` on).

The shop's web processes share one port with ``SO_REUSEPORT``: each has its own accept queue,
and the kernel spreads new connections over them by a hash. When one of them dies, the
connections waiting in its queue are reset, unless ``net.ipv4.tcp_migrate_req`` is 1: then the
kernel moves them to a sibling (Linux 5.14+). That is a deployment setting of any host running
SO_REUSEPORT servers, so both runs get it; setting it in a namespace of our own leaves the
machine's own setting (and everybody else's traffic) alone. Needs root (``CAP_SYS_ADMIN``);
``--no-netns`` runs on the machine's loopback with its setting instead.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
from pathlib import Path

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
MIGRATE = Path("/proc/sys/net/ipv4/tcp_migrate_req")


def enter_private_netns() -> None:
    """Move this process (call it before any thread starts) into a new network namespace.

    Raises:
        OSError: If the kernel refuses (no privilege, no namespaces).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    MIGRATE.write_text("1\n")


def migrate_setting() -> str:
    """Return this namespace's ``tcp_migrate_req`` ("?" if the kernel has none)."""
    try:
        return MIGRATE.read_text().strip()
    except OSError:
        return "?"
