"""Domain adapters: read a kind of file into an :class:`Observation`, normalise to the prior's range
and back (exactly invertible, differentiable), and write a result with its metadata.

Adapters register under the entry-point group ``restore.domains``; :func:`get_adapter` finds them
by the recipe's ``domain.kind``.

Example:
    >>> import torch
    >>> adapter = LinearAdapter(low=0.0, high=255.0)
    >>> x = torch.tensor([0.0, 127.5, 255.0])
    >>> adapter.normalise(x).tolist(), adapter.denormalise(adapter.normalise(x)).tolist()
    ([-1.0, 0.0, 1.0], [0.0, 127.5, 255.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import RestoreError
from ..imageio import header_noise, read_array, write_array


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

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Physical units to the prior's range ``[-1, 1]``."""
        return (x - self.low) / (self.high - self.low) * 2 - 1

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """The prior's range back to physical units (inverse of :meth:`normalise`)."""
        return (x + 1) / 2 * (self.high - self.low) + self.low

    def write(self, path: str | Path, data: np.ndarray, meta: dict[str, Any], text: dict[str, str],
              overwrite: bool = False) -> None:  # fmt: skip
        write_array(path, data, meta, text=text, overwrite=overwrite)


class LinearAdapter(DomainAdapter):
    kind = "image"


class FacesAdapter(DomainAdapter):
    """Photographs: 8-bit PNG/JPEG/WebP (greyscale, RGBA and palette images become RGB), 0..255 -> [-1, 1]."""

    kind = "faces"

    def read(self, path: str | Path) -> Observation:
        obs = super().read(path)
        if obs.data.shape[0] == 1:
            obs.data = np.repeat(obs.data, 3, axis=0)
            obs.mask = np.repeat(obs.mask, 3, axis=0)
        elif obs.data.shape[0] == 4:
            obs.mask = obs.mask[:3] & (obs.data[3:4] > 0)
            obs.data = obs.data[:3]
        return obs


BUILTIN_ADAPTERS: dict[str, type[DomainAdapter]] = {"faces": FacesAdapter, "image": LinearAdapter}


def adapter_classes() -> dict[str, type[DomainAdapter]]:
    """Built-in adapters plus those registered under the ``restore.domains`` entry-point group."""
    found = dict(BUILTIN_ADAPTERS)
    for ep in entry_points(group="restore.domains"):
        found.setdefault(ep.name, ep.load())
    return found


def get_adapter(spec: Any) -> DomainAdapter:
    """The adapter for a domain spec (its ``kind`` and options)."""
    options = spec.model_dump(exclude={"kind"}) if hasattr(spec, "model_dump") else {}
    kind = spec.kind if hasattr(spec, "kind") else str(spec)
    classes = adapter_classes()
    if kind not in classes:
        raise RestoreError(f"no domain adapter {kind!r} (available: {', '.join(sorted(classes))})")
    return classes[kind](**options)
