"""Serve an ASGI app with uvicorn on a bound socket, without uvicorn's main loop.

uvicorn's ``Server.serve`` runs a loop that wakes every 100 ms; a daemon that should cost no
wake-ups when idle starts the server's parts itself instead: ``startup`` on the socket, one
``on_tick`` to set the default headers, and ``shutdown`` to stop. Needs the ``server`` extra.
"""

from __future__ import annotations

import socket
from typing import Any

__all__ = ["start_asgi_server", "stop_asgi_server"]


async def start_asgi_server(app: Any, sock: socket.socket) -> Any:
    """Start serving `app` on `sock` (bound, listening, non-blocking); return the server.

    Args:
        app: The ASGI app.
        sock: The listening socket; the caller closes it after `stop_asgi_server`.

    Returns:
        The running ``uvicorn.Server``, for `stop_asgi_server`.
    """
    import uvicorn

    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        date_header=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    await server.on_tick(0)  # sets the default headers once
    return server


async def stop_asgi_server(server: Any) -> None:
    """Stop a server `start_asgi_server` returned (open connections get 5 s to finish)."""
    server.should_exit = True
    await server.shutdown()
