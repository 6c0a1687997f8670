"""``selfheal chaos``: fault injection from the command line (``chaos proxy``).

``selfheal chaos proxy`` runs the fault proxy alone, as ``toxiproxy-server`` would: its HTTP
API on ``--listen`` (127.0.0.1:8474), the proxies of ``--config`` (Toxiproxy's JSON list)
created at start, until SIGINT or SIGTERM. Once it serves, it says where on stderr, and for
tools (``--listen 127.0.0.1:0`` picks a free port) as one JSON line on stdout (``--json``) or
in a file (``--ready-file``). It honours the kill switch of ``selfheal chaos stop``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

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
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where the kill switch of 'selfheal chaos stop' is (default: the state_dir of "
    "./selfheal.toml, else ./.selfheal); while engaged, every fault is rolled back.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Once serving, print one JSON line on stdout: url, host, port, pid, proxies.",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Once serving, write that JSON to this file (removed at exit).",
)
def proxy_command(
    *,
    listen: str,
    config_path: str | None,
    max_fault_duration: float | None,
    seed: int | None,
    token_file: str | None,
    state_dir: str | None,
    as_json: bool,
    ready_file: str | None,
) -> None:
    """Run the TCP fault proxy and its Toxiproxy-compatible API until SIGINT/SIGTERM."""
    from selfheal.chaos import FaultProxy, FaultProxyServer, KillSwitch, ProxyError, Safeguards
    from selfheal.chaos.proxy import is_loopback
    from selfheal.cli._client import strict_state_dir

    if max_fault_duration is not None and not max_fault_duration > 0:
        fail(f"--max-fault-duration must be > 0 seconds, got {max_fault_duration}")
    configs = _read_config(config_path) if config_path else []
    token = _read_token(token_file)
    safeguards = Safeguards(kill_switch=KillSwitch(strict_state_dir(None, state_dir)))
    fault_proxy = FaultProxy(
        seed=seed, max_fault_duration=max_fault_duration, safeguards=safeguards
    )
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

    announced: list[str] = []  # the ready file, once written: removed at exit

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
            _announce(server.url or "", fault_proxy.proxies(), as_json, ready_file)
            announced.extend([ready_file] if ready_file is not None else [])
            await stop.wait()
        finally:
            await server.stop()

    try:
        asyncio.run(run())
    finally:
        for path in announced:
            Path(path).unlink(missing_ok=True)


def _announce(url: str, proxies: dict[str, Any], as_json: bool, ready_file: str | None) -> None:
    """Say where the API is, for tools: a JSON line on stdout and/or a file written whole."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    info = {
        "url": url,
        "host": host.strip("[]"),
        "port": int(port),
        "pid": os.getpid(),
        "proxies": {name: state.listen for name, state in proxies.items()},
    }
    line = json.dumps(info)
    if ready_file is not None:
        path = Path(ready_file)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(line + "\n")
            tmp.replace(path)  # readers see the whole file or none
        except OSError as exc:
            fail(f"--ready-file {ready_file}: {exc.strerror or exc}")
    if as_json:
        click.echo(line)
        sys.stdout.flush()


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
