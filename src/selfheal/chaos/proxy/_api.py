"""The fault proxy's HTTP API, Toxiproxy's: routes, bodies, statuses and errors (``server`` extra).

Toxiproxy clients (``toxiproxy-python``, the Go and Ruby clients, Chaos Toolkit's extension)
send no credentials, so on a loopback address the API asks for none, like
``toxiproxy-server``; bound anywhere else it requires ``Authorization: Bearer <token>`` on every
request but ``GET /version``. Requests whose User-Agent is a browser's are refused (403), as
Toxiproxy does, so a web page cannot drive a loopback proxy through the visitor's browser.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from selfheal._asgi import start_asgi_server, stop_asgi_server
from selfheal.chaos.proxy._core import FaultProxy
from selfheal.chaos.proxy._model import ProxyError, split_address

__all__ = ["FaultProxyServer", "is_loopback", "proxy_app"]

#: An endpoint: a Starlette request in, a response out (typed loosely: starlette is optional).
Handler = Callable[[Any], Awaitable[Any]]

#: The Toxiproxy API version this one follows.
TOXIPROXY_API = "2.12.0"


def _version() -> str:
    try:
        return version("selfheal")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def is_loopback(host: str) -> bool:
    """Return whether `host` (a name or an IP) only ever means this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def proxy_app(proxy: FaultProxy, *, token: str | None = None) -> Any:
    """Return the Toxiproxy-compatible API of `proxy` as a Starlette (ASGI) app.

    Args:
        proxy: The started fault proxy the API drives.
        token: When given, every request but ``GET /version`` needs
            ``Authorization: Bearer <token>``.

    Returns:
        The ASGI app.
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    api = _Api(proxy, token)
    change = ["POST", "PATCH"]
    routes = [
        Route("/version", api.guard(api.version), methods=["GET"]),
        Route("/reset", api.guard(api.reset), methods=["POST"]),
        Route("/proxies", api.guard(api.proxies), methods=["GET", "POST"]),
        Route("/populate", api.guard(api.populate), methods=["POST"]),
        Route("/proxies/{proxy}", api.guard(api.one_proxy), methods=["GET", "DELETE", *change]),
        Route("/proxies/{proxy}/toxics", api.guard(api.toxics), methods=["GET", "POST"]),
        Route(
            "/proxies/{proxy}/toxics/{toxic}",
            api.guard(api.one_toxic),
            methods=["GET", "DELETE", *change],
        ),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: api.http_error})


def _json(data: object, status: int = 200) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse(data, status_code=status)


def _error(message: str, status: int) -> Any:
    return _json({"error": message, "status": status}, status)


def _no_content() -> Any:
    from starlette.responses import Response

    return Response(status_code=204)


class _Api:
    """The endpoints; each takes a Starlette request and returns a response."""

    def __init__(self, proxy: FaultProxy, token: str | None) -> None:
        self.proxy = proxy
        self.expected = f"Bearer {token}".encode() if token else None

    def guard(self, handler: Handler) -> Handler:
        """Wrap `handler`: browsers refused, the token checked, `ProxyError` answered."""

        async def guarded(request: Any) -> Any:
            if request.headers.get("user-agent", "").startswith("Mozilla/"):
                return _error("User agent not allowed", 403)
            if self.expected is not None and request.url.path != "/version":
                given = request.headers.get("authorization", "").encode()
                if not hmac.compare_digest(given, self.expected):
                    return _error(
                        "missing or wrong token: send 'Authorization: Bearer <token>'", 401
                    )
            try:
                return await handler(request)
            except ProxyError as exc:
                body = exc.to_json()
                if request.url.path == "/populate":
                    body["proxies"] = [p.to_json() for p in exc.proxies]
                return _json(body, exc.status)

        return guarded

    async def http_error(self, request: Any, exc: Exception) -> Any:
        """Answer routing errors (404, 405) in Toxiproxy's error shape."""
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "internal error")
        return _error(f"{detail}: {request.method} {request.url.path}", status)

    async def version(self, request: Any) -> Any:
        """``GET /version``."""
        from starlette.responses import JSONResponse

        data = {"version": _version(), "toxiproxy_api": TOXIPROXY_API}
        return JSONResponse(data, media_type="application/json;charset=utf-8")

    async def reset(self, request: Any) -> Any:
        """``POST /reset``: every proxy up, every toxic gone."""
        await self.proxy.reset()
        return _no_content()

    async def proxies(self, request: Any) -> Any:
        """``GET /proxies`` (by name), ``POST /proxies`` (create, 201)."""
        if request.method == "GET":
            return _json({n: p.to_json() for n, p in self.proxy.proxies().items()})
        created = await self.proxy.create(await _body(request))
        return _json(created.to_json(), 201)

    async def populate(self, request: Any) -> Any:
        """``POST /populate``: create or replace a list of proxies (201)."""
        done = await self.proxy.populate(await _body(request))
        return _json({"proxies": [p.to_json() for p in done]}, 201)

    async def one_proxy(self, request: Any) -> Any:
        """``GET``, ``POST``/``PATCH`` (update), ``DELETE`` of ``/proxies/{proxy}``."""
        name = request.path_params["proxy"]
        if request.method == "GET":
            return _json(self.proxy.proxy(name).to_json())
        if request.method == "DELETE":
            await self.proxy.delete(name)
            return _no_content()
        return _json((await self.proxy.update(name, await _body(request))).to_json())

    async def toxics(self, request: Any) -> Any:
        """``GET`` (list) and ``POST`` (add) of ``/proxies/{proxy}/toxics``."""
        name = request.path_params["proxy"]
        if request.method == "GET":
            return _json([t.to_json() for t in self.proxy.proxy(name).toxics])
        return _json((await self.proxy.add_toxic(name, await _body(request))).to_json())

    async def one_toxic(self, request: Any) -> Any:
        """``GET``, ``POST``/``PATCH`` (update), ``DELETE`` of one toxic."""
        proxy, toxic = request.path_params["proxy"], request.path_params["toxic"]
        if request.method == "GET":
            return _json(self.proxy.toxic(proxy, toxic).to_json())
        if request.method == "DELETE":
            await self.proxy.remove_toxic(proxy, toxic)
            return _no_content()
        return _json((await self.proxy.update_toxic(proxy, toxic, await _body(request))).to_json())


async def _body(request: Any) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProxyError(f"bad request body: not JSON ({exc})") from None


class FaultProxyServer:
    """A `FaultProxy` and its HTTP API, started and stopped together (a daemon component).

    Args:
        proxy: The fault proxy to serve; a new default one when None.
        host: Where the API listens; 127.0.0.1 unless said otherwise.
        port: Its port (Toxiproxy's 8474; 0 picks a free one, see `url`).
        token: Required as ``Authorization: Bearer`` when given; must be given when `host` is
            not a loopback address.

    Raises:
        ValueError: `host` is not loopback and there is no token.
    """

    def __init__(
        self,
        proxy: FaultProxy | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 8474,
        token: str | None = None,
    ) -> None:
        if not token and not is_loopback(host):
            raise ValueError(
                f"the fault proxy API on {host} (not a loopback address) needs a token; "
                "Toxiproxy clients send none, so keep it on 127.0.0.1 for them"
            )
        self.proxy = proxy if proxy is not None else FaultProxy()
        self.host, self.port, self._token = host, port, token or None
        self.url: str | None = None
        self._server: Any = None
        self._sock: socket.socket | None = None

    @classmethod
    def from_listen(
        cls, listen: str, proxy: FaultProxy | None = None, **kw: Any
    ) -> FaultProxyServer:
        """Return a server for a ``host:port`` listen string (``ValueError`` if malformed)."""
        try:
            host, port = split_address(listen, "--listen")
        except ProxyError as exc:
            raise ValueError(exc.message) from None
        return cls(proxy, host=host, port=port, **kw)

    def __repr__(self) -> str:
        return f"FaultProxyServer({self.url or f'{self.host}:{self.port}'})"

    async def start(self) -> None:
        """Start the fault proxy, then serve its API (OSError if the address is taken)."""
        await self.proxy.start()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(64)
            sock.setblocking(False)
            self._server = await start_asgi_server(proxy_app(self.proxy, token=self._token), sock)
        except BaseException:
            sock.close()
            await self.proxy.stop()
            raise
        self._sock = sock
        port = sock.getsockname()[1]
        self.url = f"http://{f'[{self.host}]' if family == socket.AF_INET6 else self.host}:{port}"

    async def stop(self) -> None:
        """Stop serving, then stop the fault proxy; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            await stop_asgi_server(server)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        await self.proxy.stop()
