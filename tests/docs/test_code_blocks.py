"""Every ```python block of README.md and docs/*.md runs as written.

Each block runs alone in a fresh interpreter, in an empty temporary directory, with this
checkout's ``src`` and ``examples`` (the demo shop, the example apps) on ``PYTHONPATH``, under
a timeout. A block that cannot run alone (it needs a server that a reader has and the test
machine has not) is preceded by a comment that says why::

    <!-- not run: needs a PostgreSQL server at db:5432 -->

Such a block is still compiled, so at least its syntax is checked; keep them rare.

A block with a top-level ``await`` runs as it would in ``python -m asyncio`` (the asyncio REPL):
the whole block is one coroutine run by ``asyncio.run``.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMEOUT = 45.0

# Runs one block file as ``python block.py`` would, except that a top-level ``await`` is allowed.
_RUNNER = """
import ast, asyncio, sys
path = sys.argv[1]
sys.argv = [path]
code = compile(open(path, encoding="utf-8").read(), path, "exec",
               flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
namespace = {"__name__": "__main__", "__file__": path}
result = eval(code, namespace)
if asyncio.iscoroutine(result):
    asyncio.run(result)
"""

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its code, and why it is not run (if so)."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    not_run: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    """Return the fenced blocks of a Markdown file (any language), in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, lang = match.groups()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence[0] * len(fence)):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1  # the closing fence
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        mark = _NOT_RUN.match(before)
        code = "\n".join(body) + "\n"
        out.append(Block(path, start + 1, lang.lower(), code, mark.group(1) if mark else None))
    return out


def _python_blocks() -> list[Block]:
    return [b for path in DOCS for b in blocks_of(path) if b.lang in ("python", "py")]


BLOCKS = _python_blocks()
RUN = [pytest.param(b, id=b.id) for b in BLOCKS if b.not_run is None]
NOT_RUN = [pytest.param(b, id=b.id) for b in BLOCKS if b.not_run is not None]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT / "src"), str(ROOT / "examples")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    # A block must not inherit this run's test mode, tokens or chaos switches.
    for name in list(env):
        if name.startswith(("SELFHEAL_", "PYTEST_")) or name == "ENABLE_CHAOS":
            del env[name]
    return env


@pytest.mark.timeout(TIMEOUT + 15)
@pytest.mark.parametrize("block", RUN)
def test_block_runs(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(block.code, encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _RUNNER, str(script)],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{block.id}: still running after {TIMEOUT:.0f} s\n{_tail(exc.stderr)}")
    if done.returncode != 0:
        pytest.fail(
            f"{block.id}: exit {done.returncode}\n--- stderr ---\n{_tail(done.stderr)}"
            f"\n--- the block ---\n{block.code}"
        )


@pytest.mark.parametrize("block", NOT_RUN)
def test_block_not_run_still_compiles(block: Block) -> None:
    assert block.not_run, f"{block.id}: a 'not run' mark must say why"
    compile(block.code, block.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_blocks_are_found() -> None:
    # The parser itself: a README without blocks, or a fence it misreads, must not pass quietly.
    assert any(b.path.name == "README.md" for b in BLOCKS)
    assert len(RUN) >= 10


def _tail(text: str | bytes | None, lines: int = 30) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").splitlines()[-lines:])
