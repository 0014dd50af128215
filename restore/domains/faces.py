"""Faces: 8-bit photographs (PNG/JPEG/WebP; greyscale, RGBA and palette images become RGB), 0..255 -> [-1, 1].

Example:
    >>> FacesAdapter().normalisation(None).forward(__import__("torch").tensor(255.0)).item()
    1.0
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DomainAdapter, Observation


class FacesAdapter(DomainAdapter):
    """Photographs of aligned faces; transparent pixels (alpha 0) are masked out of the likelihood."""

    kind = "faces"

    def __init__(self) -> None:
        super().__init__(0.0, 255.0)

    def read(self, path: str | Path) -> Observation:
        obs = super().read(path)
        if obs.data.shape[0] == 1:
            obs.data = np.repeat(obs.data, 3, axis=0)
            obs.mask = np.repeat(obs.mask, 3, axis=0)
        elif obs.data.shape[0] == 4:
            obs.mask = obs.mask[:3] & (obs.data[3:4] > 0)
            obs.data = obs.data[:3]
        return obs
