"""Domain adapters: read a kind of file into an :class:`Observation`, normalise to the prior's range
and back (exactly invertible, differentiable), and write results with their metadata.

An observation holds one or more *planes* (``C`` of ``(C, H, W)``): colour channels for an RGB
prior, or independent planes (Z/T/channels of a microscopy stack, bands of a scene) that a
single-channel prior restores one by one, batched. Adapters register under the entry-point group
``restore.domains`` (``name = "package.module:AdapterClass"``); :func:`get_adapter` finds them by
the recipe's ``domain.kind``.

Example:
    >>> import torch
    >>> adapter = LinearAdapter(low=0.0, high=255.0)
    >>> norm = adapter.normalisation(Observation.from_array(torch.zeros(1, 4, 4).numpy()))
    >>> x = torch.tensor([0.0, 127.5, 255.0])
    >>> norm.forward(x).tolist(), norm.inverse(norm.forward(x)).tolist()
    ([-1.0, 0.0, 1.0], [0.0, 127.5, 255.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import RestoreError
from ..imageio import header_noise, read_array, write_array
from ..rasters import Raster

if TYPE_CHECKING:  # pragma: no cover
    from ..cutouts import Cutout
    from ..pipeline import Restoration
    from ..spec import ObjectsLayoutSpec


@dataclass
class Observation:
    """An observed image: float32 ``data`` ``(C, H, W)`` in physical units, a validity ``mask``
    (True where the pixel enters the likelihood), noise parameters and file metadata."""

    data: np.ndarray
    mask: np.ndarray
    noise: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = "array"

    @classmethod
    def from_array(cls, array: np.ndarray, source: str = "array") -> "Observation":
        data = np.asarray(array, dtype=np.float32)
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise RestoreError(f"an image array must be (H, W) or (C, H, W), got shape {data.shape}", source=source)
        return cls(data=data.copy(), mask=np.isfinite(data), source=source)


@dataclass(frozen=True)
class Linear:
    """``[low, high]`` (per plane when arrays ``(C, 1, 1)``) to ``[-1, 1]``, and back."""

    low: float | torch.Tensor
    high: float | torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - _like(self.low, x)) / (_like(self.high, x) - _like(self.low, x)) * 2 - 1

    def inverse(self, v: torch.Tensor) -> torch.Tensor:
        return (v + 1) / 2 * (_like(self.high, v) - _like(self.low, v)) + _like(self.low, v)

    def for_planes(self, planes: torch.Tensor) -> "Linear":
        """The normalisation of a batch whose items hold planes ``planes`` ``(N, C)`` of the observation."""
        if not isinstance(self.low, torch.Tensor):
            return self
        pick = lambda t: t.reshape(-1)[planes][..., None, None]  # noqa: E731
        return Linear(pick(self.low), pick(self.high))


def _like(value: float | torch.Tensor, x: torch.Tensor) -> float | torch.Tensor:
    return value.to(x) if isinstance(value, torch.Tensor) else value


class DomainAdapter:
    """Base adapter: plain PNG/TIFF/FITS arrays, linear normalisation of ``[low, high]`` to ``[-1, 1]``."""

    kind = "base"

    def __init__(self, low: float = 0.0, high: float = 255.0) -> None:
        if high <= low:
            raise ValueError(f"high must be > low, got [{low}, {high}]")
        self.low, self.high = float(low), float(high)

    def read(self, path: str | Path) -> Observation:
        data, meta = read_array(path)
        obs = Observation(data=data, mask=np.isfinite(data), noise=header_noise(meta), meta=meta, source=str(path))
        if "saturation" in obs.noise:
            obs.mask &= data < obs.noise["saturation"]
        return obs

    def normalisation(self, obs: Observation) -> Linear:
        """The map from this observation's physical units to the prior's range (``forward``/``inverse``)."""
        return Linear(self.low, self.high)

    def detect(self, obs: Observation, factor: int, tile: int, layout: "ObjectsLayoutSpec") -> list["Cutout"]:
        """Objects to restore one by one (``layout: {kind: objects}``), brightest or surest first."""
        raise RestoreError(f"the {self.kind!r} domain cannot detect objects; use layout: {{kind: tiles}}",
                           source=obs.source)  # fmt: skip

    def write_image(self, path: str | Path, data: Raster, meta: dict[str, Any], factor: float,
                    text: dict[str, str], overwrite: bool = False) -> None:  # fmt: skip
        """Write ``data`` ``(C, H, W)`` (an array or a file raster) in the input's format on a grid ``factor`` times finer than the input's
        (``factor < 1``: coarser, as ``restore simulate`` makes), with the metadata rescaled to match."""
        from ..imageio import rescale_wcs

        meta = dict(meta)
        if meta.get("header") is not None:
            meta["header"] = meta["header"].copy()
            notes = rescale_wcs(meta["header"], 1.0 / factor)
            text = {**text, **({"restore-note": notes[0]} if notes else {})}
        write_array(path, data, meta, text=text, overwrite=overwrite)

    def output_paths(self, directory: Path, stem: str, suffix: str) -> dict[str, Path]:
        """Where a restoration's files go; formats without extensions get a separate spread file."""
        return {"restored": directory / f"{stem}.restored{suffix}", "spread": directory / f"{stem}.spread{suffix}"}

    def write_restoration(self, res: "Restoration", paths: dict[str, Path], text: dict[str, str],
                          overwrite: bool = False) -> None:  # fmt: skip
        """Write the restored image and its spread (as float32 where the format allows) on the finer grid."""
        f = res.provenance["factor"]
        self.write_image(paths["restored"], res.image, res.meta, f, text, overwrite=overwrite)
        spread_meta = {**res.meta, "dtype": "float32"} if res.meta.get("format") in ("tiff", "fits") else res.meta
        self.write_image(paths["spread"], res.std, spread_meta, f,
                         {**text, "restore-content": "per-pixel spread (std) of the restarts"}, overwrite=overwrite)  # fmt: skip


class LinearAdapter(DomainAdapter):
    """Any image, normalised linearly from ``[low, high]`` to [-1, 1]."""

    kind = "image"


def adapter_classes() -> dict[str, type[DomainAdapter]]:
    """Built-in adapters plus those registered under the ``restore.domains`` entry-point group."""
    from .astronomy import AstronomyAdapter
    from .faces import FacesAdapter
    from .microscopy import MicroscopyAdapter
    from .satellite import SatelliteAdapter

    found: dict[str, type[DomainAdapter]] = {
        "faces": FacesAdapter, "image": LinearAdapter, "astronomy": AstronomyAdapter,
        "microscopy": MicroscopyAdapter, "satellite": SatelliteAdapter,
    }  # fmt: skip
    for ep in entry_points(group="restore.domains"):
        found.setdefault(ep.name, ep.load())
    return found


def get_adapter(spec: Any) -> DomainAdapter:
    """The adapter for a domain spec (its ``kind`` and options), or for a kind name."""
    options = spec.model_dump(exclude={"kind"}) if hasattr(spec, "model_dump") else {}
    kind = spec.kind if hasattr(spec, "kind") else str(spec)
    classes = adapter_classes()
    if kind not in classes:
        raise RestoreError(f"no domain adapter {kind!r} (available: {', '.join(sorted(classes))})")
    return classes[kind](**options)
