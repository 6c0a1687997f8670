"""The health package imports with the standard library only (exports: test_exported_members)."""

from __future__ import annotations

import subprocess
import sys


def test_health_package_needs_only_the_standard_library() -> None:
    code = (
        "import sys, selfheal.health, selfheal.health.checks, selfheal.web\n"
        "third = {'starlette', 'httpx', 'redis', 'psycopg', 'prometheus_client', 'psutil'}\n"
        "loaded = third & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
