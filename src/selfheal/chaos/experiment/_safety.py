"""The guard every run passes first: no chaos in production unless someone says so."""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["ENVIRONMENT_VARIABLE", "ChaosRefusedError", "refuse_in_production"]

#: The variable naming the environment a process runs in (``production``, ``staging``...).
ENVIRONMENT_VARIABLE = "SELFHEAL_ENV"


class ChaosRefusedError(Exception):
    """Chaos was refused here (``SELFHEAL_ENV=production`` without an explicit allow)."""


def refuse_in_production(*, allow: bool, environ: Mapping[str, str] | None = None) -> None:
    """Raise unless this is not production, or production was explicitly allowed.

    Args:
        allow: The caller's explicit permission (``--allow-production``).
        environ: The environment to read (default: `os.environ`).

    Raises:
        ChaosRefusedError: If ``SELFHEAL_ENV`` is ``production`` and `allow` is false.
    """
    env = os.environ if environ is None else environ
    if env.get(ENVIRONMENT_VARIABLE, "").strip().lower() == "production" and not allow:
        raise ChaosRefusedError(
            f"refusing to run chaos where {ENVIRONMENT_VARIABLE}=production; "
            "pass --allow-production (allow_production=True) if this is intended"
        )
