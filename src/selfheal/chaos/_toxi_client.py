"""A small client of the Toxiproxy HTTP API, on the standard library alone.

It drives selfheal's fault proxy (``selfheal chaos proxy``) and a real ``toxiproxy-server``
alike, speaking the same requests as the ``toxiproxy-python`` client: ``POST /proxies``,
``POST /proxies/{name}`` (enable/disable), ``DELETE /proxies/{name}``,
``POST /proxies/{name}/toxics``, ``DELETE /proxies/{name}/toxics/{toxic}``, ``POST /reset``
and ``GET /version``. The pytest plugin's ``fault_proxy`` fixture is built on it, so it must
not import anything outside the standard library.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from selfheal.errors import SelfhealError

__all__ = ["FaultProxyError", "ProxyHandle", "ToxiproxyClient"]


class FaultProxyError(SelfhealError):
    """The proxy's API answered with an error (or not at all).

    Attributes:
        status: The HTTP status, or 0 when the API could not be reached.
    """

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.status))


class ToxiproxyClient:
    """Talks to a Toxiproxy-compatible API.

    Args:
        url: The API's base URL (Toxiproxy's default is ``http://127.0.0.1:8474``).
        timeout: Seconds allowed per request.
    """

    def __init__(self, url: str = "http://127.0.0.1:8474", *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ToxiproxyClient({self.url!r})"

    def request(self, method: str, path: str, body: object = None) -> Any:
        """Send one request; return the decoded JSON answer (text if not JSON, None if empty).

        Raises:
            FaultProxyError: For an error status or an unreachable API.
        """
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310 - the URL is the caller's API address
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            exc.close()
            raise FaultProxyError(
                f"{method} {path}: HTTP {exc.code} {detail}".rstrip(), exc.code
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FaultProxyError(f"{method} {self.url}{path}: {reason}") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace").strip()

    def version(self) -> str:
        """Return the server's version (Toxiproxy answers text or ``{"version": ...}``)."""
        answer = self.request("GET", "/version")
        return str(answer.get("version", "")) if isinstance(answer, dict) else str(answer)

    def proxies(self) -> dict[str, ProxyHandle]:
        """Return the proxies by name."""
        answer = self.request("GET", "/proxies") or {}
        return {name: ProxyHandle(self, info) for name, info in answer.items()}

    def create(
        self, name: str, *, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True
    ) -> ProxyHandle:
        """Create a proxy from `listen` to `upstream` (``host:port``); port 0 picks a free one.

        Returns:
            The proxy, with the address it actually listens on.
        """
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return ProxyHandle(self, self.request("POST", "/proxies", body))

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self.request("POST", "/reset")


class ProxyHandle:
    """One proxy of a `ToxiproxyClient`.

    Attributes:
        name: The proxy's name.
        listen: ``host:port`` it listens on.
        upstream: ``host:port`` it forwards to.
        enabled: Whether it accepts and forwards connections.
    """

    def __init__(self, client: ToxiproxyClient, info: dict[str, Any]) -> None:
        self.client = client
        self.name = str(info["name"])
        self.listen = str(info.get("listen", ""))
        self.upstream = str(info.get("upstream", ""))
        self.enabled = bool(info.get("enabled", True))

    def __repr__(self) -> str:
        return f"ProxyHandle({self.name!r}, listen={self.listen!r}, upstream={self.upstream!r})"

    @property
    def host(self) -> str:
        """Return the host clients connect to (``[::1]`` is given as ``::1``)."""
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        """Return the port clients connect to."""
        return int(self.listen.rsplit(":", 1)[1])

    def _path(self, *parts: str) -> str:
        return "/".join(
            ["/proxies", *(urllib.parse.quote(p, safe="") for p in (self.name, *parts))]
        )

    def add_toxic(
        self,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        **attributes: Any,
    ) -> dict[str, Any]:
        """Add a toxic, e.g. ``add_toxic("latency", latency=100, jitter=10)``.

        Args:
            type: ``latency``, ``bandwidth``, ``timeout``, ``reset_peer``, ``slow_close``,
                ``limit_data``, ``slicer``...
            name: Default ``<type>_<stream>``, as Toxiproxy's clients name them.
            stream: ``downstream`` (server to client) or ``upstream``.
            toxicity: Probability, from 0 to 1, that a connection gets the toxic.
            **attributes: The toxic's attributes.

        Returns:
            The toxic as the API describes it.
        """
        body = {
            "name": name or f"{type}_{stream}",
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        answer: dict[str, Any] = self.client.request("POST", self._path("toxics"), body)
        return answer

    def remove_toxic(self, name: str) -> None:
        """Remove toxic `name`."""
        self.client.request("DELETE", self._path("toxics", name))

    def toxics(self) -> list[dict[str, Any]]:
        """Return the proxy's toxics."""
        return list(self.client.request("GET", self._path("toxics")) or [])

    def disable(self) -> None:
        """Take the proxy down: close its connections and stop listening."""
        self.client.request("POST", self._path(), {"enabled": False})
        self.enabled = False

    def enable(self) -> None:
        """Bring the proxy back up."""
        self.client.request("POST", self._path(), {"enabled": True})
        self.enabled = True

    def destroy(self) -> None:
        """Delete the proxy."""
        self.client.request("DELETE", self._path())
