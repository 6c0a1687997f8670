"""Coming from tenacity, stamina or backoff: their keywords, refused with ours named.

The rule, one for every peer: a keyword we share with them in name and meaning works
(stamina's ``on=`` and ``attempts=``, tenacity's ``reraise=`` and ``stop=`` given one of our
`Stop` objects); every other one is refused with what to write instead, even where the mapping
is one to one (stamina's ``timeout=`` is our ``deadline=``). An alias would leave two spellings
to read in one code base, and "timeout" already means the per-attempt `Timeout` here.
"""

from __future__ import annotations

from selfheal._calls import peer_keywords

__all__ = ["FOREIGN", "check_options", "peer_object", "stop_error"]

_HELP = "see selfheal help policies"

_HOOKS = (
    "use bus=EventBus() and subscribe to 'retry.<name>.retrying' (each failed attempt that "
    "will be retried, with attempt, delay and error) and 'retry.<name>.gave_up'"
)

#: A peer's keyword that we do not take: the peer, and what to write instead.
FOREIGN: dict[str, tuple[str, str]] = {
    "wait": (
        "tenacity",
        "use backoff= (wait_fixed(s) is backoff=s, wait_exponential(multiplier=m, max=b) is "
        "backoff=ExponentialBackoff(initial=m, max=b), wait_random(a, b) is "
        "backoff=RandomJitter(a, b); backoffs add up with +)",
    ),
    "retry": (
        "tenacity",
        "use on= for errors (retry_if_exception_type(E) is on=E, retry_if_exception(pred) is "
        "on=pred) or retry_on_result= for results (retry_if_result(pred))",
    ),
    "before": ("tenacity", _HOOKS),
    "after": ("tenacity", _HOOKS),
    "before_sleep": ("tenacity", _HOOKS),
    "retry_error_callback": (
        "tenacity",
        "put selfheal.fallback(callback, on=RetryError) before the retry in a "
        "selfheal.pipeline(...), or catch RetryError",
    ),
    "retry_error_cls": (
        "tenacity",
        "giving up raises RetryError, or the last error itself with reraise=True",
    ),
    "sleep": ("tenacity", "use clock= (a selfheal.Clock; selfheal.testing.FakeClock in tests)"),
    "timeout": ("stamina", "use deadline= (seconds from the first attempt, in all)"),
    "wait_initial": ("stamina", "use backoff=ExponentialBackoff(initial=...)"),
    "wait_max": ("stamina", "use backoff=ExponentialBackoff(max=...)"),
    "wait_jitter": ("stamina", "use backoff=ExponentialBackoff(jitter=...)"),
    "wait_exp_base": ("stamina", "use backoff=ExponentialBackoff(multiplier=...)"),
    "max_tries": ("backoff", "use attempts="),
    "max_time": ("backoff", "use deadline="),
}

#: Ours, but meaningless in one front end: (front end, keyword) -> why and what instead.
_NOT_HERE = {
    ("retrying", "retry_on_result"): (
        "a with-block has no result to look at; check it inside the block and raise an "
        "error that on= retries"
    ),
}


#: Refuses keywords that are not in `valid`, naming our equivalent of a peer's, one line per
#: bad keyword, all of them at once: ``check_options(owner, given, valid)``.
check_options = peer_keywords(FOREIGN, _HELP.removeprefix("see "), owned=_NOT_HERE)


def peer_object(value: object) -> str | None:
    """Describe a tenacity strategy given where ours belongs, with what to write instead.

    Returns:
        E.g. ``"tenacity's stop_after_attempt(5): use attempts=5"``, or None when `value`
        is not tenacity's.
    """
    kind = type(value)
    if kind.__module__.partition(".")[0] != "tenacity":
        return None
    name = kind.__name__
    if name == "stop_after_attempt":
        n = getattr(value, "max_attempt_number", "N")
        return f"tenacity's {name}({n}): use attempts={n}"
    if name == "stop_after_delay":
        seconds = getattr(value, "max_delay", "S")
        shown = f"{seconds:g}" if isinstance(seconds, float) else str(seconds)
        return f"tenacity's {name}({shown}): use deadline={shown}"
    if name.startswith("stop"):
        advice = "attempts=, deadline=, or stop=StopAfterAttempts(n) | StopAfterDelay(s)"
    elif name.startswith("wait"):
        advice = "backoff= (ExponentialBackoff, ConstantBackoff, RandomJitter...)"
    else:
        advice = "on= or retry_on_result="
    return f"tenacity's {name}: use {advice} ({_HELP})"


def stop_error(stop: object) -> str:
    """Return the message for a `stop` that is not one of our `Stop` objects."""
    peer = peer_object(stop)
    got = peer if peer is not None else repr(stop)
    return (
        "retry: stop= takes a selfheal Stop (StopAfterAttempts(n), StopAfterDelay(s), "
        f"StopAtDeadline(s), combined with | and &), got {got}"
    )
