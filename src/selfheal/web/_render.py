"""The health endpoints' answers, with no server: path and query in, status and body out.

The Starlette app (`selfheal.web.health_app`) and the WSGI app (`selfheal.web.wsgi`) are thin
drivers around `Renderer`, so both answer byte for byte the same. Answers come from the
monitor's cached results only: rendering never runs a check.

The JSON follows the IETF draft "Health Check Response Format for HTTP APIs"
(``application/health+json``): a top-level ``status`` (pass, warn, fail) and a ``checks``
object whose keys are ``<component>:<measurement>`` and whose values are lists of check
objects (``status``, ``time``, ``componentType``, ``output`` unless passing; with details
also ``observedValue`` and ``observedUnit``). Statuses are for everyone; a check's own output
and observed values only for the authorised (the output of an unauthorised request says
"reason withheld", as kube-apiserver does). ``?verbose`` gives the Kubernetes text form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from selfheal._auth import bearer_matches
from selfheal._json import dumps
from selfheal.health import CheckReport, HealthMonitor, HealthStatus, Probe, ProbeReport

__all__ = ["HEALTH_JSON", "HttpAnswer", "HttpOptions", "Renderer", "route"]

HEALTH_JSON = "application/health+json"
_TEXT = "text/plain; charset=utf-8"
_NO_STORE = (("cache-control", "no-store"),)
# Probe status -> HTTP status: degraded still serves traffic.
_HTTP_STATUS = {HealthStatus.PASS: 200, HealthStatus.WARN: 200, HealthStatus.FAIL: 503}

ShowDetails = Literal["never", "when_authorized", "always"]


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """How the endpoints answer.

    Attributes:
        token: The bearer token that unlocks details (check output, observed values).
        show_details: ``"when_authorized"`` (default: with a valid token only), ``"never"``
            or ``"always"`` (for endpoints only reachable from trusted networks).
        service_id: The draft's ``serviceId``, if any.
        description: The draft's ``description``, if any.
        version: The draft's ``version``, if any.
        release_id: The draft's ``releaseId``, if any.
    """

    token: str | None = None
    show_details: ShowDetails = "when_authorized"
    service_id: str | None = None
    description: str | None = None
    version: str | None = None
    release_id: str | None = None

    def __post_init__(self) -> None:
        if self.show_details not in ("never", "when_authorized", "always"):
            raise ValueError(
                "health endpoints: show_details must be 'never', 'when_authorized' or "
                f"'always', got {self.show_details!r}"
            )
        if self.token is not None and not self.token:
            raise ValueError("health endpoints: token must be a non-empty string or None")

    def authorized(self, authorization: str | None) -> bool:
        """Return whether an ``Authorization`` header value may see details.

        Args:
            authorization: The header value (``Bearer <token>``), or None.

        Returns:
            True when details may be shown.
        """
        if self.show_details == "always":
            return True
        if self.show_details == "never":
            return False
        return bearer_matches(authorization, self.token)


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What to send back.

    Attributes:
        status_code: 200 (pass, warn), 503 (fail) or 404 (no such check).
        content_type: ``application/health+json`` or plain text.
        body: The encoded body.
        headers: Further headers (``cache-control: no-store``).
    """

    status_code: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = _NO_STORE


def route(path: str) -> tuple[Probe, str | None] | None:
    """Return the probe and check a path asks for, or None if it is no health path.

    Args:
        path: e.g. ``/readyz`` or ``/livez/event-loop`` (relative to where the app is mounted).

    Returns:
        ``(probe, check name or None)``, or None.
    """
    parts = path.strip("/").split("/")
    if not parts or len(parts) > 2:
        return None
    try:
        probe = Probe(parts[0])
    except ValueError:
        return None
    if len(parts) == 2:
        return (probe, parts[1]) if parts[1] else None
    return probe, None


class Renderer:
    """Answers the requests of one app, reusing a rendered answer while it stays true.

    An answer is reused only while the monitor has recorded no new result (its
    `HealthMonitor.generation` is unchanged) and no result in it can have gone stale
    (`ProbeReport.valid_until`), so a cached answer is exactly what rendering anew would
    give. A probe flood then costs a dictionary lookup per request.

    Args:
        monitor: Where the results come from.
        options: Token and service fields.
    """

    #: Distinct (probe, check, exclude, verbose, details) answers kept; ``?exclude=`` values
    #: come from clients, so the cache is bounded.
    MAX_ENTRIES = 256

    def __init__(self, monitor: HealthMonitor, options: HttpOptions) -> None:
        self._monitor = monitor
        self._options = options
        self._cache: dict[tuple[Any, ...], tuple[int, float, HttpAnswer]] = {}

    def __call__(
        self,
        probe: Probe,
        *,
        check: str | None,
        query: Mapping[str, Sequence[str]],
        authorization: str | None,
    ) -> HttpAnswer:
        """Answer one request to a health endpoint from the monitor's cached results.

        Args:
            probe: ``livez``, ``readyz`` or ``healthz``.
            check: A single check to answer for (``/readyz/<check>``), or None for all.
            query: The query parameters, each with all its values (``verbose``, ``exclude``).
            authorization: The ``Authorization`` header value, if any.

        Returns:
            The answer.
        """
        monitor = self._monitor
        exclude = tuple(
            name for value in query.get("exclude", ()) for name in value.split(",") if name
        )
        verbose = "verbose" in query
        details = self._options.authorized(authorization)
        key = (probe, check, exclude, verbose, details)
        cached = self._cache.get(key)
        if (
            cached is not None
            and cached[0] == monitor.generation
            and monitor.clock.monotonic() < cached[1]
        ):
            return cached[2]
        try:
            report = monitor.probe(probe, exclude=exclude, only=check)
        except KeyError:
            body = dumps({"status": "fail", "output": f"no {probe.value} check named {check}"})
            return HttpAnswer(404, HEALTH_JSON, body.encode())
        code = _HTTP_STATUS[report.status]
        if verbose:
            answer = HttpAnswer(code, _TEXT, _verbose(report, details).encode())
        else:
            answer = HttpAnswer(code, HEALTH_JSON, _json(report, details, self._options).encode())
        if len(self._cache) >= self.MAX_ENTRIES:
            self._cache.clear()
        self._cache[key] = (report.generation, report.valid_until, answer)
        return answer


def _reason(check: CheckReport, details: bool) -> str:
    """Return why a check is not passing; the check's own output only with details."""
    if check.result is None:
        return "no result yet"
    if check.stale:
        return f"latest result is {check.age:.0f} s old, too old to trust"
    if not details:
        return "reason withheld"
    return check.result.output or "failed"


def _verbose(report: ProbeReport, details: bool) -> str:
    """Return the Kubernetes ``?verbose`` text: one ``[+]``/``[-]`` line per check."""
    lines = []
    for check, status in zip(report.checks, report.counted, strict=True):
        if status == HealthStatus.FAIL:
            lines.append(f"[-]{check.name} failed: {_reason(check, details)}")
        elif status == HealthStatus.WARN:
            lines.append(f"[+]{check.name} degraded: {_reason(check, details)}")
        elif check.status == HealthStatus.UNKNOWN:
            lines.append(f"[+]{check.name} ok: no result yet")
        else:
            lines.append(f"[+]{check.name} ok")
    lines.extend(f"[+]{name} excluded: ok" for name in report.excluded)
    if report.draining:
        lines.append("[-]shutdown failed: draining")
    outcome = "failed" if report.status == HealthStatus.FAIL else "passed"
    lines.append(f"{report.probe.value} check {outcome}")
    return "\n".join(lines) + "\n"


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(report: ProbeReport, details: bool, options: HttpOptions) -> str:
    fields = {
        "version": options.version,
        "releaseId": options.release_id,
        "serviceId": options.service_id,
        "description": options.description,
    }
    body: dict[str, Any] = {"status": report.status.value}
    body.update({key: value for key, value in fields.items() if value is not None})
    checks = dict(
        _check_object(check, status, details)
        for check, status in zip(report.checks, report.counted, strict=True)
    )
    if report.draining:
        checks["shutdown"] = [{"status": "fail", "output": "draining"}]
    body["checks"] = checks
    if report.excluded:
        body["notes"] = [f"excluded: {', '.join(report.excluded)}"]
    return dumps(body, separators=(",", ":"))


def _check_object(
    check: CheckReport, status: HealthStatus, details: bool
) -> tuple[str, list[dict[str, Any]]]:
    """Return the draft's ``"<component>:<measurement>": [{...}]`` entry of one check.

    Only the draft's fields: ``componentType``, ``status`` and ``time`` for everyone; with
    details ``observedValue``/``observedUnit`` (the check's own, else its response time in
    ms) and, unless it passes, ``output``. Other observed values stay in `CheckReport`.
    """
    result = check.result
    observed: Mapping[str, Any] = result.observed if result is not None else {}
    measurement = str(observed.get("measurement", "responseTime"))
    item: dict[str, Any] = {
        "componentType": str(observed.get("componentType", "component")),
        "status": status.value,
    }
    if result is not None:
        item["time"] = _iso(result.time)
    if details and result is not None:
        if "observedValue" in observed:
            item["observedValue"] = observed["observedValue"]
            item["observedUnit"] = str(observed.get("observedUnit", ""))
        else:
            item["observedValue"] = round(result.duration * 1000, 3)
            item["observedUnit"] = "ms"
    if status != HealthStatus.PASS:
        item["output"] = _reason(check, details)
    return f"{check.name}:{measurement}", [item]
