"""A TCP fault proxy whose HTTP API is Toxiproxy's, so Toxiproxy clients drive it unchanged.

`FaultProxy` is the component (standard library only); `FaultProxyServer` serves its HTTP API
and `proxy_app` returns that API as an ASGI app (both need the ``server`` extra: starlette,
uvicorn, imported when used). See docs/chaos.md, "Fault proxy".
"""

from selfheal.chaos.proxy._api import FaultProxyServer, is_loopback, proxy_app
from selfheal.chaos.proxy._core import FaultProxy
from selfheal.chaos.proxy._model import ProxyConfig, ProxyError, ProxyState, Toxic

__all__ = [
    "FaultProxy",
    "FaultProxyServer",
    "ProxyConfig",
    "ProxyError",
    "ProxyState",
    "Toxic",
    "is_loopback",
    "proxy_app",
]
