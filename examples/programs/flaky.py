"""A program that crashes after a random short while, to watch backoff and intensity work."""

from __future__ import annotations

import random
import sys
import time

if __name__ == "__main__":
    life = random.uniform(0.5, 3.0)
    print(f"flaky: will crash in {life:.1f} s", flush=True)
    time.sleep(life)
    print("flaky: crashing now", file=sys.stderr, flush=True)
    sys.exit(1)
