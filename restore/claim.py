"""Exclusive claims on output files, so that two runs never write the same outputs and a run killed
with ``kill -9`` leaves nothing behind that the next run does not clean.

A claim is a small JSON placeholder ``.<stem>.claim`` beside the outputs, created with ``O_EXCL``
(atomic on local and NFSv3+ file systems) and naming the process that holds it. A second claim on
the same outputs fails at once while that process lives; once it is gone, the claim is stale and the
next claim removes what the dead run left: its scratch files and half-written temporaries (both start
with ``.<output name>.``) and any outputs it had finished.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with Claim(d, "a", [d / "a.restored.fits"]):
    ...     sorted(p.name for p in d.iterdir())
    ['.a.claim']
    >>> list(d.iterdir())
    []
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from types import TracebackType

from .errors import RestoreError


class Claim:
    """Hold ``directory/.<stem>.claim`` while ``outputs`` are written (a context manager)."""

    def __init__(self, directory: str | Path, stem: str, outputs: list[Path]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f".{stem}.claim"
        self.outputs = list(outputs)

    def __repr__(self) -> str:
        return f"Claim({self.path})"

    def leftovers(self) -> list[Path]:
        """Scratch files and temporaries of these outputs (``.<output name>.*``) now in the folder."""
        found: set[Path] = set()
        for out in self.outputs:
            found.update(self.directory.glob(f".{out.name}.*"))
        return sorted(found)

    def acquire(self) -> Claim:
        """Create the claim; a stale one (its process gone) is removed with what its run left."""
        for attempt in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if attempt or not _gone(holder):
                    raise RestoreError(f"outputs are being written by another run (pid {holder.get('pid')} on "
                                       f"{holder.get('host')}); if no such run is active, remove {self.path.name}",
                                       source=self.directory) from None
                for path in (*self.leftovers(), *(p for p in self.outputs if p.exists())):
                    path.unlink(missing_ok=True)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                           "outputs": [p.name for p in self.outputs]}, fh)
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def release(self) -> None:
        """Remove this run's leftovers and the claim."""
        for path in self.leftovers():
            path.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # being written right now, or unreadable: treated as held

    def __enter__(self) -> Claim:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _gone(holder: dict) -> bool:
    """Is the process named by a claim gone? Only decidable on this host; elsewhere it is assumed alive."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
