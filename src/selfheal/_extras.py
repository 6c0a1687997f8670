"""Optional extras: which one brings a module, and a one-line error when it is missing.

``import selfheal`` needs the standard library only; the HTTP side, the CLI and some checks
need an extra. What needs one imports it through `import_extra` (or checks with `require`),
so that a bare ``pip install selfheal`` says ``pip install 'selfheal[server]'`` instead of
showing a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from selfheal.errors import MissingExtraError

__all__ = ["EXTRAS", "extra_of", "import_extra", "require"]

#: Top-level module -> the extra of ``pyproject.toml`` that installs it.
EXTRAS = {
    "click": "server",
    "httpx": "server",
    "prometheus_client": "server",
    "psutil": "server",
    "pydantic": "server",
    "pydantic_core": "server",
    "rich": "server",
    "starlette": "server",
    "uvicorn": "server",
    "redis": "redis",
    "psycopg": "postgres",
}


def extra_of(exc: ImportError) -> MissingExtraError | None:
    """Return `exc` as a `MissingExtraError` if an extra's module is what was missing."""
    if isinstance(exc, MissingExtraError):
        return exc
    module = (getattr(exc, "name", None) or "").split(".")[0]
    extra = EXTRAS.get(module)
    if not isinstance(exc, ModuleNotFoundError) or extra is None:
        return None
    return MissingExtraError("this", module, extra)


def import_extra(name: str, *, feature: str) -> ModuleType:
    """Import module `name`, whose imports need an extra.

    Raises:
        MissingExtraError: Naming `feature`, the missing module and the extra to install.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = extra_of(exc)
        if missing is None:
            raise
        raise MissingExtraError(feature, missing.module, missing.extra) from None


def require(*modules: str, feature: str) -> None:
    """Check that `modules` can be imported, before a module that needs them goes on.

    Raises:
        MissingExtraError: For the first one missing.
    """
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(feature, module, EXTRAS.get(module, "server"))
