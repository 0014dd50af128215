"""The prior's share over the classical solution: `python -m benchmarks.calibrate [--domains ...] [--n 4] [--factors 4 8] [--cards] [--write]`.

On each prior's held-out crops (never trained on; never real files), degraded with the same physics as
`benchmarks.real` (its domain recipe's PSF and binning, Gaussian noise 3x the crop's own), `restore` is run
twice with the default preset: with ``consistency.prior_weight=1`` (the prior's restoration, ``p``) and ``0``
(the classical solution alone, ``c``). The weight ``w`` that makes ``c + w (p - c)`` nearest the truths is
the least-squares coefficient pooled over the crops, ``sum <p - c, t - c> / sum |p - c|^2`` in the
truth's normalisation (what PSNR measures), clipped to [0, 1]. Reported per factor: the weight, and the
mean PSNR of ``c``, ``p`` and ``c + w (p - c)``. ``--cards`` writes the weights into the shipped priors'
cards (``prior_weight``: the recipes' default ``consistency.prior_weight: card`` reads them); the engine
then fits ``w p + v`` with one correction ``v`` (the same blend when the correction's weight is held; it is
re-chosen by the discrepancy principle, so `benchmarks.real --heldout` measures what the engine makes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import restore
from restore.domains import Observation
from restore.priors.io import read_card, update_card

from .real import CASES, ROOT, held_out_truths, physics
from .results import write_section

WEIGHTS = ROOT / "restore" / "priors" / "weights"


def _normalised(pipe: restore.Pipeline, truth: np.ndarray, image: np.ndarray) -> np.ndarray:
    norm = pipe.parts.adapter.normalisation(Observation.from_array(truth))
    return norm.forward(torch.from_numpy(np.ascontiguousarray(image, np.float32))).numpy().astype(np.float64)


def pair(domain: str, factor: int, truth: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The truth, the classical solution and the prior's restoration of one crop, in the truth's normalisation."""
    out = []
    for weight in (0, 1):
        spec = physics(domain, factor, truth, ["search.restarts=4", f"consistency.prior_weight={weight}"])
        pipe = restore.Pipeline(spec, progress=False, keep_samples=False)
        out.append(_normalised(pipe, truth, pipe.run(restore.simulate(spec, truth, seed=seed)).image))
    return _normalised(pipe, truth, truth), out[0], out[1]


def calibrate(domain: str, factor: int, n: int) -> dict[str, float]:
    """The least-squares weight at ``factor`` on ``n`` held-out crops (2x2 mosaics where one crop's
    observation is too small), with the PSNRs of ``c``, ``p`` and the blend."""
    truths = held_out_truths(domain, n, factor)[0]
    triples = [pair(domain, factor, t, 100 + i) for i, t in enumerate(truths)]
    num = sum(float(np.sum((p - c) * (t - c))) for t, c, p in triples)
    den = sum(float(np.sum((p - c) ** 2)) for t, c, p in triples)
    weight = round(float(np.clip(num / den, 0, 1)), 2) if den > 0 else 1.0

    def psnr(x: np.ndarray, t: np.ndarray) -> float:
        return float(10 * np.log10(4 / np.mean((x - t) ** 2)))

    return {"weight": weight, "n": len(triples),
            **{k: float(np.mean([psnr(x(t, c, p), t) for t, c, p in triples]))
               for k, x in (("classical", lambda t, c, p: c), ("prior", lambda t, c, p: p),
                            ("blend", lambda t, c, p: c + weight * (p - c)))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--n", type=int, default=4, help="held-out crops per domain")
    parser.add_argument("--factors", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--cards", action="store_true", help="write the weights into the shipped priors' cards")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    for domain in args.domains:
        prior = restore.load_recipe(ROOT / "recipes" / CASES[domain][0]).prior.name
        cmd = (f"python -m benchmarks.calibrate --domains {domain} --n {args.n} --factors "
               f"{' '.join(map(str, args.factors))}{' --cards' if args.cards else ''} --write")
        lines = [f"## Prior weight: {domain} (`{cmd}`)", "",
                 f"{time.strftime('%Y-%m-%d')}, {torch.get_num_threads()} threads, restore {restore.__version__}, "
                 f"prior `{prior}`, held-out crops, physics of `benchmarks.real`. PSNR dB in the truth's normalisation.",
                 "", "| factor | crops | weight | classical (w = 0) | prior (w = 1) | c + w (p - c) |", "|---|---|---|---|---|---|"]
        weights = {}
        for factor in args.factors:
            r = calibrate(domain, factor, args.n)
            weights[str(factor)] = r["weight"]
            lines.append(f"| {factor}x | {r['n']} | {r['weight']:.2f} | {r['classical']:.2f} | {r['prior']:.2f} | "
                         f"{r['blend']:.2f} |")
        text = "\n".join([*lines, ""])
        print(text, flush=True)
        if args.write:
            write_section(text)
        if args.cards:
            path = WEIGHTS / f"{prior}.safetensors"
            update_card(path, {"prior_weight": {**(read_card(path).prior_weight or {}), **weights}})
            print(f"wrote prior_weight {weights} into {Path(path).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
