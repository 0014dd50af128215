"""``restore train-prior CONFIG.yaml``: train a StyleGAN2 prior on a folder of domain images.

Images are read **through the domain adapter** and normalised exactly as restoration will
normalise observations. Training is the StyleGAN2 recipe shrunk for a CPU: non-saturating
logistic loss, lazy R1, EMA generator, differentiable augmentation (translation, flips, 90-degree
rotations where the domain allows them, DiffAugment cutout), random intensity curves of the
training images, bf16 autocast. All randomness comes from one seeded generator whose state is
checkpointed, so an interrupted run resumes exactly.

Example (a few iterations on generated images):
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(8):
    ...     Image.fromarray((np.random.rand(16, 16, 3) * 255).astype("uint8")).save(d / f"{i}.png")
    >>> spec = TrainSpec(name="toy", data=str(d / "*.png"), resolution=16, iterations=2, batch=4,
    ...                  out=d / "toy.safetensors", generator={"style_dim": 16, "n_mlp": 1,
    ...                  "channels": {4: 8, 8: 8, 16: 8}}, progress=False)
    >>> train(spec).resolution
    16
"""

from __future__ import annotations

import csv
import glob
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from ..device import resolve_device
from ..domains import get_adapter
from ..errors import RestoreError
from ..priors.base import Prior
from ..priors.io import save_prior
from ..priors.stylegan2 import StyleGAN2Generator
from ..progress import progress
from ..spec import AugmentSpec, TrainSpec
from .discriminator import Discriminator


def list_images(pattern: str) -> list[Path]:
    """Files of a folder (PNG/JPEG/TIFF/FITS) or a glob, sorted."""
    base = Path(pattern)
    if base.is_dir():
        files = [p for p in base.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".fits"}]
    else:
        files = [Path(p) for p in glob.glob(pattern)]
    if not files:
        raise RestoreError("no training images found", source=pattern)
    return sorted(files)


def split_holdout(files: list[Path], fraction: float, group: str | None = None) -> tuple[list[Path], list[Path]]:
    """Deterministic split: every ``round(1/fraction)``-th file (sorted) is held out, or, with ``group``,
    every ``round(1/fraction)``-th group of the ``manifest.csv`` column of that name (e.g. field of view)."""
    if fraction == 0:
        return files, []
    step = max(2, round(1 / fraction))
    if group is None:
        return [f for i, f in enumerate(files) if i % step], [f for i, f in enumerate(files) if i % step == 0]
    manifest = files[0].parent / "manifest.csv"
    if not manifest.is_file():
        raise RestoreError(f"holdout_group {group!r} needs a manifest.csv beside the images", source=manifest)
    with manifest.open(newline="") as fh:
        rows = {row["file"]: row.get(group) for row in csv.DictReader(fh)}
    if all(v is None for v in rows.values()):
        raise RestoreError(f"manifest has no column {group!r}", source=manifest)
    held_groups = set(sorted({v for v in rows.values() if v is not None})[::step])
    held = [f for f in files if rows.get(f.name) in held_groups]
    return [f for f in files if rows.get(f.name) not in held_groups], held


def load_images(files: list[Path], spec: TrainSpec) -> torch.Tensor:
    """Read files through the domain adapter and normalise them: ``(N, C, H, W)`` in the prior's range."""
    adapter = get_adapter(spec.domain)
    images = []
    for path in files:
        obs = adapter.read(path)
        if obs.data.shape[0] != spec.img_channels:
            raise RestoreError(f"has {obs.data.shape[0]} channels, the prior {spec.img_channels}", source=path)
        if min(obs.data.shape[1:]) < spec.resolution:
            raise RestoreError(f"smaller than the training resolution {spec.resolution}", source=path)
        images.append(adapter.normalisation(obs).forward(torch.from_numpy(np.nan_to_num(obs.data))))
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) > 1:
        raise RestoreError(f"training images differ in shape ({sorted(shapes)[:2]})", source=spec.data)
    return torch.stack(images)


def augment(x: torch.Tensor, spec: AugmentSpec, gen: torch.Generator) -> torch.Tensor:
    """Differentiable augmentation applied to real and generated batches alike."""
    b, _, h, w = x.shape
    for on, dim in ((spec.flip_x, 3), (spec.flip_y, 2)):  # random draws in this order: x, then y
        if on:
            flip = torch.rand(b, generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None].to(x.device), x.flip(dim), x)
    if spec.rot90:
        k = int(torch.randint(4, (1,), generator=gen))
        x = torch.rot90(x, k, (2, 3))
    if spec.translate > 0:
        shift = int(spec.translate * h)
        dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=gen))
        x = F.pad(x, (shift, shift, shift, shift), mode="reflect")[..., shift + dy : shift + dy + h, shift + dx : shift + dx + w]
    if spec.cutout > 0:  # DiffAugment (Zhao et al. 2020): one square per image set to the range's middle
        side = max(1, int(spec.cutout * h + 0.5))
        top = torch.randint(h - side + 1, (b, 1, 1), generator=gen)
        left = torch.randint(w - side + 1, (b, 1, 1), generator=gen)
        rows, cols = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
        hole = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
        x = x * (~hole[:, None]).to(x.device, x.dtype)
    return x


def intensity_curve(x: torch.Tensor, gamma: float, gen: torch.Generator) -> torch.Tensor:
    """Training images only: each image's [-1, 1] values through ``u**g``, ``g`` log-uniform in ``[1/gamma, gamma]``."""
    if gamma == 1:
        return x
    g = torch.exp((2 * torch.rand(x.shape[0], generator=gen) - 1) * math.log(gamma)).to(x.device)
    return ((x + 1) / 2).clamp(0, 1).pow(g[:, None, None, None]) * 2 - 1


def random_crops(images: torch.Tensor, idx: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    batch = images[idx]
    h, w = batch.shape[-2:]
    if (h, w) == (size, size):
        return batch
    top = int(torch.randint(h - size + 1, (1,), generator=gen))
    left = int(torch.randint(w - size + 1, (1,), generator=gen))
    return batch[..., top : top + size, left : left + size]


def _state(g, d, g_ema, opt_g, opt_d, gen, it, losses, wall) -> dict[str, Any]:
    return {"g": g.state_dict(), "d": d.state_dict(), "g_ema": g_ema.state_dict(), "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(), "rng": gen.get_state(), "iteration": torch.tensor(it),
            "losses": torch.tensor(losses, dtype=torch.float64).reshape(-1, 2), "wall": torch.tensor(wall)}


@torch.no_grad()
def sample_quality(g_ema: StyleGAN2Generator, train_images: torch.Tensor, held: torch.Tensor, spec: TrainSpec) -> dict[str, Any]:
    """SWD and memorisation numbers for the card; writes the sample grid (and, beside the checkpoint,
    the local-only grid of samples over their nearest training images)."""
    from PIL import Image

    from .evaluate import evaluate, nearest_distance, to_uint8_grid

    gen = torch.Generator().manual_seed(spec.seed + 1)
    r = spec.resolution
    held = held[..., :r, :r]
    train_crops = train_images[..., :r, :r]
    n = min(len(held), 512)
    samples = torch.cat([g_ema(torch.randn(64, spec.generator.style_dim, generator=gen)) for _ in range(math.ceil(n / 64))])[:n]
    report = evaluate(samples, train_crops, held, seed=spec.seed)
    if spec.grid is not None:
        spec.grid.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(to_uint8_grid(samples[:32], 8).numpy()).save(spec.grid)
    if spec.checkpoint is not None:
        _, idx = nearest_distance(samples[:16], train_crops)
        pairs = torch.stack([samples[:16], train_crops[idx]], 1).reshape(-1, *samples.shape[1:])
        rows = torch.cat([pairs[0::2][:8], pairs[1::2][:8], pairs[0::2][8:], pairs[1::2][8:]])
        Image.fromarray(to_uint8_grid(rows, 8).numpy()).save(spec.checkpoint.parent / f"{spec.name}_nearest.png")
    return report


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device})"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {device}"


def train(spec: TrainSpec, stop_after: int | None = None) -> Prior:
    """Train (or resume) a prior; returns it after writing ``spec.out``. ``stop_after`` simulates an interruption."""
    if spec.threads:
        torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed)
    device = resolve_device(spec.device)
    files, held = split_holdout(list_images(spec.data), spec.holdout, spec.holdout_group)
    files = files[: spec.limit] if spec.limit else files
    images = load_images(files, spec)
    gen = torch.Generator().manual_seed(spec.seed)
    g = StyleGAN2Generator(spec.resolution, spec.generator.style_dim, spec.generator.n_mlp, spec.generator.channels,
                           spec.img_channels).to(device)
    d = Discriminator(spec.resolution, spec.generator.channels, spec.img_channels).to(device)
    g_ema = StyleGAN2Generator(spec.resolution, spec.generator.style_dim, spec.generator.n_mlp, spec.generator.channels,
                               spec.img_channels).to(device).eval().requires_grad_(False)
    g_ema.load_state_dict(g.state_dict())
    r1_ratio = spec.r1_every / (spec.r1_every + 1)
    opt_g = torch.optim.Adam(g.parameters(), lr=spec.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=spec.lr * r1_ratio, betas=(0.0, 0.99**r1_ratio))
    start, losses, wall = 0, [], 0.0
    if spec.checkpoint is not None and spec.checkpoint.is_file():
        ckpt = torch.load(spec.checkpoint, map_location=device, weights_only=True)
        g.load_state_dict(ckpt["g"]), d.load_state_dict(ckpt["d"]), g_ema.load_state_dict(ckpt["g_ema"])
        opt_g.load_state_dict(ckpt["opt_g"]), opt_d.load_state_dict(ckpt["opt_d"])
        gen.set_state(ckpt["rng"])
        start, losses, wall = int(ckpt["iteration"]), ckpt["losses"].tolist(), float(ckpt["wall"])
    ema_beta = 0.5 ** (spec.batch / spec.ema_half_life)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec.precision == "bf16")
    bar = progress(range(start, spec.iterations), f"train {spec.name}", spec.progress, unit="iterations",
                   initial=start, total=spec.iterations)
    t0 = time.perf_counter()
    for it in bar:
        # discriminator step
        real = random_crops(images, torch.randint(len(images), (spec.batch,), generator=gen), spec.resolution, gen).to(device)
        real = intensity_curve(real, spec.augment.gamma, gen)
        z = torch.randn(spec.batch, spec.generator.style_dim, generator=gen).to(device)
        with autocast:
            fake = g(z).detach()
            d_loss = F.softplus(d(augment(fake, spec.augment, gen))).mean() + F.softplus(-d(augment(real, spec.augment, gen))).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.float().backward()
        opt_d.step()
        if spec.r1 > 0 and it % spec.r1_every == 0:
            real.requires_grad_(True)
            (grad,) = torch.autograd.grad(d(real).sum(), real, create_graph=True)
            r1_loss = spec.r1 / 2 * grad.pow(2).flatten(1).sum(1).mean() * spec.r1_every
            opt_d.zero_grad(set_to_none=True)
            r1_loss.backward()
            opt_d.step()
        # generator step
        z = torch.randn(spec.batch, spec.generator.style_dim, generator=gen).to(device)
        with autocast:
            g_loss = F.softplus(-d(augment(g(z), spec.augment, gen))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.float().backward()
        opt_g.step()
        with torch.no_grad():
            for p_ema, p in zip(g_ema.parameters(), g.parameters()):
                p_ema.lerp_(p, 1 - ema_beta)
        losses.append([float(d_loss.detach()), float(g_loss.detach())])
        done = it + 1 - start
        bar.set_postfix(d=f"{losses[-1][0]:.3f}", g=f"{losses[-1][1]:.3f}",
                        img_s=f"{done * spec.batch / (time.perf_counter() - t0):.1f}")
        out_of_time = spec.max_minutes is not None and time.perf_counter() - t0 >= 60 * spec.max_minutes
        stop = out_of_time or (stop_after is not None and it + 1 == stop_after)
        if spec.checkpoint is not None and ((it + 1) % spec.checkpoint_every == 0 or stop or it + 1 == spec.iterations):
            state = _state(g, d, g_ema, opt_g, opt_d, gen, it + 1, losses, wall + time.perf_counter() - t0)
            spec.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, spec.checkpoint)
        if stop:
            break
    bar.close()
    wall += time.perf_counter() - t0
    info = {
        "name": spec.name, "domain": spec.domain.kind, "iterations": len(losses), "wall_time_s": round(wall, 1),
        "hardware": _hardware(device),
        "training_images": len(files), "holdout_images": len(held), "batch": spec.batch, "precision": spec.precision,
        "final_losses": {"d": losses[-1][0], "g": losses[-1][1]} if losses else {}, **spec.card,
    }
    g_ema = g_ema.cpu()
    if spec.evaluate and held:
        info["sample_quality"] = sample_quality(g_ema, images, load_images(held, spec), spec)
    dtype = torch.float16 if spec.storage_dtype == "float16" else torch.float32
    prior = save_prior(spec.out, g_ema, info, dtype=dtype)
    prior.card["losses"] = losses
    return prior
