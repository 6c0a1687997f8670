"""What a recovery step does: restart, run a command, call a webhook, degrade, call a function.

An action is a small frozen object with `describe()` (what the journal records, secrets
redacted) and `async run(ctx)`, which raises `ActionError` (or anything) when the action
failed. Actions do not enforce their own timeout: the engine cancels them at the rule's
deadline, and each action cleans up on cancellation (a command is killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import shlex
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from selfheal._calls import awaited, describe, is_async_callable
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._redact import MASK, is_secret_key, redact, redact_url
from selfheal._tasks import finish
from selfheal._threads import in_own_thread
from selfheal.errors import ActionError
from selfheal.events import Event
from selfheal.interfaces import Degradable, HealthSource, ProgramControl
from selfheal.recovery._ownership import HANDLED_BY, RestartOwner
from selfheal.recovery._templates import render

__all__ = [
    "Action",
    "ActionContext",
    "ActionError",
    "CallFunction",
    "CallWebhook",
    "Degradable",
    "DegradeFeature",
    "NoAction",
    "RestartProgram",
    "RunCommand",
]


_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What an action may use.

    Attributes:
        event: The event that triggered the recovery.
        subject: The recovery's subject (its dedup key).
        fields: Template values (`event_fields`) plus ``key``.
        programs: The supervisor, if the engine has one.
        health: The health checks, if the engine has them.
        features: The feature manager, if the engine has one.
        clock: The engine's clock.
        restarts: Who restarts programs by itself (the supervisor), if anyone.
        handled: The program whose restart after `event` is `restarts`' to do, if any.
    """

    event: Event
    subject: str
    fields: Mapping[str, str]
    programs: ProgramControl | None = None
    health: HealthSource | None = None
    features: Degradable | None = None
    clock: Clock = SYSTEM_CLOCK
    restarts: RestartOwner | None = None
    handled: str | None = None


class Action(Protocol):
    """One thing a recovery step does."""

    @property
    def kind(self) -> str:
        """Return the short kind name used in events ("restart", "command", "webhook"...)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Return what this action does, safe to record (no secrets)."""
        ...

    async def run(self, ctx: ActionContext) -> Mapping[str, Any] | None:
        """Do it; return observed details; raise when it failed."""
        ...


@dataclass(frozen=True, slots=True)
class NoAction:
    """A step that acts on nothing: only its verification decides (wait for self-healing)."""

    kind: str = field(default="none", init=False)

    def describe(self) -> dict[str, Any]:
        """Return ``{"kind": "none"}``."""
        return {"kind": self.kind}

    async def run(self, ctx: ActionContext) -> Mapping[str, Any] | None:
        """Do nothing."""
        return None


@dataclass(frozen=True, slots=True)
class RestartProgram:
    """Restart a supervised program through `ProgramControl`, unless the supervisor does.

    A program the supervisor restarts by itself is not restarted twice: after its own exit
    (or failed probe), or while the supervisor is already restarting it, this waits for the
    supervisor's restart instead (see `selfheal.recovery.SupervisorRestarts`), so one exit
    gives one restart and a backoff is never cut short.

    Attributes:
        program: The program's name; ``{subject}`` and other placeholders are filled from the
            event, so one rule on ``process.*.exited`` restarts whichever program exited.
    """

    program: str = "{subject}"
    kind: str = field(default="restart", init=False)

    def describe(self) -> dict[str, Any]:
        """Return the kind and program template."""
        return {"kind": self.kind, "program": self.program}

    async def run(self, ctx: ActionContext) -> Mapping[str, Any] | None:
        """Restart the program, or wait for the supervisor's restart of it.

        Raises:
            ActionError: No supervisor, no such program, or the supervisor gave up on it.
        """
        name = render(self.program, ctx.fields)
        if ctx.programs is None:
            raise ActionError(f"cannot restart {name!r}: the engine has no ProgramControl")
        owner = ctx.restarts
        if owner is not None and owner.restarts_itself(name):
            if ctx.handled == name:
                instance = ctx.event.data.get("instance")
                await owner.wait_restarted(instance if isinstance(instance, str) else name)
                return {"program": name, "restarted_by": HANDLED_BY}
            if owner.restarting(name):
                await owner.wait_restarted(name)
                return {"program": name, "restarted_by": HANDLED_BY}
        try:
            await ctx.programs.restart_program(name)
        except KeyError:
            known = ", ".join(sorted(ctx.programs.program_names())) or "none"
            raise ActionError(f"no program named {name!r} (known: {known})") from None
        return {"program": name}


_TAIL = 400


@dataclass(frozen=True, slots=True)
class RunCommand:
    """Run a command; it failed unless it exits with status 0.

    Attributes:
        argv: Program and arguments, never through a shell; placeholders are filled per
            argument (a value with spaces stays one argument).
        shell: Opt in to run ``argv[0]`` as a shell command line instead; placeholders are
            then shell-quoted.
        cwd: Working directory.
        env: Variables added to the daemon's environment.
    """

    argv: tuple[str, ...]
    shell: bool = False
    cwd: str | None = None
    env: Mapping[str, str] | None = None
    kind: str = field(default="command", init=False)

    def __post_init__(self) -> None:
        if not self.argv or not all(isinstance(a, str) for a in self.argv):
            raise ValueError("RunCommand: argv must be a non-empty list of strings")
        if self.shell and len(self.argv) != 1:
            raise ValueError("RunCommand: with shell=True give one command line string")

    def describe(self) -> dict[str, Any]:
        """Return the command (env values are not shown)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "argv": _redact_argv(self.argv),
            "shell": self.shell,
        }
        if self.env:
            out["env"] = sorted(self.env)
        return out

    async def run(self, ctx: ActionContext) -> Mapping[str, Any] | None:
        """Run the command and wait for it; kill it if cancelled."""
        env = {**os.environ, **self.env} if self.env else None
        if self.shell:
            line = render(self.argv[0], ctx.fields, quote=shlex.quote)
            proc = await asyncio.create_subprocess_shell(
                line,
                cwd=self.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        else:
            args = [render(a, ctx.fields) for a in self.argv]
            proc = await asyncio.create_subprocess_exec(
                *args,
                cwd=self.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            out, _ = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                # Its own session: kill the whole group, so a shell's children die too.
                os.killpg(proc.pid, signal.SIGKILL)
            await finish(proc.wait())  # also through a second cancel
            raise
        tail = out.decode(errors="replace").strip()[-_TAIL:]
        if proc.returncode != 0:
            raise ActionError(f"command exited with {proc.returncode}: {tail}")
        return {"exit_code": 0, "output": tail}


def _redact_argv(argv: Sequence[str]) -> list[str]:
    """Return `argv` as safe to record: ``--password=x`` and ``--password x`` masked."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        out.append(redact(arg))
        flag = arg.lstrip("-")
        hide_next = arg.startswith("-") and "=" not in arg and bool(flag) and is_secret_key(flag)
    return out


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(text: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ActionError(f"webhook: environment variable {name} is not set")
        return os.environ[name]

    return _ENV_REF.sub(sub, text)


@dataclass(frozen=True, slots=True)
class CallWebhook:
    """Call an HTTP endpoint (a webhook to a pager, a restart API); needs the server extra.

    ``${NAME}`` in the URL and header values is read from the environment when the call is
    made, so tokens need not be written in the config; the journal only ever sees the URL with
    its password and query values hidden and the header names.

    Attributes:
        url: The endpoint.
        method: HTTP method.
        headers: Extra headers.
        body: JSON body; by default a summary of the triggering event and the subject.
        expect_status: Statuses that count as success (default 2xx).
    """

    url: str
    method: str = "POST"
    headers: Mapping[str, str] | None = None
    body: Mapping[str, Any] | None = None
    expect_status: tuple[int, ...] = tuple(range(200, 300))
    kind: str = field(default="webhook", init=False)

    def describe(self) -> dict[str, Any]:
        """Return method, redacted URL and header names."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "method": self.method,
            "url": redact_url(self.url),
        }
        if self.headers:
            out["headers"] = dict.fromkeys(sorted(self.headers), MASK)
        return out

    async def run(self, ctx: ActionContext) -> Mapping[str, Any] | None:
        """Send the request; `ActionError` on an unexpected status or a transport error."""
        import httpx

        url = _expand_env(render(self.url, ctx.fields))
        headers = {k: _expand_env(v) for k, v in (self.headers or {}).items()}
        body = dict(self.body) if self.body is not None else _summary(ctx)
        # No client timeout: the engine's deadline cancels the request.
        async with httpx.AsyncClient(timeout=None, follow_redirects=False) as client:  # noqa: S113
            try:
                response = await client.request(self.method, url, headers=headers, json=body)
            except httpx.HTTPError as exc:
                # httpx messages can contain the URL; do not echo it (it may hold a token).
                raise ActionError(f"webhook {redact_url(self.url)}: {type(exc).__name__}") from None
        if response.status_code not in self.expect_status:
            raise ActionError(f"webhook {redact_url(self.url)}: HTTP {response.status_code}")
        return {"status": response.status_code}


def _summary(ctx: ActionContext) -> dict[str, Any]:
    return {
        "subject": ctx.subject,
        "event": ctx.event.to_dict(),
        "text": f"selfheal: {ctx.subject}: {ctx.event.type} from {ctx.event.source}",
    }


@dataclass(frozen=True, slots=True)
class DegradeFeature:
    """Switch a feature to its fallback with the engine's `Degradable` (``degrade(name)``).

    Attributes:
        feature: The feature's name; placeholders are filled from the event.
    """

    feature: str
    kind: str = field(default="degrade", init=False)

    def describe(self) -> dict[str, Any]:
        """Return the kind and feature."""
        return {"kind": self.kind, "feature": self.feature}

    async def run(self, ctx: ActionContext) -> Mapping[str, Any] | None:
        """Degrade the feature; sync `degrade` methods run in a thread."""
        name = render(self.feature, ctx.fields)
        if ctx.features is None:
            raise ActionError(f"cannot degrade {name!r}: the engine has no feature manager")
        result = await _call(ctx.features.degrade, name)
        return {"feature": name, "result": repr(result)} if result is not None else None


@dataclass(frozen=True, slots=True)
class CallFunction:
    """Call a Python function with the triggering event (sync ones run in a thread).

    Attributes:
        fn: ``fn(event)``, a function or coroutine function; raising means failure.
        name: How it is shown in events (default: its qualified name).
    """

    fn: Callable[[Event], object]
    name: str = ""
    kind: str = field(default="call", init=False)

    def describe(self) -> dict[str, Any]:
        """Return the kind and function name."""
        shown = self.name or f"{getattr(self.fn, '__module__', '?')}:{describe(self.fn)}"
        return {"kind": self.kind, "function": shown}

    async def run(self, ctx: ActionContext) -> Mapping[str, Any] | None:
        """Call the function with the event."""
        result = await _call(self.fn, ctx.event)
        if isinstance(result, Mapping):
            return {str(k): v for k, v in result.items()}
        return None


async def _call(fn: Callable[..., object], *args: Any) -> object:
    if is_async_callable(fn):
        return await awaited(fn(*args), "the recovery function")  # type: ignore[arg-type]
    # A sync function may block (it is user code); a thread keeps the loop free. It cannot be
    # interrupted at the deadline, but its result is then ignored.
    result = await in_own_thread(fn, *args)
    if inspect.isawaitable(result):
        return await awaited(result, "the recovery function")
    return result


def as_actions(steps: Sequence[Action] | Action) -> tuple[Action, ...]:
    """Return `steps` as a tuple (one action is a one-step ladder)."""
    if isinstance(steps, Sequence):
        return tuple(steps)
    return (steps,)
