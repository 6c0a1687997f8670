"""A standby process: a Python program's imports done ahead, waiting to become an instance.

A restarted Python web process spends most of its start in imports (the interpreter,
asyncio, the web framework, the database driver): a second or more on a busy machine, while
the supervisor's part of a restart takes milliseconds. With ``preload`` the supervisor keeps
one standby per program, started with ``python -m selfheal._standby``, which imports the
listed modules and then waits on its stdin. When an instance has to start, the supervisor
writes one JSON line there (the instance's environment); the standby takes it as its own, then
runs the program's script (or ``-m`` module) as ``__main__``, exactly as
``python SCRIPT ARGS`` would have, with the imports already done.

The standby is the supervisor's own child from the start: its exit status, process group,
output pipes and signals are those of any program. End of input without a line (the
supervisor went away, or no longer needs it) ends it without running anything. Only the
standard library is imported here; preloaded modules must not start threads or event loops at
import time (the program's ``main`` expects to make its own), and they are imported with the
spare's environment, not the instance's: read configuration in ``main``. If a module's file
changed after it was imported (a deploy), the standby runs no stale code: it execs the
program from nothing instead, in the same process.

Usage (by the supervisor): ``python -m selfheal._standby [--preload MOD[,MOD...]] -- SCRIPT
[ARGS...]`` or ``... -- -m MODULE [ARGS...]``.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import sys
from collections.abc import Sequence

__all__ = ["GO_KEYS", "go_message", "main"]

#: What a go message may hold.
GO_KEYS = frozenset({"env", "cwd"})


def go_message(env: dict[str, str], cwd: str | None = None) -> bytes:
    """Return the line that turns a standby into an instance with `env` (and `cwd`)."""
    message: dict[str, object] = {"env": env}
    if cwd is not None:
        message["cwd"] = cwd
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def _parse(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Return (modules to preload, the program's arguments after the interpreter)."""
    args = list(argv)
    if "--" not in args:
        raise SystemExit("usage: python -m selfheal._standby [--preload MODS] -- SCRIPT [ARGS]")
    split = args.index("--")
    options, program = args[:split], args[split + 1 :]
    preload: list[str] = []
    while options:
        option = options.pop(0)
        if option == "--preload" and options:
            preload += [m for m in options.pop(0).split(",") if m]
        else:
            raise SystemExit(f"selfheal._standby: unknown option {option!r}")
    if not program or (program[0] == "-m" and len(program) < 2):
        raise SystemExit("selfheal._standby: no script or -m MODULE after --")
    return preload, program


def _read_go() -> dict[str, object] | None:
    """Block until the supervisor's line arrives on stdin; None at end of input."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 65536)
        if not chunk:
            return None
        line += chunk
    message = json.loads(line)
    if not isinstance(message, dict) or not set(message) <= GO_KEYS:
        raise SystemExit(f"selfheal._standby: unexpected message {sorted(message)!r}")
    return message


def _module_files() -> dict[str, int]:
    """Return the file of every module imported so far, with its modification time."""
    seen: dict[str, int] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path not in seen:
            try:
                seen[path] = os.stat(path).st_mtime_ns
            except OSError:
                continue
    return seen


def _stale(files: dict[str, int]) -> bool:
    """Return whether a module file changed since it was imported (a deploy happened)."""
    for path, mtime in files.items():
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return True
        except OSError:
            return True
    return False


def _become(message: dict[str, object]) -> None:
    """Take the instance's environment and directory; give stdin back to /dev/null."""
    cwd = message.get("cwd")
    if isinstance(cwd, str):
        os.chdir(cwd)
    env = message.get("env")
    if isinstance(env, dict):
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> None:
    """Preload, wait for the go line, then run the program as ``__main__``."""
    preload, program = _parse(sys.argv[1:] if argv is None else argv)
    if program[0] != "-m":
        # As `python SCRIPT` does: the script's real directory first on the path.
        sys.path[0] = os.path.dirname(os.path.realpath(program[0]))
    else:
        sys.path[0] = os.getcwd()
    for name in preload:
        importlib.import_module(name)
    files = _module_files()
    message = _read_go()
    if message is None:
        return
    _become(message)
    if _stale(files):
        # Code changed on disk since the imports (a deploy): start as the program itself
        # would, from nothing, in this same process (its pid, pipes and group stay).
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, *program])  # noqa: S606 - an argv list
    if program[0] == "-m":
        sys.argv = [program[1], *program[2:]]
        runpy.run_module(program[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(program)
        runpy.run_path(os.path.abspath(program[0]), run_name="__main__")


if __name__ == "__main__":
    main()
