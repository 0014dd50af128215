"""The prior-rejection test on what it must accept and what it must reject: `python -m benchmarks.rejection [--domains ...] [--n 4] [--write]`.

Per domain at 4x, with the recipe's physics stated as in ``benchmarks.real`` (Gaussian noise 3x the crop's own,
at least 1 % of its robust range), three kinds of truth ``(C, R, R)`` at the prior's resolution:

- the prior's own samples (latent draws, in physical units): the test should accept them (target >= 90 % of
  regions with ``prior_used``);
- pure noise: i.i.d. uniform values over the samples' robust range, an image no prior of natural scenes
  draws: it should be rejected;
- blank: a constant truth at the samples' median level (for astronomy, empty sky at zero): no prior content
  should be used (rejected, or nothing detected).

Reported: regions found, the fraction with the prior used (and how many were not searched: flat windows,
which one level explains), and per truth the fraction of outputs in which the
prior was used anywhere, the median whole-frame chi-square and seconds per image.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import restore

from .quality import prior_samples
from .real import physics
from .results import write_section


def truths(domain: str, n: int) -> dict[str, list[np.ndarray]]:
    """The three kinds of truth (see the module), ``n`` each, reproducible."""
    own = prior_samples(domain, n, seed=7)
    stack = np.stack(own)
    lo, hi = np.percentile(stack, 0.5), np.percentile(stack, 99.5)
    rng = np.random.default_rng(0)
    noise = [rng.uniform(lo, hi, size=own[0].shape).astype(np.float32) for _ in range(n)]
    level = 0.0 if domain == "astronomy" else float(np.median(stack))
    blank = [np.full(own[0].shape, level, np.float32) for _ in range(n)]
    return {"prior samples": own, "pure noise": noise, "blank": blank}


def run_domain(domain: str, n: int, factor: int = 4) -> list[str]:
    lines = [f"## Prior rejection: {domain} (`python -m benchmarks.rejection --domains {domain} --n {n} --write`)", "",
             f"{time.strftime('%Y-%m-%d')}, {torch.get_num_threads()} threads, restore {restore.__version__}. "
             f"{factor}x, the recipe's physics, Gaussian noise 3x the truth's own (at least 1 % of its range); "
             "4 restarts.", "",
             "| truth | target | regions | regions with prior used | outputs using the prior | chi2 (median) | s / image |",
             "|---|---|---|---|---|---|---|"]
    ref = None
    for kind, images in truths(domain, n).items():
        regions, used, flat, any_used, chi2, wall = 0, 0, 0, 0, [], 0.0
        for i, truth in enumerate(images):
            # the noise level of the prior's own samples, for all three kinds (a flat truth has no spread of its own)
            spec = physics(domain, factor, images[i] if ref is None else ref[i], ["search.restarts=4"])
            obs = restore.simulate(spec, truth, seed=300 + i)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = restore.Pipeline(spec, progress=False).run(obs)
            wall += time.perf_counter() - start
            flags = [bool(r["prior_used"]) for r in res.provenance["regions"]]
            regions += len(flags)
            used += sum(flags)
            flat += sum(r.get("model") == "flat" for r in res.provenance["regions"])
            any_used += any(flags)
            chi2.append(res.chi2)
            print(domain, kind, i, len(flags), sum(flags), round(res.chi2, 3), flush=True)
        if ref is None:
            ref = images
        target = "accept >= 90 %" if kind == "prior samples" else "reject"
        share = f"{used / regions:.0%} ({used}/{regions}{f'; {flat} flat' if flat else ''})" if regions else "(none)"
        lines.append(f"| {kind} | {target} | {regions} | {share} | {any_used}/{len(images)} | "
                     f"{np.median(chi2):.2f} | {wall / len(images):.1f} |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=["faces", "astronomy", "microscopy", "satellite"])
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    for domain in args.domains:
        text = "\n".join(run_domain(domain, args.n))
        print(text, flush=True)
        if args.write:
            write_section(text)


if __name__ == "__main__":
    main()
