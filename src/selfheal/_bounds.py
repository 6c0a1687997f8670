"""What a configured value may be: ranges of seconds and counts, hosts, paths, the file itself.

Every numeric key of ``selfheal.toml`` has a range (its model's ``Field(ge=..., le=...)``)
built from these constants, so a value that passes ``selfheal check`` cannot crash or starve
the daemon later: no ``inf`` timer, no 10**12 processes, no busy loop of a 1e-300 s interval,
no integer SQLite cannot hold. Text that names a host or a file must be printable (what an
error echoes of a value is escaped by `selfheal.errors`). A config file itself is read only
if it is a regular file of at most 1 MiB.
Standard library only: the models (which need pydantic), the CLI and the daemon share it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import unicodedata

from selfheal.errors import HIDDEN_CATEGORIES, ConfigError, ConfigIssue

__all__ = [
    "DAY",
    "MAX_CONFIG_BYTES",
    "MAX_COUNT",
    "MAX_PROCESSES",
    "MIN_PERIOD",
    "YEAR",
    "checked_path",
    "host_problem",
    "is_loopback_host",
    "read_config_bytes",
    "read_config_text",
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
#: The largest config file read (each included file too): 1 MiB.
MAX_CONFIG_BYTES = 1 << 20

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\.?")  # RFC 1123
_MAX_PATH = 4096  # PATH_MAX on Linux


def checked_path(value: str | None) -> str | None:
    """Return `value` if it can name a file or a URL: printable, at most 4096 characters.

    A pydantic validator of every key that names a path (``state_dir``, ``cwd``, a journal
    ``url``...).

    Raises:
        ValueError: Naming the first bad character (escaped), or the length.
    """
    if value is None:
        return None
    for char in value:
        if unicodedata.category(char) in HIDDEN_CATEGORIES:
            kind = "a NUL" if char == "\0" else f"the invisible or control character {char!r}"
            raise ValueError(f"contains {kind}; only printable characters are allowed here")
    if len(value) > _MAX_PATH:
        raise ValueError(f"is {len(value)} characters long; a path has at most {_MAX_PATH}")
    return value


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


def read_config_bytes(path: str | os.PathLike[str]) -> bytes:
    """Return the bytes of a config file, refusing what is not a small regular file.

    Opened without blocking and checked before a byte is read, so a FIFO, a device
    (``/dev/zero``) or a directory is one clear error instead of a hang or a MemoryError.

    Raises:
        ConfigError: If the file is missing, unreadable, not a regular file or larger than
            `MAX_CONFIG_BYTES`.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _refused(path, f"cannot read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO, socket or device"
            raise _refused(path, f"not a regular file ({kind}); a config is a TOML file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_CONFIG_BYTES and (chunk := os.read(fd, 1 << 16)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _refused(path, f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > MAX_CONFIG_BYTES:
        raise _refused(path, f"too large (over {MAX_CONFIG_BYTES >> 20} MiB); a config is smaller")
    return b"".join(chunks)


def read_config_text(path: str | os.PathLike[str]) -> str:
    """Return the text of a config file (`read_config_bytes`, decoded).

    Raises:
        ConfigError: As `read_config_bytes` does, or if the file is not UTF-8.
    """
    data = read_config_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8 text (byte {data[exc.start]:#04x}); TOML files are UTF-8"
        raise _refused(path, message, line) from None


def _refused(path: str | os.PathLike[str], message: str, line: int | None = None) -> ConfigError:
    return ConfigError(str(path), [ConfigIssue("", line, message)])
