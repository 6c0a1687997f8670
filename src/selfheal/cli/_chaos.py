"""``selfheal chaos``: fault injection from the command line (``chaos proxy``).

``selfheal chaos proxy`` runs the fault proxy alone, as ``toxiproxy-server`` would: its HTTP
API on ``--listen`` (127.0.0.1:8474), the proxies of ``--config`` (Toxiproxy's JSON list)
created at start, until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import click

from selfheal.cli._common import fail

__all__ = ["chaos_group", "commands", "proxy_command"]

#: Where the API token comes from when the API is not on a loopback address.
TOKEN_ENV = "SELFHEAL_PROXY_TOKEN"  # noqa: S105 - the name of a variable, not a secret


@click.group(name="chaos")
def chaos_group() -> None:
    """Inject faults to prove that services heal."""


@chaos_group.command(name="proxy")
@click.option(
    "--listen",
    default="127.0.0.1:8474",
    show_default=True,
    help="host:port of the Toxiproxy-compatible HTTP API.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="JSON list of proxies to create at start (toxiproxy-server's -config).",
)
@click.option(
    "--max-fault-duration",
    type=float,
    default=None,
    help="Seconds after which any toxic, or a proxy taken down, is rolled back by itself.",
)
@click.option("--seed", type=int, default=None, help="Seed toxicity and jitter draws.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help=f"File holding the API token (or set {TOKEN_ENV}); needed off loopback.",
)
def proxy_command(
    listen: str,
    config_path: str | None,
    max_fault_duration: float | None,
    seed: int | None,
    token_file: str | None,
) -> None:
    """Run the TCP fault proxy and its Toxiproxy-compatible API until SIGINT/SIGTERM."""
    from selfheal.chaos import FaultProxy, FaultProxyServer, ProxyError
    from selfheal.chaos.proxy import is_loopback

    if max_fault_duration is not None and not max_fault_duration > 0:
        fail(f"--max-fault-duration must be > 0 seconds, got {max_fault_duration}")
    configs = _read_config(config_path) if config_path else []
    token = _read_token(token_file)
    fault_proxy = FaultProxy(seed=seed, max_fault_duration=max_fault_duration)
    host = listen.rpartition(":")[0].strip("[]")
    if token is None and host and not is_loopback(host):
        fail(
            f"--listen {listen} is not a loopback address, so the API needs a token: "
            f"set {TOKEN_ENV} or --token-file (Toxiproxy clients send none: keep them on "
            "127.0.0.1)"
        )
    try:
        server = FaultProxyServer.from_listen(listen, fault_proxy, token=token)
    except ValueError as exc:
        fail(str(exc))

    async def run() -> None:
        try:
            await server.start()
        except OSError as exc:
            fail(f"--listen {listen}: {exc.strerror or exc}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            try:
                created = await fault_proxy.populate(configs)
            except ProxyError as exc:
                fail(f"--config {config_path}: {exc.message}")
            click.echo(f"fault proxy API on {server.url} ({len(created)} proxies)", err=True)
            await stop.wait()
        finally:
            await server.stop()

    asyncio.run(run())


def _read_config(path: str) -> list[object]:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        fail(f"--config {path}: {exc.strerror or exc}")
    except ValueError as exc:
        fail(f"--config {path}: not JSON: {exc}")
    if not isinstance(data, list):
        fail(f"--config {path}: expected a JSON list of proxies, got {type(data).__name__}")
    return data


def _read_token(path: str | None) -> str | None:
    if path is None:
        return os.environ.get(TOKEN_ENV) or None
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        fail(f"--token-file {path}: {exc.strerror or exc}")
    if not token:
        fail(f"--token-file {path}: the file is empty")
    return token


#: Added to the top-level group by ``selfheal.cli``.
commands = [chaos_group]
