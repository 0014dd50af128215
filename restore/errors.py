"""Errors that reach the user as one line naming the file and the problem."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class RestoreError(Exception):
    """A problem with the user's input (file, recipe, arguments), reported in one line.

    Example:
        >>> str(RestoreError("must be > 0", source="recipes/x.yaml", where="forward.0.psf.fwhm"))
        'recipes/x.yaml: forward.0.psf.fwhm: must be > 0'
    """

    def __init__(self, message: str, source: str | Path | None = None, where: str | None = None) -> None:
        self.message = " ".join(str(message).split())
        self.source = str(source) if source is not None else None
        self.where = where
        parts = [p for p in (self.source, self.where, self.message) if p]
        super().__init__(": ".join(parts))


@contextmanager
def about(source: str | Path) -> Iterator[None]:
    """Name ``source`` in the :class:`RestoreError` raised inside, when it names no file.

    Example:
        >>> try:
        ...     with about("a.fits"):
        ...         raise RestoreError("noise.gain must be > 0")
        ... except RestoreError as err:
        ...     str(err)
        'a.fits: noise.gain must be > 0'
    """
    try:
        yield
    except RestoreError as err:
        if err.source is not None:
            raise
        raise RestoreError(err.message, source=source, where=err.where) from None
