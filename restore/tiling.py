"""Overlapping tiles for observations larger than the prior's field, and the accumulators that blend
restorations on the sharp grid: :class:`Blender` (tiles) and :class:`Paster` (placed cutouts).

Tiles are cut on the observed grid (``tile`` observed pixels, overlapping by ``overlap``); their
restorations (``factor`` times larger) are blended on the sharp grid with a raised-cosine window,
floored so that image borders (covered by one tile only) keep their values. An observation smaller
than one tile becomes one padded tile whose padding is masked out of the likelihood.

Restorations are added in order of their rows and blended rows handed over as soon as no later tile
reaches them, so memory holds a band of the output, not the frame.

Example:
    >>> tile_origins(100, 32, 8)
    [0, 24, 48, 68]
    >>> cosine_window(4).shape
    torch.Size([4, 4])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .degradations.warp import warp
from .geometry import placed_corners, shifted


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``[0, length)`` with tiles of ``tile`` overlapping by at least ``overlap``."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def cosine_window(size: int, feather: float = 0.5, floor: float = 0.0) -> torch.Tensor:
    """``size x size`` window: 1 inside, a raised-cosine (``sin^2``) ramp over the outer ``feather`` of each
    side (``0.5``: the whole tile is one ramp), at least ``floor`` everywhere."""
    width = max(1, round(feather * size)) if feather < 0.5 else size / 2
    i = torch.arange(size, dtype=torch.float64)
    edge = torch.minimum(i, size - 1 - i) + 0.5
    ramp = torch.sin(0.5 * math.pi * (edge / width).clamp(max=1.0)) ** 2
    return torch.outer(ramp, ramp).clamp_min(floor)


@dataclass(frozen=True)
class Tile:
    """A tile's observed-grid window ``[top, top+tile) x [left, left+tile)`` (clipped to the image)."""

    top: int
    left: int
    height: int
    width: int


def crop(y: torch.Tensor, mask: torch.Tensor, top: int, left: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``height x width`` window at ``(top, left)`` of ``(C, H, W)`` arrays; what lies outside the image
    is zero and masked out."""
    _, h, w = y.shape
    t0, l0, t1, l1 = max(top, 0), max(left, 0), min(top + height, h), min(left + width, w)
    pad = (l0 - left, left + width - l1, t0 - top, top + height - t1)
    if t1 <= t0 or l1 <= l0:
        return y.new_zeros(y.shape[0], height, width), mask.new_zeros(mask.shape[0], height, width)
    return F.pad(y[:, t0:t1, l0:l1], pad), F.pad(mask[:, t0:t1, l0:l1], pad, value=False)


class Band:
    """Weighted sums ``num`` ``(..., C, rows, W)`` and weights ``den`` ``(C, rows, W)`` on the sharp grid of a
    ``(..., C, H, W)`` frame, held only from the first row not yet released to the lowest row added:
    restorations added in order of their top rows need memory for a band of rows, not the frame."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        *_, self.height, self.width = shape
        self.top, self.held = 0, 0  # first row not yet released; rows held from there
        self.num = torch.zeros((*shape[:-2], 0, shape[-1]), dtype=torch.float32)  # float32: a band of the frame
        self.den = torch.zeros((*shape[-3:-2], 0, shape[-1]), dtype=torch.float32)

    def _hold(self, bottom: int) -> None:
        """Make rows up to ``bottom`` addressable; storage grows by doubling and is then reused in place, so
        a long run allocates a few buffers, not one per tile row."""
        self.held = max(self.held, bottom - self.top)
        if self.held > self.den.shape[-2]:
            rows = max(self.held, 2 * self.den.shape[-2])
            num, den = self.num.new_zeros(*self.num.shape[:-2], rows, self.num.shape[-1]), self.den.new_zeros(
                self.den.shape[0], rows, self.den.shape[-1])
            num[..., : self.num.shape[-2], :], den[:, : self.den.shape[-2]] = self.num, self.den
            self.num, self.den = num, den

    def accumulate(self, top: int, left: int, weighted: torch.Tensor, weight: torch.Tensor, planes: list[int]) -> None:
        """Add ``weighted`` ``(..., len(planes), h, w)`` and its ``weight`` ``(h, w)`` at sharp pixel ``(top, left)``."""
        if top < self.top:
            raise ValueError(f"row {top} was already released (rows before {self.top} are)")
        h, w = weighted.shape[-2:]
        self._hold(top + h)
        rows, cols = slice(top - self.top, top - self.top + h), slice(left, left + w)
        self.num[..., planes, rows, cols] += weighted
        self.den[planes, rows, cols] += weight

    def release(self, upto: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Hand over rows ``[top, upto)`` (sums and weights; zero where nothing was added) and forget them."""
        n = max(0, min(upto, self.height) - self.top)
        self._hold(self.top + n)
        num, den = self.num[..., :n, :].clone(), self.den[:, :n].clone()
        if n:  # the rest of the band moves up; the rows it leaves are cleared for reuse
            rest = self.held - n
            self.num[..., :rest, :], self.den[:, :rest] = self.num[..., n : self.held, :].clone(), self.den[:, n : self.held].clone()
            self.num[..., rest : self.held, :], self.den[:, rest : self.held] = 0.0, 0.0
        self.top, self.held = self.top + n, self.held - n
        return num, den


class Blender(Band):
    """Blend weighted tile restorations on the sharp grid ``(..., C, H, W)``, each tile into the planes
    it restored; ``take(upto)`` gives the blended rows so far (NaN for planes no tile restored)."""

    def __init__(self, shape: tuple[int, ...], factor: int, size: int) -> None:
        super().__init__(shape)
        self.factor = factor
        self.window = cosine_window(size, floor=1e-3).float()

    def add(self, tile: Tile, image: torch.Tensor, planes: list[int], weight: None = None) -> None:
        """Add ``image`` ``(..., len(planes), size, size)``, the restoration of ``tile`` in ``planes`` (tiles are
        weighted by the blend window; ``weight`` is for the :class:`Paster`'s interface and must be None)."""
        f = self.factor
        hh, ww = tile.height * f, tile.width * f
        weight = self.window[:hh, :ww]  # a clipped tile is the only one along that axis: any positive weight
        self.accumulate(tile.top * f, tile.left * f, weight * image[..., :hh, :ww].float(), weight, planes)

    def take(self, upto: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``[top, upto)`` blended, and their summed weight."""
        num, den = self.release(upto)
        return num / den, den


class Paster(Band):
    """Paste restored cutouts on the sharp grid ``(..., C, H, W)``: each one warped back with its window as
    weight. Cutouts added in order of their top rows; ``take(upto)`` gives the rows so far and their coverage."""

    def __init__(self, shape: tuple[int, ...], window: torch.Tensor) -> None:
        super().__init__(shape)
        self.window = window

    def add(self, fine_from_tile: torch.Tensor, image: torch.Tensor, planes: list[int],
            weight: torch.Tensor | None = None) -> None:
        """Add ``image`` ``(..., len(planes), R, R)`` whose pixel ``p`` lands at ``fine_from_tile @ p``, weighted
        by the window (or by ``weight`` ``(R, R)``, e.g. a point source's aperture)."""
        size = image.shape[-1]
        x0, y0, x1, y1 = self.box(fine_from_tile, size)
        if x1 <= x0 or y1 <= y0:
            return
        local = shifted(fine_from_tile, x0, y0)
        lead = image.shape[:-3]
        window = self.window if weight is None else weight
        stack = torch.cat([image.reshape(-1, size, size).float(), window[None].float()])[None]
        warped = warp(stack, local[:2].float(), (y1 - y0, x1 - x0))[0]
        weight = warped[-1]
        values = warped[:-1].reshape(*lead, len(planes), y1 - y0, x1 - x0)
        self.accumulate(y0, x0, weight * values, weight, planes)

    def box(self, fine_from_tile: torch.Tensor, size: int) -> tuple[int, int, int, int]:
        """Sharp-grid ``(x0, y0, x1, y1)`` (clipped to the frame) that a placed ``size``-pixel cutout touches."""
        xy = placed_corners(fine_from_tile, size)
        x0, y0 = max(0, math.floor(float(xy[:, 0].min()))), max(0, math.floor(float(xy[:, 1].min())))
        x1, y1 = min(self.width, math.ceil(float(xy[:, 0].max())) + 1), min(self.height, math.ceil(float(xy[:, 1].max())) + 1)
        return x0, y0, x1, y1

    def take(self, upto: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``[top, upto)`` blended (NaN where nothing was pasted), and their coverage (summed weight)."""
        num, den = self.release(upto)
        return (num / den).masked_fill(den <= 0, float("nan")), den
