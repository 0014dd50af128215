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
from restore.search import Problem, SearchConfig, latent_search
from restore.spec import PRESETS

from .results import write_section

ROOT = Path(__file__).resolve().parents[1]

WIDTHS = {4: 128, 8: 128, 16: 64, 32: 32, 64: 16, 128: 8}


def make_prior(size: int) -> Prior:
    torch.manual_seed(0)
    g = StyleGAN2Generator(size, 128, 4, {r: c for r, c in WIDTHS.items() if r <= size})
    prior = Prior(g, {"name": f"bench{size}", "resolution": size, "channels": 3, "latent_dim": 128})
    prior.fit_latent_stats(1000)
    return prior


def floor_step(prior: Prior, forward, y: torch.Tensor, latent: torch.Tensor) -> None:
    latent.grad = None
    x = prior.generator.synthesis(latent, prior.noise_maps())
    ((forward(x) - y) ** 2).sum().backward()


def time_it(fn, repeats: int) -> float:
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
    config = SearchConfig(latent="w+", restarts=batch, steps=steps, early_stop=False, progress=False, geocross=0.01,
                          refine_steps=0)  # stage one: the step the floor is the bound of
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


def end_to_end(obs_size: int) -> tuple[float, int, float]:
    """`restore run` as a user runs it (a child process: read, restore, write) on an ``obs_size``^2 RGB
    TIFF observed through the satellite recipe (a mosaic of aerial-prior samples, degraded 4x), with the
    `fast` preset: wall time, tiles, and the child's peak RSS in MB."""
    import resource
    import subprocess
    import sys
    import tempfile

    import numpy as np

    import restore
    from restore.imageio import write_array

    recipe = ROOT / "recipes" / "satellite.yaml"
    spec = restore.load_recipe(recipe)
    prior = restore.priors.load(spec.prior)
    n = obs_size * 4 // 64
    with torch.no_grad():
        tiles = prior.generate(prior.sample_latent(n * n, torch.Generator().manual_seed(0))).clamp(-1, 1)
    mosaic = ((tiles.reshape(n, n, 3, 64, 64).permute(2, 0, 3, 1, 4).reshape(3, n * 64, n * 64) + 1) * 127.5).numpy()
    observed = restore.simulate(spec, mosaic, seed=0).clip(0, 255).round().astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.tif"
        write_array(path, observed, {"format": "tiff", "dtype": "uint8"})
        code = "import sys; from restore.cli import main; sys.exit(main())"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, "run", str(recipe), str(path), "-o", str(Path(tmp) / "out"), "-q",
                        "--set", "search.preset=fast"], check=True, capture_output=True)
        wall = time.perf_counter() - t
        report = (Path(tmp) / "out" / "scene.report.json").read_text()
    import json

    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, len(json.loads(report)["regions"]), peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--frame", type=int, default=1024, help="output frame size of the end-to-end run")
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = ["| resolution | ms/step (batch 1) | floor (batch 1) | ratio | ms/step (batch K) | floor (batch K) | ratio | K restarts / 1 restart |",
            "|---|---|---|---|---|---|---|---|"]
    for size in (32, 64, 128):
        s1, f1 = measure(size, 1, args.steps)
        sk, fk = measure(size, args.k, args.steps)
        rows.append(f"| {size} | {s1:.1f} | {f1:.1f} | {s1 / f1:.2f} | {sk:.1f} | {fk:.1f} | {sk / fk:.2f} | {sk / s1:.2f} |")
        print(rows[-1], flush=True)
    per_tile, steps = fast_tile_seconds()
    wall, tiles, peak_mb = end_to_end(args.frame // 4)
    text = "\n".join([
        "## Search speed (`python -m benchmarks.search_speed --write`)", "",
        f"{date.today()}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; generators of the `faces` architecture (random weights), forward "
        f"model Gaussian PSF + 4x bicubic, latent w+, K = {args.k}, {args.steps} steps per measurement.", "",
        *rows, "",
        f"`fast` preset: {per_tile:.2f} s per 64x64 tile ({steps} steps, 8 tiles in one batch, no early stop).", "",
        f"End to end, measured: `restore run recipes/satellite.yaml scene.tif --set search.preset=fast` on a "
        f"{args.frame // 4}x{args.frame // 4} RGB TIFF (a mosaic of aerial-prior samples observed through the recipe) "
        f"-> {args.frame}x{args.frame} output, {tiles} tiles: {wall / 60:.1f} min wall, peak RSS {peak_mb:.0f} MB "
        f"(read, restore, write; one process).", "",
    ])
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
