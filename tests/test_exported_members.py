"""Every public package lists its names in a sorted, complete ``__all__``."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions.
    if name.isupper():
        return (0, name)
    return (1 if name[:1].isupper() else 2, name)


SRC = Path(__file__).resolve().parents[1] / "src"


def _public_modules() -> list[str]:
    """Every module a user may import: no part of its dotted name starts with ``_``."""
    names = []
    for path in sorted((SRC / "selfheal").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if not any(part.startswith("_") for part in parts):
            names.append(".".join(parts))
    return names


PACKAGES = _public_modules()


def test_the_public_modules_are_found() -> None:
    assert {"selfheal", "selfheal.policies", "selfheal.health", "selfheal.supervisor"} <= set(
        PACKAGES
    )


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_key)
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"
        obj = getattr(module, attr)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert getattr(obj, "__doc__", None), f"{name}.{attr} has no docstring"
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(v) or inspect.isfunction(v))
        and getattr(v, "__module__", "") == name
    }
    assert public <= set(exported), f"public but not exported: {public - set(exported)}"


def test_import_selfheal_needs_only_the_standard_library() -> None:
    code = (
        "import sys, selfheal\n"
        "third = {'pydantic', 'starlette', 'click', 'rich', 'httpx', 'redis', 'psycopg',\n"
        "         'prometheus_client', 'uvicorn', 'psutil'}\n"
        "loaded = third & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_selfheal_loads_no_subpackage_until_a_name_is_used() -> None:
    code = (
        "import sys, selfheal\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('selfheal.'))\n"
        "assert not loaded, loaded\n"
        "selfheal.retry\n"
        "assert 'selfheal.policies' in sys.modules\n"
        "assert 'selfheal.supervisor' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_top_level_name_resolves_lazily_to_its_module() -> None:
    import selfheal

    assert sorted(selfheal._LAZY) == sorted(selfheal.__all__)
    for name in selfheal.__all__:
        obj = getattr(selfheal, name)
        module = importlib.import_module(selfheal._LAZY[name])
        assert obj is getattr(module, name)
    assert set(selfheal.__all__) <= set(dir(selfheal))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        selfheal.nope  # noqa: B018 - the attribute access is the test


def test_the_builtin_timeout_error_is_not_shadowed() -> None:
    namespace: dict[str, object] = {}
    exec("from selfheal import *", namespace)
    assert "TimeoutError" not in namespace
    import selfheal

    assert issubclass(selfheal.CallTimeoutError, TimeoutError)
    assert issubclass(selfheal.CallTimeoutError, selfheal.SelfhealError)
