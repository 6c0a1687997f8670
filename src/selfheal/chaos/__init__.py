"""Chaos engineering: faults to inject, to prove that the service heals.

The fault proxy (`FaultProxy`; `FaultProxyServer` for its Toxiproxy-compatible HTTP API) needs
only the standard library; its HTTP API needs the ``server`` extra.
"""

from selfheal.chaos.proxy import (
    FaultProxy,
    FaultProxyServer,
    ProxyConfig,
    ProxyError,
    ProxyState,
    Toxic,
    proxy_app,
)

__all__ = [
    "FaultProxy",
    "FaultProxyServer",
    "ProxyConfig",
    "ProxyError",
    "ProxyState",
    "Toxic",
    "proxy_app",
]
