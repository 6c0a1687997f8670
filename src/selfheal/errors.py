"""Every error selfheal raises on purpose derives from `SelfhealError`.

The tree (``except selfheal.SelfhealError`` catches all of it; catch a branch to be precise)::

    SelfhealError
    ├── ConfigError                a config file (or value) that cannot be used
    ├── StartError                 the daemon or a component cannot start
    │   ├── StateDirLockedError    another daemon holds the state directory
    │   └── UnsafePathError        (also PermissionError) another user could subvert a path
    ├── ReloadError                a reload was refused; the running config stays
    ├── ControlError               a control request could not be carried out
    ├── JournalError               the journal cannot be read or written
    │   ├── JournalNotFoundError   (also FileNotFoundError)
    │   └── JournalFormatError     (also sqlite3.DatabaseError)
    ├── CheckError                 a health check's target answered wrongly
    ├── ActionError                a recovery action ran but did not do its job
    ├── MissingExtraError          (also ImportError) a feature needs an extra not installed
    └── PolicyError                a resilience policy refused or ended a call
        ├── CircuitBreakerError    the breaker is open (or half-open and busy)
        ├── BulkheadFullError      no slot and no waiting place
        ├── FeatureUnavailableError  a feature and its fallback both failed
        ├── RetryError             a retry gave up
        └── CallTimeoutError       (also builtins.TimeoutError) a call ran out of time

The leaf classes that carry details (the breaker's state, the retry's attempts) are defined
beside the code that raises them and derive from these bases; this module holds the bases
and the leaves that several layers raise or catch. No caller needs to read an error's message
to know what happened: the class says it.
"""

from __future__ import annotations

import builtins
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HIDDEN_CATEGORIES",
    "ActionError",
    "CallTimeoutError",
    "CheckError",
    "ConfigError",
    "ConfigIssue",
    "ControlError",
    "JournalError",
    "MissingExtraError",
    "PolicyError",
    "ReloadError",
    "SelfhealError",
    "StartError",
    "StateDirLockedError",
    "UnsafePathError",
]


class SelfhealError(Exception):
    """The base of every error selfheal raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file.

    Attributes:
        key: Dotted path of the offending key, e.g. ``programs.web.command``.
        line: 1-based line in the file where the key (or its table) stands, if found.
        message: What is wrong and what would be valid.
    """

    key: str
    line: int | None
    message: str

    def __str__(self) -> str:
        # Keys and messages quote the file: shortened and escaped, so a 100k-character value
        # or a key of terminal escapes prints as one readable line.
        where = f"line {self.line}: " if self.line else ""
        key = _printable(self.key, 120) or "(top level)"
        return f"{where}{key}: {_printable(self.message, 300)}"


# A config of a thousand mistakes is fixed from the top: the count says how many remain.
_SHOWN_ISSUES = 50


class ConfigError(SelfhealError):
    """A config that cannot be used; `issues` lists every problem found, not just the first.

    Args:
        source: The file name (or ``<string>``).
        issues: The problems.
    """

    def __init__(self, source: str, issues: Sequence[ConfigIssue]) -> None:
        self.source = source
        self.issues = list(issues)
        shown = [f"  {issue}" for issue in self.issues[:_SHOWN_ISSUES]]
        if len(self.issues) > _SHOWN_ISSUES:
            shown.append(f"  ... and {len(self.issues) - _SHOWN_ISSUES} more")
        lines = "\n".join(shown)
        super().__init__(f"{_printable(source)}: {len(self.issues)} problem(s)\n{lines}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.issues))


class StartError(SelfhealError):
    """The daemon or one of its components cannot start; the message says what to do."""


class StateDirLockedError(StartError):
    """Another daemon holds the state directory's lock.

    Attributes:
        state_dir: The directory.
        pid: The pid written in the lock file, or None if unreadable.
    """

    def __init__(self, state_dir: str, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "pid ?"
        super().__init__(
            f"another supervisor ({who}) is using {state_dir}; stop it first "
            "or give this one another state_dir"
        )
        self.state_dir = state_dir
        self.pid = pid

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.state_dir, self.pid))


class UnsafePathError(StartError, PermissionError):
    """A directory or file another user could subvert: theirs, writable by them, or a symlink.

    The state and log directories, and the daemon's files in them, must belong to root or to
    the daemon's user and be writable by nobody else (as OpenSSH's StrictModes demands); the
    message names the path, its owner or mode, and what to do.
    """


class ReloadError(SelfhealError):
    """A reload was refused (the new config cannot be used); the running config stays."""


class ControlError(SelfhealError):
    """A control request (start, stop, restart, signal...) could not be carried out.

    Args:
        message: Why, in one sentence (the daemon's own ``error`` when it answered).
        status: The HTTP status the daemon answered with; None when it was not reached.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class JournalError(SelfhealError):
    """The journal cannot be opened, read or written."""


class CheckError(SelfhealError):
    """Raised by a health check whose target answered, but wrongly (the message says how)."""


class ActionError(SelfhealError):
    """Raised by a recovery action that ran but did not do its job (the message says why)."""


class MissingExtraError(SelfhealError, ImportError):
    """A feature needs an optional extra that is not installed; the message says which.

    Also an `ImportError`, so ``except ImportError`` around an optional import still works.

    Attributes:
        feature: What was used (``selfheal.web.health_app``).
        module: The missing module (``starlette``).
        extra: The extra that brings it (``server``).
    """

    def __init__(self, feature: str, module: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs the {extra!r} extra: pip install 'selfheal[{extra}]' "
            f"(missing module: {module})"
        )
        self.feature = feature
        self.module = module
        self.extra = extra

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.feature, self.module, self.extra))


class PolicyError(SelfhealError):
    """A resilience policy refused a call or ended it (breaker open, bulkhead full...)."""


class CallTimeoutError(PolicyError, builtins.TimeoutError):
    """A call, check, probe or action ran out of time.

    Also a builtin `TimeoutError`, so ``except TimeoutError`` catches it either way. Not
    exported as ``TimeoutError``, so ``from selfheal import *`` never shadows the builtin.

    Attributes:
        name: What timed out (a policy's, check's or probe's name).
        seconds: The time it was given (less than configured when a nearer enclosing
            deadline cut it short).
    """

    def __init__(self, name: str, seconds: float) -> None:
        super().__init__(f"{name!r} timed out after {seconds:g} s")
        self.name = name
        self.seconds = seconds

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.seconds))


#: Unicode categories invisible or misleading on a terminal, in a host or a path: control
#: (Cc), format (Cf: bidi overrides, zero-width), line and paragraph separators, unassigned
#: and private use. A NUL (Cc) cannot even be passed to the kernel.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"})


def _printable(text: str, limit: int = 200) -> str:
    """Return `text` safe to echo to a terminal: escaped where invisible, cut after `limit`."""
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    if text.isprintable():
        return text
    # A newline too: one issue must stay one line, not forge the next ones.
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in HIDDEN_CATEGORIES
        else ch
        for ch in text
    )
