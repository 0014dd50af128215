"""Pure geometry of objects restored one by one: where a cutout is, and where it lands on the sharp grid.

Priors of centred objects (faces, galaxy cutouts) never saw a whole frame, so tiling a frame with
them asks for things they cannot make. Instead the domain adapter's detector finds the objects; each
becomes a :class:`Cutout` (where it is on the observed grid and how large), and a similarity
transform puts it where the prior's training images had their object (:class:`Framing`, from the
prior's card). Each cutout is restored against the observed pixels it covers, the resampling from
the prior's frame to the sharp grid being part of the forward model (:class:`restore.degradations.Warp`;
none at all when the scale is 1 and the shift whole pixels), so the likelihood stays exact; the
restoration is placed on the sharp grid and blended over the background with a flat-topped
raised-cosine window.

Coordinates are pixel centres (pixel ``i`` spans ``[i - 0.5, i + 0.5]``); a sharp pixel ``v`` and an
observed one ``u`` relate by ``v = (u + 0.5) * f - 0.5``.

Example:
    >>> cut = Cutout(x=20.0, y=12.0, size=4.0)
    >>> m = cut.to_tile(Framing(x=31.5, y=31.5, size=32.0), factor=4, prior_size=64)
    >>> [round(v, 6) for v in (m @ torch.tensor([20.0, 12.0, 1.0], dtype=torch.float64)).tolist()]  # the object lands at the centre
    [7.5, 7.5, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Framing:
    """Where the training images had their object, in the prior's (sharp) pixels: centre ``x, y`` and
    ``size`` in the detector's convention; ``size=None`` keeps the observed pixel scale."""

    x: float
    y: float
    size: float | None = None

    @classmethod
    def from_card(cls, card: dict, prior_size: int) -> Framing:
        """The card's ``framing`` entry, or the field's centre at the observed scale."""
        entry = card.get("framing") or {}
        centre = (prior_size - 1) / 2
        return cls(float(entry.get("x", centre)), float(entry.get("y", centre)), entry.get("size"))

    def covering(self, width: int, height: int, prior_size: int) -> Cutout:
        """The cutout that takes a whole ``width x height`` observation as the prior's field (an aligned crop)."""
        scale = (width + height) / 2 / prior_size
        return Cutout(x=(self.x + 0.5) * scale - 0.5, y=(self.y + 0.5) * scale - 0.5,
                      size=None if self.size is None else self.size * scale)


@dataclass(frozen=True)
class Cutout:
    """A detected object on the observed grid: centre ``x, y``, ``size`` (the detector's measure, in
    observed pixels; ``None``: keep the pixel scale), the detector's ``score`` and the object's in-plane
    ``angle`` (radians, image axes with y down: a face's eye line), undone when it is cut."""

    x: float
    y: float
    size: float | None = None
    score: float = 1.0
    angle: float = 0.0

    def scale(self, framing: Framing, factor: int) -> float:
        """Observed pixels -> tile pixels: the ratio of the framing's size to the object's."""
        if self.size is None or framing.size is None:
            return 1.0
        return framing.size / factor / self.size

    def to_tile(self, framing: Framing, factor: int, prior_size: int) -> torch.Tensor:
        """3x3 matrix from observed pixels to the observed-resolution tile (``prior_size / factor`` pixels)."""
        a = self.scale(framing, factor)
        tx, ty = (framing.x + 0.5) / factor - 0.5, (framing.y + 0.5) / factor - 0.5
        if a == 1.0 and self.angle == 0.0:  # whole-pixel shift: the tile is an exact crop
            return _matrix(1.0, -math.floor(self.x - tx + 0.5), -math.floor(self.y - ty + 0.5))
        c, s = a * math.cos(self.angle), a * math.sin(self.angle)  # scale, and rotate by -angle about the centre
        return torch.tensor([[c, s, tx - (c * self.x + s * self.y)], [-s, c, ty - (-s * self.x + c * self.y)],
                             [0.0, 0.0, 1.0]], dtype=torch.float64)


def _matrix(a: float, tx: float, ty: float) -> torch.Tensor:
    return torch.tensor([[a, 0.0, tx], [0.0, a, ty], [0.0, 0.0, 1.0]], dtype=torch.float64)


def coarse_to_fine(factor: int) -> torch.Tensor:
    """3x3 matrix from observed to sharp pixel coordinates."""
    return _matrix(float(factor), 0.5 * factor - 0.5, 0.5 * factor - 0.5)


def placement(cutout: Cutout, framing: Framing, factor: int, prior_size: int) -> torch.Tensor:
    """3x3 matrix from the prior's (sharp) pixels of a restored cutout to the frame's sharp pixels."""
    to_fine = coarse_to_fine(factor)
    return to_fine @ torch.linalg.inv(cutout.to_tile(framing, factor, prior_size)) @ torch.linalg.inv(to_fine)


def placed_corners(place: torch.Tensor, size: int) -> torch.Tensor:
    """Where the corner pixel centres of a ``size x size`` image land under ``place``: ``(4, 2)`` x, y."""
    r = size - 1
    return torch.tensor([[0, 0, 1], [r, 0, 1], [0, r, 1], [r, r, 1]], dtype=torch.float64) @ place[:2].T


def shifted(place: torch.Tensor, x0: float, y0: float) -> torch.Tensor:
    """``place`` onto a window of the same grid whose first pixel is that grid's pixel ``(x0, y0)``."""
    return _matrix(1.0, -x0, -y0) @ place


def region(place: torch.Tensor, prior_size: int, factor: int) -> tuple[int, int, int, int]:
    """Observed-grid box ``(top, left, height, width)`` of the pixels whose centres a placed cutout covers."""
    coarse = (placed_corners(place, prior_size) + 0.5) / factor - 0.5
    left, top = (math.floor(float(v) + 0.5) for v in coarse.min(0).values)
    right, bottom = (math.floor(float(v) + 0.5) for v in coarse.max(0).values)
    return top, left, bottom - top + 1, right - left + 1


def is_whole_pixel_shift(matrix: torch.Tensor) -> bool:
    """True when ``matrix`` moves pixels by whole pixels and nothing else (resampling would be a copy)."""
    m = matrix[:2].double()
    return bool(torch.allclose(m[:, :2], torch.eye(2, dtype=m.dtype), atol=1e-9)
                and torch.allclose(m[:, 2], m[:, 2].round(), atol=1e-9))
