"""Success-path overhead of selfheal's policies against their peers, in one run.

Run: ``make bench`` (installs the peers) or ``.venv/bin/python bench/policies.py [--quick]``.

Every module in ``bench/cases/`` exports ``CASES: list[Case]``; each group holds a ``bare``
row (the unprotected call), a ``selfheal`` row and the peers' rows. The table prints the
median ns per call over the bare call and each peer's overhead divided by selfheal's; the
targets the project set are checked at the end (exit status 1 if one is missed).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _harness import Case, cyclic_garbage, measure, median

# (group, peer, minimum peer/selfheal overhead ratio): the targets of issue #2.
TARGETS: list[tuple[str, str, float]] = [
    ("sync retry", "tenacity", 30.0),
    ("sync retry", "backoff", 5.0),
    ("sync breaker", "circuitbreaker", 2.0),
    ("async retry", "hyx", 2.0),
    ("async breaker", "hyx", 2.0),
    ("async timeout", "asyncio.timeout", 2.0),
]


def load_cases() -> list[Case]:
    """Import every ``bench/cases/*.py`` and collect their CASES."""
    import cases

    out: list[Case] = []
    for info in sorted(pkgutil.iter_modules(cases.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"cases.{info.name}")
        out.extend(module.CASES)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20k calls x 3 instead of 200k x 5")
    parser.add_argument("--only", help="run only groups containing this text")
    args = parser.parse_args()
    n, repeats = (20_000, 3) if args.quick else (200_000, 5)

    groups: dict[str, list[Case]] = {}
    for case in load_cases():
        if args.only and args.only not in case.group:
            continue
        groups.setdefault(case.group, []).append(case)

    overhead: dict[tuple[str, str], float] = {}
    garbage: dict[tuple[str, str], int] = {}
    print(f"{n} calls x {repeats} repeats, median ns per call; Python {sys.version.split()[0]}")
    for group, rows in groups.items():
        bare = median(measure(next(c for c in rows if c.name == "bare"), n, repeats))
        print(f"\n{group}  (bare call {bare:.0f} ns)")
        print(f"  {'library':<22}{'overhead ns':>12}{'x selfheal':>12}{'cyclic garbage':>16}")
        timed = []
        for case in rows:
            if case.name == "bare":
                continue
            over = median(measure(case, n, repeats)) - bare
            overhead[group, case.name] = over
            garbage[group, case.name] = cyclic_garbage(case)
            timed.append((case.name, over))
        ours = overhead.get((group, "selfheal"))
        for name, over in timed:
            ratio = f"{over / ours:.1f}" if ours and ours > 0 else "-"
            print(f"  {name:<22}{over:>12.0f}{ratio:>12}{garbage[group, name]:>16}")

    print("\ntargets (peer overhead / selfheal overhead >= target):")
    missed = 0
    for group, peer, want in TARGETS:
        ours, theirs = overhead.get((group, "selfheal")), overhead.get((group, peer))
        if ours is None or theirs is None:
            print(f"  {group:<16}{peer:<18}not measured")
            continue
        got = theirs / ours if ours > 0 else float("inf")
        ok = got >= want
        missed += not ok
        verdict = "ok" if ok else "MISSED"
        print(f"  {group:<16}{peer:<18}{got:8.1f}x  (target {want:.0f}x)  {verdict}")
    leaks = [k for k, v in garbage.items() if k[1] == "selfheal" and v]
    for group, _ in leaks:
        print(f"  {group:<16}cyclic garbage left by selfheal: {garbage[group, 'selfheal']}  MISSED")
    return 1 if missed or leaks else 0


if __name__ == "__main__":
    sys.exit(main())
