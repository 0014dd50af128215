"""Write one section of benchmarks/RESULTS.md, keeping the others (and the analysis on top) in place."""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "RESULTS.md"


def write_section(text: str) -> None:
    """Replace the ``## `` section whose heading starts like ``text``'s first line, or append it."""
    heading = text.splitlines()[0].split("(")[0].strip()
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    parts = current.split("\n## ")
    kept = [parts[0]] + ["## " + p for p in parts[1:] if not ("## " + p).startswith(heading)]
    RESULTS.write_text("\n\n".join(s.rstrip() for s in kept) + "\n\n" + text.rstrip() + "\n")


def domain_arguments(description: str, domains: list[str]) -> argparse.Namespace:
    """The per-domain benchmarks' command line: ``--domains``, ``--n`` images, ``--factors``, ``--write``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--domains", nargs="+", default=domains, choices=domains)
    parser.add_argument("--n", type=int, default=8, help="held-out images per domain")
    parser.add_argument("--factors", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--write", action="store_true", help="write the tables into benchmarks/RESULTS.md")
    return parser.parse_args()


def per_domain_sections(args: argparse.Namespace, title: str, command: str, note: str, header: list[str],
                        run: Callable[[str, int, list[int]], list[str]]) -> None:
    """One RESULTS.md section per domain (so a domain can be rerun alone): heading with the exact
    command, date, machine and versions, ``header`` lines, then ``run(domain, n, factors)``'s lines."""
    for domain in args.domains:
        cmd = f"{command} --domains {domain} --n {args.n} --factors {' '.join(map(str, args.factors))} --write"
        lines = [f"## {title}: {domain} (`{cmd}`)", "",
                 f"{date.today()}, {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
                 f"{note}", "", *header, *run(domain, args.n, args.factors), ""]
        text = "\n".join(lines)
        print(text, flush=True)
        if args.write:
            write_section(text)


def psnr_ssim(img: np.ndarray, truth: np.ndarray, norm) -> tuple[float, float]:
    from skimage.metrics import structural_similarity

    a = norm.forward(torch.from_numpy(np.nan_to_num(img)).double()).numpy()
    b = norm.forward(torch.from_numpy(truth).double()).numpy()
    psnr = float(10 * np.log10(4.0 / max(np.mean((np.clip(a, -1, 1) - b) ** 2), 1e-12)))
    return psnr, float(structural_similarity(np.clip(a, -1, 1), b, channel_axis=0, data_range=2.0))
