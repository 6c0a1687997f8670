"""What a scenario's settings may be: validated once, for the API and the config alike."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from selfheal._redact import redact
from selfheal.scheduling import JobOptions
from selfheal.synthetic._records import ScenarioOptions

__all__ = [
    "DEFAULT_TIMEOUT",
    "NAME_RULE",
    "name_ok",
    "retries_problem",
    "scenario_options",
    "url_problem",
]

#: A whole run may take this long by default (or the frequency, if shorter).
DEFAULT_TIMEOUT = 30.0

#: What a scenario's name must be: it is one segment of event types and appears in URLs.
NAME_RULE = "1-63 letters, digits, '_' or '-' starting with a letter or digit"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


def name_ok(name: object) -> bool:
    """Return whether `name` can name a scenario (see `NAME_RULE`)."""
    return isinstance(name, str) and _NAME_RE.match(name) is not None


def url_problem(url: object) -> str | None:
    """Return what is wrong with a base URL (without the URL), or None if it is fine."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an http:// or https:// URL with a host"
    return None


def shown(value: object) -> str:
    """Return a value for an error message, with any credentials in it hidden."""
    return repr(redact(value) if isinstance(value, str) else value)


def retries_problem(retries: object, delay: object, timeout: float) -> str | None:
    """Return what is wrong with a retry policy for runs of `timeout` seconds, or None."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        return f"retries must be an integer >= 0, got {retries!r}"
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not delay >= 0:
        return f"retry_delay must be a number of seconds >= 0, got {delay!r}"
    if retries and retries * delay >= timeout:
        return (
            f"retries * retry_delay ({retries * delay:g} s) must be less than the timeout "
            f"({timeout:g} s), or the retries cannot happen within a run"
        )
    return None


def scenario_options(
    where: str,
    *,
    frequency: float,
    timeout: float | None,
    jitter: float,
    retries: int,
    retry_delay: float,
    critical: bool,
    failure_threshold: int,
    success_threshold: int,
    max_age: float | None,
    base_url: str,
    suite: str | None,
) -> tuple[ScenarioOptions, JobOptions]:
    """Return a scenario's validated options, and the scheduler's options for its job.

    Args:
        where: The caller's name, which starts every error message.
        frequency: See `SyntheticTester.register_scenario`, as are the other arguments.
        timeout: Default: the smaller of `DEFAULT_TIMEOUT` and `frequency`.
        jitter: Fraction from 0 to 0.5.
        retries: Integer >= 0.
        retry_delay: Seconds >= 0; ``retries * retry_delay`` must fit in the timeout.
        critical: Whether failing fails readiness.
        failure_threshold: Integer >= 1.
        success_threshold: Integer >= 1.
        max_age: Seconds, or None for the default.
        base_url: The scenario's URL.
        suite: A non-empty name, or None.

    Raises:
        ValueError: A bad value; the message names it and what is valid.
    """
    if isinstance(frequency, bool) or not isinstance(frequency, int | float) or frequency <= 0:
        raise ValueError(f"{where}: frequency must be a number of seconds > 0, got {frequency!r}")
    timing = JobOptions.of(
        interval=frequency,
        timeout=min(DEFAULT_TIMEOUT, float(frequency)) if timeout is None else timeout,
        jitter=jitter,
        failure_threshold=failure_threshold,
        success_threshold=success_threshold,
        max_age=max_age,
        where=where,
    )
    problem = retries_problem(retries, retry_delay, timing.timeout)
    if problem is None and url_problem(base_url) is not None:
        problem = f"base_url {url_problem(base_url)}, got {shown(base_url)}"
    if problem is None and suite is not None and (not isinstance(suite, str) or not suite):
        problem = f"suite must be a non-empty string or None, got {suite!r}"
    if problem is not None:
        raise ValueError(f"{where}: {problem}")
    options = ScenarioOptions(
        frequency=timing.interval,
        timeout=timing.timeout,
        jitter=timing.jitter,
        retries=retries,
        retry_delay=float(retry_delay),
        critical=bool(critical),
        failure_threshold=timing.failure_threshold,
        success_threshold=timing.success_threshold,
        max_age=timing.max_age,
        base_url=base_url,
        suite=suite,
    )
    return options, timing
