"""What a prior can draw: `python -m benchmarks.ceiling [--domains ...] [--n 8] [--real] [--prior DOMAIN=FILE] [--write]`.

The latent search fitted to the sharp image itself (no degradation: an identity forward model, a
Gaussian likelihood of one 8-bit level in the prior's range [-1, 1]), with the default preset's latent
space, penalties, restarts and steps, no early stop, no second stage and no noise maps: the best PSNR
(in the prior's range, as the quality benchmark) the prior reaches. The search cannot recover what the
prior cannot draw, so a restoration is bounded by this ceiling.

Images: centre 64x64 crops of the priors' held-out training images (the same split as training; choose
among priors on these), or with ``--real`` 64x64 centre crops of the real-file cases of
``benchmarks.real`` (report only: never a selection score). ``--prior microscopy=runs/x.safetensors``
measures a candidate prior instead of the shipped one.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import restore
from restore.degradations import Compose, GaussianNoise
from restore.domains import Observation, get_adapter
from restore.search import Problem, SearchConfig, config_from_spec, latent_search

from .quality import DOMAINS, held_out
from .real import CASES, REAL, truth_of
from .results import psnr_ssim, write_section

ROOT = Path(__file__).resolve().parents[1]
SIDE = 64


def ceiling_config(spec: restore.PipelineSpec) -> SearchConfig:
    """The recipe's default search, as it fits an image: every step, no second stage, no noise maps."""
    return replace(config_from_spec(spec.search, progress=False), early_stop=False, refine_steps=0, noise_maps=False)


def fit(prior: restore.priors.Prior, truths: torch.Tensor, config: SearchConfig, seed: int = 0) -> torch.Tensor:
    """The prior's best image (restart of lowest objective) for each truth ``(N, C, R, R)`` in its range."""
    problem = Problem(prior, Compose([]), GaussianNoise(2 / 255))
    result = latent_search(problem, truths.float(), config, seed=seed)
    objective = result.objective.reshape(len(truths), config.restarts)
    best = objective.argmin(1) + torch.arange(len(truths)) * config.restarts
    return result.images[best]


def crops(domain: str, n: int, real: bool) -> tuple[list[np.ndarray], str]:
    """Sharp 64x64 crops in physical units, and their description."""
    if not real:
        truths, what, _ = held_out(domain, n)
        return truths, what
    images = []
    for case in CASES[domain][2]:
        data = truth_of(domain, case)
        top, left = (data.shape[1] - SIDE) // 2, (data.shape[2] - SIDE) // 2
        images.append(data[:, top : top + SIDE, left : left + SIDE])
    return images, f"{len(images)} real-file crops ({', '.join(c[0] for c in CASES[domain][2])}; report only)"


def run_domain(domain: str, n: int, real: bool, prior_file: str | None) -> list[str]:
    recipe = restore.load_recipe(ROOT / "recipes" / DOMAINS[domain][0], DOMAINS[domain][2])
    prior = restore.priors.load(prior_file or recipe.prior)
    adapter = get_adapter(recipe.domain)
    images, what = crops(domain, n, real)
    norms = [adapter.normalisation(Observation.from_array(im)) for im in images]
    truths = torch.stack([norm.forward(torch.from_numpy(im).double()).float().clamp(-1, 1)
                          for norm, im in zip(norms, images)])
    config = ceiling_config(recipe)
    t0 = time.perf_counter()
    fitted = fit(prior, truths, config)
    seconds = (time.perf_counter() - t0) / len(images)
    fitted_phys = [norm.inverse(x.double()).numpy() for norm, x in zip(norms, fitted.detach())]
    psnr = [psnr_ssim(f, im, norm) for f, im, norm in zip(fitted_phys, images, norms)]
    values = np.array(psnr)
    name = prior_file or prior.name
    return [f"## Ceiling: {domain}, prior `{name}` on {'real-file' if real else 'held-out'} crops "
            f"(`python -m benchmarks.ceiling --domains {domain} --n {n}{' --real' if real else ''}"
            f"{f' --prior {domain}={prior_file}' if prior_file else ''} --write`)", "",
            f"{what}; default preset ({config.latent}, {config.restarts} restarts x {config.steps} steps, no early stop, "
            f"no second stage), {torch.get_num_threads()} threads", "",
            "| images | ceiling PSNR mean | min | max | SSIM mean | s/image |", "|---|---|---|---|---|---|",
            f"| {len(images)} | {values[:, 0].mean():.2f} | {values[:, 0].min():.2f} | {values[:, 0].max():.2f} | "
            f"{values[:, 1].mean():.3f} | {seconds:.1f} |", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=list(DOMAINS))
    parser.add_argument("--n", type=int, default=8, help="held-out crops per domain")
    parser.add_argument("--real", action="store_true", help="the real-file crops instead (report only)")
    parser.add_argument("--prior", action="append", default=[], metavar="DOMAIN=FILE", help="a candidate prior")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if args.real and not REAL.is_dir():
        print(f"SKIPPED: {REAL} not found (--real needs ../shared/data/real)")
        return
    candidates = dict(item.split("=", 1) for item in args.prior)
    for domain in args.domains:
        text = "\n".join(run_domain(domain, args.n, args.real, candidates.get(domain)))
        print(text, flush=True)
        if args.write:
            write_section(text)


if __name__ == "__main__":
    main()
