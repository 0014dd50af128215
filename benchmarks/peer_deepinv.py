"""A peer library on the same inputs: DeepInverse's CSGM (`deepinv.models.CSGMGenerator`) latent
optimisation on restore's own priors, with restore's forward models.

Runs in a separate environment (DeepInverse needs torchvision, which does not import beside the CPU
torch of the core install; kept out of the core and of CI):

    python -m venv ../bench-env && ../bench-env/bin/pip install torch==2.14.1 torchvision==0.29.1 deepinv
    ../bench-env/bin/pip install -e ".[test]"
    PYTHONPATH=. ../bench-env/bin/python -m benchmarks.peer_deepinv --n 8 --factors 4 8 --write

Same truths, observations (same seeds) and scores as `benchmarks.quality`. CSGM runs with its own
defaults (Adam lr 1e-2, up to 2500 steps, relative tolerance 1e-4, one uniform start in [-1, 1]) on the
prior's z space; its data term is the squared residual whitened by the noise model's standard deviation
at the observation, so it sees the same physics as restore; it has no notion of data-consistency,
which is reported for it alike.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

import restore
from restore.degradations import build_forward
from restore.domains import Observation

from .quality import DOMAINS, ROOT, held_out, scores
from .results import domain_arguments, per_domain_sections


class ZBackbone(nn.Module):
    """A restore prior as DeepInverse expects a generator: ``nz`` and latents shaped ``(B, nz, 1, 1)``."""

    def __init__(self, prior: nn.Module) -> None:
        super().__init__()
        self.prior, self.nz = prior, prior.latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.prior.generate(z.flatten(1), "z")


def run_domain(domain: str, n: int, factors: list[int]) -> list[str]:
    import deepinv

    recipe, _, fixed = DOMAINS[domain]
    truths, source, _ = held_out(domain, n)
    base = restore.load_recipe(ROOT / "recipes" / recipe, fixed)
    fwhm = base.forward[0].psf.fwhm  # type: ignore[union-attr]
    lines = []
    for factor in factors:
        overrides = [*fixed, f"forward.1.factor={factor}", f"forward.0.psf.fwhm={fwhm * factor / 4}", "layout={kind: tiles}"]
        spec = restore.load_recipe(ROOT / "recipes" / recipe, overrides)
        pipe = restore.Pipeline(spec, progress=False)
        forward = build_forward(spec.forward)
        rows = []
        for i, truth in enumerate(truths):
            obs = restore.simulate(spec, truth, seed=100 + i)
            y = torch.from_numpy(obs)[None]
            likelihood = pipe.likelihood(Observation.from_array(obs))
            norm = pipe.parts.adapter.normalisation(Observation.from_array(obs))
            with torch.no_grad():  # whitening: the noise model's standard deviation at the observation
                scale = likelihood.variance((y - likelihood.mean(torch.zeros_like(y))).clamp_min(0)).sqrt().float()
            physics = deepinv.physics.Physics(A=lambda x, n=norm, s=scale, lk=likelihood, a=forward: lk.mean(a(n.inverse(x))) / s)
            model = deepinv.models.CSGMGenerator(ZBackbone(pipe.parts.prior)).eval()
            torch.manual_seed(i)
            t = time.perf_counter()
            with torch.no_grad():
                x = model(y / scale, physics)
            wall = time.perf_counter() - t
            img = norm.inverse(x.detach())[0].numpy()
            with torch.no_grad():
                chi2 = float(likelihood.reduced_chi2(y, forward(torch.from_numpy(img)[None]))[0])
            rows.append((*scores(img, truth, norm, factor), chi2, 0.8 <= chi2 <= 1.2, wall))
        v = np.array(rows, dtype=np.float64)
        lines.append(f"| {domain} | {factor}x | {v[:, 0].mean():.2f} | {v[:, 1].mean():.3f} | {v[:, 2].mean():.2f} | "
                     f"{np.median(v[:, 3]):.2f} | {v[:, 4].mean():.0%} | {v[:, 5].mean():.1f} |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    args = domain_arguments(__doc__.splitlines()[0], list(DOMAINS))
    import deepinv

    per_domain_sections(args, "Peer, DeepInverse CSGM", "PYTHONPATH=. ../bench-env/bin/python -m benchmarks.peer_deepinv",
                        f"deepinv {deepinv.__version__}; same truths, observations and scores as the quality tables.",
                        ["| domain | factor | PSNR dB | SSIM | realism gap | reduced chi2 | consistent | s / image |",
                         "|---|---|---|---|---|---|---|---|"], run_domain)

if __name__ == "__main__":
    main()
