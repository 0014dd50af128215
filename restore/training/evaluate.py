"""Weight-free sample quality of a prior, and a memorisation check.

- Sliced Wasserstein distance (SWD) between 7x7 patches of Laplacian-pyramid levels (Karras et al.
  2018), x 1e3, averaged over levels: prior samples vs the held-out images, beside two references on
  the same held-out set: real training images (the floor) and Gaussian-blurred training images (a
  trivial baseline a useful prior must beat).
- Memorisation: for prior samples and for held-out images alike, the RMS distance to the nearest
  training image. Samples much closer to the training set than held-out images are would mean the
  prior copies its data.
- Grids: ``sample_grid`` makes the committed sample grid; ``neighbour_grid`` puts each sample above
  its nearest training image, for local inspection only (training data must not be committed).

Example:
    >>> import torch
    >>> a = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    >>> b = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    >>> sliced_wasserstein(a, b)["mean"] < sliced_wasserstein(a, blurred(b))["mean"]
    True
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _blur_down(x: torch.Tensor) -> torch.Tensor:
    k = (BINOMIAL[:, None] * BINOMIAL[None, :]).to(x)[None, None].expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=x.shape[1])[..., ::2, ::2]


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels (finest first) and the low-pass residual last."""
    out = []
    for _ in range(levels - 1):
        down = _blur_down(x)
        up = F.interpolate(down, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out.append(x - up)
        x = down
    return out + [x]


def _patches(level: torch.Tensor, count: int, gen: torch.Generator, size: int = 7) -> torch.Tensor:
    n, c, h, w = level.shape
    idx = torch.randint(n, (count,), generator=gen)
    ys = torch.randint(h - size + 1, (count,), generator=gen)
    xs = torch.randint(w - size + 1, (count,), generator=gen)
    rows = [level[i, :, y : y + size, x : x + size].reshape(-1) for i, y, x in zip(idx, ys, xs)]
    desc = torch.stack(rows)
    return (desc - desc.mean(0)) / desc.std(0).clamp_min(1e-8)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, levels: int = 3, patches: int = 4096,
                       projections: int = 256, repeats: int = 4, seed: int = 0) -> dict[str, float]:
    """SWD x 1e3 per pyramid level and their mean, between image sets ``a`` and ``b`` ``(N, C, H, W)``."""
    gen = torch.Generator().manual_seed(seed)
    levels = max(1, min(levels, int(math.log2(min(a.shape[-2:]) / 16)) + 1))  # coarsest level >= 16 px
    result: dict[str, float] = {}
    for i, (la, lb) in enumerate(zip(laplacian_pyramid(a.double(), levels), laplacian_pyramid(b.double(), levels))):
        da, db = _patches(la, patches, gen), _patches(lb, patches, gen)
        dists = []
        for _ in range(repeats):
            dirs = torch.randn(da.shape[1], projections, generator=gen, dtype=da.dtype)
            dirs = dirs / dirs.norm(dim=0, keepdim=True)
            pa, _ = (da @ dirs).sort(0)
            pb, _ = (db @ dirs).sort(0)
            dists.append(float((pa - pb).abs().mean()))
        result[f"level{i}"] = 1e3 * sum(dists) / len(dists)
    result["mean"] = sum(result.values()) / levels
    return result


def nearest_distance(queries: torch.Tensor, train: torch.Tensor, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """RMS distance from each query to its nearest training image, and that image's index."""
    q, t = queries.flatten(1).double(), train.flatten(1).double()
    t2 = (t**2).sum(1)
    best_d, best_i = [], []
    for start in range(0, len(q), chunk):
        qc = q[start : start + chunk]
        d2 = (qc**2).sum(1, keepdim=True) - 2 * qc @ t.T + t2[None]
        d, i = d2.clamp_min(0).min(1)
        best_d.append((d / q.shape[1]).sqrt())
        best_i.append(i)
    return torch.cat(best_d), torch.cat(best_i)


def blurred(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian-blurred copies (the trivial baseline)."""
    radius = max(1, math.ceil(3 * sigma))
    r = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(r**2) / (2 * sigma**2))
    k = (k[:, None] * k[None, :]) / k.sum() ** 2
    weight = k[None, None].expand(x.shape[1], 1, -1, -1)
    return F.conv2d(F.pad(x, (radius,) * 4, mode="reflect"), weight, groups=x.shape[1])


def to_uint8_grid(images: torch.Tensor, columns: int) -> torch.Tensor:
    """Images in [-1, 1] ``(N, C, H, W)`` as one ``(H', W', 3)`` uint8 grid."""
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, c, h, w = x.shape
    rows = math.ceil(n / columns)
    grid = torch.zeros(rows * h, columns * w, c, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        grid[r * h : (r + 1) * h, col * w : (col + 1) * w] = x[i].permute(1, 2, 0)
    return grid


def evaluate(samples: torch.Tensor, train: torch.Tensor, held: torch.Tensor, seed: int = 0) -> dict[str, object]:
    """The numbers a model card reports: SWD of samples, floor and baseline; memorisation distances."""
    n = min(len(samples), len(held), len(train))
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
    swd = {
        "samples_vs_holdout": sliced_wasserstein(samples[:n], held[:n], seed=seed)["mean"],
        "train_vs_holdout (floor)": sliced_wasserstein(train[pick], held[:n], seed=seed)["mean"],
        "blurred_train_vs_holdout (baseline)": sliced_wasserstein(blurred(train[pick]), held[:n], seed=seed)["mean"],
    }
    d_samples, _ = nearest_distance(samples[:n], train)
    d_held, _ = nearest_distance(held[:n], train)
    return {
        "sliced_wasserstein_x1e3": {k: round(v, 2) for k, v in swd.items()},
        "nearest_training_rms": {"samples_median": round(float(d_samples.median()), 4),
                                 "holdout_median": round(float(d_held.median()), 4),
                                 "samples_min": round(float(d_samples.min()), 4)},
        "evaluated_images": n,
    }
