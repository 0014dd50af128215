"""Microscopy: 8/16-bit and float TIFF, ImageJ hyperstacks and OME-TIFF through tifffile.

Every plane of a stack (Z, T, channels) becomes one plane of the observation and is restored on
its own by a single-channel prior (batched). Each plane is normalised by its own percentiles
(``percentiles``, default 0.1 and 99.9), stored with the observation so the inverse is exact.
Outputs keep the input's flavour (OME-TIFF, ImageJ or plain TIFF) and dtype (clipped to its
range), with the pixel size (``PhysicalSizeX/Y``, ImageJ/TIFF resolution) divided by the factor.

Example:
    >>> import numpy as np
    >>> obs = Observation.from_array(np.arange(32, dtype=np.float32).reshape(2, 4, 4))
    >>> from restore.spec import MicroscopyDomainSpec
    >>> norm = MicroscopyAdapter(MicroscopyDomainSpec(percentiles=(0.0, 100.0))).normalisation(obs)
    >>> float(norm.forward(__import__("torch").from_numpy(obs.data)).min())
    -1.0
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RestoreError
from ..imageio import atomic_write, description, file_kind, read_tiff, text_noise, write_tiff
from ..rasters import Raster
from ..spec import MicroscopyDomainSpec
from .base import DomainAdapter, LinearScale, Observation, percentile_scale


def _ome_pixels(xml: str) -> dict[str, Any]:
    """``PhysicalSize*`` attributes (and units) of the first OME ``Pixels`` element."""
    root = ET.fromstring(xml)
    for element in root.iter():
        if element.tag.endswith("Pixels"):
            return {k: v for k, v in element.attrib.items() if k.startswith("PhysicalSize")}
    return {}


def _parse_stack(tif: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """The first series of an open TIFF and what is needed to write it back in the same flavour."""
    series, page = tif.series[0], tif.pages.first
    data = series.asarray()
    meta: dict[str, Any] = {"format": "tiff", "dtype": str(data.dtype), "axes": series.axes, "shape": data.shape,
                            "resolutionunit": int(page.resolutionunit), "resolution": page.resolution}
    meta["noise"] = text_noise(page.description, tif.ome_metadata if tif.is_ome else None)
    if tif.is_ome and tif.ome_metadata:
        meta["flavour"], meta["physical"] = "ome", _ome_pixels(tif.ome_metadata)
    elif tif.is_imagej:
        meta["flavour"], meta["imagej"] = "imagej", dict(tif.imagej_metadata or {})
    else:
        meta["flavour"] = "plain"
    return data, meta


class MicroscopyAdapter(DomainAdapter):
    kind = "microscopy"

    spec_class = MicroscopyDomainSpec

    def normalisation(self, obs: Observation, gain: float = 1.0) -> LinearScale:
        return percentile_scale(obs, self.spec.percentiles)  # type: ignore[attr-defined]

    def read(self, path: str | Path) -> Observation:
        path = Path(path)
        if file_kind(path) != "tiff":
            return super().read(path)
        data, meta = read_tiff(path, _parse_stack)
        axes = meta["axes"]
        if "Y" not in axes or "X" not in axes or axes[-2:] not in ("YX", "YS"):
            raise RestoreError(f"unsupported TIFF axes {axes!r} (expected ...YX)", source=path)
        if axes.endswith("S"):  # RGB samples: planes first
            data = np.moveaxis(data, -1, 0)
            meta["samples_last"] = True
        planes = data.reshape(-1, *data.shape[-2:]).astype(np.float32)
        return Observation(data=planes, mask=np.isfinite(planes), noise=meta["noise"], meta=meta, source=str(path))

    def write_image(self, path: str | Path, planes: Raster, meta: dict[str, Any], factor: float,
                    text: dict[str, str], overwrite: bool = False) -> None:
        """Write planes as a stack of the input's axes, flavour and dtype, with the pixel size divided by ``factor``."""
        if meta.get("format") != "tiff" or "axes" not in meta:
            return super().write_image(path, planes, meta, factor, text, overwrite)
        f = factor
        shape = list(meta["shape"])
        samples = shape[-1] if meta.get("samples_last") else 1
        if samples > 1:
            shape[-3:-1] = planes.shape[-2:]
        else:
            shape[-2:] = planes.shape[-2:]
        note = description(text)
        kwargs: dict[str, Any] = {}
        if meta["flavour"] == "ome":
            physical = dict(meta.get("physical", {}))
            for key in ("PhysicalSizeX", "PhysicalSizeY"):
                if key in physical:
                    physical[key] = float(physical[key]) / f
            kwargs = {"ome": True, "metadata": {"axes": meta["axes"], **physical, "Description": note}}
        elif meta["flavour"] == "imagej":
            ij = {k: v for k, v in meta.get("imagej", {}).items() if k in ("unit", "spacing", "finterval", "Labels")}
            kwargs = {"imagej": True, "metadata": {"axes": meta["axes"], **ij}, "resolution": _finer(meta["resolution"], f)}
        else:
            kwargs = {"description": note, "resolution": _finer(meta["resolution"], f),
                      "resolutionunit": meta.get("resolutionunit", 1)}
        def write(tmp: Path) -> None:
            write_tiff(tmp, planes, shape, meta["dtype"], samples=samples, **kwargs)

        atomic_write(path, write, overwrite=overwrite)


def _finer(resolution: tuple[float, float], factor: float) -> tuple[float, float]:
    """TIFF resolution is pixels per unit: a grid ``factor`` times finer has ``factor`` times more."""
    return (float(resolution[0]) * factor, float(resolution[1]) * factor)
