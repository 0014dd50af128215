"""Satellite / aerial: GeoTIFF scenes through tifffile, georeferencing and nodata kept.

Bands (RGB, RGB+NIR, single band; 8/16-bit or float) become planes of the observation; pixels equal
to nodata (``nodata`` or the ``GDAL_NODATA`` tag) are masked out of the likelihood in every band.
Values are scaled linearly from ``[low, high]`` to [-1, 1]; unset bounds are robust percentiles of
each band's valid pixels (default 0.5 and 99.5), so 8-bit, 16-bit and float scenes all work; the
bounds used are in the report.
The output GeoTIFF carries every GeoTIFF tag of the input (CRS keys, nodata, GDAL metadata) with
``ModelPixelScale`` divided by the factor and each ``ModelTiepoint`` moved to the finer grid:
``I' = I * f`` for PixelIsArea rasters, ``I' = I * f + (f - 1) / 2`` for PixelIsPoint, so the
scene's bounds are unchanged. A ``ModelTransformation`` matrix has its pixel-size terms divided by f.

Example:
    >>> from restore.spec import SatelliteDomainSpec
    >>> obs = Observation.from_array(np.arange(16, dtype=np.float32).reshape(1, 4, 4))
    >>> SatelliteAdapter(SatelliteDomainSpec(low=0, high=255)).normalisation(obs).forward(__import__("torch").zeros(1)).item()
    -1.0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RestoreError
from ..imageio import atomic_write, description, file_kind, read_tiff, text_noise, write_tiff
from ..rasters import Raster
from ..spec import SatelliteDomainSpec
from .base import DomainAdapter, Observation

GEO_TAGS = {33550: "d", 33922: "d", 34264: "d", 34735: "H", 34736: "d", 34737: "s", 42112: "s", 42113: "s"}
RASTER_TYPE_KEY, PIXEL_IS_POINT = 1025, 2


def raster_is_point(geokeys: tuple[int, ...] | None) -> bool:
    """Whether a GeoKeyDirectory declares ``RasterPixelIsPoint``."""
    if not geokeys:
        return False
    keys = np.asarray(geokeys).reshape(-1, 4)[1:]
    return any(int(k[0]) == RASTER_TYPE_KEY and int(k[3]) == PIXEL_IS_POINT for k in keys)


def rescale_geotags(tags: dict[int, Any], factor: float) -> dict[int, Any]:
    """GeoTIFF tags for a grid ``factor`` times finer covering the same ground."""
    out = dict(tags)
    if 33550 in out:
        sx, sy, *rest = out[33550]
        out[33550] = (sx / factor, sy / factor, *rest)
    if 33922 in out:
        shift = (factor - 1) / 2 if raster_is_point(out.get(34735)) else 0.0
        points = np.asarray(out[33922], dtype=np.float64).reshape(-1, 6)
        points[:, 0] = points[:, 0] * factor + shift
        points[:, 1] = points[:, 1] * factor + shift
        out[33922] = tuple(points.reshape(-1))
    if 34264 in out:
        m = np.asarray(out[34264], dtype=np.float64).reshape(4, 4)
        m[:, :2] /= factor
        if raster_is_point(out.get(34735)):
            m[:, 3] -= m[:, 0] * (factor - 1) / 2 + m[:, 1] * (factor - 1) / 2
        out[34264] = tuple(m.reshape(-1))
    return out


def _parse_scene(tif: Any) -> tuple[np.ndarray, dict[int, Any], bool, dict[str, float]]:
    """Pixels, raw GeoTIFF tags, whether bands are stored as separate planes, and noise stated in text."""
    page, series = tif.pages.first, tif.series[0]
    if len(series.pages) > 1 or series.ndim > 3:
        raise RestoreError(f"holds a stack of {len(series.pages)} pages (shape {series.shape}); the satellite domain "
                           "reads one scene per file: split the stack, or use the microscopy domain for stacks",
                           source=tif.filehandle.path)
    data = page.asarray()
    tags = {code: page.tags[code].value for code in GEO_TAGS if code in page.tags}
    planar = page.planarconfig == 2 and data.ndim == 3
    return data, tags, planar, text_noise(page.description)


class SatelliteAdapter(DomainAdapter):
    kind = "satellite"

    spec_class = SatelliteDomainSpec

    def read(self, path: str | Path) -> Observation:
        path = Path(path)
        if file_kind(path) != "tiff":
            return super().read(path)
        data, tags, planar, noise = read_tiff(path, _parse_scene)
        meta: dict[str, Any] = {"format": "tiff", "dtype": str(data.dtype), "geotags": tags, "planar": bool(planar)}
        if data.ndim == 2:
            data = data[None]
        elif not planar:
            data = np.moveaxis(data, -1, 0)
        data = data.astype(np.float32)
        nodata = self.spec.nodata  # type: ignore[attr-defined]
        if nodata is None and 42113 in tags:
            try:
                nodata = float(str(tags[42113]).strip("\x00 "))
            except ValueError:
                nodata = None
        mask = np.isfinite(data)
        if nodata is not None:
            mask &= ~np.any(data == nodata, axis=0, keepdims=True)
            meta["nodata"] = nodata
        return Observation(data=data, mask=mask, noise=noise, meta=meta, source=str(path))

    def write_image(self, path: str | Path, data: Raster, meta: dict[str, Any], factor: float,
                    text: dict[str, str], overwrite: bool = False) -> None:
        """Write bands as a GeoTIFF of the input's layout and dtype, georeferencing rescaled by ``factor``."""
        if "geotags" not in meta:
            return super().write_image(path, data, meta, factor, text, overwrite)
        tags = rescale_geotags(meta["geotags"], factor)
        extratags = [(code, GEO_TAGS[code], 0 if GEO_TAGS[code] == "s" else len(value), value, True)
                     for code, value in tags.items()]
        c, h, w = data.shape
        planar = meta.get("planar") or c not in (3, 4)
        shape = (h, w) if c == 1 else (c, h, w) if planar else (h, w, c)
        def write(tmp: Path) -> None:
            write_tiff(tmp, data, shape, meta["dtype"], samples=1 if planar else c, extratags=extratags,
                       description=description(text), planarconfig="separate" if planar and c > 1 else None,
                       photometric="minisblack" if planar else "rgb", metadata=None)

        atomic_write(path, write, overwrite=overwrite)
