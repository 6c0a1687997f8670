"""The recovery and store packages: documented exports, and the standard library only."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest


@pytest.mark.parametrize("name", ["selfheal.recovery", "selfheal.runtime", "selfheal.store"])
def test_exports_are_sorted_complete_and_documented(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)

    def key(n: str) -> tuple[int, str]:
        return (0 if n.isupper() else 1 if n[:1].isupper() else 2, n)

    assert exported == sorted(exported, key=key)
    for attr in exported:
        obj = getattr(module, attr)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, f"{name}.{attr} has no docstring"


def test_recovery_and_store_need_only_the_standard_library() -> None:
    code = (
        "import sys, selfheal, selfheal.recovery, selfheal.store\n"
        "third = {'pydantic', 'starlette', 'click', 'rich', 'httpx', 'redis', 'psycopg'}\n"
        "loaded = third & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
        "assert selfheal.RecoveryManager is selfheal.recovery.RecoveryManager\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
