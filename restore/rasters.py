"""Images read and written a band of rows at a time, so a frame never has to fit in memory.

A *raster* is anything of shape ``(C, H, W)`` whose rows can be read: a NumPy array, or a
:class:`FileRaster` (an uncompressed image inside a file: planes one after another, or samples
interleaved per pixel as in RGB TIFFs). Writers create a file at its final size with its metadata
(tifffile with ``data=None``, FITS headers through astropy) and then fill it with :func:`copy_rows`,
band by band; the pipeline keeps large restorations in float32 scratch rasters on disk
(:func:`scratch`) until their metadata (the chi-square) is known.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> r = scratch(pathlib.Path(tempfile.mkdtemp()), (2, 5, 3))
    >>> r.write_rows(1, np.ones((2, 2, 3), np.float32))
    >>> read_rows(r, 0, 5)[0, :, 0].tolist()
    [0.0, 1.0, 1.0, 0.0, 0.0]
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

BAND_BYTES = 4 * 2**20  # rows copied at a time: about this many bytes of float32


def to_dtype(arr: np.ndarray, dtype: Any) -> np.ndarray:
    """Round and clip to an integer dtype's range, or cast to a float dtype."""
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return np.clip(np.rint(np.nan_to_num(arr)), info.min, info.max).astype(dt)
    return arr.astype(dt)


class FileRaster:
    """An uncompressed ``(C, H, W)`` image at byte ``offset`` of ``path``, ``dtype`` with its byte order.

    ``samples`` planes are interleaved per pixel in each page (``samples=3``: an RGB TIFF); plane
    ``p`` lives in page ``p % pages``, sample ``p // pages`` (the order in which readers that move
    samples first see them). Values are cast to ``dtype`` on writing (integers rounded and clipped).
    """

    def __init__(self, path: str | Path, offset: int, shape: tuple[int, int, int], dtype: Any, samples: int = 1) -> None:
        if shape[0] % samples:
            raise ValueError(f"{shape[0]} planes do not divide into pages of {samples} samples")
        self.path, self.offset, self.shape = Path(path), int(offset), tuple(int(s) for s in shape)
        self.dtype, self.samples = np.dtype(dtype), samples

    @property
    def pages(self) -> int:
        return self.shape[0] // self.samples

    def _page_bytes(self) -> int:
        return self.shape[1] * self.shape[2] * self.samples * self.dtype.itemsize

    def _row_bytes(self) -> int:
        return self.shape[2] * self.samples * self.dtype.itemsize

    def _page_planes(self, page: int) -> list[int]:
        return [s * self.pages + page for s in range(self.samples)]

    def write_rows(self, top: int, block: np.ndarray) -> None:
        """Write ``block`` ``(C, n, W)`` as rows ``top .. top + n`` of every plane."""
        if block.shape[0] != self.shape[0] or block.shape[2] != self.shape[2] or top + block.shape[1] > self.shape[1]:
            raise ValueError(f"rows {top}..{top + block.shape[1]} of shape {block.shape} do not fit {self.shape}")
        with open(self.path, "r+b") as fh:
            for page in range(self.pages):
                values = to_dtype(block[self._page_planes(page)], self.dtype)
                fh.seek(self.offset + page * self._page_bytes() + top * self._row_bytes())
                fh.write(np.ascontiguousarray(np.moveaxis(values, 0, -1)).tobytes())

    def read_rows(self, top: int, n: int) -> np.ndarray:
        """Rows ``top .. top + n`` of every plane, as float32 ``(C, n, W)``."""
        n = max(0, min(n, self.shape[1] - top))
        out = np.empty((self.shape[0], n, self.shape[2]), np.float32)
        with open(self.path, "rb") as fh:
            for page in range(self.pages):
                fh.seek(self.offset + page * self._page_bytes() + top * self._row_bytes())
                raw = np.fromfile(fh, self.dtype, n * self.shape[2] * self.samples)
                out[self._page_planes(page)] = np.moveaxis(raw.reshape(n, self.shape[2], self.samples), -1, 0)
        return out


Raster = np.ndarray | FileRaster


def read_rows(source: Raster, top: int, n: int) -> np.ndarray:
    """Rows ``top .. top + n`` of a raster ``(..., H, W)`` (fewer at its bottom), as a float32 array."""
    if isinstance(source, FileRaster):
        return source.read_rows(top, n)
    return np.asarray(source[..., top : top + n, :], dtype=np.float32)


def write_rows(target: Raster, top: int, block: np.ndarray) -> None:
    """Write ``block`` ``(..., n, W)`` as rows ``top .. top + n`` of a raster."""
    if isinstance(target, FileRaster):
        target.write_rows(top, block)
    else:
        target[..., top : top + block.shape[-2], :] = block


def preview(source: Raster, limit: int = 1024) -> np.ndarray:
    """Every ``step``-th pixel of a raster ``(C, H, W)``, ``step`` the smallest that keeps both sides within ``limit``."""
    c, h, w = source.shape
    step = max(1, -(-max(h, w) // limit))
    rows = max(step, BAND_BYTES // max(1, 4 * w * c) // step * step)
    return np.concatenate([read_rows(source, top, rows)[:, ::step, ::step] for top in range(0, h, rows)], axis=1)


def bands(height: int, width: int, planes: int, budget: int = BAND_BYTES) -> Iterator[tuple[int, int]]:
    """``(top, n)`` bands of rows covering ``height`` rows, each about ``budget`` bytes of float32."""
    step = max(1, budget // max(1, 4 * width * planes))
    for top in range(0, height, step):
        yield top, min(step, height - top)


def copy_rows(source: Raster, target: FileRaster) -> None:
    """Copy a raster into a file raster of the same shape, band by band."""
    if tuple(source.shape) != target.shape:
        raise ValueError(f"cannot copy shape {tuple(source.shape)} into {target.shape}")
    c, h, w = target.shape
    for top, n in bands(h, w, c):
        target.write_rows(top, read_rows(source, top, n))


def materialise(source: Raster) -> np.ndarray:
    """The whole raster as a float32 array (for formats that cannot be written by rows)."""
    return read_rows(source, 0, source.shape[-2])


def scratch(directory: str | Path, shape: tuple[int, int, int], prefix: str = ".restore-scratch.") -> FileRaster:
    """A zero-filled float32 raster in a new file in ``directory`` (sparse where the file system allows),
    named ``<prefix>XXXX.scratch.f32``."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".scratch.f32", dir=directory)
    os.close(fd)
    os.truncate(name, int(np.prod(shape)) * 4)
    return FileRaster(name, 0, shape, np.float32)


def allocate(path: str | Path, size: int) -> None:
    """Extend a file to ``size`` bytes (zeros), keeping what is written."""
    if os.path.getsize(path) < size:
        os.truncate(path, size)
