"""Declarative multi-step HTTP scenarios: steps, conditions, captured values, cleanup.

An `HttpScenario` sends its steps in order over one client (cookies carry over), checks each
response with `HttpConditions` (the engine HTTP health checks use), captures values for later
steps, and then runs its cleanup steps whatever happened: after a failed step, a timeout or
a cancellation too. Each step has a timeout of its own on the injected clock. httpx (the
``server`` extra) is imported when a scenario runs, not before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from selfheal._calls import checked_keywords, describe_error
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._deadline import timeout_after
from selfheal._extras import require
from selfheal._httpcheck import HttpConditions, ssl_context, timed_request
from selfheal._redact import redact
from selfheal.errors import CallTimeoutError, CheckError
from selfheal.synthetic._conditions import Capture, parse_capture, parse_conditions
from selfheal.synthetic._records import StepRecord
from selfheal.synthetic._templates import render, render_value, template_names

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpScenario", "HttpStep", "StepFailedError"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_VARIABLE = re.compile(r"^[A-Za-z_]\w*$")
_NONE: Mapping[str, Any] = MappingProxyType({})

StepObserver = Callable[[StepRecord], object]


class StepFailedError(CheckError):
    """A step of a declarative scenario failed: no response in time, or a wrong one.

    Attributes:
        step: The step's name.
        phase: ``"step"`` or ``"cleanup"``.
        detail: What went wrong (redacted).
    """

    def __init__(self, step: str, phase: str, detail: str) -> None:
        where = "cleanup step" if phase == "cleanup" else "step"
        super().__init__(f"{where} {step!r}: {detail}")
        self.step = step
        self.phase = phase
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.step, self.phase, self.detail))


@checked_keywords
@dataclass(frozen=True, slots=True)
class HttpStep:
    """One request of a scenario and what its response must be like.

    Args:
        name: Names the step in records, events and errors.
        method: The HTTP method (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS).
        path: Relative to the scenario's base URL (``/orders/{order_id}``), or absolute.
        headers: Request headers; values may use ``{name}`` and ``${ENV_VAR}``.
        json: A JSON body; its strings may use templates (a whole ``"{name}"`` keeps the
            captured value's type).
        body: A text body instead (``json`` and ``body`` exclude each other).
        expect: The conditions the response must meet (default: a 2xx or 3xx status).
        conditions: Gatus-style strings added to `expect` (``"[STATUS] == 201"``,
            ``"[RESPONSE_TIME] < 300"``, ``"[BODY].id == 7"``); see `parse_conditions`.
        capture: Values to keep for later steps: ``{"order_id": "[BODY].id"}``.
        timeout: Seconds the response may take before the step fails.

    Raises:
        ValueError: A bad field; the message names the step and the field.
    """

    name: str
    method: str = "GET"
    path: str = "/"
    _: KW_ONLY
    headers: Mapping[str, str] = field(default_factory=lambda: _NONE)
    json: Any = None
    body: str | None = None
    expect: HttpConditions = field(default_factory=HttpConditions)
    conditions: Sequence[str] = ()
    capture: Mapping[str, str] = field(default_factory=lambda: _NONE)
    timeout: float = 10.0
    captures: tuple[tuple[str, Capture], ...] = field(init=False, repr=False, compare=False)
    needs: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"HttpStep {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"HttpStep: name must be a non-empty string, got {self.name!r}")
        method = self.method.upper() if isinstance(self.method, str) else self.method
        if method not in METHODS:
            raise ValueError(f"{where}: method must be one of {', '.join(METHODS)}, got {method!r}")
        if not isinstance(self.path, str) or not self.path:
            raise ValueError(f"{where}: path must be a non-empty string, got {self.path!r}")
        if self.json is not None and self.body is not None:
            raise ValueError(f"{where}: give json or body, not both")
        timeout = self.timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValueError(f"{where}: timeout must be a number of seconds > 0, got {timeout!r}")
        try:
            expect = parse_conditions(self.conditions, self.expect) if self.conditions else None
        except ValueError as exc:
            raise ValueError(f"{where}: conditions: {exc}") from None
        captures = []
        for variable, text in self.capture.items():
            if not isinstance(variable, str) or not _VARIABLE.match(variable):
                raise ValueError(
                    f"{where}: capture names must be identifiers (letters, digits, _), "
                    f"got {variable!r}"
                )
            try:
                captures.append((variable, parse_capture(text)))
            except ValueError as exc:
                raise ValueError(f"{where}: capture {variable}: {exc}") from None
        needs = template_names(self.path) | template_names(dict(self.headers))
        needs |= template_names(self.json) | template_names(self.body or "")
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        object.__setattr__(self, "capture", MappingProxyType(dict(self.capture)))
        object.__setattr__(self, "conditions", tuple(self.conditions))
        if expect is not None:
            object.__setattr__(self, "expect", expect)
        object.__setattr__(self, "captures", tuple(captures))
        object.__setattr__(self, "needs", frozenset(needs))


@checked_keywords
@dataclass(frozen=True, slots=True)
class HttpScenario:
    """Steps sent in order, then cleanup steps that always run; call it with a base URL.

    Register it like a function: ``tester.register_scenario("checkout", scenario,
    frequency=60)``; or await it alone: ``await scenario("http://127.0.0.1:8000")``.

    Args:
        steps: The requests, in order; the first failure ends the attempt.
        cleanup: Requests sent after the steps whatever happened (a failed step, a timeout);
            one that needs a value never captured is skipped and recorded as such.
        headers: Headers of every request (values may use ``${ENV_VAR}``).
        variables: Values the templates may use from the start.
        follow_redirects: Whether to follow redirects.

    Raises:
        ValueError: No steps, or a template naming a value no earlier step captures.
    """

    steps: Sequence[HttpStep]
    _: KW_ONLY
    cleanup: Sequence[HttpStep] = ()
    headers: Mapping[str, str] = field(default_factory=lambda: _NONE)
    variables: Mapping[str, Any] = field(default_factory=lambda: _NONE)
    follow_redirects: bool = False

    def __post_init__(self) -> None:
        steps, cleanup = tuple(self.steps), tuple(self.cleanup)
        if not steps:
            raise ValueError("HttpScenario: give at least one step")
        for what, group in (("steps", steps), ("cleanup", cleanup)):
            for i, step in enumerate(group):
                if not isinstance(step, HttpStep):
                    raise ValueError(f"HttpScenario: {what}[{i}] must be an HttpStep, got {step!r}")
        known = set(self.variables)
        for i, step in enumerate(steps):
            _check_needs(f"steps[{i}] ({step.name!r})", step, known, "an earlier step captures")
            known |= {name for name, _ in step.captures}
        for i, step in enumerate(cleanup):
            _check_needs(f"cleanup[{i}] ({step.name!r})", step, known, "any step captures")
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "cleanup", cleanup)
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        object.__setattr__(self, "variables", MappingProxyType(dict(self.variables)))

    async def __call__(self, base_url: str) -> None:
        """Run the scenario once against `base_url`; raise `StepFailedError` if it fails."""
        await self.run(base_url)

    async def run(
        self,
        base_url: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        headers: Mapping[str, str] | None = None,
        record: StepObserver | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send the steps, then the cleanup steps, once.

        Args:
            base_url: What relative step paths are relative to.
            clock: Measures response times and step timeouts.
            headers: Headers added to every request (the tester's synthetic-traffic marker);
                the scenario's own headers win over them.
            record: Called with a `StepRecord` as each step ends (or is skipped).
            environ: Where ``${ENV_VAR}`` is read (default: ``os.environ``).

        Returns:
            Every value captured, by name.

        Raises:
            StepFailedError: The first step that failed; else the first failed cleanup step.
        """
        require("httpx", feature="an HTTP scenario")
        import httpx

        variables = dict(self.variables)
        try:
            own = {k: render(v, variables, environ) for k, v in self.headers.items()}
        except CheckError as exc:
            raise StepFailedError(self.steps[0].name, "step", f"scenario headers: {exc}") from None
        failure: StepFailedError | None = None
        cleanup_failure: StepFailedError | None = None
        # No client timeout: each step's deadline (and the run's) cancels a slow request.
        async with httpx.AsyncClient(
            base_url=base_url,
            headers={**(headers or {}), **own},
            timeout=None,  # noqa: S113
            follow_redirects=self.follow_redirects,
            verify=ssl_context(),
        ) as client:
            try:
                for step in self.steps:
                    await _run_step(client, step, "step", variables, clock, record, environ)
            except StepFailedError as exc:
                failure = exc
            finally:
                # Also on cancellation (the run's timeout): what the steps created goes away.
                cleanup_failure = await self._clean_up(client, variables, clock, record, environ)
        if failure is not None:
            raise failure
        if cleanup_failure is not None:
            raise cleanup_failure
        return variables

    async def _clean_up(
        self,
        client: httpx.AsyncClient,
        variables: dict[str, Any],
        clock: Clock,
        record: StepObserver | None,
        environ: Mapping[str, str] | None,
    ) -> StepFailedError | None:
        first: StepFailedError | None = None
        for step in self.cleanup:
            missing = sorted(step.needs - variables.keys())
            if missing:
                why = f"skipped: {', '.join(missing)} never captured"
                _note(record, StepRecord(step.name, "cleanup", False, error=why, skipped=True))
                continue
            try:
                await _run_step(client, step, "cleanup", variables, clock, record, environ)
            except StepFailedError as exc:
                first = first or exc
        return first


def _check_needs(where: str, step: HttpStep, known: set[str], who: str) -> None:
    missing = sorted(step.needs - known)
    if missing:
        names = ", ".join("{" + name + "}" for name in missing)
        captured = ", ".join(sorted(known)) or "none"
        raise ValueError(
            f"HttpScenario: {where} uses {names}, but no value of that name is given "
            f"or {who} (known there: {captured})"
        )


async def _run_step(  # noqa: PLR0917 - internal, one call site per phase
    client: httpx.AsyncClient,
    step: HttpStep,
    phase: Literal["step", "cleanup"],
    variables: dict[str, Any],
    clock: Clock,
    record: StepObserver | None,
    environ: Mapping[str, str] | None,
) -> None:
    status: int | None = None
    elapsed: float | None = None
    what = f"{step.method} {step.path}"
    try:
        url = render(step.path, variables, environ)
        what = f"{step.method} {redact(url)}"
        kwargs: dict[str, Any] = {
            "headers": {k: render(v, variables, environ) for k, v in step.headers.items()}
        }
        if step.json is not None:
            kwargs["json"] = render_value(step.json, variables, environ)
        elif step.body is not None:
            kwargs["content"] = render(step.body, variables, environ)
        async with timeout_after(step.timeout, clock, name=f"step {step.name!r}"):
            response, elapsed = await timed_request(client, step.method, url, clock=clock, **kwargs)
        status = response.status_code
        step.expect.verify(response, elapsed, what)
        for name, capture in step.captures:
            variables[name] = capture.read(response)
    except Exception as exc:
        if isinstance(exc, CallTimeoutError):
            detail = f"{what} timed out after {step.timeout:g} s"
        elif isinstance(exc, CheckError):
            detail = str(exc)
        else:
            detail = f"{what}: {describe_error(exc)}"
        error = StepFailedError(step.name, phase, redact(detail))
        _note(record, StepRecord(step.name, phase, False, status, elapsed, error.detail))
        raise error from exc
    _note(record, StepRecord(step.name, phase, True, status, elapsed))


def _note(record: StepObserver | None, step: StepRecord) -> None:
    if record is not None:
        record(step)
