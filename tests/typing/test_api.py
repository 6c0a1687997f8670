"""The public API type-checks as users write it (``api.py`` beside this file)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_public_api_type_checks() -> None:
    # api.py uses the API as users do, with assert_type on what decorators, pipelines,
    # execute and FeatureManager return; only a type checker reads it.
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "tests/typing/api.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
