"""Peak memory of a restoration against the size of its output frame: `restore run` (straight to files,
band by band) against `Pipeline.run` + `save` (the whole restoration in memory).

Each measurement is a child process restoring a synthetic RGB TIFF observation (no georeferencing) through the
satellite recipe at 4x with a 2-step search and no second stage (memory does not depend on the number of steps;
the time does) and reporting its own peak resident set size.

    python -m benchmarks.memory --sizes 128 512 1024 --write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from .results import write_section

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "satellite.yaml"
OVERRIDES = ["search.steps=2", "search.refine_steps=0", "search.restarts=2", "search.tile_batch=32"]

CHILD = """
import json, resource, sys
mode, source, out = sys.argv[1:4]
import restore
from restore.cli import main
if mode == "files":
    main(["run", {recipe!r}, source, "-o", out, "-q", *sum([["--set", o] for o in {overrides!r}], [])])
else:
    pipe = restore.Pipeline.from_yaml({recipe!r}, {overrides!r}, progress=False, keep_samples=False)
    pipe.run(source).save(out)
print(json.dumps({{"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def observation(size: int, path: Path) -> None:
    """A smooth random ``size``^2 RGB scene in 8 bits (its content does not change the memory)."""
    from restore.imageio import write_array

    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, size // 8 + 1, size // 8 + 1)).astype(np.float32))
    scene = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]
    write_array(path, scene.clamp(0, 255).numpy(), {"format": "tiff", "dtype": "uint8", "layout": "HWC"})


def measure(mode: str, source: Path, out: Path, live: bool = False) -> tuple[float, float]:
    """Peak RSS (MB) and wall time (s) of one child restoring ``source`` into ``out``; ``live``: with glibc's
    mmap threshold pinned at 64 KiB, so that freed buffers go back to the system and the peak is live memory."""
    code = CHILD.format(recipe=str(RECIPE), overrides=OVERRIDES)
    env = {**os.environ, **({"MALLOC_MMAP_THRESHOLD_": "65536"} if live else {})}
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, mode, str(source), str(out)], check=True, capture_output=True,
                          text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"], time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 1024], help="observed frame sides")
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = ["| observed | output (4x) | output float32, 3 planes | `restore run` peak RSS | in memory peak RSS | ratio "
            "| `restore run` live peak | in memory live peak | `restore run` time |",
            "|---|---|---|---|---|---|---|---|---|"]
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "scene.tif"
            observation(size, source)
            files_mb, files_s = measure("files", source, Path(tmp) / "files")
            memory_mb, _ = measure("memory", source, Path(tmp) / "memory")
            files_live, _ = measure("files", source, Path(tmp) / "files-live", live=True)
            memory_live, _ = measure("memory", source, Path(tmp) / "memory-live", live=True)
        frame_mb = 3 * (4 * size) ** 2 * 4 / 2**20
        rows.append(f"| {size}x{size} | {4 * size}x{4 * size} | {frame_mb:.0f} MB | {files_mb:.0f} MB | {memory_mb:.0f} MB "
                    f"| {memory_mb / files_mb:.2f} | {files_live:.0f} MB | {memory_live:.0f} MB | {files_s:.0f} s |")
        print(rows[-1], flush=True)
    text = "\n".join([
        f"## Memory against frame size (`python -m benchmarks.memory --sizes {' '.join(map(str, args.sizes))} --write`)", "",
        f"{date.today()}, {platform.machine()}, torch {torch.__version__}; satellite recipe at 4x (aerial prior, "
        f"3 bands), `{' '.join(OVERRIDES)}` (memory does not depend on the steps); each cell one child process's "
        "peak resident set size. `restore run` writes the restoration band by band through scratch files; "
        "`Pipeline.run` holds the restoration and its spread in memory. *Live* peaks pin glibc's mmap threshold "
        "(`MALLOC_MMAP_THRESHOLD_=65536`) so freed buffers return to the system: the peak of what is in use, "
        "where the default allocator keeps freed heap (search buffers) mapped.", "", *rows, ""])
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
