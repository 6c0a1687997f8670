"""The import contract of docs/architecture.md, checked on the source.

Every ``import`` in ``src/selfheal`` (at module level, inside functions and under
``TYPE_CHECKING`` alike: a lazy import is still a dependency) must go to a lower layer, to the
importer's own package, or to a public module of another package in the same layer. Nothing
imports another package's private module: what several packages share lives in a low module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"

# Read from docs/architecture.md, so the drawing and the test cannot disagree: each line of
# the list under "## Layers" is "N. `name`, `name/` ... - what they are".
_LAYER_LINE = re.compile(r"^(\d+)\.\s+(.*)$")
_NAME = re.compile(r"`([a-z_]+)/?`")


def _layers() -> dict[str, int]:
    text = DOC.read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, int] = {}
    for line in section.splitlines():
        match = _LAYER_LINE.match(line.strip())
        if not match:
            continue
        names = _NAME.findall(match.group(2).split(" - ")[0])
        for name in names:
            layers[name] = int(match.group(1))
    return layers


LAYERS = _layers()


def _unit(module: str) -> str:
    """Return the top-level unit of a dotted module: ``selfheal.health._monitor`` -> ``health``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted((SRC / "selfheal").rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append((".".join(parts), path))
    return out


def _is_module(dotted: str, src: Path) -> bool:
    base = src.joinpath(*dotted.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _imports(module: str, path: Path, src: Path = SRC) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # ``from selfheal.health import _monitor`` imports a private module too.
            found += [
                (node.lineno, f"{target}.{alias.name}")
                for alias in node.names
                if alias.name.startswith("_")
                and not alias.name.startswith("__")
                and _is_module(f"{target}.{alias.name}", src)
            ]
    return [(line, name) for line, name in found if name.split(".")[0] == "selfheal"]


def _private_part(target: str) -> bool:
    return any(part.startswith("_") for part in target.split(".")[2:])


def _violations(modules: list[tuple[str, Path]] | None = None, src: Path = SRC) -> list[str]:
    problems = []
    for module, path in _modules() if modules is None else modules:
        if module == "selfheal":  # the lazy top level names everything, on purpose
            continue
        unit = _unit(module)
        mine = LAYERS.get(unit)
        if mine is None:
            problems.append(f"{module}: '{unit}' has no layer in docs/architecture.md")
            continue
        for line, target in _imports(module, path, src):
            other = _unit(target)
            if other in ("", unit):
                continue
            theirs = LAYERS.get(other)
            where = f"{path.relative_to(src)}:{line} imports {target}"
            if theirs is None:
                problems.append(f"{where}: '{other}' has no layer")
            elif theirs > mine:
                problems.append(f"{where}: layer {theirs} from layer {mine} (a higher layer)")
            elif _private_part(target):
                problems.append(f"{where}: another package's private module")
    return problems


def test_every_layer_is_read_from_the_architecture_page() -> None:
    assert LAYERS["_clock"] == 1
    assert LAYERS["events"] < LAYERS["policies"] < LAYERS["health"] < LAYERS["recovery"]
    assert LAYERS["recovery"] < LAYERS["runtime"] < LAYERS["cli"]


def test_no_module_imports_a_higher_layer_or_a_private_module_of_another_package() -> None:
    problems = _violations()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from selfheal.cli import main\n", "layer 7 from layer 5"),
        ("from selfheal.health._monitor import HealthMonitor\n", "private module"),
        ("def f():\n    from selfheal.web import health_app\n", "layer 7 from layer 5"),
        ("from selfheal.health import _monitor\n", "private module"),
    ],
)
def test_the_contract_catches_what_it_forbids(tmp_path: Path, source: str, expected: str) -> None:
    # A fake recovery module that breaks the rule: the check must see it.
    fake = tmp_path / "selfheal" / "recovery"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text(source)
    (tmp_path / "selfheal" / "health").mkdir()
    (tmp_path / "selfheal" / "health" / "_monitor.py").write_text("")
    problems = _violations([("selfheal.recovery.bad", fake / "bad.py")], tmp_path)
    assert problems
    assert expected in problems[0]
