"""What only the whole file can check: rules naming programs and checks, and what to warn about.

A recovery rule that restarts or verifies a name nothing in the file defines would fail at
the worst moment, during an incident; it is an error here, with the key of the step. A
control API that other machines can reach is valid but worth a loud warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from selfheal.recovery.config import RecoveryRuleConfig, StepConfig

if TYPE_CHECKING:
    from selfheal.config import SelfhealConfig

__all__ = ["check_rules", "config_warnings"]


def check_rules(config: SelfhealConfig) -> None:
    """Check that every literal name a rule restarts or verifies exists in the file.

    A name with a placeholder (``{subject}``) is filled from the event and cannot be checked.

    Raises:
        ValidationError: Located at the step's ``restart`` or the rule's ``verify.checks``.
    """
    programs = set(config.programs)
    groups = {p.group for p in config.programs.values() if p.group is not None}
    verifiable = programs | set(config.health.checks) | set(config.synthetic)
    errors: list[InitErrorDetails] = []

    def err(loc: tuple[str | int, ...], name: str, message: str) -> None:
        errors.append(
            InitErrorDetails(
                type=PydanticCustomError("rule_names", message),
                loc=("recovery", *loc),
                input=name,
            )
        )

    for i, rule in enumerate(config.recovery):
        for loc, name in _restarts(rule):
            if not _restartable(name, programs, groups):
                valid = ", ".join(sorted(programs)[:20]) or "none"
                err((i, *loc), name, f"restarts {name!r}, which is no program (programs: {valid})")
        for j, name in enumerate(rule.verify.checks if rule.verify is not None else ()):
            head = name.split(":", 1)[0]
            if "{" not in name and name not in verifiable and head not in programs:
                valid = ", ".join(sorted(verifiable)[:20]) or "none"
                err(
                    (i, "verify", "checks", j),
                    name,
                    f"verifies {name!r}, which is no health check, scenario or program "
                    f"(known: {valid})",
                )
    if errors:
        raise ValidationError.from_exception_data("recovery", errors)


def _restarts(rule: RecoveryRuleConfig) -> Iterator[tuple[tuple[str | int, ...], str]]:
    steps: list[tuple[tuple[str | int, ...], StepConfig]] = []
    if rule.action is not None:
        steps.append((("action",), rule.action))
    steps += [(("steps", j), s) for j, s in enumerate(rule.steps)]
    steps += [(("escalate", j), s) for j, s in enumerate(rule.escalate)]
    for loc, step in steps:
        if step.restart is not None:
            yield (*loc, "restart"), step.restart


def _restartable(name: str, programs: set[str], groups: set[str]) -> bool:
    # The supervisor's names: all, web, worker:1, worker:*, GROUP:*, GROUP:web.
    if "{" in name or name == "all" or name in programs:
        return True
    head, sep, _ = name.partition(":")
    return bool(sep) and (head in programs or head in groups)


def config_warnings(config: SelfhealConfig) -> list[str]:
    """Return what is valid but risky in `config`, one sentence each.

    Returns:
        Warnings to print (``selfheal check``) or log (the daemon at start).
    """
    warnings = []
    control = config.control
    if control.exposed:
        warnings.append(
            f"[control] host = {control.host!r} is not a loopback address: the control API "
            "is reachable from other machines, so GET /status needs the token too; bind "
            "127.0.0.1 (or use a socket) unless other machines must reach it"
        )
    return warnings
