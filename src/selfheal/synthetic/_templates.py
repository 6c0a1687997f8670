"""Templates in declarative steps: ``{name}`` for captured values, ``${NAME}`` for the environment.

Only plain names are substituted (never ``str.format``, whose ``{x.__class__}`` reaches into
objects). ``{{`` and ``}}`` stand for literal braces. A JSON body string that is one whole
``{name}`` takes the captured value with its type, so ``{"id": "{order_id}"}`` sends a number
when the captured id was one. Environment variables are read when the step runs, so a token
never has to be written into the config file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from selfheal.errors import CheckError

__all__ = ["render", "render_value", "template_names"]

_TOKEN = re.compile(r"\{\{|\}\}|\$\{(?P<env>[A-Za-z_][A-Za-z0-9_]*)\}|\{(?P<var>[A-Za-z_]\w*)\}")
_WHOLE = re.compile(r"^\{(?P<var>[A-Za-z_]\w*)\}$")


def template_names(value: Any) -> set[str]:
    """Return the captured-value names (``{name}``) a string, or any JSON value, refers to."""
    if isinstance(value, str):
        return {m.group("var") for m in _TOKEN.finditer(value) if m.group("var")}
    if isinstance(value, Mapping):
        return set().union(*(template_names(v) for v in value.values()))
    if isinstance(value, list | tuple):
        return set().union(*(template_names(v) for v in value))
    return set()


def render(
    text: str, variables: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> str:
    """Return `text` with ``{name}`` and ``${NAME}`` replaced.

    Args:
        text: The template.
        variables: Captured values by name.
        environ: Where ``${NAME}`` is read (default: ``os.environ``).

    Raises:
        CheckError: A name that was not captured, or an environment variable that is not set.
    """
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group("env")
        if name is not None:
            if name not in env:
                raise CheckError(f"environment variable {name} is not set")
            return env[name]
        name = match.group("var")
        if name not in variables:
            known = ", ".join(sorted(variables)) or "none"
            raise CheckError(f"no value named {{{name}}} was captured (captured: {known})")
        return str(variables[name])

    return _TOKEN.sub(replace, text)


def render_value(
    value: Any, variables: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Any:
    """Return a JSON value with every string in it rendered (see `render`).

    A string that is one whole ``{name}`` becomes the captured value itself, type and all.
    """
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole is not None and whole.group("var") in variables:
            return variables[whole.group("var")]
        return render(value, variables, environ)
    if isinstance(value, Mapping):
        return {k: render_value(v, variables, environ) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, variables, environ) for v in value]
    return value
