"""Providers: the ``process``, ``http`` and ``python`` kinds, and the registry of kinds.

A `ProviderRegistry` maps a provider ``type`` to a factory that reads the provider's table
(reporting bad fields) and returns a `Provider`. The loader asks the registry, never a fixed
list, so a fault of selfheal's own (kill a supervised program, add a proxy toxic) becomes a
provider type by one `register` call.

The outputs follow Chaos Toolkit, so its tolerances work unchanged: a process gives
``{"status": exit code, "stdout": ..., "stderr": ...}``, an HTTP call
``{"status": ..., "headers": {...}, "body": JSON or text}``, a function its return value.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import importlib
import inspect
import os
import shlex
import shutil
import ssl
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from selfheal._extras import require
from selfheal._threads import start_in_thread
from selfheal.chaos.experiment._fields import Fields
from selfheal.chaos.experiment._model import ActivityContext, ActivityError, Provider

__all__ = [
    "DEFAULT_TIMEOUT",
    "HttpProvider",
    "ProcessProvider",
    "ProviderFactory",
    "ProviderRegistry",
    "PythonProvider",
    "default_registry",
]

#: Seconds an activity may take when its provider names no ``timeout`` (Chaos Toolkit has
#: none, so a hung probe would hang the experiment and its rollbacks with it).
DEFAULT_TIMEOUT = 60.0

#: Reads a provider's table and returns the provider, or None after recording issues.
ProviderFactory = Callable[[Fields], "Provider | None"]

# A string of arguments holding any of these means something only to a shell.
_SHELL_SYNTAX = frozenset("|&;<>()$`*?[]{}~\n")


class ProviderRegistry:
    """Provider types by name, in the order they were registered.

    Args:
        factories: Initial ``type -> factory`` entries.
    """

    def __init__(self, factories: Mapping[str, ProviderFactory] | None = None) -> None:
        self._factories: dict[str, ProviderFactory] = dict(factories or {})

    def __repr__(self) -> str:
        return f"ProviderRegistry(types={list(self._factories)!r})"

    @property
    def types(self) -> tuple[str, ...]:
        """Return the registered type names."""
        return tuple(self._factories)

    def register(self, type: str, factory: ProviderFactory, *, replace: bool = False) -> None:
        """Make ``provider.type = <type>`` mean `factory`.

        Args:
            type: The name used in experiment files.
            factory: Reads the provider's `Fields` (reporting problems with
                `Fields.problem`) and returns a `Provider`, or None when it found problems.
            replace: Allow replacing an existing type.

        Raises:
            ValueError: If `type` is empty, or registered and `replace` is false.
        """
        if not type:
            raise ValueError("ProviderRegistry.register: type must be a non-empty string")
        if type in self._factories and not replace:
            raise ValueError(f"ProviderRegistry.register: {type!r} is already registered")
        self._factories[type] = factory

    def copy(self) -> ProviderRegistry:
        """Return an independent registry with the same types."""
        return ProviderRegistry(self._factories)

    def parse(self, fields: Fields) -> Provider | None:
        """Read a provider table: its ``type`` picks the factory, which reads the rest.

        Returns:
            The provider, or None when the table has problems (recorded in `fields.issues`).
        """
        kind = fields.choice("type", self.types)
        if kind is None:
            return None
        before = len(fields.issues)
        provider = self._factories[kind](fields)
        fields.finish()
        return provider if len(fields.issues) == before else None


def default_registry() -> ProviderRegistry:
    """Return a new registry with the ``process``, ``http`` and ``python`` types."""
    return ProviderRegistry(
        {"process": _parse_process, "http": _parse_http, "python": _parse_python}
    )


def _timeout(fields: Fields) -> float:
    value = fields.number("timeout", default=DEFAULT_TIMEOUT, positive=True)
    return DEFAULT_TIMEOUT if value is None else float(value)


@dataclass(frozen=True, slots=True)
class ProcessProvider:
    """Runs a program as an argv list (through a shell only when ``shell = true``).

    Attributes:
        path: The executable, resolved on PATH when the experiment was loaded.
        arguments: The argv after the executable; with `shell`, one command-line string.
        timeout: Seconds before the process is killed and the activity fails.
        shell: Run ``path arguments`` through ``/bin/sh``.
    """

    path: str
    arguments: tuple[str, ...] | str = ()
    timeout: float = DEFAULT_TIMEOUT
    shell: bool = False

    def run(self, context: ActivityContext) -> dict[str, Any]:
        """Run the process to completion; return its exit status and output."""
        if isinstance(self.arguments, str):
            command: str | list[str] = f"{shlex.quote(self.path)} {self.arguments}"
        else:
            command = [self.path, *self.arguments]
        try:
            # On any exception (our SIGTERM handler's included) run() kills the child first.
            proc = subprocess.run(  # noqa: PLW1510 - shell only when asked; status is data
                command,
                shell=self.shell,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            raise ActivityError(f"process timed out after {self.timeout:g}s") from None
        except OSError as exc:
            raise ActivityError(f"cannot run {self.path}: {exc.strerror}") from None
        return {
            "status": proc.returncode,
            "stdout": proc.stdout.decode("utf-8", "replace"),
            "stderr": proc.stderr.decode("utf-8", "replace"),
        }

    def describe(self) -> str:
        """Return e.g. ``process kill -9 1234``."""
        if isinstance(self.arguments, str):
            return f"process (shell) {self.path} {self.arguments}"
        return f"process {shlex.join([os.path.basename(self.path), *self.arguments])}"


def _parse_process(fields: Fields) -> Provider | None:
    path = fields.string("path", required=True)
    shell = fields.boolean("shell")
    timeout = _timeout(fields)
    raw = fields.raw("arguments")
    arguments: tuple[str, ...] | str = ()
    if isinstance(raw, Mapping):  # Chaos Toolkit flattens {"-n": 3} to ["-n", "3"]
        raw = [part for item in raw.items() for part in item]
    if isinstance(raw, list | tuple):
        arguments = tuple(str(a) for a in raw if a not in (None, ""))
        if shell:
            arguments = shlex.join(arguments)
    elif isinstance(raw, str):
        if shell:
            arguments = raw
        elif _SHELL_SYNTAX & set(raw):
            fields.problem(
                "arguments",
                "this string needs a shell (Chaos Toolkit runs string arguments through one); "
                "write the arguments as a list, or set shell = true",
            )
        else:
            arguments = tuple(shlex.split(raw))
    elif raw is not None:
        fields.problem("arguments", "expected a list of arguments (or a string with shell = true)")
    if path is None:
        return None
    found = shutil.which(os.path.expanduser(path))
    if found is None:
        fields.problem("path", f"{path!r} is not an executable file here or on PATH")
        return None
    return ProcessProvider(found, arguments, timeout, shell)


@dataclass(frozen=True, slots=True)
class HttpProvider:
    """Calls a URL with httpx; any status is an output, only transport errors fail.

    Attributes:
        url: The address.
        method: The HTTP method.
        headers: Request headers.
        arguments: Query parameters for GET; otherwise the body (JSON when the
            ``Content-Type`` header says so, else form fields).
        timeout: Seconds, or ``(connect, read)``.
        verify_tls: Check the server's certificate.
    """

    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    arguments: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT
    verify_tls: bool = True

    def run(self, context: ActivityContext) -> dict[str, Any]:
        """Make the request; return its status, headers and body."""
        require("httpx", feature="the http provider")
        import httpx

        timeout = (
            httpx.Timeout(self.timeout[1], connect=self.timeout[0])
            if isinstance(self.timeout, tuple)
            else httpx.Timeout(self.timeout)
        )
        args = {**self.arguments, **context.arguments}
        kwargs: dict[str, Any] = {"headers": dict(self.headers)}
        if self.method == "GET":
            kwargs["params"] = args
        elif _media_type(self.headers.get("Content-Type", "")) == "application/json":
            kwargs["json"] = args
        elif args:
            kwargs["data"] = args
        try:
            verify = _tls_context() if self.verify_tls else False
            with httpx.Client(timeout=timeout, verify=verify, follow_redirects=True) as client:
                response = client.request(self.method, self.url, **kwargs)
        except httpx.TimeoutException:
            raise ActivityError(f"{self.method} {self.url}: timed out") from None
        except httpx.HTTPError as exc:
            raise ActivityError(f"{self.method} {self.url}: {exc}") from None
        body: Any = response.text
        if _media_type(response.headers.get("content-type", "")) == "application/json":
            with contextlib.suppress(ValueError):  # a wrong content-type: keep the text
                body = response.json()
        return {"status": response.status_code, "headers": dict(response.headers), "body": body}

    def describe(self) -> str:
        """Return e.g. ``http GET http://127.0.0.1:8000/health``."""
        return f"http {self.method} {self.url}"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~35 ms: once per process, not once per probe.
    return ssl.create_default_context()


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _parse_http(fields: Fields) -> Provider | None:
    url = fields.string("url", required=True)
    method = fields.string("method", default="GET")
    headers = fields.raw("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        fields.problem("headers", "expected a table of header names to strings")
        headers = {}
    arguments = fields.raw("arguments") or {}
    if not isinstance(arguments, Mapping):
        fields.problem("arguments", "expected a table (query parameters or body fields)")
        arguments = {}
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT
    raw_timeout = fields.raw("timeout")
    if isinstance(raw_timeout, list | tuple):
        if len(raw_timeout) != 2 or not all(
            isinstance(t, int | float) and not isinstance(t, bool) and t > 0 for t in raw_timeout
        ):
            fields.problem("timeout", "expected seconds > 0, or [connect, read] seconds")
        else:
            timeout = (float(raw_timeout[0]), float(raw_timeout[1]))
    else:
        timeout = _timeout(fields)
    verify = fields.boolean("verify_tls", default=True)
    fields.ignore(("max_retries", "expected_status", "secrets"))
    if not url or not method:
        return None
    if not url.startswith(("http://", "https://")):
        fields.problem("url", f"expected an http:// or https:// URL, got {url!r}")
        return None
    return HttpProvider(url, method.upper(), dict(headers), dict(arguments), timeout, verify)


@dataclass(frozen=True, slots=True)
class PythonProvider:
    """Calls ``module.func(**arguments)`` in a thread of its own, with a timeout.

    A function with a ``configuration`` parameter gets the experiment's configuration; one
    with a ``secrets`` parameter gets the secrets of the scopes the provider lists. Coroutine
    functions are run to completion on an event loop of their own.

    Attributes:
        module: The module's dotted name.
        func: The function's name in it.
        function: The function itself (imported when the experiment was loaded).
        arguments: Keyword arguments.
        secrets: Secret scopes handed to a ``secrets`` parameter.
        timeout: Seconds to wait for the call; a call that takes longer is abandoned.
    """

    module: str
    func: str
    function: Callable[..., Any]
    arguments: Mapping[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT

    def run(self, context: ActivityContext) -> Any:
        """Call the function; return what it returns."""
        kwargs = {**self.arguments, **context.arguments}
        params = _parameters(self.function)
        if "configuration" in params:
            kwargs["configuration"] = dict(context.configuration)
        if "secrets" in params and self.secrets:
            kwargs["secrets"] = {
                key: value
                for scope in self.secrets
                for key, value in context.secrets.get(scope, {}).items()
            }
        future = start_in_thread(self._call, kwargs, name=f"chaos-{self.func}")
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            raise ActivityError(f"{self.func} timed out after {self.timeout:g}s") from None
        except Exception as exc:
            raise ActivityError(f"{type(exc).__name__}: {exc}") from exc

    def _call(self, kwargs: dict[str, Any]) -> Any:
        result = self.function(**kwargs)
        if inspect.iscoroutine(result):
            return asyncio.run(result)
        return result

    def describe(self) -> str:
        """Return e.g. ``python mychecks.is_up``."""
        return f"python {self.module}.{self.func}"


def _parameters(fn: Callable[..., Any]) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):  # some builtins have no signature
        return {}


def _parse_python(fields: Fields) -> Provider | None:
    module_name = fields.string("module", required=True)
    func_name = fields.string("func", required=True)
    arguments = fields.raw("arguments") or {}
    if not isinstance(arguments, Mapping):
        fields.problem("arguments", "expected a table of keyword arguments")
        arguments = {}
    scopes = fields.strings("secrets")
    timeout = _timeout(fields)
    if module_name is None or func_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - importing user code may raise anything
        fields.problem("module", f"cannot import {module_name!r}: {type(exc).__name__}: {exc}")
        return None
    function = getattr(module, func_name, None)
    if not callable(function):
        fields.problem("func", f"{module_name} has no function {func_name!r}")
        return None
    params = _parameters(function)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [name for name in arguments if name not in params] if params else []
    if unknown and not takes_any:
        fields.problem(
            "arguments",
            f"{func_name}() has no parameter {unknown[0]!r} "
            f"(it takes: {', '.join(params) or 'nothing'})",
        )
        return None
    return PythonProvider(module_name, func_name, function, dict(arguments), scopes, timeout)
