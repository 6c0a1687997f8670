"""The ``[chaos.proxy]`` section of ``selfheal.toml``: the fault proxy run by the daemon.

```toml
[chaos.proxy]
listen = "127.0.0.1:8474"        # the Toxiproxy-compatible API (toxiproxy-python works)
max_fault_duration = 300         # any toxic is rolled back after 5 minutes at most

[[chaos.proxy.proxies]]
name = "redis"
listen = "127.0.0.1:26379"       # point the app here...
upstream = "127.0.0.1:6379"      # ...and the proxy forwards to the real service
```

The daemon serves the API beside its programs, as ``selfheal chaos proxy`` does alone; the
proxies exist (without toxics) from the start, so an app can be pointed at them for good and
faults added only during an experiment. ``selfheal chaos stop`` on the daemon's state dir
rolls every toxic back. The API has no token (Toxiproxy clients send none), so it serves a
loopback address only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from selfheal._bounds import DAY, is_loopback_host
from selfheal.chaos.proxy._model import ProxyError, split_address

__all__ = ["ChaosConfig", "ChaosProxyConfig", "ProxyEntryConfig"]

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _address(value: str, field: str) -> str:
    try:
        split_address(value, field)
    except ProxyError as exc:
        raise ValueError(exc.message) from None
    return value


class ProxyEntryConfig(BaseModel):
    """One proxy (``[[chaos.proxy.proxies]]``): where it listens and what it forwards to."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    listen: str = Field(description="host:port the app connects to (port 0: a free one)")
    upstream: str = Field(description="host:port of the real service")
    enabled: bool = True

    @field_validator("listen", "upstream")
    @classmethod
    def _host_port(cls, value: str, info: Any) -> str:
        return _address(value, info.field_name)


class ChaosProxyConfig(BaseModel):
    """The daemon's fault proxy (``[chaos.proxy]``) and the proxies it starts with."""

    model_config = _STRICT

    enabled: bool = True
    listen: str = Field(
        default="127.0.0.1:8474", description="host:port of the Toxiproxy-compatible API"
    )
    max_fault_duration: float = Field(
        default=300.0, gt=0, le=DAY, description="seconds after which any toxic is rolled back"
    )
    seed: int | None = Field(
        default=None, ge=0, lt=2**63, description="seeds toxicity draws and jitter"
    )
    proxies: list[ProxyEntryConfig] = Field(default_factory=list, max_length=1000)

    @field_validator("listen")
    @classmethod
    def _loopback(cls, value: str) -> str:
        _address(value, "listen")
        host = split_address(value, "listen")[0]
        if not is_loopback_host(host):
            raise ValueError(
                f"{host!r} is not a loopback address: the fault proxy's API has no token "
                "(Toxiproxy clients send none), so the daemon serves it on 127.0.0.1 or ::1 "
                "only; run 'selfheal chaos proxy --token-file' for another address"
            )
        return value

    @model_validator(mode="after")
    def _unique(self) -> ChaosProxyConfig:
        seen: set[str] = set()
        for entry in self.proxies:
            if entry.name in seen:
                raise ValueError(f"two proxies are named {entry.name!r}; names are unique")
            seen.add(entry.name)
        return self

    def to_plan(self) -> dict[str, Any]:
        """Return the plain data the daemon builds the proxy from."""
        return self.model_dump(mode="json")


class ChaosConfig(BaseModel):
    """The ``[chaos]`` table: what chaos tooling the daemon runs itself."""

    model_config = _STRICT

    proxy: ChaosProxyConfig | None = None
