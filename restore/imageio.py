"""Plain array I/O for PNG/JPEG/WebP, TIFF and FITS files, with atomic, non-clobbering writes.

Arrays come back as float32 ``(C, H, W)`` in the file's own units (8-bit images stay in 0..255,
FITS data are scaled by BSCALE/BZERO with BLANK as NaN). ``meta`` keeps what is needed to write a
result in the same flavour: the dtype, the channel layout, the FITS header, the image mode.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_array(d / "a.fits", np.ones((1, 4, 6), np.float32), {})
    >>> read_array(d / "a.fits")[0].shape
    (1, 4, 6)
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RestoreError
from .rasters import FileRaster, Raster, allocate, copy_rows, materialise, to_dtype

PIL_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
TIFF_SUFFIXES = {".tif", ".tiff"}
FITS_SUFFIXES = {".fits", ".fit", ".fts", ".fits.gz", ".fit.gz"}


def file_kind(path: str | Path) -> str:
    """``"pil"``, ``"tiff"`` or ``"fits"`` from a file name; raises :class:`RestoreError` otherwise."""
    name = Path(path).name.lower()
    for kind, suffixes in (("fits", FITS_SUFFIXES), ("tiff", TIFF_SUFFIXES), ("pil", PIL_SUFFIXES)):
        if any(name.endswith(s) for s in suffixes):
            return kind
    raise RestoreError("unsupported file type (expected PNG/JPEG/WebP, TIFF or FITS)", source=path)


SCALING_KEYS = ("BSCALE", "BZERO", "BLANK")
"""FITS keywords of the stored integers' scaling: dropped when float32 data are written."""


def clean_header(header: Any, extra: tuple[str, ...] = ()) -> Any:
    """A copy of a FITS header without the scaling keywords (and ``extra`` structural ones)."""
    header = header.copy()
    for key in (*SCALING_KEYS, *extra):
        header.remove(key, ignore_missing=True, remove_all=True)
    return header


NOISE_TEXT = re.compile(r"restore-noise-(\w+)[=:]\s*([-+0-9.eE]+)")
"""Noise values ``restore simulate`` wrote as text (PNG chunks, TIFF/OME descriptions): ``restore-noise-gain=2``."""


def text_noise(*texts: str | None) -> dict[str, float]:
    """Noise values stated in text (see :data:`NOISE_TEXT`), for ``from_header`` outside FITS.

    Example:
        >>> text_noise("restore-seed=0; restore-noise-sigma=4; restore-noise-offset=-2.5")
        {'sigma': 4.0, 'offset': -2.5}
    """
    return {k: float(v) for text in texts if text for k, v in NOISE_TEXT.findall(text)}


def description(text: dict[str, str]) -> str | None:
    """``key=value; ...``: provenance text as one TIFF ImageDescription."""
    return "; ".join(f"{k}={v}" for k, v in text.items()) or None


def as_chw(array: Any, source: str | Path = "array", dtype: Any = np.float32) -> np.ndarray:
    """An ``(H, W)`` or ``(C, H, W)`` array as ``(C, H, W)`` of ``dtype``; anything else is a one-line error."""
    data = np.asarray(array, dtype=dtype)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise RestoreError(f"an image array must be (H, W) or (C, H, W), got shape {data.shape}", source=source)
    return data


def _read_pil(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    from PIL import Image

    with Image.open(path) as img:
        mode = img.mode
        if mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif mode not in ("L", "RGB", "RGBA", "I;16", "I", "F"):
            img = img.convert("RGB")
        arr = np.array(img)
        noise = text_noise(*(f"{k}={v}" for k, v in img.info.items() if isinstance(v, str)))
    dtype = arr.dtype if arr.dtype != np.int32 else np.dtype(np.uint16)
    arr = arr.astype(np.float32)
    arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    return arr, {"format": "pil", "dtype": str(dtype), "mode": mode, "noise": noise}


def _read_tiff(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        arr = tif.asarray()
        noise = text_noise(tif.pages.first.description)
    dtype = arr.dtype
    if arr.ndim == 2:
        layout = "HW"
        arr = arr[None]
    elif arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.shape[0] not in (3, 4):
        layout = "HWC"
        arr = np.moveaxis(arr, -1, 0)
    elif arr.ndim == 3:
        layout = "CHW"
    else:
        raise RestoreError(f"expected a 2-D or 3-D TIFF image, got shape {arr.shape}", source=path)
    return arr.astype(np.float32), {"format": "tiff", "dtype": str(dtype), "layout": layout, "noise": noise}


def _read_fits(path: Path, hdu: int | None) -> tuple[np.ndarray, dict[str, Any]]:
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        if hdu is None:
            candidates = [i for i, h in enumerate(hdul) if h.data is not None and h.is_image and h.data.ndim >= 2]
            if not candidates:
                raise RestoreError("no image HDU with 2-D data", source=path)
            hdu = candidates[0]
        elif not 0 <= hdu < len(hdul) or hdul[hdu].data is None:
            raise RestoreError(f"HDU {hdu} holds no image data", source=path)
        header = hdul[hdu].header.copy()
        arr = np.array(hdul[hdu].data, dtype=np.float32)
    return as_chw(arr, path), {"format": "fits", "header": header, "hdu": hdu}


def read_array(path: str | Path, hdu: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read an image file into a float32 ``(C, H, W)`` array and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise RestoreError("file not found", source=path)
    kind = file_kind(path)
    try:
        if kind == "pil":
            return _read_pil(path)
        if kind == "tiff":
            return _read_tiff(path)
        return _read_fits(path, hdu)
    except RestoreError:
        raise
    except Exception as err:  # a corrupt file: report it in one line
        raise RestoreError(f"cannot read image ({type(err).__name__}: {err})", source=path) from None


def read_tiff(path: Path, parse: Callable[[Any], Any]) -> Any:
    """``parse(tifffile.TiffFile)`` on an open TIFF; a corrupt file becomes a one-line :class:`RestoreError`."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return parse(tif)
    except Exception as err:
        raise RestoreError(f"cannot read TIFF ({type(err).__name__}: {err})", source=path) from None


def atomic_write(path: str | Path, writer: Callable[[Path], None], overwrite: bool = False) -> None:
    """Call ``writer(tmp)`` on a temporary file beside ``path``, then move it into place.

    Refuses to replace an existing file unless ``overwrite``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise RestoreError("output exists (use --overwrite or output.overwrite: true)", source=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix="".join(path.suffixes), dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        writer(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is for the temporary name only
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_pil(tmp: Path, source: Raster, meta: dict[str, Any], text: dict[str, str]) -> None:
    from PIL import Image, PngImagePlugin

    dtype = meta.get("dtype", "uint8")
    if np.dtype(dtype).kind == "f":
        dtype = "uint8"
    data = to_dtype(materialise(source), dtype)  # Pillow writes whole images only
    data = data[0] if data.shape[0] == 1 else np.moveaxis(data, 0, -1)
    img = Image.fromarray(data)
    if tmp.suffix.lower() == ".png":
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
        img.save(tmp, pnginfo=info)
    else:
        img.save(tmp, quality=95) if tmp.suffix.lower() in (".jpg", ".jpeg", ".webp") else img.save(tmp)


def write_tiff(tmp: Path, source: Raster, shape: tuple[int, ...], dtype: Any, samples: int = 1, **kwargs: Any) -> None:
    """Create an uncompressed TIFF holding an image of ``shape`` (tifffile's order of axes; samples
    interleaved last when ``samples > 1``) with ``kwargs`` for ``tifffile.imwrite``, then fill it from
    ``source`` ``(C, H, W)`` band by band."""
    import tifffile

    tifffile.imwrite(tmp, shape=tuple(shape), dtype=dtype, **kwargs)
    with tifffile.TiffFile(tmp) as tif:
        offset, order = tif.series[0].dataoffset, tif.byteorder
    if offset is None:  # pragma: no cover - tifffile writes uncompressed series contiguously
        raise RestoreError("TIFF data were not written contiguously", source=tmp)
    copy_rows(source, FileRaster(tmp, offset, tuple(source.shape), np.dtype(dtype).newbyteorder(order), samples))


def _write_tiff(tmp: Path, source: Raster, meta: dict[str, Any], text: dict[str, str]) -> None:
    c, h, w = source.shape
    layout = meta.get("layout", "HW" if c == 1 else "CHW")
    shape = {"HW": (h, w), "HWC": (h, w, c)}.get(layout, (c, h, w))
    write_tiff(tmp, source, shape, meta.get("dtype", "float32"), samples=c if layout == "HWC" else 1,
               description=description(text), photometric="rgb" if layout == "HWC" else None)


def write_fits(tmp: Path, hdus: list[tuple[Any, Raster]]) -> None:
    """Write float32 image HDUs (the first primary, the rest extensions) from ``(header, source)`` pairs,
    each source ``(C, H, W)`` (``C == 1`` is stored 2-D) filled band by band."""
    from astropy.io import fits

    tmp.write_bytes(b"")
    offset = 0
    for i, (header, source) in enumerate(hdus):
        c, h, w = source.shape
        shape = (h, w) if c == 1 else (c, h, w)
        kind = fits.PrimaryHDU if i == 0 else fits.ImageHDU
        card = kind(data=np.zeros((1,) * len(shape), np.float32), header=header).header
        for axis, n in enumerate(reversed(shape), 1):
            card[f"NAXIS{axis}"] = n
        block = card.tostring().encode("ascii")
        with open(tmp, "r+b") as fh:
            fh.seek(offset)
            fh.write(block)
        start = offset + len(block)
        copy_rows(source, FileRaster(tmp, start, (c, h, w), ">f4"))
        offset = start + -(-c * h * w * 4 // 2880) * 2880  # data padded to whole FITS blocks with zeros
        allocate(tmp, offset)


def _write_fits(tmp: Path, source: Raster, meta: dict[str, Any], text: dict[str, str]) -> None:
    from astropy.io import fits

    header = clean_header(meta["header"]) if meta.get("header") is not None else fits.Header()
    for key, value in text.items():
        header.add_history(f"{key}: {value}")
    write_fits(tmp, [(header, source)])


def write_array(
    path: str | Path,
    source: Raster,
    meta: dict[str, Any],
    text: dict[str, str] | None = None,
    overwrite: bool = False,
) -> None:
    """Write a ``(C, H, W)`` raster (an array, or a :class:`~restore.rasters.FileRaster` too large for
    memory: TIFF and FITS are written band by band) in the format named by ``path``'s suffix, atomically.

    ``text`` goes into PNG text chunks, the TIFF ImageDescription or FITS HISTORY cards.
    """
    if len(source.shape) != 3:
        raise ValueError(f"array must have shape (C, H, W), got {tuple(source.shape)}")
    kind = file_kind(path)
    writer = {"pil": _write_pil, "tiff": _write_tiff, "fits": _write_fits}[kind]
    if kind != meta.get("format", kind):
        warnings.warn(f"{path}: writing {meta.get('format')} data as {kind}; format metadata is not carried", stacklevel=2)
    atomic_write(path, lambda tmp: writer(tmp, source, meta, text or {}), overwrite=overwrite)
