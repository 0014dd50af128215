"""Search speed against its floor: `python -m benchmarks.search_speed [--steps N] [--write]`.

For generators of the shipped faces architecture at 32, 64 and 128 px (random weights: speed does not
depend on training), report ms per search step at batch 1 and batch K, and the ratio of one search
step to its floor: the bare generator forward+backward plus the forward model's forward+backward on
the same batch. Also the `fast` preset's time per 64x64 tile (8 tiles batched). Each ratio comes from
measurements interleaved in one run (this machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import torch

from restore.degradations import Blur, Downsample, GaussianNoise
from restore.priors import Prior, StyleGAN2Generator
from restore.search import PRESETS, Problem, SearchConfig, latent_search

from .results import write_section

WIDTHS = {4: 128, 8: 128, 16: 64, 32: 32, 64: 16, 128: 8}


def make_prior(size: int) -> Prior:
    torch.manual_seed(0)
    g = StyleGAN2Generator(size, 128, 4, {r: c for r, c in WIDTHS.items() if r <= size})
    prior = Prior(g, {"name": f"bench{size}", "resolution": size, "channels": 3, "latent_dim": 128})
    prior.fit_latent_stats(1000)
    return prior


def floor_step(prior: Prior, forward, y: torch.Tensor, latent: torch.Tensor) -> None:  # noqa: ANN001
    latent.grad = None
    x = prior.generator.synthesis(latent, prior.noise_maps())
    ((forward(x) - y) ** 2).sum().backward()


def time_it(fn, repeats: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(size: int, batch: int, steps: int) -> tuple[float, float]:
    """(ms per search step, ms per floor step) for ``batch`` items, interleaved."""
    prior = make_prior(size)
    forward = Downsample(4, "bicubic") * Blur.gaussian(1.5)
    y = torch.zeros(1, 3, size // 4, size // 4)
    config = SearchConfig(latent="w+", restarts=batch, steps=steps, early_stop=False, progress=False, geocross=0.01)
    problem = Problem(prior, forward, GaussianNoise(0.05))
    latent = torch.randn(batch, prior.num_styles, 128, requires_grad=True)
    yb = y.repeat(batch, 1, 1, 1)
    search_s, floor_s = [], []
    for _ in range(3):  # interleave to share the machine's noise
        search_s.append(time_it(lambda: latent_search(problem, y, config), 1) / steps)
        floor_s.append(time_it(lambda: [floor_step(prior, forward, yb, latent) for _ in range(steps)], 1) / steps)
    return 1000 * min(search_s), 1000 * min(floor_s)


def fast_tile_seconds(tiles: int = 8) -> tuple[float, int]:
    prior = make_prior(64)
    forward = Downsample(4, "bicubic") * Blur.gaussian(1.5)
    y = torch.randn(tiles, 3, 16, 16) * 0.3
    config = SearchConfig(**{**PRESETS["fast"], "early_stop": False}, progress=False)  # type: ignore[arg-type]
    t = time.perf_counter()
    res = latent_search(Problem(prior, forward, GaussianNoise(0.05)), y, config)
    return (time.perf_counter() - t) / tiles, res.steps_run


def end_to_end(obs_size: int = 64) -> tuple[float, int, float, int]:
    """Wall time, tile count and peak RSS (MB) of `restore run`-equivalent work on an ``obs_size``^2
    observation restored 4x with the faces prior and the `fast` preset; tile count for a 1024^2 output."""
    import resource

    import numpy as np

    import restore
    from restore.tiling import tile_origins

    spec = restore.load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "faces.yaml", ["search.preset=fast"])
    pipe = restore.Pipeline(spec, progress=False)
    obs = np.random.default_rng(0).uniform(0, 255, (3, obs_size, obs_size)).astype(np.float32)
    t = time.perf_counter()
    res = pipe.run(obs)
    wall = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tiles_1024 = len(tile_origins(1024 // 4, 16, 4)) ** 2
    return wall, int(res.provenance["tiles"]), peak_mb, tiles_1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = ["| resolution | ms/step (batch 1) | floor (batch 1) | ratio | ms/step (batch K) | floor (batch K) | ratio | K restarts / 1 restart |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for size in (32, 64, 128):
        s1, f1 = measure(size, 1, args.steps)
        sk, fk = measure(size, args.k, args.steps)
        rows.append(f"| {size} | {s1:.1f} | {f1:.1f} | {s1 / f1:.2f} | {sk:.1f} | {fk:.1f} | {sk / fk:.2f} | {sk / s1:.2f} |")
        print(rows[-1], flush=True)
    per_tile, steps = fast_tile_seconds()
    wall, tiles, peak_mb, tiles_1024 = end_to_end()
    text = "\n".join([
        "## Search speed (`python -m benchmarks.search_speed --write`)", "",
        f"{date.today()}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; generators of the `faces` architecture (random weights), forward "
        f"model Gaussian PSF + 4x bicubic, latent w+, K = {args.k}, {args.steps} steps per measurement.", "",
        *rows, "",
        f"`fast` preset: {per_tile:.2f} s per 64x64 tile ({steps} steps, 8 tiles in one batch, no early stop).", "",
        f"End to end (faces recipe, `fast` preset, random 64x64 observation -> 256x256 output, {tiles} tiles): "
        f"{wall:.0f} s, peak RSS {peak_mb:.0f} MB. A 1024x1024 output at 4x is {tiles_1024} tiles: about "
        f"{wall * tiles_1024 / tiles / 60:.0f} min at this rate (extrapolated, not measured).", "",
    ])  # fmt: skip
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
