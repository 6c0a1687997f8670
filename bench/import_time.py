"""What ``import X`` costs: selfheal against the lightest peers, each in fresh interpreters.

Each library is imported in 20 fresh interpreters (``python -X importtime -c "import X"``); the
figure is the median of the top-level module's cumulative import time, so interpreter start-up
(the same for everyone) is left out. Libraries are interleaved round by round, so a busy moment
of the machine hits them alike.

Two rows for selfheal: the bare ``import selfheal`` (what an app pays at start: the top level
loads its subpackages only when a name is first used), and ``import selfheal`` followed by
``selfheal.retry`` (what an app that uses retry pays, for a like-for-like comparison with the
retry libraries, which load everything up front).

Target (issue 8): bare ``import selfheal`` costs no more than ``import backoff``.

    python bench/import_time.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CASES: dict[str, str] = {
    "selfheal": "import selfheal",
    "selfheal + retry": "import selfheal; selfheal.retry",
    "backoff": "import backoff",
    "circuitbreaker": "import circuitbreaker",
    "tenacity": "import tenacity",
    "stamina": "import stamina",
}


def _cumulative_us(code: str) -> int:
    """Return the microseconds ``code`` spent importing, from ``-X importtime``'s report."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    # Lines are "import time: self | cumulative | name"; the top-level modules a statement
    # imports are those with no indentation in the name column. Summing them counts each
    # module once however deep the tree.
    total = 0
    for line in out.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        if not name.startswith("  "):  # one space after the bar: a top-level import
            total += int(cumulative)
    return total


def main() -> None:
    """Print the medians and the ratios to backoff."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    samples: dict[str, list[int]] = {name: [] for name in CASES}
    for _ in range(args.rounds):
        for name, code in CASES.items():
            samples[name].append(_cumulative_us(code))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["backoff"]
    print(f"import time, median of {args.rounds} fresh interpreters (python -X importtime)")
    print(f"{'library':<20}{'median ms':>12}{'vs backoff':>12}")
    for name, value in medians.items():
        print(f"{name:<20}{value / 1000:>12.1f}{value / base:>11.2f}x")
    ratio = medians["selfheal"] / base
    verdict = "met" if ratio <= 1.0 else "NOT met"
    print(f"\ntarget: import selfheal <= import backoff: {ratio:.2f}x ({verdict})")


if __name__ == "__main__":
    main()
