"""Supervisors compared: time from SIGKILL of a child to its replacement, and idle cost.

In one run, supervisord 4.3, circus and selfheal (``selfheal run``, control API on), plus
the floor (a minimal asyncio + pidfd restarter, no control API, no logs), each supervise the
same child: a Python script whose first statement appends ``pid monotonic_ns`` to a marker
file. For each: 20 SIGKILLs of the child, each after it has run 0.3 s, measuring

* kill -> new child started: the fork of the new child, from the kernel's process-events
  connector (netlink; needs root), whose timestamps are CLOCK_MONOTONIC like ours. Without
  it, ``/proc`` is scanned for a new child of the supervisor (coarser).
* kill -> new child running code: the timestamp the new child wrote.

Then, with 1 and with 50 children, all four idle side by side for 10 s: CPU, wake-ups (the
growth of voluntary + involuntary context switches over all the supervisor's threads) and RSS.

Settings: supervisord ``startsecs=0`` (a kill is a crash of a running program, restarted at
its next tick, not a failed start); circus ``check_delay = 1`` (its default is 5 s; 1 s is
the setting the issue's 231-524 ms figures imply); selfheal ``backoff_reset = 0.1`` (each
kill follows a healthy 0.3 s run, so the restart is immediate) and ``max_restarts = 1000``.

Run: ``make .venv/.bench-installed && .venv/bin/python bench/supervisor.py`` (about 2.5 min;
``--kills N``, ``--idle S``, ``--only NAME`` to shorten). Everything started is in its own
session and killed by process group at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PY = sys.executable
BIN = Path(PY).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

CHILD = """\
import os, sys, time
_t = time.monotonic_ns()
with open(os.environ["MARKER"], "a") as _f:
    _f.write(f"{os.getpid()} {_t}\\n")
import signal
while True:
    signal.pause()
"""

FLOOR = """\
import asyncio, os, subprocess, sys

def spawn(loop):
    p = subprocess.Popen(sys.argv[2:], start_new_session=True, stdin=subprocess.DEVNULL)
    fd = os.pidfd_open(p.pid)

    def exited():
        loop.remove_reader(fd)
        os.close(fd)
        os.waitpid(p.pid, 0)
        p.returncode = 0
        spawn(loop)

    loop.add_reader(fd, exited)

async def main():
    loop = asyncio.get_running_loop()
    for _ in range(int(sys.argv[1])):
        spawn(loop)
    await asyncio.Event().wait()

asyncio.run(main())
"""


# -- fork events from the kernel ---------------------------------------------------------


class ForkWatch:
    """Fork events (parent tgid, child pid, CLOCK_MONOTONIC ns) from the proc connector."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[int, int, int]] = queue.Queue()
        self.ok = False
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 11)
            self._sock.bind((os.getpid(), 1))
            op = struct.pack("=I", 1)  # PROC_CN_MCAST_LISTEN
            cn = struct.pack("=IIIIHH", 1, 1, 0, 0, len(op), 0) + op
            self._sock.send(struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, os.getpid()) + cn)
            self._sock.settimeout(0.5)
            self.ok = True
        except OSError as exc:
            print(f"note: no proc connector ({exc}); scanning /proc instead", file=sys.stderr)
            return
        self.watched: set[int] = set()
        self._stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            off = 0
            while off + 16 <= len(data):
                length = struct.unpack_from("=I", data, off)[0]
                what, _cpu, ts = struct.unpack_from("=IIQ", data, off + 36)
                if what == 1:
                    _ppid, ptgid, cpid, ctgid = struct.unpack_from("=IIII", data, off + 52)
                    if cpid == ctgid and ptgid in self.watched:
                        self.events.put((ptgid, cpid, ts))
                off += (length + 3) & ~3
                if length == 0:
                    break

    def close(self) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            self._sock.close()


def children_of(pid: int) -> set[int]:
    out = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry.name}/stat").read_text()
                if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                    out.add(int(entry.name))
    return out


# -- the contestants ---------------------------------------------------------------------


@dataclass
class Contestant:
    name: str
    write_config: Callable[[Path, int, Path], list[str]]  # (dir, numprocs, marker) -> argv
    proc: subprocess.Popen[bytes] | None = None
    marker: Path = Path()
    kill_to_start: list[float] = field(default_factory=list)
    kill_to_running: list[float] = field(default_factory=list)
    idle: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def supervisord_config(d: Path, n: int, marker: Path) -> list[str]:
    conf = d / "supervisord.conf"
    conf.write_text(
        textwrap.dedent(f"""\
        [supervisord]
        nodaemon=true
        logfile={d}/supervisord.log
        pidfile={d}/supervisord.pid
        childlogdir={d}
        loglevel=warn

        [unix_http_server]
        file={d}/supervisor.sock

        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

        [program:child]
        command={PY} {d}/child.py
        environment=MARKER="{marker}"
        numprocs={n}
        process_name=%(program_name)s_%(process_num)02d
        startsecs=0
        autorestart=true
        startretries=1000
        redirect_stderr=true
        stdout_logfile={d}/child_%(process_num)02d.log
        """)
    )
    return [str(BIN / "supervisord"), "-n", "-c", str(conf)]


def circus_config(d: Path, n: int, marker: Path) -> list[str]:
    conf = d / "circus.ini"
    conf.write_text(
        textwrap.dedent(f"""\
        [circus]
        endpoint = ipc://{d}/circus-endpoint
        pubsub_endpoint = ipc://{d}/circus-pubsub
        stats_endpoint = ipc://{d}/circus-stats
        statsd = false
        check_delay = 1
        loglevel = WARNING

        [watcher:child]
        cmd = {PY} {d}/child.py
        numprocesses = {n}
        warmup_delay = 0
        copy_env = true
        working_dir = {d}

        [env:child]
        MARKER = {marker}
        """)
    )
    return [str(BIN / "circusd"), str(conf)]


def selfheal_config(d: Path, n: int, marker: Path) -> list[str]:
    conf = d / "selfheal.toml"
    conf.write_text(
        textwrap.dedent(f"""\
        [control]
        state_dir = "state"

        [programs.child]
        command = [{json.dumps(PY)}, "child.py"]
        env = {{ MARKER = {json.dumps(str(marker))} }}
        numprocs = {n}
        # Each kill comes after a healthy run of 0.3 s: restart at once, never give up.
        backoff_reset = 0.1
        max_restarts = 1000
        """)
    )
    return [PY, "-m", "selfheal", "run", str(conf)]


def floor_config(d: Path, n: int, marker: Path) -> list[str]:
    (d / "floor.py").write_text(FLOOR)
    os.environ["MARKER"] = str(marker)
    return [PY, str(d / "floor.py"), str(n), PY, str(d / "child.py")]


# -- measurement -------------------------------------------------------------------------


def marker_lines(marker: Path) -> dict[int, int]:
    out = {}
    with contextlib.suppress(FileNotFoundError):
        for line in marker.read_text().splitlines():
            pid, ts = line.split()
            out[int(pid)] = int(ts)
    return out


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.002)


def start(c: Contestant, base: Path, n: int) -> None:
    d = base / f"{c.name}-{n}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "child.py").write_text(CHILD)
    c.marker = d / "marker.txt"
    c.marker.unlink(missing_ok=True)
    argv = c.write_config(d, n, c.marker)
    env = dict(os.environ, MARKER=str(c.marker))
    c.proc = subprocess.Popen(
        argv,
        cwd=d,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(d / "stderr.log").open("wb"),
        start_new_session=True,
    )
    wait_for(lambda: len(marker_lines(c.marker)) >= n, 60, f"{c.name}: {n} children")


def stop(c: Contestant) -> None:
    if c.proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(c.proc.pid, signal.SIGTERM)
    try:
        c.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(c.proc.pid, signal.SIGKILL)
        c.proc.wait()
    # Children are in sessions of their own: end any that outlived their supervisor.
    for pid in marker_lines(c.marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    c.proc = None


def kill_loop(c: Contestant, forks: ForkWatch, kills: int) -> None:
    if forks.ok:
        forks.watched.add(c.pid)
    for _ in range(kills):
        time.sleep(0.3)
        seen = marker_lines(c.marker)
        current = max(seen, key=lambda p: seen[p])
        while not forks.events.empty():
            forks.events.get_nowait()
        before = children_of(c.pid) if not forks.ok else set()
        t0 = time.monotonic_ns()
        os.kill(current, signal.SIGKILL)
        if forks.ok:
            _parent, child, t_fork = forks.events.get(timeout=10)
        else:
            deadline = time.monotonic() + 10
            while True:
                new = children_of(c.pid) - before - {current}
                if new:
                    child, t_fork = new.pop(), time.monotonic_ns()
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{c.name}: no new child")
        c.kill_to_start.append((t_fork - t0) / 1e6)
        wait_for(lambda child=child: child in marker_lines(c.marker), 10, f"{c.name}: {child} runs")
        c.kill_to_running.append((marker_lines(c.marker)[child] - t0) / 1e6)
    if forks.ok:
        forks.watched.discard(c.pid)


def tasks_counters(pid: int) -> tuple[int, int]:
    """Return (context switches over all threads, utime + stime ticks)."""
    switches = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/task/{task}/status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    switches += int(line.split()[1])
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return switches, int(fields[11]) + int(fields[12])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def idle_window(cs: list[Contestant], n: int, seconds: float) -> None:
    time.sleep(2.0)  # let start-up work settle
    before = {c.name: tasks_counters(c.pid) for c in cs}
    time.sleep(seconds)
    for c in cs:
        sw, ticks = tasks_counters(c.pid)
        sw0, ticks0 = before[c.name]
        c.idle[n] = {
            "wakeups_per_s": (sw - sw0) / seconds,
            "cpu_percent": 100.0 * (ticks - ticks0) / CLK_TCK / seconds,
            "rss_mib": rss_mib(c.pid),
        }


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--idle", type=float, default=10.0, help="idle window, seconds")
    parser.add_argument("--many", type=int, default=50, help="children in the second idle run")
    parser.add_argument("--only", action="append", help="run only these contestants")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    contestants = [
        Contestant("supervisord", supervisord_config),
        Contestant("circus", circus_config),
        Contestant("selfheal", selfheal_config),
        Contestant("floor", floor_config),
    ]
    if args.only:
        contestants = [c for c in contestants if c.name in args.only]
    forks = ForkWatch()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="selfheal-bench-") as tmp:
        base = Path(tmp)
        try:
            for c in contestants:
                start(c, base, 1)
                kill_loop(c, forks, args.kills)
                print(
                    f"{c.name}: kill->start median {statistics.median(c.kill_to_start):.2f} ms",
                    file=sys.stderr,
                )
            idle_window(contestants, 1, args.idle)
            for c in contestants:
                stop(c)
            for c in contestants:
                start(c, base, args.many)
            idle_window(contestants, args.many, args.idle)
        finally:
            for c in contestants:
                stop(c)
            forks.close()
    report(contestants, args, time.monotonic() - began, forks.ok)


def report(cs: list[Contestant], args: argparse.Namespace, took: float, fork_events: bool) -> None:
    many = args.many
    print(
        f"\n{args.kills} SIGKILLs each; idle windows of {args.idle:g} s; "
        f"{os.cpu_count()} CPUs; took {took:.0f} s; start detected by "
        f"{'fork events (proc connector)' if fork_events else '/proc scan'}\n"
    )
    head = (
        "| supervisor | kill->start median | p95 | kill->running median | p95 "
        f"| idle CPU 1 / {many} | wakeups/s 1 / {many} | RSS MiB 1 / {many} |"
    )
    print(head)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for c in cs:
        i1, im = c.idle.get(1, {}), c.idle.get(many, {})
        print(
            f"| {c.name} "
            f"| {statistics.median(c.kill_to_start):.2f} ms | {p95(c.kill_to_start):.2f} ms "
            f"| {statistics.median(c.kill_to_running):.1f} ms | {p95(c.kill_to_running):.1f} ms "
            f"| {i1.get('cpu_percent', 0):.2f}% / {im.get('cpu_percent', 0):.2f}% "
            f"| {i1.get('wakeups_per_s', 0):.1f} / {im.get('wakeups_per_s', 0):.1f} "
            f"| {i1.get('rss_mib', 0):.1f} / {im.get('rss_mib', 0):.1f} |"
        )
    by = {c.name: c for c in cs}
    if {"supervisord", "selfheal", "floor"} <= by.keys():
        sd, sh, fl = by["supervisord"], by["selfheal"], by["floor"]
        med = statistics.median
        print("\ntargets:")
        print(
            f"  kill->start <= 1/100 of supervisord: {med(sh.kill_to_start):.2f} ms vs "
            f"{med(sd.kill_to_start) / 100:.2f} ms"
        )
        print(
            f"  within 3 ms of the floor: {med(sh.kill_to_start) - med(fl.kill_to_start):+.2f} ms"
        )
        print(
            f"  idle wake-ups: {sh.idle.get(1, {}).get('wakeups_per_s', float('nan')):.1f}/s "
            f"and {sh.idle.get(many, {}).get('wakeups_per_s', float('nan')):.1f}/s"
        )
        rss_sd = sd.idle.get(1, {}).get("rss_mib", 0)
        ratio = sh.idle.get(1, {}).get("rss_mib", 0) / max(1e-9, rss_sd)
        print(f"  RSS (control API on) <= 1.5x supervisord: {ratio:.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    c.name: {
                        "kill_to_start_ms": c.kill_to_start,
                        "kill_to_running_ms": c.kill_to_running,
                        "idle": c.idle,
                    }
                    for c in cs
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
