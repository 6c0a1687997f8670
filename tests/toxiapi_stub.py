"""A stand-in for a Toxiproxy API server: answers like one, forwards nothing, logs requests.

Tests of the pytest plugin's ``fault_proxy`` fixture and of the API client use it where the
real fault proxy is not needed: it checks the HTTP side (paths, bodies, cleanup). Run as a
program (``python toxiapi_stub.py PORT``) or in a thread (`serve`). ``GET /_log`` returns the
requests it received.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class State:
    def __init__(self) -> None:
        self.proxies: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []
        self.next_port = 40000
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    state: State

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: object = None) -> None:
        raw = (
            b""
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        parts = [p for p in self.path.split("/") if p]
        state = self.state
        with state.lock:
            if parts != ["_log"]:
                state.log.append({"method": self.command, "path": self.path, "body": body})
            self._route(self.command, parts, body, state)

    def _route(self, method: str, parts: list[str], body: Any, state: State) -> None:
        if parts == ["_log"]:
            return self._answer(200, state.log)
        if parts == ["version"]:
            return self._answer(200, b"2.5.0-stub")
        if parts == ["reset"] and method == "POST":
            for proxy in state.proxies.values():
                proxy["enabled"], proxy["toxics"] = True, []
            return self._answer(204)
        if parts == ["proxies"]:
            if method == "GET":
                return self._answer(200, state.proxies)
            if body["name"] in state.proxies:
                return self._answer(409, {"error": "proxy already exists", "status": 409})
            listen = body.get("listen", "127.0.0.1:0")
            if listen.endswith(":0"):
                state.next_port += 1
                listen = f"{listen[:-2]}:{state.next_port}"
            proxy = {**body, "listen": listen, "enabled": body.get("enabled", True), "toxics": []}
            state.proxies[body["name"]] = proxy
            return self._answer(201, proxy)
        proxy = state.proxies.get(parts[1]) if len(parts) > 1 else None
        if proxy is None:
            return self._answer(404, {"error": "proxy not found", "status": 404})
        if len(parts) == 2:
            if method == "DELETE":
                del state.proxies[parts[1]]
                return self._answer(204)
            if method == "POST":
                proxy.update(body)
            return self._answer(200, proxy)
        if len(parts) == 3 and method == "POST":
            proxy["toxics"].append(body)
            return self._answer(200, body)
        if len(parts) == 3:
            return self._answer(200, proxy["toxics"])
        toxics = [t for t in proxy["toxics"] if t["name"] != parts[3]]
        if len(toxics) == len(proxy["toxics"]):
            return self._answer(404, {"error": "toxic not found", "status": 404})
        proxy["toxics"] = toxics
        return self._answer(204)

    do_GET = do_POST = do_DELETE = _handle


def serve(port: int = 0) -> ThreadingHTTPServer:
    """Start the stub on 127.0.0.1:`port` in a daemon thread; shut it down when done."""
    handler = type("StubHandler", (Handler,), {"state": State()})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    handler = type("StubHandler", (Handler,), {"state": State()})
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
