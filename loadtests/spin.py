"""Busy-waiting inside one C-level loop: the core kept busy with no bytecode and a few hundred
bytes of data (the batch-cost bench's ``busy`` gap, the offgil model's helper).

    python -m loadtests.spin     # helper: reads a duration (s) per line, spins it, answers "ok"
"""

from __future__ import annotations

import collections
import itertools
import sys
import time


def spin(until_s: float) -> None:
    """Busy-wait until ``time.perf_counter() >= until_s``."""
    clock = iter(time.perf_counter, None)  # an endless iterator of readings
    collections.deque(itertools.takewhile(until_s.__gt__, clock), maxlen=0)


def main() -> None:
    for line in sys.stdin:
        spin(time.perf_counter() + float(line))
        sys.stdout.write("ok\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
