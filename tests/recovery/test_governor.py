"""The governor and its limits, tested as plain functions of time (no I/O, no waiting)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selfheal.recovery import (
    FlapDetector,
    FlapPolicy,
    Governor,
    Limits,
    RateLimit,
    TokenBucket,
    Verdict,
)


def test_token_bucket_refills_with_time() -> None:
    bucket = TokenBucket(RateLimit(per_second=0.5, burst=2), now=0.0)
    assert bucket.take(0.0)
    assert bucket.take(0.0)
    assert not bucket.take(1.0)
    assert bucket.take(2.0)
    assert not bucket.take(2.0)


@given(st.lists(st.floats(min_value=0, max_value=5), max_size=60))
def test_token_bucket_never_exceeds_burst_plus_rate(gaps: list[float]) -> None:
    limit = RateLimit(per_second=2.0, burst=3)
    bucket = TokenBucket(limit, now=0.0)
    now, taken = 0.0, 0
    for gap in gaps:
        now += gap
        taken += bucket.take(now)
    assert taken <= limit.burst + limit.per_second * now + 1e-9


def test_rate_limit_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="per_second"):
        RateLimit(per_second=0)


def test_flap_detector_has_hysteresis() -> None:
    det = FlapDetector(FlapPolicy(window=100, high=4, low=1))
    assert det.observe(False, 0) is None  # 1 change
    assert det.observe(True, 1) is None  # 2
    assert det.observe(True, 2) is None  # no change
    assert det.observe(False, 3) is None  # 3
    assert det.observe(True, 4) is True  # 4: flapping starts
    assert det.flapping
    # 2 changes left in the window: still above low, so still flapping (hysteresis).
    assert det.update(102) is None
    assert det.flapping
    assert det.update(103.5) is False  # only one change left
    assert not det.flapping


def test_flap_policy_validates() -> None:
    with pytest.raises(ValueError, match="low < high"):
        FlapPolicy(high=3, low=3)


LIMITS = Limits(cooldown=10, breaker_failures=2, breaker_reset=100, flap=None)


def test_governor_dedups_while_a_recovery_runs_and_folds_repeats() -> None:
    gov = Governor(None, 0)
    assert gov.trigger("web", LIMITS, 0).verdict is Verdict.RUN
    gov.begin("web", "r1")
    first = gov.trigger("web", LIMITS, 0)
    assert (first.verdict, first.first) == (Verdict.DEDUP, True)
    again = [gov.trigger("web", LIMITS, 0) for _ in range(98)]
    assert all(d.verdict is Verdict.DEDUP and not d.first for d in again)
    assert again[-1].repeats == 98
    # Another subject is independent.
    assert gov.trigger("db", LIMITS, 0).verdict is Verdict.RUN


def test_governor_cooldown_then_run() -> None:
    gov = Governor(None, 0)
    gov.trigger("web", LIMITS, 0)
    gov.begin("web", "r1")
    gov.finish("web", LIMITS, ok=True, now=5)
    assert gov.trigger("web", LIMITS, 14.9).verdict is Verdict.COOLDOWN
    assert gov.trigger("web", LIMITS, 15).verdict is Verdict.RUN


def test_governor_breaker_opens_after_k_failures_and_half_opens() -> None:
    limits = Limits(cooldown=0, breaker_failures=2, breaker_reset=100, flap=None)
    gov = Governor(None, 0)
    for now in (0, 1):
        assert gov.trigger("web", limits, now).verdict is Verdict.RUN
        gov.begin("web", f"r{now}")
        opened = gov.finish("web", limits, ok=False, now=now)
    assert opened
    assert gov.trigger("web", limits, 50).verdict is Verdict.BREAKER_OPEN
    # After the reset period one trial runs; its failure re-opens the breaker at once.
    assert gov.trigger("web", limits, 101).verdict is Verdict.RUN
    gov.begin("web", "trial")
    assert gov.finish("web", limits, ok=False, now=101)
    assert gov.trigger("web", limits, 102).verdict is Verdict.BREAKER_OPEN
    assert gov.trigger("web", limits, 202).verdict is Verdict.RUN
    gov.begin("web", "trial2")
    assert not gov.finish("web", limits, ok=True, now=202)
    assert gov.snapshot("web")["failures"] == 0


def test_governor_stops_a_flapping_subject_and_escalates_once() -> None:
    limits = Limits(cooldown=0, flap=FlapPolicy(window=60, high=4, low=1))
    gov = Governor(None, 0)
    now = 0.0
    verdicts = []
    escalations = []
    for _ in range(3):
        decision = gov.trigger("web", limits, now)
        verdicts.append(decision.verdict)
        escalations.append(decision.escalate)
        if decision.verdict is Verdict.RUN:
            gov.begin("web", "r")
            gov.finish("web", limits, ok=True, now=now + 1)
        now += 2
    # fail, ok, fail, ok: four changes; the third failure finds the subject flapping.
    assert verdicts == [Verdict.RUN, Verdict.RUN, Verdict.FLAPPING]
    assert escalations == [None, None, "flapping"]
    assert gov.trigger("web", limits, now).escalate is None  # told once per episode
    assert gov.snapshot("web")["flapping"]
    # Once the window has passed, the changes age out and automatic action resumes.
    assert gov.trigger("web", limits, now + 61).verdict is Verdict.RUN


def test_governor_rate_limit_is_global_and_only_spent_on_runs() -> None:
    gov = Governor(RateLimit(per_second=1 / 60, burst=2), 0)
    assert gov.trigger("a", LIMITS, 0).verdict is Verdict.RUN
    gov.begin("a", "r")
    assert gov.trigger("a", LIMITS, 0).verdict is Verdict.DEDUP  # no token spent
    assert gov.trigger("b", LIMITS, 0).verdict is Verdict.RUN
    assert gov.trigger("c", LIMITS, 1).verdict is Verdict.RATE_LIMITED
    assert gov.trigger("c", LIMITS, 61).verdict is Verdict.RUN


def test_dry_run_finish_only_starts_the_cooldown() -> None:
    limits = Limits(cooldown=10, breaker_failures=1, flap=FlapPolicy(window=60, high=2, low=0))
    gov = Governor(None, 0)
    assert gov.trigger("web", limits, 0).verdict is Verdict.RUN
    gov.begin("web", "dry")
    assert not gov.finish("web", limits, ok=False, now=0, sim=True)
    assert gov.snapshot("web")["failures"] == 0
    assert gov.trigger("web", limits, 5).verdict is Verdict.COOLDOWN


ops = st.lists(
    st.one_of(
        st.tuples(st.just("trigger"), st.sampled_from("ab")),
        st.tuples(st.just("finish"), st.sampled_from("ab"), st.booleans()),
        st.tuples(st.just("advance"), st.floats(min_value=0, max_value=50)),
    ),
    max_size=80,
)


@given(ops)
def test_governor_invariants(sequence: list[tuple[object, ...]]) -> None:
    limits = Limits(
        cooldown=5, breaker_failures=2, breaker_reset=30, flap=FlapPolicy(60, high=6, low=2)
    )
    rate = RateLimit(per_second=0.5, burst=2)
    gov = Governor(rate, 0.0)
    now = 0.0
    active: dict[str, bool] = {}
    ended_at: dict[str, float] = {}
    fails: dict[str, int] = {}
    opened_at: dict[str, float] = {}
    runs = 0
    for op in sequence:
        if op[0] == "advance":
            now += float(op[1])  # type: ignore[arg-type]
        elif op[0] == "trigger":
            key = str(op[1])
            verdict = gov.trigger(key, limits, now).verdict
            if verdict is Verdict.RUN:
                runs += 1
                # Never two recoveries of one subject, never inside its cooldown or while
                # its breaker is open.
                assert not active.get(key)
                assert now >= ended_at.get(key, -1e9) + limits.cooldown
                if key in opened_at:
                    assert now >= opened_at[key] + limits.breaker_reset
                gov.begin(key, "r")
                active[key] = True
            elif active.get(key):
                assert verdict is Verdict.DEDUP
        elif active.get(str(op[1])):
            key, ok = str(op[1]), bool(op[2])
            opened = gov.finish(key, limits, ok=ok, now=now)
            active[key] = False
            ended_at[key] = now
            fails[key] = 0 if ok else fails.get(key, 0) + 1
            assert opened == (fails[key] >= limits.breaker_failures)
            if opened:
                opened_at[key] = now
            elif ok:
                opened_at.pop(key, None)
        # The global bucket bounds the recoveries started over the whole run.
        assert runs <= rate.burst + rate.per_second * now + 1e-9
