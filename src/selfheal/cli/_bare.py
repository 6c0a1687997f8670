"""The ``selfheal`` command of an install without the ``server`` extra (standard library only).

It answers ``--version`` and ``help [TOPIC]``, and says in one line which extra every other
command needs, instead of a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from selfheal.cli import _help

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, *, missing: str = "click") -> None:
    """Run ``selfheal ARGS`` without click: ``--version``, ``help``, or one line of advice.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).
        missing: The module whose absence brought us here.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        sys.stdout.write(f"selfheal {_help.version()}\n")
        return
    if args[:1] == ["help"]:
        if len(args) == 1:
            sys.stdout.write(_help.usage() + "\n")
            return
        try:
            _, text = _help.page(args[1])
        except LookupError as exc:
            sys.stderr.write(f"error: {exc}\n")
            raise SystemExit(2) from None
        sys.stdout.write(text)
        return
    what = f"selfheal {args[0]}" if args and not args[0].startswith("-") else "the selfheal command"
    sys.stderr.write(
        f"error: {what} needs the 'server' extra: pip install 'selfheal[server]' (missing "
        f"module: {missing}); without it: selfheal --version, selfheal help [TOPIC]\n"
    )
    raise SystemExit(2)
