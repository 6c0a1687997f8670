"""What a configured value may be: ranges of seconds and counts, hosts and paths, safe echoes.

Every numeric key of ``selfheal.toml`` has a range (its model's ``Field(ge=..., le=...)``)
built from these constants, so a value that passes ``selfheal check`` cannot crash or starve
the daemon later: no ``inf`` timer, no 10**12 processes, no busy loop of a 1e-300 s interval,
no integer SQLite cannot hold. Text that names a host or a file must be printable, and what
an error echoes back is shortened and escaped, so a hostile value cannot flood or repaint a
terminal. Standard library only: the models (which need pydantic) and the daemon share it.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

__all__ = [
    "DAY",
    "MAX_COUNT",
    "MAX_PROCESSES",
    "MIN_PERIOD",
    "YEAR",
    "host_problem",
    "is_loopback_host",
    "printable",
    "text_problem",
]

#: The shortest period of anything repeated (probes, checks, polls), in seconds. The kubelet
#: allows 1 s; shorter is allowed for tests and local probes, but never a busy loop.
MIN_PERIOD = 0.01
#: The longest delay, interval, timeout or grace period, in seconds.
DAY = 86_400.0
#: The longest window, cooldown, reset or retention period, in seconds.
YEAR = 365 * DAY
#: The most of anything counted (thresholds, retries, restarts, burst sizes).
MAX_COUNT = 1_000_000
#: The most processes one daemon supervises, all programs together.
MAX_PROCESSES = 10_000

# Control (Cc), format (Cf: bidi overrides, zero-width), separator (Zl, Zp), unassigned and
# private-use characters: invisible or misleading in a host or a path, and a NUL cannot be
# passed to the kernel at all.
_HIDDEN = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"})
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\.?")  # RFC 1123
_MAX_PATH = 4096  # PATH_MAX on Linux


def text_problem(value: str, *, path: bool = False) -> str | None:
    """Return what makes `value` unfit to name a host, a file or a URL, or None.

    Args:
        value: The text.
        path: Whether it is a file path (at most 4096 characters, as the kernel takes).

    Returns:
        A sentence naming the first bad character (escaped), or None.
    """
    for char in value:
        if unicodedata.category(char) in _HIDDEN:
            kind = "a NUL" if char == "\0" else f"the invisible or control character {char!r}"
            return f"contains {kind}; only printable characters are allowed here"
    if path and len(value) > _MAX_PATH:
        return f"is {len(value)} characters long; a path has at most {_MAX_PATH}"
    return None


def host_problem(host: str) -> str | None:
    """Return why `host` is not an IP address or a host name, or None if it is one.

    Args:
        host: ``127.0.0.1``, ``::1``, ``localhost``, ``node-1.example.com``...
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    if _HOSTNAME.fullmatch(host):
        return None
    return "must be an IP address (127.0.0.1, ::1) or a host name (letters, digits, '-', '.')"


def is_loopback_host(host: str) -> bool:
    """Return whether `host` can only be reached from this machine (127.0.0.0/8, ::1, localhost).

    A host name other than ``localhost`` counts as reachable from elsewhere: it may resolve to
    any address.
    """
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def printable(text: str, limit: int = 200) -> str:
    """Return `text` safe to echo to a terminal: escaped where invisible, cut after `limit`.

    Args:
        text: Anything a user or a program wrote.
        limit: Characters kept (the rest is replaced by ``...`` and the count left out).
    """
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    if text.isprintable():
        return text
    # A newline too: one issue must stay one line, not forge the next ones.
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in _HIDDEN else ch
        for ch in text
    )
