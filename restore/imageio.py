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

import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RestoreError
from .rasters import FileRaster, Raster, allocate, copy_rows, materialise, to_dtype

PIL_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
TIFF_SUFFIXES = {".tif", ".tiff"}
FITS_SUFFIXES = {".fits", ".fit", ".fts", ".fits.gz", ".fit.gz"}


MAX_VALUES = 1 << 28
"""The largest image read, in values (planes x rows x columns: 1 GiB as float32); a file declaring
more is refused from its header, before anything is allocated."""

MAX_OUTPUT_VALUES = 1 << 32
"""The largest result written, in values (16 GiB as float32 scratch files); refused before the search."""

SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"BM", "BMP"), (b"GIF8", "GIF"),
              (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"II+\x00", "TIFF"), (b"MM\x00+", "TIFF"),
              (b"SIMPLE  =", "FITS"), (b"\x1f\x8b", "gzip"))
CONTENTS = {"pil": {"PNG", "JPEG", "BMP", "WebP"}, "tiff": {"TIFF"}, "fits": {"FITS", "gzip"}}


def file_kind(path: str | Path) -> str:
    """``"pil"``, ``"tiff"`` or ``"fits"`` from a file name; raises :class:`RestoreError` otherwise."""
    name = Path(path).name.lower()
    for kind, suffixes in (("fits", FITS_SUFFIXES), ("tiff", TIFF_SUFFIXES), ("pil", PIL_SUFFIXES)):
        if any(name.endswith(s) for s in suffixes):
            return kind
    raise RestoreError("unsupported file type (expected PNG/JPEG/WebP, TIFF or FITS)", source=path)


def sniff(path: str | Path) -> str | None:
    """The format a file's first bytes announce (``"PNG"``, ``"TIFF"``, ``"FITS"``, ...), None if unknown."""
    with open(path, "rb") as fh:
        head = fh.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in SIGNATURES if head.startswith(magic)), None)


def check_content(path: str | Path, kind: str) -> None:
    """A one-line error when a file is empty, or its bytes are of another format than its name says."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise RestoreError("cannot read image (the file is empty)", source=path)
    content = sniff(path)
    if content is not None and content not in CONTENTS[kind]:
        raise RestoreError(f"is a {content} file named {''.join(path.suffixes[-1:])}: rename it", source=path)


def check_array(shape: tuple[int, ...], dtype: Any, source: str | Path) -> None:
    """Refuse, before allocation, an image of more than :data:`MAX_VALUES` values or of a dtype that
    holds no intensities (complex, boolean)."""
    values = int(np.prod(shape, dtype=np.float64))
    if values > MAX_VALUES:
        raise RestoreError(f"too large: declares {' x '.join(map(str, shape))} = {values:,} values "
                           f"(limit {MAX_VALUES:,}); cut it into pieces first", source=source)
    kind = np.dtype(dtype).kind
    if kind in "cb":
        what = "complex" if kind == "c" else "boolean (a mask?)"
        raise RestoreError(f"holds {what} data ({np.dtype(dtype)}), not intensities", source=source)


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
    check_dims(data.shape, source)
    return data[None] if data.ndim == 2 else data


def check_dims(shape: tuple[int, ...], source: str | Path = "array") -> None:
    """A one-line error unless ``shape`` is that of an image, ``(H, W)`` or ``(C, H, W)``."""
    if len(shape) not in (2, 3):
        raise RestoreError(f"an image must have 2 or 3 dimensions, (H, W) or (C, H, W), got shape {tuple(shape)}",
                           source=source)


def _read_pil(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    from PIL import Image

    try:
        img = Image.open(path)
    except Image.DecompressionBombError as err:
        raise RestoreError(f"too large ({err})", source=path) from None
    with img:
        check_array((len(img.getbands()), img.height, img.width), np.uint8, path)
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


@contextmanager
def quiet_tifffile() -> Iterator[None]:
    """tifffile logs its notes on odd files to stderr; restore reports problems in one line of its own."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _parse_tiff(tif: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """The first series of an open TIFF (:func:`read_tiff`) as ``(C, H, W)`` float32, with its layout."""
    arr = tif.series[0].asarray()
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
        raise RestoreError(f"expected a 2-D or 3-D TIFF image, got shape {arr.shape}", source=tif.filehandle.path)
    return arr.astype(np.float32), {"format": "tiff", "dtype": str(dtype), "layout": layout, "noise": noise}


def _read_fits(path: Path, hdu: int | None) -> tuple[np.ndarray, dict[str, Any]]:
    from astropy.io import fits

    with warnings.catch_warnings(record=True) as caught, fits.open(path, memmap=False) as hdul:
        warnings.simplefilter("always")  # astropy's notes on non-standard cards are not for the user
        if hdu is None:
            candidates = [i for i, h in enumerate(hdul) if h.is_image and len(h.shape) >= 2]
            if not candidates:
                raise RestoreError("no image HDU with 2-D data", source=path)
            hdu = candidates[0]
        elif not 0 <= hdu < len(hdul) or not hdul[hdu].is_image or len(hdul[hdu].shape) < 2:
            raise RestoreError(f"HDU {hdu} holds no image data ({len(hdul)} HDUs)", source=path)
        image = hdul[hdu]
        check_dims(image.shape, path)
        check_array(image.shape, np.float32, path)
        header = checked_header(image.header, path)
        truncated = [w for w in caught if "truncated" in str(w.message)]
        if truncated:
            raise RestoreError(f"cannot read image ({' '.join(str(truncated[0].message).split())})", source=path)
        arr = np.array(image.data, dtype=np.float32)
    if any(k in header for k in ("BSCALE", "BZERO")) and np.isinf(arr).any():
        raise RestoreError(f"BSCALE = {header.get('BSCALE', 1)}, BZERO = {header.get('BZERO', 0)} scale the stored "
                           "integers beyond float32's range", source=path)
    return as_chw(arr, path), {"format": "fits", "header": header, "hdu": hdu}


def checked_header(header: Any, source: str | Path) -> Any:
    """A copy of a FITS header in which every number restore reads (:data:`NUMERIC_KEYWORDS`: scaling, WCS,
    noise) is a finite number; anything else (``CRPIX1 = NaN``, an unparsable card) is a one-line error."""
    header = header.copy()
    for card in header.cards:
        key = card.keyword
        if not NUMERIC_KEYWORDS.fullmatch(key):
            continue
        try:
            value = card.value
        except Exception:  # astropy's VerifyError: the card cannot be parsed at all
            value = card.image.partition("=")[2].strip()
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise RestoreError(f"header card {key} = {str(value).strip()!r} is not a finite number", source=source)
    return header


NOISE_KEYWORDS = {
    "gain": ("GAIN", "EGAIN", "CCDGAIN"),
    "read_noise": ("RDNOISE", "READNOIS", "RON", "READNOISE"),
    "sky": ("SKY", "BACKGND", "SKYLEVEL"),
    "sigma": ("SIGMA", "SKYSIG", "NOISESIG"),
    "offset": ("PEDESTAL", "BIASLEV", "BIASLVL"),
    "saturation": ("SATURATE", "SATLEVEL"),
}
"""FITS keywords for each noise parameter, first match wins (``restore.domains.fits.noise_cards`` writes the
first of each)."""

NUMERIC_KEYWORDS = re.compile("|".join([r"NAXIS\d*", *SCALING_KEYS, r"(CRPIX|CRVAL|CDELT)\d", r"(CD|PC)\d_\d",
                                         r"(A|B|AP|BP)_(\d+_\d+|ORDER)", r"PV\d_\d+", "WCSAXES",
                                         *(k for keys in NOISE_KEYWORDS.values() for k in keys)]))
"""Header keywords whose numbers restore reads from FITS files (scaling, WCS, noise)."""


def read_array(path: str | Path, hdu: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read an image file into a float32 ``(C, H, W)`` array and its metadata."""
    path = Path(path)
    if path.is_dir():
        raise RestoreError("is a folder, not an image file", source=path)
    if not path.is_file():
        raise RestoreError("file not found", source=path)
    kind = file_kind(path)
    if kind == "tiff":
        return read_tiff(path, _parse_tiff)
    check_content(path, kind)
    try:
        if kind == "pil":
            return _read_pil(path)
        return _read_fits(path, hdu)
    except RestoreError:
        raise
    except Exception as err:  # a corrupt file: report it in one line
        raise RestoreError(f"cannot read image ({type(err).__name__}: {err})", source=path) from None


def read_tiff(path: Path, parse: Callable[[Any], Any]) -> Any:
    """``parse(tifffile.TiffFile)`` on an open TIFF; a corrupt file becomes a one-line :class:`RestoreError`."""
    import tifffile

    check_content(path, "tiff")
    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            check_array(series.shape, series.dtype, path)
            return parse(tif)
    except RestoreError:
        raise
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
