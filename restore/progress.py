"""Progress for people and for logs: a live bar on a terminal, one line per stage otherwise (batch
jobs' logs get ``search: 300 steps in 4.1 s (chi2=1.02)``, not hundreds of carriage-return updates).

Example:
    >>> import io
    >>> log = io.StringIO()
    >>> bar = progress(range(3), "search", stream=log)
    >>> for _ in bar:
    ...     bar.set_postfix(chi2="1.0")
    >>> bar.close()
    >>> log.getvalue().startswith("search: 3 steps in ")
    True
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm import tqdm


def progress(iterable: Iterable[Any], desc: str, enabled: bool = True, stream: TextIO | None = None,
             unit: str = "steps", **options: Any) -> Any:
    """A ``tqdm`` bar when ``stream`` (default stderr) is a terminal, else a :class:`StageLine`; nothing when
    not ``enabled``. ``options`` go to ``tqdm``."""
    stream = stream if stream is not None else sys.stderr
    if enabled and stream.isatty():
        return tqdm(iterable, desc=desc, file=stream, **options)
    return StageLine(iterable, desc, stream if enabled else None, options.get("initial", 0), unit)


class StageLine:
    """Iterate like ``tqdm`` (``set_postfix``, ``close``) and write one line when closed."""

    def __init__(self, iterable: Iterable[Any], desc: str, stream: TextIO | None, initial: int = 0,
                 unit: str = "steps") -> None:
        self.iterable, self.desc, self.stream, self.unit = iterable, desc, stream, unit
        self.count, self.postfix, self.start = initial, "", time.perf_counter()
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable:
            yield item
            self.count += 1

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self.closed or self.stream is None:
            return
        self.closed = True
        tail = f" ({self.postfix})" if self.postfix else ""
        self.stream.write(f"{self.desc}: {self.count} {self.unit} in {time.perf_counter() - self.start:.1f} s{tail}\n")
        self.stream.flush()
