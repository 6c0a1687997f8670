"""Every public package lists its names in a sorted, complete ``__all__``."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions.
    if name.isupper():
        return (0, name)
    return (1 if name[:1].isupper() else 2, name)


PACKAGES = [
    "selfheal",
    "selfheal.chaos",
    "selfheal.events",
    "selfheal.features",
    "selfheal.testing",
    "selfheal.policies",
    "selfheal.policies.bulkhead",
    "selfheal.policies.fallback",
    "selfheal.policies.pipeline",
    "selfheal.policies.retry",
    "selfheal.policies.timeout",
]


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
