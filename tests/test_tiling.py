"""restore.tiling: tile origins cover the frame, the blend window, crops, and the band accumulators
hand over the same rows in bands as at once."""

from __future__ import annotations

import math

import pytest
import torch

from restore.tiling import Blender, Tile, cosine_window, crop, tile_origins


@pytest.mark.parametrize(("length", "tile", "overlap"), [(100, 32, 8), (32, 32, 8), (20, 32, 8), (97, 16, 4)])
def test_tile_origins_cover_the_length_with_the_overlap(length: int, tile: int, overlap: int) -> None:
    starts = tile_origins(length, tile, overlap)
    covered = torch.zeros(max(length, tile), dtype=torch.bool)
    for s in starts:
        covered[s : s + tile] = True
    assert covered[:length].all() and starts[0] == 0
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_cosine_window_is_the_raised_cosine_and_feathers() -> None:
    ramp = torch.sin(math.pi * (torch.arange(16, dtype=torch.float64) + 0.5) / 16) ** 2
    assert torch.allclose(cosine_window(16), torch.outer(ramp, ramp))
    w = cosine_window(32, 0.125)
    assert float(w[16, 16]) == 1.0 and float(w[0, 0]) < 0.01 and float(w[:, 4:28][4:28].min()) == 1.0
    assert float(cosine_window(8, floor=0.1).min()) == pytest.approx(0.1)


def test_crop_pads_outside_and_masks_it() -> None:
    y = torch.arange(20.0).reshape(1, 4, 5)
    values, mask = crop(y, torch.ones_like(y, dtype=torch.bool), -1, 3, 3, 3)
    assert values.shape == (1, 3, 3) and not mask[0, 0].any() and not mask[0, :, 2].any()
    assert torch.equal(values[0, 1:, :2], y[0, :2, 3:])


def test_blender_gives_the_same_rows_in_bands_as_at_once() -> None:
    f, size = 2, 8
    frame = torch.rand(1, 20, 24, generator=torch.Generator().manual_seed(0))
    tiles = [Tile(t, left, min(4, 10 - t), min(4, 12 - left)) for t in tile_origins(10, 4, 1)
             for left in tile_origins(12, 4, 1)]

    def blended(bands: list[int]) -> torch.Tensor:
        b = Blender((1, 20, 24), f, size)
        out = []
        for tile in tiles:  # tiles come in row order
            piece = torch.zeros(1, size, size)
            piece[:, : tile.height * f, : tile.width * f] = frame[:, tile.top * f : (tile.top + tile.height) * f,
                                                                  tile.left * f : (tile.left + tile.width) * f]
            b.add(tile, piece, [0])
        for upto in bands:
            out.append(b.take(upto)[0])
        return torch.cat(out, 1)

    whole = blended([20])
    assert torch.allclose(whole, frame, atol=1e-6)  # blending a frame's own pieces gives the frame
    assert torch.allclose(blended([6, 14, 20]), whole)
