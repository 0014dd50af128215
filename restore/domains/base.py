"""Domain adapters: read a kind of file into an :class:`Observation`, normalise to the prior's range
and back (exactly invertible, differentiable), and write results with their metadata.

An observation holds one or more *planes* (``C`` of ``(C, H, W)``): colour channels for an RGB
prior, or independent planes (Z/T/channels of a microscopy stack, bands of a scene) that a
single-channel prior restores one by one, batched. An adapter is built from its spec (``spec_class``);
:func:`restore.domains.get_adapter` finds it by the recipe's ``domain.kind``.

``Observation.meta`` holds what the adapter needs to write a result in the input's flavour:
``format`` and ``dtype`` always; FITS ``header`` and ``hdu``; TIFF ``layout``/``axes``/``flavour``/
``physical``/``imagej``/``resolution``; GeoTIFF ``geotags``, ``planar``, ``nodata``; PIL ``mode``.

Example:
    >>> import torch
    >>> from restore.spec import ImageDomainSpec
    >>> adapter = LinearAdapter(ImageDomainSpec(low=0.0, high=255.0))
    >>> norm = adapter.normalisation(Observation.from_array(torch.zeros(1, 4, 4).numpy()))
    >>> x = torch.tensor([0.0, 127.5, 255.0])
    >>> norm.forward(x).tolist(), norm.inverse(norm.forward(x)).tolist()
    ([-1.0, 0.0, 1.0], [0.0, 127.5, 255.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import torch

from ..errors import RestoreError
from ..imageio import as_chw, read_array, write_array
from ..rasters import Raster
from ..spec import ImageDomainSpec, ObjectsLayoutSpec, Spec
from .fits import check_wcs, header_noise, rescale_wcs

if TYPE_CHECKING:  # pragma: no cover
    from ..geometry import Cutout
    from ..restoration import Restoration


@dataclass
class Observation:
    """An observed image: float32 ``data`` ``(C, H, W)`` in physical units, a validity ``mask``
    (True where the pixel enters the likelihood), noise parameters read from the file (``gain``,
    ``read_noise``, ``sky``, ``sigma``, ``offset``, ``saturation``) and file metadata (see the module)."""

    data: np.ndarray
    mask: np.ndarray
    noise: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = "array"

    @classmethod
    def from_array(cls, array: np.ndarray, source: str = "array") -> Observation:
        data = as_chw(array, source).copy()
        return cls(data=data, mask=np.isfinite(data), source=source)


def check_observation(obs: Observation, minimum: int = 1) -> None:
    """A one-line error for an observation nothing can be fitted to: fewer than ``minimum`` rows or columns,
    or a plane without one valid pixel (all NaN, infinite, BLANK, saturated, nodata or transparent)."""
    c, h, w = obs.data.shape
    if min(h, w) < minimum:
        raise RestoreError(f"too small: {h} x {w} pixels; the recipe's forward model needs at least "
                           f"{minimum} x {minimum}", source=obs.source)
    valid = np.broadcast_to(obs.mask, obs.data.shape).reshape(c, -1).any(1)
    why = "all NaN, infinite, BLANK, saturated, nodata or transparent"
    if not valid.any():
        raise RestoreError(f"no valid pixel ({why})", source=obs.source)
    if not valid.all():
        plane = int(np.argmin(valid)) + 1
        raise RestoreError(f"plane {plane} has no valid pixel ({why}; {c} planes)", source=obs.source)


class Normalisation(Protocol):
    """An exactly invertible map from physical units to the prior's range, batched per plane."""

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    def inverse(self, v: torch.Tensor) -> torch.Tensor: ...

    def for_planes(self, planes: torch.Tensor) -> Normalisation: ...

    def describe(self) -> dict[str, Any]: ...


def _as_list(value: float | torch.Tensor) -> float | list[float]:
    return value.flatten().tolist() if isinstance(value, torch.Tensor) else float(value)


@dataclass(frozen=True)
class LinearScale:
    """``[low, high]`` (per plane when arrays ``(C, 1, 1)``) to ``[-1, 1]``, and back."""

    low: float | torch.Tensor
    high: float | torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - _like(self.low, x)) / (_like(self.high, x) - _like(self.low, x)) * 2 - 1

    def inverse(self, v: torch.Tensor) -> torch.Tensor:
        return (v + 1) / 2 * (_like(self.high, v) - _like(self.low, v)) + _like(self.low, v)

    def for_planes(self, planes: torch.Tensor) -> LinearScale:
        """The normalisation of a batch whose items hold planes ``planes`` ``(N, C)`` of the observation."""
        if not isinstance(self.low, torch.Tensor):
            return self

        def pick(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(-1)[planes][..., None, None]

        return LinearScale(pick(self.low), pick(self.high))

    def describe(self) -> dict[str, Any]:
        return {"kind": "linear", "low": _as_list(self.low), "high": _as_list(self.high)}


def _like(value: float | torch.Tensor, x: torch.Tensor) -> float | torch.Tensor:
    return value.to(x) if isinstance(value, torch.Tensor) else value


def percentile_scale(obs: Observation, percentiles: tuple[float, float], low: float | None = None,
                     high: float | None = None) -> LinearScale:
    """Per-plane ``[low, high]``: the given bounds, or percentiles of each plane's valid pixels (a flat or
    empty plane gets a unit range)."""
    if low is not None and high is not None:
        return LinearScale(float(low), float(high))
    planes = np.where(obs.mask, obs.data, np.nan).reshape(obs.data.shape[0], -1)
    with np.errstate(all="ignore"):
        lo, hi = (np.nan_to_num(v) for v in np.nanpercentile(planes, percentiles, axis=1)) if np.isfinite(
            planes).any() else (np.zeros(len(planes)), np.ones(len(planes)))
    lo = np.full(len(planes), low) if low is not None else lo
    hi = np.full(len(planes), high) if high is not None else hi
    hi = np.where(hi > lo, hi, lo + 1.0)

    def as_t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, np.float64)).reshape(-1, 1, 1)

    return LinearScale(as_t(lo), as_t(hi))


class DomainAdapter:
    """Base adapter: plain PNG/TIFF/FITS arrays, linear normalisation to ``[-1, 1]`` from the spec's
    ``[low, high]`` (unset bounds: robust percentiles of each plane's valid pixels)."""

    kind: ClassVar[str] = "base"
    spec_class: ClassVar[type[Spec]] = ImageDomainSpec

    def __init__(self, spec: Spec | None = None) -> None:
        self.spec = spec if spec is not None else self.spec_class()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    def read(self, path: str | Path) -> Observation:
        data, meta = read_array(path)
        check_wcs(meta.get("header"), str(path))
        noise = {**meta.get("noise", {}), **header_noise(meta)}
        obs = Observation(data=data, mask=np.isfinite(data), noise=noise, meta=meta, source=str(path))
        if "saturation" in obs.noise:
            obs.mask &= data < obs.noise["saturation"]
        return obs

    def normalisation(self, obs: Observation, gain: float = 1.0) -> Normalisation:
        """The map from this observation's physical units to the prior's range (``forward``/``inverse``);
        ``gain`` is the forward model's flat gain (observed value per unit of the scene), for adapters whose
        scale follows the data."""
        s = self.spec
        return percentile_scale(obs, s.percentiles, s.low, s.high)  # type: ignore[attr-defined]

    def detect(self, obs: Observation, factor: int, tile: int, layout: ObjectsLayoutSpec) -> list[Cutout]:
        """Objects to restore one by one (``layout: {kind: objects}``), brightest or surest first."""
        raise RestoreError(f"the {self.kind!r} domain cannot detect objects; use layout: {{kind: tiles}}",
                           source=obs.source)

    def write_image(self, path: str | Path, data: Raster, meta: dict[str, Any], factor: float,
                    text: dict[str, str], overwrite: bool = False) -> None:
        """Write ``data`` ``(C, H, W)`` (an array or a file raster) in the input's format on a grid ``factor``
        times finer than the input's (``factor < 1``: coarser, as ``restore simulate`` makes), with the
        metadata rescaled to match."""
        meta = dict(meta)
        if meta.get("header") is not None:
            meta["header"] = meta["header"].copy()
            notes = rescale_wcs(meta["header"], 1.0 / factor)
            text = {**text, **({"restore-note": notes[0]} if notes else {})}
        write_array(path, data, meta, text=text, overwrite=overwrite)

    def output_paths(self, directory: Path, stem: str, suffix: str) -> dict[str, Path]:
        """Where a restoration's files go; formats without extensions get a separate spread file."""
        return {"restored": directory / f"{stem}.restored{suffix}", "spread": directory / f"{stem}.spread{suffix}"}

    def write_restoration(self, res: Restoration, paths: dict[str, Path], text: dict[str, str],
                          overwrite: bool = False) -> None:
        """Write the restored image and its spread (as float32 where the format allows) on the finer grid."""
        f = res.factor
        self.write_image(paths["restored"], res.image, res.meta, f, text, overwrite=overwrite)
        spread_meta = {**res.meta, "dtype": "float32"} if res.meta.get("format") in ("tiff", "fits") else res.meta
        self.write_image(paths["spread"], res.std, spread_meta, f,
                         {**text, "restore-content": "per-pixel spread (std) of the restarts"}, overwrite=overwrite)


class LinearAdapter(DomainAdapter):
    """Any image, normalised linearly from ``[low, high]`` (default: robust percentiles) to [-1, 1]."""

    kind = "image"
