"""Expansions in a program's command, env, cwd and probes: ``${VAR}`` and ``%(name)s``.

Two kinds, at two moments:

- when the config is read (`expand_config`): ``${VAR}``, ``${VAR:-default}`` and
  supervisord's ``%(ENV_VAR)s`` from the daemon's environment (a command also sees the
  program's own ``env``), and ``%(here)s``, the config file's directory;
- for each process (`instance_spec`): ``%(program_name)s``, ``%(process_num)d``,
  ``%(numprocs)d``, ``%(group_name)s`` and ``%(host_node_name)s``, with supervisord's format
  specs (``%(process_num)02d``).

``$${`` stands for a literal ``${`` and ``%%(`` for a literal ``%(``; a ``$`` or ``%`` in any
other place is left alone, and so is a ``%(name)s`` of any other name, so ``date +%s``,
``grep 'a$'`` and a Python logging format (``%(asctime)s``) need no escaping.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import replace

from selfheal.supervisor._spec import ProbeSpec, ProgramSpec

__all__ = [
    "CONFIG_KEYS",
    "INSTANCE_KEYS",
    "check_template",
    "expand_config",
    "expand_vars",
    "instance_spec",
]

#: ``%(...)`` names expanded for each process.
INSTANCE_KEYS = ("program_name", "process_num", "numprocs", "group_name", "host_node_name")
#: ``%(...)`` names expanded when the config is read (and any ``ENV_<VAR>``).
CONFIG_KEYS = ("here",)

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")
_PERCENT = re.compile(r"%%\(|%\(([A-Za-z_][A-Za-z0-9_]*)\)([#0\- +]*\d*(?:\.\d+)?[sdixXo])")
_BARE_PERCENT = re.compile(r"(?<!%)%\(([A-Za-z_][A-Za-z0-9_]*)\)(?![#0\- +]*\d*(?:\.\d+)?[sdixXo])")


def expand_vars(text: str, env: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` (``${VAR:-default}``, ``${VAR-default}``) with values from `env`.

    ``:-`` uses the default when the variable is unset or empty, ``-`` only when unset.

    Raises:
        ValueError: For a variable that is not set and has no default.
    """
    if "${" not in text:
        return text

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return "${"
        name, op, default = m.group(1), m.group(2), m.group(3)
        value = env.get(name)
        if op == ":-" and not value:
            return default or ""
        if op == "-" and value is None:
            return default or ""
        if value is None:
            raise ValueError(
                f"${{{name}}} is not set in the daemon's environment; set it, or give a "
                f"default: ${{{name}:-value}} (a literal '${{' is written '$${{')"
            )
        return value

    return _VAR.sub(sub, text)


def _expand_percent(text: str, lookup: Callable[[str], object | None], *, unescape: bool) -> str:
    if "%(" not in text:
        return text

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return "%(" if unescape else m.group(0)
        value = lookup(m.group(1))
        if value is None:
            return m.group(0)
        try:
            return ("%" + m.group(2)) % value
        except TypeError:
            raise ValueError(
                f"%({m.group(1)}){m.group(2)} cannot format {value!r}: use "
                f"%({m.group(1)})s or %({m.group(1)})d"
            ) from None

    return _PERCENT.sub(sub, text)


def check_template(text: str) -> None:
    """Check the ``%(...)`` names of ours in `text` without expanding anything.

    Other names are left alone, never an error: a Python logging format
    (``%(asctime)s``) in an argument or a variable is passed on as written.

    Raises:
        ValueError: For one of our names without its conversion (``%(process_num)``
            instead of ``%(process_num)d``).
    """
    if "%(" not in text:
        return
    for m in _BARE_PERCENT.finditer(text):
        key = m.group(1)
        if key in INSTANCE_KEYS or key in CONFIG_KEYS or key.startswith("ENV_"):
            raise ValueError(
                f"%({key}) needs a conversion: %({key})s or %({key})d (a literal '%(' is "
                "written '%%(')"
            )


def expand_config(
    text: str, env: Mapping[str, str], here: str | None = None, *, shell: bool = False
) -> str:
    """Expand what is known when the config is read: ``${VAR}``, ``%(ENV_VAR)s``, ``%(here)s``.

    Per-process names (``%(process_num)d``...) and ``%%(`` are left for `instance_spec`.

    Args:
        text: A command argument, an env value, a cwd or a probe's target.
        env: The environment variables come from.
        here: The config file's directory.
        shell: `text` is a ``shell = true`` command line: ``${VAR}`` is the shell's to expand.

    Raises:
        ValueError: For a variable that is not set and has no default.
    """

    def lookup(key: str) -> object | None:
        if key == "here":
            return here
        if key.startswith("ENV_"):
            value = env.get(key[4:])
            if value is None:
                raise ValueError(
                    f"%({key})s: {key[4:]} is not set in the daemon's environment "
                    f"(${{{key[4:]}:-value}} gives a default)"
                )
            return value
        return None

    return _expand_percent(text if shell else expand_vars(text, env), lookup, unescape=False)


def instance_spec(spec: ProgramSpec, num: int) -> ProgramSpec:
    """Return `spec` as process number `num` runs it, its ``%(...)`` names expanded.

    The same object when nothing in it refers to the process (the common case).
    """
    fields = [*spec.command, *(v for _, v in spec.env), spec.cwd or ""]
    for p in (spec.liveness, spec.readiness):
        if p is not None:
            fields += [p.target, *p.argv]
    if not any("%(" in f for f in fields):
        return spec
    values: dict[str, object] = {
        "program_name": spec.name,
        "process_num": num,
        "numprocs": spec.numprocs,
        "group_name": spec.group or spec.name,
        "host_node_name": socket.gethostname(),
    }

    def x(text: str) -> str:
        return _expand_percent(text, values.get, unescape=True)

    def probe(p: ProbeSpec | None) -> ProbeSpec | None:
        if p is None:
            return None
        return replace(p, target=x(p.target), argv=tuple(x(a) for a in p.argv))

    return replace(
        spec,
        command=tuple(x(a) for a in spec.command),
        env=tuple((k, x(v)) for k, v in spec.env),
        cwd=x(spec.cwd) if spec.cwd is not None else None,
        liveness=probe(spec.liveness),
        readiness=probe(spec.readiness),
    )
