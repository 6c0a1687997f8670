"""The fault proxy's API model: proxies and toxics, validated, in Toxiproxy's JSON shape.

A proxy is ``{"name", "listen", "upstream", "enabled"}``; a toxic is ``{"name", "type",
"stream", "toxicity", "attributes"}``, with Toxiproxy's units: milliseconds for times, KB/s
(1000 bytes) for ``bandwidth.rate``, microseconds for ``slicer.delay``. selfheal adds one
optional attribute to every type, ``time_limit`` (ms): the dead-man switch after which the
proxy removes the toxic itself. Stock Toxiproxy servers ignore unknown attributes, so a client
may always send it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEFAULT_LISTEN",
    "STREAMS",
    "TIME_LIMIT",
    "TOXIC_TYPES",
    "ProxyConfig",
    "ProxyError",
    "ProxyState",
    "Toxic",
    "parse_proxy",
    "parse_proxy_update",
    "parse_toxic",
    "split_address",
    "update_toxic",
]

#: Where a proxy listens when its ``listen`` is missing: loopback, a free port.
DEFAULT_LISTEN = "127.0.0.1:0"

#: The two directions: ``upstream`` is client to server, ``downstream`` server to client.
STREAMS = ("upstream", "downstream")

#: The optional dead-man attribute every toxic type accepts (milliseconds).
TIME_LIMIT = "time_limit"

#: Every toxic type and its attributes, all defaulting to 0 as in Toxiproxy.
TOXIC_TYPES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "bandwidth": ("rate",),
        "latency": ("latency", "jitter"),
        "limit_data": ("bytes",),
        "reset_peer": ("timeout",),
        "slicer": ("average_size", "size_variation", "delay"),
        "slow_close": ("delay",),
        "timeout": ("timeout",),
    }
)


class ProxyError(Exception):
    """A request the fault proxy refuses, with the HTTP status Toxiproxy answers it with.

    Args:
        message: One line saying what is wrong, naming the field when a field is.
        status: 400 bad input, 404 unknown proxy or toxic, 409 name taken, 500 I/O failure.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        #: What `FaultProxy.populate` had done before it failed.
        self.proxies: list[Any] = []

    def to_json(self) -> dict[str, Any]:
        """Return Toxiproxy's error body: ``{"error": message, "status": status}``."""
        return {"error": self.message, "status": self.status}


@dataclass(frozen=True, slots=True)
class Toxic:
    """One toxic of a proxy, as added through the API.

    Attributes:
        name: Unique within its proxy; defaults to ``<type>_<stream>``.
        type: One of `TOXIC_TYPES`.
        stream: ``upstream`` or ``downstream``.
        toxicity: Probability in [0, 1] that the toxic applies to a given connection.
        attributes: Every attribute of the type (numbers, as given, missing ones 0).
        time_limit: Seconds after which the proxy removes the toxic itself, or None.
    """

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, float]
    time_limit: float | None = None

    def attr(self, key: str) -> float:
        """Return attribute `key` as a float (0 when the type has no such attribute)."""
        return float(self.attributes.get(key, 0))

    def to_json(self) -> dict[str, Any]:
        """Return the toxic as Toxiproxy shows it (``time_limit`` among the attributes)."""
        attributes: dict[str, Any] = dict(self.attributes)
        if self.time_limit is not None:
            attributes[TIME_LIMIT] = _number_out(self.time_limit * 1000)
        return {
            "attributes": attributes,
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """A proxy as ``POST /proxies``, ``/populate`` or a config file describe it.

    Attributes:
        name: Unique name.
        upstream: ``host:port`` the proxy connects each client to.
        listen: ``host:port`` it listens on (port 0: any free port; no host: 127.0.0.1).
        enabled: Whether it listens right away.
    """

    name: str
    upstream: str
    listen: str = DEFAULT_LISTEN
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class ProxyState:
    """A snapshot of one proxy, as ``GET /proxies/{name}`` shows it.

    Attributes:
        name: The proxy's name.
        listen: The address it listens on (the real port once enabled).
        upstream: Where it connects clients to.
        enabled: Whether it listens.
        toxics: Its toxics, upstream ones first, each stream in the order added.
    """

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...]

    def to_json(self) -> dict[str, Any]:
        """Return Toxiproxy's JSON for the proxy."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxics],
        }


def parse_proxy(body: object, *, where: str = "") -> ProxyConfig:
    """Return the proxy a ``POST /proxies`` body (or one entry of ``/populate``) describes.

    Args:
        body: The decoded JSON object.
        where: Appended to messages (``" at proxy 2"``) when the body is one of a list.

    Raises:
        ProxyError: 400 naming the missing or bad field.
    """
    data = _object(body)
    fields: dict[str, Any] = {}
    for key in ("name", "upstream"):
        value = data.get(key)
        if value is None or value == "":
            raise ProxyError(f"missing required field: {key}{where}")
        fields[key] = _string(key, value, where)
    if data.get("listen") not in (None, ""):
        fields["listen"] = _string("listen", data["listen"], where)
    if data.get("enabled") is not None:
        fields["enabled"] = _bool("enabled", data["enabled"], where)
    config = ProxyConfig(**fields)
    split_address(config.listen, "listen", where)
    split_address(config.upstream, "upstream", where)
    return config


def parse_proxy_update(body: object) -> dict[str, Any]:
    """Return the fields a ``POST /proxies/{name}`` body changes (listen, upstream, enabled).

    selfheal also reads ``time_limit`` (ms): how long a proxy taken down stays down.

    Raises:
        ProxyError: 400 naming the bad field.
    """
    data = _object(body)
    fields: dict[str, Any] = {}
    for key in ("listen", "upstream"):
        if data.get(key) not in (None, ""):
            fields[key] = _string(key, data[key], "")
            split_address(fields[key], key)
    if data.get("enabled") is not None:
        fields["enabled"] = _bool("enabled", data["enabled"], "")
    if data.get(TIME_LIMIT) is not None:
        limit = _number(data[TIME_LIMIT])
        if limit is None or limit <= 0:
            raise ProxyError(f"{TIME_LIMIT} must be a number of ms > 0, got {data[TIME_LIMIT]!r}")
        fields[TIME_LIMIT] = limit / 1000
    return fields


def split_address(text: str, field: str = "address", where: str = "") -> tuple[str, int]:
    """Return ``(host, port)`` of a ``host:port`` (``[v6]:port``; no host means 127.0.0.1).

    Raises:
        ProxyError: 400 naming `field` when `text` is not ``host:port`` with a port 0-65535.
    """
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not port.isdigit() or int(port) > 65535 or ("[" in host or "]" in host):
        raise ProxyError(f"{field} must be host:port (port 0-65535), got {text!r}{where}")
    return host or "127.0.0.1", int(port)


def parse_toxic(body: object, *, max_duration: float | None = None) -> Toxic:
    """Return the toxic a ``POST /proxies/{name}/toxics`` body describes.

    Args:
        body: The decoded JSON body.
        max_duration: The proxy-wide maximum fault duration in seconds: the time limit of a
            toxic that has none, and the cap of one that asks for more.

    Raises:
        ProxyError: 400 naming the bad field and what is valid.
    """
    data = _object(body)
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in TOXIC_TYPES:
        valid = ", ".join(sorted(TOXIC_TYPES))
        raise ProxyError(f"invalid toxic type: {kind!r} (valid: {valid})")
    stream = data.get("stream", "downstream")
    if stream not in STREAMS:
        raise ProxyError(
            f"stream was invalid, can be either upstream or downstream (got {stream!r})"
        )
    name = data.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str):
        raise ProxyError(f"bad request body: name must be a string, got {name!r}")
    attributes, limit = _attributes(kind, data.get("attributes"), {})
    return Toxic(
        name=name,
        type=kind,
        stream=stream,
        toxicity=_toxicity(data.get("toxicity", 1.0)),
        attributes=attributes,
        time_limit=_cap(limit, max_duration),
    )


def update_toxic(toxic: Toxic, body: object, *, max_duration: float | None = None) -> Toxic:
    """Return `toxic` changed by a ``PATCH /proxies/{p}/toxics/{t}`` body.

    Only ``attributes`` (merged into the current ones) and ``toxicity`` change, as in
    Toxiproxy; a new ``time_limit`` restarts the dead-man switch from now.

    Raises:
        ProxyError: 400 naming the bad field.
    """
    data = _object(body)
    attributes, limit = _attributes(toxic.type, data.get("attributes"), toxic.attributes)
    if limit is None and toxic.time_limit is not None:
        limit = toxic.time_limit
    return Toxic(
        name=toxic.name,
        type=toxic.type,
        stream=toxic.stream,
        toxicity=_toxicity(data.get("toxicity", toxic.toxicity)),
        attributes=attributes,
        time_limit=_cap(limit, max_duration),
    )


def _object(body: object) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ProxyError(f"bad request body: expected a JSON object, got {type(body).__name__}")
    return body


def _string(key: str, value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ProxyError(f"{key} must be a string, got {value!r}{where}")
    return value


def _bool(key: str, value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ProxyError(f"{key} must be true or false, got {value!r}{where}")
    return value


def _attributes(
    kind: str, given: object, current: Mapping[str, float]
) -> tuple[Mapping[str, float], float | None]:
    names = TOXIC_TYPES[kind]
    values: dict[str, float] = {key: current.get(key, 0) for key in names}
    if given is None:
        return MappingProxyType(values), None
    if not isinstance(given, Mapping):
        raise ProxyError(f"bad request body: attributes must be an object, got {given!r}")
    limit: float | None = None
    for key, value in given.items():
        if key == TIME_LIMIT:
            limit = _milliseconds(key, value) / 1000
            if limit <= 0:
                raise ProxyError(f"attributes.{TIME_LIMIT} must be > 0 ms, got {value!r}")
            continue
        if key not in names:
            valid = ", ".join((*names, TIME_LIMIT))
            raise ProxyError(f"unknown attribute {key!r} for {kind} (valid: {valid})")
        values[key] = _milliseconds(key, value)
    if kind == "slicer":
        average, variation = values["average_size"], values["size_variation"]
        if average < 1:
            raise ProxyError(f"attributes.average_size must be >= 1 byte, got {average!r}")
        if variation >= average:
            raise ProxyError(
                "attributes.size_variation must be less than average_size, "
                f"got {variation!r} >= {average!r}"
            )
    return MappingProxyType(values), limit


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _milliseconds(key: str, value: object) -> float:
    number = _number(value)
    if number is None or number < 0:
        raise ProxyError(f"attributes.{key} must be a number >= 0, got {value!r}")
    return _number_out(number)


def _toxicity(value: object) -> float:
    number = _number(value)
    if number is None or not 0 <= number <= 1:
        raise ProxyError(f"toxicity must be a number from 0 to 1, got {value!r}")
    return number


def _cap(limit: float | None, max_duration: float | None) -> float | None:
    if max_duration is None:
        return limit
    return max_duration if limit is None else min(limit, max_duration)


def _number_out(value: float) -> float:
    # Whole numbers go back out as JSON integers, as Toxiproxy's int64 fields do.
    return int(value) if float(value).is_integer() else float(value)
