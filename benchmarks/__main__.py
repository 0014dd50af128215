"""`python -m benchmarks`: every benchmark, tables into benchmarks/RESULTS.md.

Works without ../shared: the quality benchmark then uses prior samples as truth and says so.
"""

from __future__ import annotations

import sys

from . import quality, search_speed


def main() -> None:
    for module in (search_speed, quality):
        sys.argv = [module.__name__, "--write"]
        module.main()


if __name__ == "__main__":
    main()
