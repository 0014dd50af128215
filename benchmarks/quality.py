"""Restoration quality per domain: `python -m benchmarks.quality [--domains faces astronomy ...] [--n 8] [--factors 4 8] [--write]`.

Sharp images: the 10 % hold-out of each prior's training set (the same split as `restore train-prior`,
by field of view for microscopy; never trained on), centre 64x64 crops, read through the domain's
adapter into physical units, when ../shared/data exists; otherwise (and said so) samples of the prior.
Each is degraded with the domain recipe's forward model and noise at each factor (PSF FWHM scaled with
the factor), then restored by: bicubic upsampling (less the sky, divided by the forward model's gain);
Richardson-Lucy and Wiener deconvolution of it (scikit-image, physical units, unclipped); `restore`
with the `pulse` preset (PULSE's settings: 100 steps), the `pulse` preset given the default search's
wall time (more steps), the default search, and the default without its second stage.

Reported per method: PSNR and SSIM in the prior's normalised range [-1, 1] (the truth's normalisation
for every method; for faces the same as 8-bit PSNR), the realism gap (mean absolute difference of the
log radial power spectra of result and truth above the observation's Nyquist frequency: blurry results
lack power there, noisy ones have too much), the reduced chi-square of the result against the
observation, the fraction data-consistent (chi-square in [0.8, 1.2]), the fraction of true pixels
within mean +/- 2 std (restore only), median search steps run (stage one; the search stops when every
restart is consistent), and wall time per image. Faces add PSNR and skin-tone shift per
UTKFace group.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch

import restore
from restore.degradations import build_forward, build_psf
from restore.domains import Observation, get_adapter
from restore.spec import load_train_spec
from restore.training.train import list_images, split_holdout

from .results import domain_arguments, per_domain_sections, psnr_ssim

ROOT = Path(__file__).resolve().parents[1]
RACES = {"0": "White", "1": "Black", "2": "Asian", "3": "Indian", "4": "Others"}
#: domain -> (recipe, prior training config, overrides making the recipe self-contained for arrays)
DOMAINS = {
    "faces": ("faces.yaml", "faces.yaml", []),
    "astronomy": ("astronomy.yaml", "galaxies.yaml", ["noise.gain=1.0", "noise.read_noise=5.0", "noise.sky=20.0"]),
    "microscopy": ("microscopy.yaml", "microscopy.yaml", []),
    "satellite": ("satellite.yaml", "aerial.yaml", []),
}
CROP = 64


def held_out(domain: str, n: int) -> tuple[list[np.ndarray], str, list[str]]:
    """Sharp truths ``(C, 64, 64)`` in physical units, their description, and a group label each."""
    recipe, config, _ = DOMAINS[domain]
    spec = load_train_spec(ROOT / "priors" / config)
    files = list_images(spec.data) if Path(spec.data).parent.is_dir() else []
    if files:
        held = split_holdout(files, spec.holdout, spec.holdout_group)[1]
        held = [held[i] for i in np.linspace(0, len(held) - 1, min(n, len(held))).astype(int)]  # spread over the set
        adapter = get_adapter(spec.domain)
        truths = []
        for f in held:
            data = adapter.read(f).data
            top, left = (data.shape[1] - CROP) // 2, (data.shape[2] - CROP) // 2
            truths.append(data[:, top : top + CROP, left : left + CROP].copy())
        groups = ["n/a"] * len(held)
        manifest = held[0].parent / "manifest.csv"
        if domain == "faces" and manifest.is_file():
            with manifest.open(newline="") as fh:
                race = {row["file"]: RACES.get(row.get("race") or "", "unlabelled") for row in csv.DictReader(fh)}
            groups = [race.get(f.name, "unlabelled") for f in held]
        return truths, f"{len(held)} held-out images of {Path(spec.data).parent.name} (never trained on)", groups
    return prior_samples(domain, n), \
        f"{n} samples of the prior (../shared/data not found: SKIPPED the real hold-out)", ["n/a"] * n


def prior_samples(domain: str, n: int, seed: int = 99) -> list[np.ndarray]:
    """``n`` draws of the domain recipe's prior ``(C, R, R)`` in physical units (8-bit-like for data-driven
    normalisations)."""
    recipe = DOMAINS[domain][0]
    pipe_spec = restore.load_recipe(ROOT / "recipes" / recipe, DOMAINS[domain][2])
    prior = restore.priors.load(pipe_spec.prior)
    ramp = np.linspace(0.0, 255.0, 16, dtype=np.float32).reshape(1, 4, 4)  # data-driven normalisations see 8-bit data
    norm = get_adapter(pipe_spec.domain).normalisation(Observation.from_array(ramp))
    with torch.no_grad():
        x = prior.generate(prior.sample_latent(n, torch.Generator().manual_seed(seed))).clamp(-1, 1)
    return [norm.inverse(im).numpy() for im in x]


def skin_ita(image: np.ndarray) -> float:
    """Individual typology angle (degrees) of the face centre: atan((L* - 50) / b*); lower is darker skin."""
    from skimage.color import rgb2lab

    h, w = image.shape[-2:]
    centre = np.clip(image[:, int(0.35 * h) : int(0.7 * h), int(0.3 * w) : int(0.7 * w)], 0, 255) / 255.0
    lab = rgb2lab(np.moveaxis(centre, 0, -1)).reshape(-1, 3).mean(0)
    return float(np.degrees(np.arctan2(lab[0] - 50.0, lab[2])))


def radial_log_power(image: np.ndarray) -> np.ndarray:
    """Log radial power spectrum (mean over channels), one value per integer radius."""
    power = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean(axis=(-1, -2), keepdims=True)), axes=(-2, -1))) ** 2
    h, w = image.shape[-2:]
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h // 2, xx - w // 2).astype(int).ravel()
    prof = np.bincount(r, power.mean(0).ravel()) / np.maximum(np.bincount(r), 1)
    return np.log10(prof[: min(h, w) // 2] + 1e-12)


def realism_gap(result: np.ndarray, truth: np.ndarray, factor: int) -> float:
    """Mean |log10 power difference| over radii above the observation's Nyquist frequency."""
    a, b = radial_log_power(result), radial_log_power(truth)
    return float(np.abs(a - b)[len(a) // factor :].mean())


def scores(img: np.ndarray, truth: np.ndarray, norm, factor: int) -> tuple[float, float, float]:
    """PSNR, SSIM (range [-1, 1]) and realism gap, in the truth's normalisation."""
    a = norm.forward(torch.from_numpy(np.nan_to_num(img)).double()).numpy()
    b = norm.forward(torch.from_numpy(truth).double()).numpy()
    return (*psnr_ssim(img, truth, norm), realism_gap(a, b, factor))


def classical(up: np.ndarray, psf: np.ndarray) -> dict[str, np.ndarray]:
    from skimage.restoration import richardson_lucy, wiener

    rl = np.stack([richardson_lucy(np.clip(c, 1e-3, None), psf, num_iter=20, clip=False) for c in up])
    wi = np.stack([wiener(c, psf, balance=0.05, clip=False) for c in up])
    return {"bicubic": up, "richardson-lucy": rl, "wiener": wi}


def run_domain(domain: str, n: int, factors: list[int]) -> list[str]:
    recipe, _, fixed = DOMAINS[domain]
    truths, source, groups = held_out(domain, n)
    print(f"{domain}: {source}", flush=True)
    base = restore.load_recipe(ROOT / "recipes" / recipe, fixed)
    down = [op for op in base.forward if op.kind == "downsample"][0]
    lines = [f"Recipe `{recipe}`, prior `{base.prior.name}`. Truth: {source}, centre {CROP}x{CROP}. Forward model: the recipe's ({base.forward[0].psf.kind} PSF "  # type: ignore[union-attr]
             f"scaled with the factor, {down.method} downsampling, {base.noise.kind} noise{' ' + ', '.join(fixed) if fixed else ''}).",
             "", "| factor | method | PSNR dB | SSIM | realism gap | reduced chi2 | consistent | within 2 std | steps | s / image |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    per_group: dict[tuple[str, str], list[tuple[float, float]]] = {}
    fwhm = base.forward[0].psf.fwhm  # type: ignore[union-attr]
    for factor in factors:
        overrides = [*fixed, f"forward.1.factor={factor}", f"forward.0.psf.fwhm={fwhm * factor / 4}", "layout={kind: tiles}"]
        rows: dict[str, list[tuple[float, ...]]] = {}
        walls: dict[str, float] = {}
        variants = {"default": [], "default, no second stage": ["search.refine_steps=0"], "pulse": ["search.preset=pulse"]}
        for name, extra in [*variants.items(), ("pulse, equal time", None)]:
            if extra is None:  # PULSE given the default's wall time: more steps, same settings
                steps = max(1, round(100 * walls["default"] / max(walls["pulse"], 1e-9)))
                extra, name = ["search.preset=pulse", f"search.steps={steps}"], f"pulse, equal time ({steps} steps)"
            spec = restore.load_recipe(ROOT / "recipes" / recipe, overrides + extra)
            pipe = restore.Pipeline(spec, progress=False)
            forward = build_forward(spec.forward).double()
            psf = build_psf(spec.forward[0].psf).numpy()  # type: ignore[union-attr]
            total = 0.0
            for i, truth in enumerate(truths):
                obs = restore.simulate(spec, truth, seed=100 + i)
                norm = pipe.parts.adapter.normalisation(Observation.from_array(truth))
                if name == "default":  # the classical baselines, once per image
                    likelihood = pipe.likelihood(Observation.from_array(obs)).double()
                    y = torch.from_numpy(obs)[None].double()
                    for cname, img in classical(pipe.plain(obs), psf).items():
                        with torch.no_grad():
                            chi2 = float(likelihood.reduced_chi2(y, forward(torch.from_numpy(img)[None].double()))[0])
                        rows.setdefault(cname, []).append((*scores(img, truth, norm, factor), chi2, 0.8 <= chi2 <= 1.2, np.nan, 0.0, np.nan))
                t = time.perf_counter()
                res = pipe.run(obs)
                wall = time.perf_counter() - t
                total += wall
                inside = float(np.mean(np.abs(res.image - truth) <= 2 * res.std + 1e-6 * np.abs(truth).max()))
                scored = scores(res.image, truth, norm, factor)
                rows.setdefault(f"restore `{name}`", []).append(
                    (*scored, res.chi2, 0.8 <= res.chi2 <= 1.2, inside, wall, res.provenance["steps"]))
                if name == "default" and domain == "faces":
                    per_group.setdefault((f"{factor}x", groups[i]), []).append(
                        (scored[0], skin_ita(res.image) - skin_ita(truth)))
            walls[name] = total
        for name, vals in rows.items():
            v = np.array(vals, dtype=np.float64)
            within = "" if np.isnan(v[:, 5]).all() else f"{np.nanmean(v[:, 5]):.2f}"
            steps = "" if np.isnan(v[:, 7]).all() else f"{np.median(v[:, 7]):.0f}"
            lines.append(f"| {factor}x | {name} | {v[:, 0].mean():.2f} | {v[:, 1].mean():.3f} | {v[:, 2].mean():.2f} | "
                         f"{np.median(v[:, 3]):.2f} | {v[:, 4].mean():.0%} | {within} | {steps} | {v[:, 6].mean():.1f} |")
            print(lines[-1], flush=True)
    if per_group:
        lines += ["", "Per UTKFace group (restore `default`): PSNR and skin-tone shift, the change of the face centre's "
                  "individual typology angle (ITA, degrees; negative = darker, positive = lighter than the truth).", "",
                  "| factor | group | images | PSNR dB | ITA shift (mean) | ITA shift (mean abs) |", "|---|---|---|---|---|---|"]
        for (factor, group), vals in sorted(per_group.items()):
            v = np.array(vals)
            lines.append(f"| {factor} | {group} | {len(v)} | {v[:, 0].mean():.2f} | {v[:, 1].mean():+.1f} | {np.abs(v[:, 1]).mean():.1f} |")
    return [*lines, ""]


def main() -> None:
    args = domain_arguments(__doc__.splitlines()[0], list(DOMAINS))
    per_domain_sections(args, "Quality", "python -m benchmarks.quality", f"restore {restore.__version__}.", [], run_domain)

if __name__ == "__main__":
    main()
