"""The daemon: a plan's `SelfHealingApp`, its control API, health endpoints and metrics.

``selfheal run CONFIG`` runs the journal, the health checks, the supervisor, the recovery
rules and the control API (which also serves ``/livez``, ``/readyz``, ``/healthz`` and
``/metrics``), in that start order, on one `Runtime`. A reload compiles the new plan in a
short-lived subprocess (``python -m selfheal.cli.daemon compile``), so the daemon never loads
pydantic.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from selfheal._auth import bearer_matches
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._deadline import timeout_after
from selfheal._tasks import finish
from selfheal.app import SelfHealingApp, journal_advice
from selfheal.errors import CallTimeoutError, ReloadError
from selfheal.runtime import DaemonPlan, compile_plan, register_checks
from selfheal.supervisor import Supervisor, preview_reload

if TYPE_CHECKING:
    from selfheal.recovery import RecoveryEngine
    from selfheal.web.daemon_metrics import DaemonMetrics

__all__ = ["Daemon", "Recompile", "compile_in_subprocess", "journal_advice"]

logger = logging.getLogger("selfheal.daemon")


#: Compiles a config file into a plan, or raises `ReloadError` with the reasons.
Recompile = Callable[[str], Awaitable[DaemonPlan]]


#: Seconds a reload's compile may take before it is ended and the reload refused.
COMPILE_TIMEOUT = 60.0


async def compile_in_subprocess(
    config_path: str,
    *,
    clock: Clock = SYSTEM_CLOCK,
    timeout: float = COMPILE_TIMEOUT,  # noqa: ASYNC109 - the deadline is on `clock`
) -> DaemonPlan:
    """Compile `config_path` in a short-lived ``python -m selfheal.cli.daemon compile``.

    Keeps pydantic out of the daemon's memory. The compiler never outlives the call: it is
    killed when it takes longer than `timeout` or the reload is cancelled (the daemon stops).

    Raises:
        ReloadError: With the config's problems, or why the compiler failed.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "selfheal.cli.daemon",
        "compile",
        config_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with timeout_after(timeout, clock, name="config compile"):
            out, err = await proc.communicate()
    except CallTimeoutError:
        raise ReloadError(
            f"compiling {config_path} did not finish within {timeout:g} s (a module a rule "
            "calls that hangs as it is imported, a file system that does not answer?)"
        ) from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await finish(proc.wait())  # killed: at once, also when the reload was cancelled
    if proc.returncode != 0:
        raise ReloadError(err.decode(errors="replace").strip() or f"exit {proc.returncode}")
    return DaemonPlan.from_json(out.decode())


class Daemon:
    """What ``selfheal run CONFIG`` runs: the plan's `SelfHealingApp` and its control API.

    The app (journal, health checks, supervisor, recovery rules) comes from the plan as in
    `SelfHealingApp.from_plan`; the daemon adds the control API, which also serves the
    health endpoints (``/livez``, ``/readyz``, ``/healthz``) and ``/metrics``, and reloads
    on SIGHUP.

    Args:
        plan: The validated config (`compile_plan`, or `DaemonPlan.from_json`).
        clock: The clock of every component.
        recompile: How `reload` turns the config file into a new plan (by default in a
            subprocess, so the daemon never loads pydantic).
    """

    def __init__(
        self,
        plan: DaemonPlan,
        *,
        clock: Clock = SYSTEM_CLOCK,
        recompile: Recompile | None = None,
    ) -> None:
        self.plan = plan
        self._recompile = recompile or functools.partial(compile_in_subprocess, clock=clock)
        self.app = SelfHealingApp.from_plan(plan, clock=clock)
        self.runtime = self.app.runtime
        supervisor = self.app.supervisor
        assert supervisor is not None  # a plan always has a supervisor, even of no programs
        self.supervisor: Supervisor = supervisor
        self.journal = self.app.journal
        self.leases = self.app.leases
        self.metrics: DaemonMetrics | None = None
        control = plan.control
        if control.get("enabled", True):
            from selfheal.web.control import ControlServer
            from selfheal.web.daemon_metrics import DaemonMetrics

            # Subscribed now, before anything starts, so the first starts and exits count.
            self.metrics = DaemonMetrics(
                self.runtime.bus,
                supervisor=self.supervisor,
                monitor=self.app.health_monitor,
                journal=self.journal or self.app.fleet_journal,
                clock=clock,
            )
            self.runtime.add(
                ControlServer(
                    self.supervisor,
                    state_dir=plan.state_dir,
                    host=control.get("host", "127.0.0.1"),
                    port=control.get("port", 0),
                    socket_path=control.get("socket"),
                    token=control.get("token"),
                    status_requires_token=control.get("status_requires_token", False),
                    reload=self.reload,
                    extra={"config": plan.config_path, "log_dir": plan.log_dir},
                    routes=self._routes,
                    max_connections=control.get("max_connections", 64),
                    clock=clock,
                )
            )
        self.chaos_proxy = _chaos_proxy(plan, self.runtime)
        if self.chaos_proxy is not None:
            self.runtime.add(self.chaos_proxy)
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def recovery(self) -> RecoveryEngine | None:
        """Return the recovery engine of the current rules (None without rules)."""
        return self.app.recovery_engine

    def _routes(self, token: str, private: bool) -> list[Any]:
        """Return the health endpoints, ``/metrics`` and the dashboard, beside the control API.

        `private` (the API needs the token to read, as when other machines may reach it):
        ``/metrics`` and the dashboard's data need it too; the health endpoints stay open for
        load balancers, their details shown only with the token.
        """
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        from selfheal.web.daemon_metrics import CONTENT_TYPE
        from selfheal.web.health import health_routes

        health = self.plan.extra.get("health") or {}
        metrics = self.metrics
        assert metrics is not None  # made with the control API that serves it

        async def render(request: Request) -> Response:
            if private and not bearer_matches(request.headers.get("authorization"), token):
                return Response("the token is needed: Authorization: Bearer <token>\n", 401)
            return Response(metrics.render(), media_type=CONTENT_TYPE)

        routes: list[Any] = health_routes(
            self.app.health_monitor,
            token=token,
            show_details=health.get("show_details", "when_authorized"),
            metrics=False,
        )
        routes.append(Route("/metrics", render, methods=["GET"]))
        routes.append(Route("/", _to_dashboard, methods=["GET"]))
        routes.append(self._dashboard(token, private))
        return routes

    def _dashboard(self, token: str, private: bool) -> Any:
        """Return the dashboard, mounted at ``/dashboard/``; its buttons need `token`."""
        from starlette.routing import Mount

        from selfheal.web.dashboard import ComponentsSnapshot, dashboard_app

        app = self.app
        source = ComponentsSnapshot(
            app.app_name,
            supervisor=app.supervisor,
            monitor=app.health_monitor,
            journal=app.journal,
            synthetic=app.synthetic_tester,
            chaos=app.chaos_monkey,
            features=app.feature_manager,
            clock=app.clock,
        )
        return Mount(
            "/dashboard",
            dashboard_app(
                source,
                bus=app.event_bus,
                token=token,
                actions=_Buttons(app),
                read_requires_token=private,
            ),
        )

    @classmethod
    def from_config(cls, config_path: str | os.PathLike[str], **kw: Any) -> Daemon:
        """Compile `config_path` here (needs pydantic) and build the daemon.

        Raises:
            ConfigError: Naming every bad key with its line.
        """
        return cls(compile_plan(config_path), **kw)

    def __repr__(self) -> str:
        return f"Daemon({self.plan.config_path!r})"

    async def reload(self, dry_run: bool = False) -> dict[str, Any]:
        """Re-read the config file: apply its programs (only changed ones restart), checks, rules.

        Recovery rules are replaced when ``[[recovery]]`` or ``[recovery_engine]`` changed
        (running recoveries are cancelled); health checks when ``[health]`` checks changed.
        ``[control]``, ``[journal]`` and the health endpoints' ``show_details`` need a
        restart of the daemon: the answer names them under ``restart_needed``.

        Args:
            dry_run: Only say what would change (supervisorctl's ``reread``); touch nothing.

        Raises:
            ReloadError: If the file is not a valid config; nothing is changed then.
        """
        plan = await self._recompile(self.plan.config_path)
        old, new = self.plan, plan
        restart_needed = []
        if (new.control, new.state_dir, new.log_dir) != (old.control, old.state_dir, old.log_dir):
            restart_needed.append("control")
        if new.extra.get("journal") != old.extra.get("journal"):
            restart_needed.append("journal")
        if new.extra.get("chaos_proxy") != old.extra.get("chaos_proxy"):
            restart_needed.append("chaos.proxy")
        old_health, new_health = old.extra.get("health") or {}, new.extra.get("health") or {}
        if old_health.get("show_details") != new_health.get("show_details"):
            restart_needed.append("health.show_details")
        checks_changed = old_health.get("checks") != new_health.get("checks")
        rule_keys = ("recovery", "recovery_engine")
        rules_changed = any(new.extra.get(k) != old.extra.get(k) for k in rule_keys)
        if dry_run:
            sup = self.supervisor
            running = {name: sup.spec(name) for name in sup.program_names()}
            result: dict[str, Any] = dict(preview_reload(running, plan.programs).to_dict())
            return {
                **result,
                "health_checks_changed": checks_changed,
                "recovery_rules_changed": rules_changed,
                "restart_needed": restart_needed,
                "dry_run": True,
            }
        if restart_needed:
            logger.warning("reload: %s changes take effect at the next start", restart_needed)
        result = dict((await self.supervisor.apply(plan.programs)).to_dict())
        if checks_changed:
            result["health_checks"] = self._replace_checks(new_health.get("checks") or [])
        self.app.drain_seconds = float(new_health.get("drain_seconds", 0.0))
        if rules_changed:
            await self.app.replace_recovery_engine(self.app.recovery_engine_from(plan))
            result["recovery_rules"] = len(plan.extra.get("recovery") or [])
        self.plan = plan
        self.runtime.bus.emit("supervisor.reloaded", "supervisor", "info", **result)
        return {**result, "restart_needed": restart_needed}

    def _replace_checks(self, checks: list[dict[str, Any]]) -> int:
        monitor = self.app.health_monitor
        for name in monitor.names():
            monitor.unregister(name)
        register_checks(monitor, checks, clock=self.runtime.clock)
        return len(checks)

    async def run(self) -> None:
        """Run until SIGINT or SIGTERM (readiness drains first); SIGHUP reloads the config."""
        loop = asyncio.get_running_loop()

        def hup() -> None:
            if self.runtime.stopping:
                logger.warning("reload ignored: the daemon is stopping")
                return
            task = loop.create_task(self._reload_logged())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        try:
            await self.app.run(on_signal={signal.SIGHUP: hup})
        finally:
            if self.metrics is not None:
                self.metrics.close()

    async def _reload_logged(self) -> None:
        try:
            result = await self.reload()
        except ReloadError as exc:
            logger.error("reload refused: %s", exc)
        else:
            logger.warning("reloaded: %s", result)


class _ChaosProxy:
    """The ``[chaos.proxy]`` fault proxy as a daemon component: its API, then its proxies."""

    def __init__(self, server: Any, proxies: list[dict[str, Any]]) -> None:
        self.server = server
        self.proxies = proxies

    def __repr__(self) -> str:
        return f"ChaosProxy({self.server!r})"

    async def start(self) -> None:
        """Serve the API and create the configured proxies (without toxics)."""
        await self.server.start()
        try:
            await self.server.proxy.populate(self.proxies)
        except BaseException:
            await self.server.stop()
            raise
        logger.info("fault proxy API on %s (%d proxies)", self.server.url, len(self.proxies))

    async def stop(self) -> None:
        """Roll back every toxic and stop the proxies and the API."""
        await self.server.stop()


def _chaos_proxy(plan: DaemonPlan, runtime: Any) -> _ChaosProxy | None:
    """Return the fault proxy ``[chaos.proxy]`` asks for (None without one)."""
    config = plan.extra.get("chaos_proxy")
    if not config:
        return None
    from selfheal.chaos import FaultProxy, FaultProxyServer, KillSwitch, Safeguards

    proxy = FaultProxy(
        clock=runtime.clock,
        bus=runtime.bus,
        seed=config.get("seed"),
        max_fault_duration=config["max_fault_duration"],
        # `selfheal chaos stop` on the daemon's state dir rolls every toxic back.
        safeguards=Safeguards(kill_switch=KillSwitch(plan.state_dir)),
    )
    server = FaultProxyServer.from_listen(config["listen"], proxy)
    return _ChaosProxy(server, list(config.get("proxies") or []))


async def _to_dashboard(request: Any) -> Any:
    """Send a browser at the daemon's address to its dashboard."""
    from starlette.responses import RedirectResponse

    return RedirectResponse("/dashboard/", status_code=307)


class _Buttons:
    """What the dashboard's buttons do in the daemon (each needs the control token)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def restart_program(self, name: str) -> None:
        """Restart `name` (and, as ``selfheal restart`` does, what depends on it)."""
        if self.app.supervisor is None:
            raise KeyError(name)
        await self.app.supervisor.restart_program(name)

    async def stop_program(self, name: str) -> None:
        """Stop `name`."""
        if self.app.supervisor is None:
            raise KeyError(name)
        await self.app.supervisor.stop_program(name)

    async def stop_chaos(self) -> None:
        """Abort the chaos monkey: every fault rolled back, none started again."""
        monkey = self.app.chaos_monkey
        if monkey is not None:
            await monkey.aabort("stopped from the dashboard")
