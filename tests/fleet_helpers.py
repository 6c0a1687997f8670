"""Helpers of the fleet tests: a private redis-server that can be restarted and paused.

The server listens on a free loopback port, never on the shared 6379, keeps an append-only
file (fsync on every write) in a private directory so that a restart keeps what it had
acknowledged, and is stopped by its pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from health_helpers import RedisServer, wait_until

__all__ = ["FleetRedis", "fleet_redis", "node_env", "wait_until"]


class FleetRedis(RedisServer):
    """A `RedisServer` with an append-only file, that can be stopped, started and paused."""

    def __init__(self, directory: str) -> None:
        super().__init__()
        self.dir = directory

    def persistence(self) -> list[str]:
        """Return an append-only file, fsynced on every write, in the private directory."""
        return ["--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir]

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, nothing answers (a partition)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the server."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)  # a paused server cannot stop
        super().stop()


@contextlib.contextmanager
def fleet_redis() -> Iterator[FleetRedis]:
    with tempfile.TemporaryDirectory(prefix="selfheal-redis-") as directory:
        server = FleetRedis(directory)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def node_env() -> dict[str, str]:
    """Return the environment for a node subprocess: this checkout's sources and helpers."""
    src = Path(__file__).resolve().parents[1] / "src"
    tests = Path(__file__).resolve().parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(tests), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


PYTHON = sys.executable
