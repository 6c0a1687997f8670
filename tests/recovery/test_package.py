"""The recovery and store packages need only the standard library."""

from __future__ import annotations

import subprocess
import sys


def test_recovery_and_store_need_only_the_standard_library() -> None:
    code = (
        "import sys, selfheal, selfheal.recovery, selfheal.store\n"
        "third = {'pydantic', 'starlette', 'click', 'rich', 'httpx', 'redis', 'psycopg'}\n"
        "loaded = third & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
        "assert selfheal.RecoveryManager is selfheal.recovery.RecoveryManager\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
