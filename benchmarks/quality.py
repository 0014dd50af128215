"""Restoration quality on held-out faces: `python -m benchmarks.quality [--n 8] [--factors 4 8] [--write]`.

Sharp images: the faces prior's 10 % hold-out of ../shared/data/faces (every 10th file, never trained
on) when that folder exists; otherwise (and said so) samples of the prior itself. Each is degraded
with the faces recipe's forward model and noise at each factor (PSF FWHM scaled with the factor),
then restored by: bicubic upsampling; Richardson-Lucy and Wiener deconvolution of the bicubic
upsampling (scikit-image, in data units, unclipped); `restore` with the `pulse` preset (PULSE's
settings), with its default search (which ends with the second stage), and without that stage. Reported: PSNR and SSIM against the truth (data range 255),
reduced chi-square of the result against the observation, the fraction data-consistent
(chi-square of the returned image in [0.8, 1.2], for every method alike), the fraction of true pixels within mean +/- 2 std (calibration of the
spread, restore only), and wall time per image.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import restore
from restore.degradations import build_forward, build_likelihood
from restore.degradations.compose import build_psf

from .results import write_section

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "faces"


RACES = {"0": "White", "1": "Black", "2": "Asian", "3": "Indian", "4": "Others"}


def held_out_faces(n: int) -> tuple[list[np.ndarray], str, list[str]]:
    """Sharp truths, their description, and each one's UTKFace group label (or "n/a")."""
    if SHARED.is_dir():
        import csv

        files = sorted(SHARED.glob("*.png"))[::10][:n]  # the training hold-out: every 10th file
        with (SHARED / "manifest.csv").open(newline="") as fh:
            race = {row["file"]: RACES.get(row.get("race") or "", "unlabelled") for row in csv.DictReader(fh)}
        return [np.moveaxis(np.asarray(Image.open(f).convert("RGB"), np.float32), -1, 0) for f in files], \
            f"{len(files)} held-out UTKFace crops (every 10th file of shared/data/faces, not trained on)", \
            [race.get(f.name, "unlabelled") for f in files]
    prior = restore.priors.load("faces")
    with torch.no_grad():
        x = prior.generate(prior.sample_latent(n, torch.Generator().manual_seed(99)))
    return [((im.clamp(-1, 1) + 1) * 127.5).numpy() for im in x], \
        f"{n} samples of the faces prior (shared/data not found: SKIPPED the real hold-out)", ["n/a"] * n


def skin_ita(image: np.ndarray) -> float:
    """Individual typology angle (degrees) of the face centre: atan((L* - 50) / b*); lower is darker skin."""
    from skimage.color import rgb2lab

    h, w = image.shape[-2:]
    centre = np.clip(image[:, int(0.35 * h) : int(0.7 * h), int(0.3 * w) : int(0.7 * w)], 0, 255) / 255.0
    lab = rgb2lab(np.moveaxis(centre, 0, -1)).reshape(-1, 3).mean(0)
    return float(np.degrees(np.arctan2(lab[0] - 50.0, lab[2])))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((np.clip(a, 0, 255) - b) ** 2)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.clip(a, 0, 255), b, channel_axis=0, data_range=255.0))


def classical(obs: np.ndarray, psf: np.ndarray, factor: int) -> dict[str, np.ndarray]:
    from skimage.restoration import richardson_lucy, wiener

    up = torch.nn.functional.interpolate(torch.from_numpy(obs)[None], scale_factor=factor, mode="bicubic",
                                         align_corners=False)[0].numpy()  # fmt: skip
    rl = np.stack([richardson_lucy(np.clip(c, 1e-3, None), psf, num_iter=20, clip=False) for c in up])
    wi = np.stack([wiener(c, psf, balance=0.05, clip=False) for c in up])
    return {"bicubic": up, "richardson-lucy": rl, "wiener": wi}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--factors", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    truths, source, groups = held_out_faces(args.n)
    print(source, flush=True)
    lines = [f"## Quality on faces (`python -m benchmarks.quality --n {args.n} --write`)", "",
             f"{date.today()}, {platform.machine()}, torch {torch.__version__}. Truth: {source}. Forward model: the faces "
             "recipe's (Gaussian PSF of FWHM 1.5 x factor/4 sharp pixels, bicubic downsampling, Gaussian noise sigma 4 in "
             "8-bit units).", "",
             "| factor | method | PSNR dB | SSIM | reduced chi2 | consistent | within 2 std | s / image |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    per_group: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for factor in args.factors:
        overrides = [f"forward.1.factor={factor}", f"forward.0.psf.fwhm={1.5 * factor / 4}"]
        rows: dict[str, list[tuple[float, ...]]] = {}
        variants = {"pulse": ["search.preset=pulse"], "default, no second stage": ["search.refine_steps=0"],
                    "default": ["search.preset=default"]}  # fmt: skip
        for preset, extra in variants.items():
            spec = restore.load_recipe(ROOT / "recipes" / "faces.yaml", overrides + extra)
            pipe = restore.Pipeline(spec, progress=False)
            forward, likelihood = build_forward(spec.forward), build_likelihood(spec.noise)
            psf = build_psf(spec.forward[0].psf).numpy()
            for i, truth in enumerate(truths):
                obs = restore.simulate(spec, truth, seed=100 + i)
                if preset == "pulse":
                    for name, img in classical(obs, psf, factor).items():
                        with torch.no_grad():
                            chi2 = float(likelihood.reduced_chi2(torch.from_numpy(obs)[None].double(),
                                                                 forward(torch.from_numpy(img)[None].double()))[0])  # fmt: skip
                        rows.setdefault(name, []).append((psnr(img, truth), ssim(img, truth), chi2, 0.8 <= chi2 <= 1.2, np.nan, 0.0))
                t = time.perf_counter()
                res = pipe.run(obs)
                wall = time.perf_counter() - t
                inside = float(np.mean(np.abs(res.image - truth) <= 2 * res.std + 0.5))
                rows.setdefault(f"restore `{preset}`", []).append(
                    (psnr(res.image, truth), ssim(res.image, truth), res.chi2, 0.8 <= res.chi2 <= 1.2, inside, wall))
                if preset == "default":
                    per_group.setdefault((f"{factor}x", groups[i]), []).append(
                        (psnr(res.image, truth), skin_ita(res.image) - skin_ita(truth)))
        for name, vals in rows.items():
            v = np.array(vals, dtype=np.float64)
            within = "" if np.isnan(v[:, 4]).all() else f"{np.nanmean(v[:, 4]):.2f}"
            lines.append(f"| {factor}x | {name} | {v[:, 0].mean():.2f} | {v[:, 1].mean():.3f} | {np.median(v[:, 2]):.2f} | "
                         f"{v[:, 3].mean():.0%} | {within} | {v[:, 5].mean():.1f} |")  # fmt: skip
            print(lines[-1], flush=True)
    lines += ["", "Per UTKFace group (restore `default`): PSNR and skin-tone shift, the change of the face centre's "
              "individual typology angle (ITA, degrees; negative = darker, positive = lighter than the truth).", "",
              "| factor | group | images | PSNR dB | ITA shift (mean) | ITA shift (mean abs) |", "|---|---|---|---|---|---|"]
    for (factor, group), vals in sorted(per_group.items()):
        v = np.array(vals)
        lines.append(f"| {factor} | {group} | {len(v)} | {v[:, 0].mean():.2f} | {v[:, 1].mean():+.1f} | {np.abs(v[:, 1]).mean():.1f} |")
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
