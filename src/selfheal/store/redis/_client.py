"""Connecting to Redis from a URL, and running Lua scripts, for every fleet component.

redis-py is imported here, lazily (the ``redis`` extra): `import selfheal.store.redis` costs
nothing until a client is made. Clients are made without redis-py's own retries: a fleet
component decides itself what a failed command means (degraded mode, a lease not renewed),
and a blind retry of a script that is not idempotent (a trial permit) would apply it twice.

Supported URLs:

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS) and
  ``unix:///path/redis.sock?db=0``: one server, as redis-py reads them.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]``: the master of
  `service` as the Sentinels name it; a failover is followed on reconnect.

Redis Cluster (``redis+cluster://``) is refused with a message saying why: the scripts touch
several keys of a feature at once (see docs/fleet.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["RedisURL", "Script", "connect", "connect_async", "parse_url", "redis_errors"]

_SINGLE = ("redis", "rediss", "unix")
_SENTINEL = ("redis+sentinel", "rediss+sentinel")
_CLUSTER = ("redis+cluster", "rediss+cluster")


@dataclass(frozen=True, slots=True)
class RedisURL:
    """A parsed fleet URL.

    Attributes:
        url: The URL as given (it may hold a password: never print it, see `safe`).
        sentinels: (host, port) of each Sentinel, empty for a single server.
        service: The Sentinel service (master) name.
        db: The database number for Sentinel URLs (single-server URLs keep theirs in `url`).
        username: For Sentinel URLs.
        password: For Sentinel URLs.
        tls: Whether to use TLS (``rediss``).
    """

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @property
    def safe(self) -> str:
        """Return the URL with any password replaced by ``***`` (for messages and logs)."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return parts._replace(netloc=f"{user}:***@{netloc}").geturl()


def parse_url(url: str) -> RedisURL:
    """Return the parsed form of a fleet URL.

    Raises:
        ValueError: For another scheme, Redis Cluster, or a Sentinel URL without hosts or
            service; the one-line message says what is valid.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(
            f"redis url {url!r}: expected 'redis://host:port/db', 'rediss://...', "
            "'unix:///path?db=0' or 'redis+sentinel://host:port,host:port/service/db'"
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme in _SINGLE:
        return RedisURL(url, tls=scheme == "rediss")
    if scheme in _CLUSTER:
        raise ValueError(
            f"redis url scheme {scheme!r}: Redis Cluster is not supported (the fleet's scripts "
            "touch several keys at once); use one server, or Sentinel: 'redis+sentinel://...'"
        )
    if scheme not in _SENTINEL:
        raise ValueError(
            f"redis url scheme {scheme!r} is not supported; use redis://, rediss://, unix:// "
            "or redis+sentinel://"
        )
    return _parse_sentinel(url, scheme)


def _parse_sentinel(url: str, scheme: str) -> RedisURL:
    rest = url.split("://", 1)[1]
    userinfo, _, hostpart = rest.rpartition("@")
    hosts, _, path = hostpart.partition("/")
    username = password = None
    if userinfo:
        user, sep, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if sep else None
    sentinels: list[tuple[str, int]] = []
    for item in filter(None, hosts.split(",")):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "26379")
        if not host or not port.isdigit():
            raise ValueError(f"redis+sentinel url: {item!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    if not sentinels or not segments:
        raise ValueError(
            "redis+sentinel url: give the Sentinels and the service, e.g. "
            "'redis+sentinel://s1:26379,s2:26379/mymaster/0'"
        )
    db = segments[1] if len(segments) > 1 else "0"
    if not db.isdigit():
        raise ValueError(f"redis+sentinel url: database {db!r} is not a number")
    return RedisURL(
        url,
        tuple(sentinels),
        segments[0],
        int(db),
        username,
        password,
        tls=scheme.startswith("rediss"),
    )


def _no_retry() -> Any:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


def _options(timeout: float | None) -> dict[str, Any]:
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout if timeout is not None else 5.0,
        "decode_responses": True,
        "retry": _no_retry(),
        "retry_on_timeout": False,
    }


def connect(url: str | RedisURL, *, timeout: float | None = 1.0) -> Any:
    """Return a redis-py client (sync) for a fleet URL.

    Args:
        url: The URL (or its parsed form).
        timeout: Seconds a command or a connection attempt may take before it fails (a
            paused or partitioned Redis must not hang a fleet component); None: no limit
            (blocking reads of a subscriber).

    Returns:
        A ``redis.Redis`` that decodes replies to `str`.
    """
    parsed = url if isinstance(url, RedisURL) else parse_url(url)
    opts = _options(timeout)
    if not parsed.sentinels:
        import redis

        return redis.Redis.from_url(parsed.url, **opts)
    from redis.sentinel import Sentinel

    return _master(Sentinel, parsed, opts)


def connect_async(url: str | RedisURL, *, timeout: float | None = 1.0) -> Any:
    """Return a ``redis.asyncio.Redis`` for a fleet URL (use it on one event loop only).

    Args:
        url: The URL (or its parsed form).
        timeout: As for `connect`.
    """
    parsed = url if isinstance(url, RedisURL) else parse_url(url)
    opts = _options(timeout)
    if not parsed.sentinels:
        import redis.asyncio

        return redis.asyncio.Redis.from_url(parsed.url, **opts)
    from redis.asyncio.sentinel import Sentinel

    return _master(Sentinel, parsed, opts)


def _master(sentinel_cls: Any, parsed: RedisURL, opts: dict[str, Any]) -> Any:
    """Return the client of the master the Sentinels of `parsed` name (sync or asyncio)."""
    sentinel = sentinel_cls(
        list(parsed.sentinels),
        sentinel_kwargs={"socket_timeout": opts["socket_connect_timeout"]},
        ssl=parsed.tls,
        **opts,
    )
    return sentinel.master_for(
        parsed.service, db=parsed.db, username=parsed.username, password=parsed.password
    )


def redis_errors() -> tuple[type[BaseException], ...]:
    """Return the exceptions that mean "Redis is unreachable or too slow now".

    redis-py's ConnectionError and TimeoutError (and the builtin OSError family, which a
    socket may raise directly): anything else is a real error (a bug, a bad script).
    """
    import redis.exceptions

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class Script:
    """A Lua script run by its SHA1, loaded again after a Redis restart emptied the cache.

    Not redis-py's `Script`: in a pipeline that one checks ``SCRIPT EXISTS`` on every
    execute, an extra round trip per batch.

    Args:
        source: The Lua source.
    """

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    def __call__(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        """Run the script on a sync client (or queue it on a pipeline); return its reply."""
        from redis.exceptions import NoScriptError

        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # EVAL caches the script too: the next EVALSHA finds it.
            return client.eval(self.source, len(keys), *keys, *args)

    async def acall(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        """Run the script on an asyncio client; return its reply."""
        from redis.exceptions import NoScriptError

        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)
