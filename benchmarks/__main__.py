"""`python -m benchmarks`: every benchmark of the core install, tables into benchmarks/RESULTS.md.

Works without ../shared: the quality benchmark then uses prior samples as truth and says so. The peer
comparison (DeepInverse) needs its own environment and runs separately: see `benchmarks/peer_deepinv.py`.
"""

from __future__ import annotations

import sys

from . import memory, quality, search_speed


def main() -> None:
    for module in (search_speed, memory, quality):
        sys.argv = [module.__name__, "--write"]
        module.main()
    print("peer comparison not run here (needs DeepInverse in a separate environment): "
          "PYTHONPATH=. ../bench-env/bin/python -m benchmarks.peer_deepinv --write")


if __name__ == "__main__":
    main()
