"""The shop's processes, under plain restart loops or under ``selfheal run``, and their pids.

Same topology in both: two web processes sharing one port (``SO_REUSEPORT``), each also on
an admin port of its own (so a probe reaches that process), one outbox worker and one
recommendation service. Every process carries ``SHOP_SLOT`` (``web-0``, ``web-1``,
``worker``, ``recs``) in its environment, which is how `Shop.slots` finds which process
holds which place, whoever restarted it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOP_DIR = ROOT / "examples" / "shop"
PY = sys.executable
WEB_SLOTS = ("web-0", "web-1")
SLOTS = (*WEB_SLOTS, "worker", "recs")
SCRIPTS = {"web-0": "web.py", "web-1": "web.py", "worker": "worker.py", "recs": "recs.py"}

# The generated selfheal config: how fast a hung web process is found and replaced.
# /livez is answered by a thread of the web process (examples/shop/web.py), in milliseconds
# even while its event loop is busy, so short timeouts do not kill busy processes.
# Three failures in a row: a process that has not answered for ~1 s is restarted, one that
# was not scheduled for 250 ms on a crowded machine is not.
LIVENESS_INTERVAL = 0.1  # s between probes of /livez on the process's own admin port
LIVENESS_TIMEOUT = 0.25  # s a probe may take
LIVENESS_THRESHOLD = 3  # failures in a row before the restart
# What a spare of each program imports ahead (`preload`): a restart takes the spare and skips
# these imports, most of a web process's start (the plain loop starts each process cold).
UVICORN = [
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.auto",
]
PRELOAD = {
    "web": [
        "web",
        "psycopg",
        "httpx",
        "selfheal.health.checks",
        "selfheal.web.health",
        "selfheal.web.wsgi",
        "wsgiref.simple_server",
        *UVICORN,
    ],
    "recs": ["recs", *UVICORN],
}
# s between the stop signal and SIGKILL: a hung process ignores SIGTERM, and every 100 ms it
# is not killed, the requests waiting in its accept queue come closer to the users' patience.
WEB_STOP_GRACE = 0.1


@dataclass(frozen=True)
class Ports:
    """The ports of one run (all on 127.0.0.1)."""

    shop: int
    admin: tuple[int, int]
    recs: int
    db: int


def base_env(db_url: str, outbox: Path, ports: Ports) -> dict[str, str]:
    """Return the environment every shop process gets."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
    )
    env.update(
        SHOP_DB=db_url,
        SHOP_OUTBOX=str(outbox),
        SHOP_RECS_URL=f"http://127.0.0.1:{ports.recs}",
    )
    return env


def slot_env(slot: str, ports: Ports) -> dict[str, str]:
    """Return what `slot` adds to the environment."""
    env = {"SHOP_SLOT": slot}
    if slot in WEB_SLOTS:
        env.update(PORT=str(ports.shop), SHOP_ADMIN_PORT=str(ports.admin[WEB_SLOTS.index(slot)]))
    elif slot == "recs":
        env["PORT"] = str(ports.recs)
    return env


def selfheal_config(ports: Ports, state_dir: Path) -> str:
    """Return the selfheal.toml of the healing run."""
    lines = [
        "[control]",
        f"state_dir = {json.dumps(str(state_dir))}",
        "",
    ]
    for slot in SLOTS:
        env = ", ".join(f"{k} = {json.dumps(v)}" for k, v in slot_env(slot, ports).items())
        lines += [
            f"[programs.{slot}]",
            f"command = [{json.dumps(PY)}, {json.dumps(SCRIPTS[slot])}]",
            f"cwd = {json.dumps(str(SHOP_DIR))}",
            f"env = {{ {env} }}",
            # A healthy run of 5 s and the next crash restarts at once; never give up here.
            "backoff_initial = 0.1",
            "backoff_reset = 5",
            "max_restarts = 100",
        ]
        kind = "web" if slot in WEB_SLOTS else slot
        if kind in PRELOAD:
            lines.append(f"preload = {json.dumps(PRELOAD[kind])}")
        if slot in WEB_SLOTS:
            admin = ports.admin[WEB_SLOTS.index(slot)]
            lines += [
                f"stop_grace = {WEB_STOP_GRACE}",
                "",
                f"[programs.{slot}.readiness]",
                f'http = "http://127.0.0.1:{admin}/readyz"',
                "interval = 0.05",
                "timeout = 1",
                "",
                f"[programs.{slot}.liveness]",
                f'http = "http://127.0.0.1:{admin}/livez"',
                f"interval = {LIVENESS_INTERVAL}",
                f"timeout = {LIVENESS_TIMEOUT}",
                f"failure_threshold = {LIVENESS_THRESHOLD}",
            ]
        elif slot == "recs":
            lines += [
                "stop_grace = 0.5",
                "",
                "[programs.recs.readiness]",
                f'http = "http://127.0.0.1:{ports.recs}/healthz"',
                "interval = 0.05",
                "timeout = 1",
                "",
                # No hurry: product pages fall back to popular products meanwhile, and a
                # service that resumes by itself is back sooner than a restarted one.
                "[programs.recs.liveness]",
                f'http = "http://127.0.0.1:{ports.recs}/healthz"',
                "interval = 1",
                "timeout = 1",
                "failure_threshold = 5",
            ]
        else:
            lines += ['ready = "notify"', "watchdog_sec = 5", "stop_grace = 2"]
        lines.append("")
    return "\n".join(lines)


@dataclass
class Shop:
    """One run's processes.

    Args:
        mode: ``"plain"`` (a ``while true`` bash loop per process, ``SHOP_PLAIN=1``) or
            ``"selfheal"`` (``selfheal run`` with `selfheal_config`).
        workdir: Logs, config, state and the outbox go here.
        ports: The run's ports.
        db_url: ``SHOP_DB``.
    """

    mode: str
    workdir: Path
    ports: Ports
    db_url: str
    managers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    seen: dict[int, int] = field(default_factory=dict)  # pid -> start time, for the clean-up
    _slot_of: dict[tuple[int, int], str] = field(default_factory=dict)

    @property
    def outbox(self) -> Path:
        """The outbox file of this run."""
        return self.workdir / "outbox.db"

    def start(self) -> None:
        """Start the manager processes (each in a session of its own)."""
        env = base_env(self.db_url, self.outbox, self.ports)
        if self.mode == "plain":
            env["SHOP_PLAIN"] = "1"
            for slot in SLOTS:
                argv = ["bash", "-c", 'while true; do "$@"; done', "loop", PY, SCRIPTS[slot]]
                self._spawn(argv, {**env, **slot_env(slot, self.ports)}, slot)
        else:
            config = self.workdir / "selfheal.toml"
            config.write_text(selfheal_config(self.ports, self.workdir / "state"))
            self._spawn([PY, "-m", "selfheal", "run", str(config)], env, "selfheal")

    def _spawn(self, argv: list[str], env: dict[str, str], name: str) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            cwd=SHOP_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.managers.append(proc)
        self._remember(proc.pid)

    def _remember(self, pid: int) -> None:
        started = start_time(pid)
        if started is not None:
            self.seen.setdefault(pid, started)

    def slots(self) -> dict[str, int]:
        """Return the pid holding each slot now (newest live process; slots without one absent)."""
        best: dict[str, tuple[int, int]] = {}
        for manager in self.managers:
            for pid in children(manager.pid):
                seen = state_and_start(pid)
                if seen is None or seen[0] == "Z" or waiting_spare(pid):
                    continue
                started = seen[1]
                self.seen.setdefault(pid, started)
                key = (pid, started)
                slot = self._slot_of.get(key)
                if slot is None:
                    # Not remembered while unknown: between fork and exec, a child still has
                    # its parent's environment.
                    slot = environ_value(pid, "SHOP_SLOT")
                    if slot is not None:
                        self._slot_of[key] = slot
                if slot is not None and (slot not in best or best[slot][1] < started):
                    best[slot] = (pid, started)
        return {slot: pid for slot, (pid, _) in best.items()}

    async def wait_ready(self) -> None:
        """Wait until every web process and the recommendations answer, and the worker runs."""
        path = "/livez" if self.mode == "selfheal" else "/"
        urls = [f"http://127.0.0.1:{port}{path}" for port in self.ports.admin]
        urls.append(f"http://127.0.0.1:{self.ports.recs}/healthz")
        while True:
            # One short call per thread: a cancelled wait leaves no thread polling behind it.
            answered = [await asyncio.to_thread(_answers, url) for url in urls]
            if all(answered) and "worker" in self.slots():
                return
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        """Stop the managers, then end every process this run ever had that is still about."""
        for manager in self.managers:
            sig = signal.SIGTERM if self.mode == "selfheal" else signal.SIGKILL
            with contextlib.suppress(ProcessLookupError):
                os.killpg(manager.pid, sig)
        for manager in self.managers:
            try:
                manager.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(manager.pid, signal.SIGKILL)
                manager.wait()
        end_processes(self.seen)


def end_processes(seen: dict[int, int]) -> None:
    """SIGKILL each `seen` process (and its group, if it leads one) still running as itself."""
    for pid, started in seen.items():
        if start_time(pid) != started:
            continue  # gone, or the pid now belongs to someone else
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """Return the children of `pid` (every thread's), from /proc."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                out += [
                    int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                ]
    return out


def state_and_start(pid: int) -> tuple[str, int] | None:
    """Return `pid`'s state letter (R, S, T, Z...) and start time in ticks, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()  # the name may hold spaces and parentheses
    return fields[0], int(fields[19])


def start_time(pid: int) -> int | None:
    """Return the start time of `pid` in clock ticks since boot (None if it is gone)."""
    seen = state_and_start(pid)
    return None if seen is None else seen[1]


def waiting_spare(pid: int) -> bool:
    """Return whether `pid` is a spare not yet taken (``preload``): its stdin is still a pipe.

    A spare's /proc environ is the one it was started with; once taken, its stdin is
    /dev/null and it is the instance.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stdin = os.readlink(f"/proc/{pid}/fd/0")
    except OSError:
        return False
    return b"selfheal._standby" in cmdline and stdin.startswith("pipe:")


def environ_value(pid: int, name: str) -> str | None:
    """Return variable `name` of `pid`'s environment, or None."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = name.encode() + b"="
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None
