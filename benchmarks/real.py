"""Restoration of real files: `python -m benchmarks.real [--domains ...] [--factors 4 8] [--more] [--write]`.

Truths are fixed crops (listed in ``CASES``; ``--more``: centred crops of every other file, ``MORE``) of the real files in ``../shared/data/real/`` (test data
only: never trained or tuned on), read through the domain's adapter into physical units. Each is
degraded with its domain recipe's PSF (FWHM scaled with the factor), an s x s block mean (sum for
astronomy) and Gaussian noise of 3x the crop's own measured noise (robust, high-pass MAD; at least 1 %
of its robust range), and the recipe states exactly that physics. ``--heldout N`` runs the same table
on N held-out crops of each prior's training set instead (at a factor where one crop's observation
is smaller than the forward model's reach, as 64x64 galaxies at 8x: N 2x2 mosaics of 4N crops).
Restored by: bicubic upsampling, Richardson-Lucy and Wiener deconvolution with the effective kernel (the PSF convolved with the s x s
box), their iteration count / balance fixed once per domain and factor on the first case and then
held, and ``restore`` with the default preset.

Reported per method: PSNR and SSIM in the truth's normalisation ([-1, 1]), the whole-frame reduced
chi-square against the observation, the same against a second independent noise draw of the same
degraded truth (1 + the error of the predicted observation: noise fitting shows as a value above 1; per
factor, the floor of that value no estimator that knows the image only as well as its DCT or Haar amplitudes
can go below, :func:`draw_floor`: median and least over the images), the fraction consistent (chi-square in
[0.8, 1.2]), for ``restore`` the fraction of regions (tiles/objects) whose own chi-square is in that band
and the fraction whose prior was used (in brackets, the shares not searched: flat windows, which a level
explains, and point sources; the rest its test rejected), how often the error of a pixel with a prior
spread is at most twice that spread (78 % were the 4 restarts posterior draws), and seconds per image.
Skips cleanly when ``../shared/data/real`` is absent.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.fft import dctn
from scipy.signal import fftconvolve

import restore
from restore.degradations import build_forward, build_likelihood, build_psf, estimate_sigma
from restore.domains import Observation, get_adapter

from .quality import held_out
from .results import psnr_ssim, write_section

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"

#: domain -> recipe, method of the block average, and (file, crop top, crop left, crop size, planes) cases
CASES: dict[str, tuple[str, str, list[tuple[str, int, int, int, list[int]]]]] = {
    "astronomy": ("astronomy.yaml", "sum", [("ukirt_wfcam_K_taurus.fits", 40, 40, 128, [0]),
                                            ("sdss_i_ngc6976.fits", 200, 300, 128, [0]),
                                            ("hst_cosmos_cutout.fits", 60, 60, 128, [0])]),
    "microscopy": ("microscopy.yaml", "mean", [("neubias_microtubules.tif", 100, 100, 64, [0]),
                                               ("neubias_rat_hippocampal_neuron.tif", 200, 200, 64, [0]),
                                               ("neubias_bacteria_cords_thick.tif", 150, 150, 64, [0])]),
    "satellite": ("satellite.yaml", "mean", [("landsat_rgb_rmnp.tif", 150, 200, 64, [0, 1, 2]),
                                             ("naip_2020_m4709963_5m.tif", 300, 400, 64, [0, 1, 2]),
                                             ("landsat7_etm_olinda.tif", 140, 140, 64, [0, 1, 2])]),
    "faces": ("faces.yaml", "mean", [("astronaut_eileen_collins.png", 0, 0, 0, [0, 1, 2]),
                                     ("sundar_pichai_portrait.jpg", 0, 0, 0, [0, 1, 2]),
                                     ("man_glasses_portrait.jpg", 0, 0, 0, [0, 1, 2])]),
}
#: more real files, centred crops (``--more``): the same physics on every other file of ``../shared/data/real``,
#: a check that the figures above do not hold only for the cases they were first measured on
MORE: dict[str, list[tuple[str, int, int, int, list[int]]]] = {
    "astronomy": [("dss2_red_horsehead.fits", 382, 381, 128, [0]), ("poss1_m1_crab.fits", 24, 24, 128, [0]),
                  ("skyview_m13.fits", 86, 86, 128, [0]), ("sdss_g_ngc6976.fits", 184, 277, 128, [0]),
                  ("sdo_aia171_sun.fits", 0, 0, 128, [0]), ("stereo_euvi171_sun.fits", 0, 0, 128, [0])],
    "microscopy": [("neubias_dapi_nuclei_float32.tif", 424, 283, 64, [0]), ("neubias_em_fly_eye.tif", 129, 168, 64, [0]),
                   ("neubias_em_mitochondria_er.tif", 226, 216, 64, [0]),
                   ("neubias_nuclei_tubulin_2ch.tif", 75, 81, 64, [0]), ("pyimagej_still_stack_3ch.tif", 118, 118, 64, [0]),
                   ("pyimagej_test_image.tif", 93, 93, 64, [0]), ("skimage_ihc_brightfield.png", 224, 224, 64, [0])],
    "satellite": [("landsat8_oli_b2_60m_p224r077.tif", 347, 469, 64, [0]),
                  ("landsat_timelapse_1990.tif", 156, 316, 64, [0, 1, 2]),
                  ("landsat_timelapse_2020.tif", 156, 316, 64, [0, 1, 2]),
                  ("naip_2010_m4709963_5m.tif", 329, 435, 64, [0, 1, 2]), ("rgbn_5m_utm18.tif", 169, 225, 64, [0, 1, 2]),
                  ("sentinel2_like_cog_float64.tif", 71, 139, 64, [0, 1, 2]), ("worldview_rpc_uint16.tif", 105, 84, 64, [0])],
    "faces": [(name, 0, 0, 0, [0, 1, 2]) for name in (
        "adults_group_outdoor.jpg", "children_group.jpg", "couple_red_carpet.jpg", "george_clooney_older.jpg",
        "group_table_t1.jpg", "lin_manuel_miranda.png", "obama_biden_two_people.jpg", "paul_rudd_portrait.jpg",
        "selfie_large_frame.jpg", "woman_event_backdrop.jpg", "woman_lowkey_portrait.jpg")],
}
FACE_SIZE = 64
#: the models of regions the prior was not tried on (besides those its test rejected): nothing to restore but a
#: level, a point source fitted by the PSF
UNSEARCHED = ("flat", "point")


def _face_crop(data: np.ndarray) -> np.ndarray:
    """The largest detected face of a photo, a square of 1.6 face widths, area-resized to 64x64."""
    import cv2
    from PIL import Image

    from restore.domains.faces import haar_cascade

    grey = np.clip(data[:3].mean(0), 0, 255).astype(np.uint8)
    boxes = cv2.CascadeClassifier(str(haar_cascade())).detectMultiScale(grey, 1.1, 5, minSize=(64, 64))
    x, y, w, h = max(np.asarray(boxes).reshape(-1, 4), key=lambda b: b[2])
    side = int(1.6 * w)
    cx, cy = x + w // 2, y + h // 2
    t, left = max(0, cy - side // 2), max(0, cx - side // 2)
    crop = np.moveaxis(data[:3, t : t + side, left : left + side], 0, -1).clip(0, 255).astype(np.uint8)
    small = Image.fromarray(crop).resize((FACE_SIZE, FACE_SIZE), Image.BOX)
    return np.moveaxis(np.asarray(small, np.float32), -1, 0).copy()


def truth_of(domain: str, case: tuple[str, int, int, int, list[int]]) -> np.ndarray:
    recipe, _, _ = CASES[domain]
    name, top, left, size, planes = case
    adapter = get_adapter(restore.load_recipe(ROOT / "recipes" / recipe).domain)
    data = adapter.read(REAL / domain / name).data
    if domain == "faces":
        return _face_crop(data)
    crop = data[planes, top : top + size, left : left + size].astype(np.float64)
    crop = np.nan_to_num(crop, nan=float(np.nanmedian(crop)))
    if domain == "astronomy":  # a scene is sky-subtracted (the observation adds no sky: Gaussian noise stated)
        crop = crop - np.median(crop)
    return crop.astype(np.float32)


def effective_kernel(psf: np.ndarray, factor: int) -> np.ndarray:
    box = np.ones((factor, factor)) / factor**2
    k = fftconvolve(psf, box)
    return k / k.sum()


def classical(up: np.ndarray, kernel: np.ndarray, iterations: int, balance: float) -> dict[str, np.ndarray]:
    from skimage.restoration import richardson_lucy, wiener

    lo = float(np.min(up))
    rl = np.stack([richardson_lucy(np.clip(c - lo, 1e-6, None), kernel, num_iter=iterations, clip=False) + lo
                   for c in up])
    wi = np.stack([wiener(c, kernel, balance=balance, clip=False) for c in up])
    return {"bicubic": up, "richardson-lucy": rl, "wiener": wi}


def mosaics(crops: list[np.ndarray]) -> list[np.ndarray]:
    """2 x 2 mosaics of consecutive crops ``(C, H, W)``: fields of four held-out images, for factors at
    which one crop's observation is smaller than the forward model's reach."""
    return [np.concatenate([np.concatenate(crops[i : i + 2], -1), np.concatenate(crops[i + 2 : i + 4], -1)], -2)
            for i in range(0, len(crops) - 3, 4)]


def covered(res: restore.Restoration, truth: np.ndarray) -> float:
    """The fraction of pixels with a prior spread whose error is at most twice it (NaN: no spread anywhere).
    Were the restarts independent posterior draws, the truth another, this is ``P(|t| <= 2 sqrt((K-1)/(K+1)))``
    for Student's t with ``K - 1`` degrees of freedom: 78 % for the benchmark's ``K = 4`` restarts."""
    has = np.isfinite(res.std)
    if not has.any():
        return float("nan")
    return float(np.mean(np.abs(res.image - truth)[has] <= 2 * res.std[has]))


def physics(domain: str, factor: int, truth: np.ndarray, settings: list[str]) -> restore.PipelineSpec:
    """The domain recipe with the physics stated for ``truth`` at ``factor``: its PSF (FWHM x factor/4) and
    binning, Gaussian noise 3x the crop's own measured noise (at least 1 % of its robust range), then
    ``settings``."""
    recipe, method, _ = CASES[domain]
    fwhm = restore.load_recipe(ROOT / "recipes" / recipe).forward[0].psf.fwhm  # type: ignore[union-attr]
    try:
        own = estimate_sigma(torch.from_numpy(truth))
    except ValueError:  # quantised or flat crops: no measurable noise of their own
        own = 0.0
    spread = float(np.percentile(truth, 99.5) - np.percentile(truth, 0.5))
    sigma = max(3 * own, 0.01 * spread)
    return restore.load_recipe(ROOT / "recipes" / recipe, [
        f"forward.1.factor={factor}", f"forward.1.method={method}", f"forward.0.psf.fwhm={fwhm * factor / 4}",
        f"noise={{kind: gaussian, sigma: {sigma:.6g}}}", *settings])


def _haar(x: np.ndarray) -> np.ndarray:
    """The orthonormal 2-D Haar transform of ``x`` ``(C, h, w)`` over the last two axes, as many levels as both
    sides halve evenly."""
    x = x.astype(np.float64)
    h, w = x.shape[-2:]
    while h % 2 == 0 and w % 2 == 0 and min(h, w) >= 2:
        for axis in (-2, -1):
            part = x[..., :h, :w]
            even, odd = part.take(range(0, part.shape[axis], 2), axis), part.take(range(1, part.shape[axis], 2), axis)
            x[..., :h, :w] = np.concatenate([even + odd, even - odd], axis) / np.sqrt(2)
        h, w = h // 2, w // 2
    return x


def draw_floor(observed: np.ndarray, sigma: float) -> float:
    """The reduced chi-square against a second noise draw of the ideal oracle filter for the noise-free
    observation ``observed`` ``(C, h, w)`` under Gaussian noise ``sigma``: each of its orthonormal
    coefficients (per plane) shrunk by ``S / (S + sigma^2)``, ``S`` its own true power (the ideal diagonal
    risk of Donoho and Johnstone), in the DCT or the Haar wavelets, whichever is less. Expected,
    ``1 + mean(S / (S + sigma^2))``: an estimator that knows the image no better than these amplitudes
    predicts the observation no better, whatever its chi-square.

    Example:
        >>> round(draw_floor(np.zeros((1, 4, 4)), 1.0), 3), round(draw_floor(np.full((1, 4, 4), 10.0), 1.0), 3)
        (1.0, 1.062)
    """
    def risk(power: np.ndarray) -> float:
        return float(1 + np.mean(power / (power + sigma**2)))

    return min(risk(dctn(observed, axes=(-2, -1), norm="ortho") ** 2), risk(_haar(observed) ** 2))


def refusal(domain: str, factor: int, truth: np.ndarray) -> str:
    """Why the pipeline refuses ``truth``'s observation at ``factor`` before any work, as its one-line error
    (e.g. smaller than the forward model's reach); ``""`` when it does not."""
    spec = physics(domain, factor, truth, [])
    try:
        restore.Pipeline(spec, progress=False).plain(restore.simulate(spec, truth, seed=0))
    except restore.RestoreError as err:
        return str(err)
    return ""


def held_out_truths(domain: str, n: int, factor: int) -> tuple[list[np.ndarray], bool]:
    """``n`` held-out crops of the domain's prior, or ``n`` 2x2 mosaics of ``4n`` (``True``) where one crop's
    observation at ``factor`` is refused."""
    truths = held_out(domain, n)[0]
    if truths and refusal(domain, factor, truths[0]):
        return mosaics(held_out(domain, 4 * n)[0]), True
    return truths, False


def _rows(domain: str, factor: int, truths: list[np.ndarray],
          settings: list[str]) -> tuple[dict, str, tuple, list[float]]:
    """Each method's per-image results ``(psnr, ssim, chi2, chi2 2nd draw, prior used, s, regions in band,
    error within two spreads, the share of regions of each ``UNSEARCHED`` model)`` on ``truths`` at
    ``factor``, the refusal (if the pipeline refused an input), the classical settings and each image's
    second-draw floor (:func:`draw_floor`)."""
    rows: dict[str, list[tuple[float, ...]]] = {}
    floors: list[float] = []
    refused = ""
    tuned: tuple[int, float] | None = None
    for i, truth in enumerate(truths):
        spec = physics(domain, factor, truth, ["search.restarts=4", *settings])
        obs1 = restore.simulate(spec, truth, seed=100 + i)
        obs2 = restore.simulate(spec, truth, seed=200 + i)
        pipe = restore.Pipeline(spec, progress=False, keep_samples=False)
        forward = build_forward(spec.forward).double()
        lik = build_likelihood(spec.noise).double()
        norm = pipe.parts.adapter.normalisation(Observation.from_array(truth))
        kernel = effective_kernel(build_psf(spec.forward[0].psf).numpy(), factor)  # type: ignore[union-attr]
        try:
            up = pipe.plain(obs1)
        except restore.RestoreError as err:  # refused before any work (e.g. smaller than the PSF's reach)
            refused = str(err)
            continue
        if tuned is None:  # fixed once per domain and factor on the first case, then held
            grid = [(it, bal) for it in (2, 5, 10, 20, 40) for bal in (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)]
            score = {g: psnr_ssim(classical(up, kernel, *g)["wiener"], truth, norm)[0]
                     + psnr_ssim(classical(up, kernel, *g)["richardson-lucy"], truth, norm)[0] for g in grid}
            tuned = max(score, key=score.get)

        with torch.no_grad():
            floors.append(draw_floor(forward(torch.from_numpy(truth)[None].double())[0].numpy(), spec.noise.sigma))

        def chi2s(img: np.ndarray, lk=lik, fw=forward, a=obs1, b=obs2) -> tuple[float, float]:
            with torch.no_grad():
                mu = fw(torch.from_numpy(np.nan_to_num(img))[None].double())
            return (float(lk.reduced_chi2(torch.from_numpy(a)[None].double(), mu)[0]),
                    float(lk.reduced_chi2(torch.from_numpy(b)[None].double(), mu)[0]))

        for name, img in classical(up, kernel, *tuned).items():
            rows.setdefault(name, []).append((*psnr_ssim(img, truth, norm), *chi2s(img), np.nan, 0.0, np.nan,
                                              np.nan, *[np.nan] * len(UNSEARCHED)))
        start = time.perf_counter()
        res = pipe.run(obs1)
        wall = time.perf_counter() - start
        regions = res.provenance["regions"]
        used = np.mean([r["prior_used"] for r in regions]) if regions else 0.0
        unsearched = [np.mean([r.get("model") == kind for r in regions]) if regions else 0.0 for kind in UNSEARCHED]
        band = [0.8 <= r["chi2"] <= 1.2 for r in regions if r.get("chi2") is not None]
        regions_ok = np.mean(band) if band else np.nan
        rows.setdefault("restore `default`", []).append((*psnr_ssim(res.image, truth, norm), *chi2s(res.image),
                                                         used, wall, regions_ok, covered(res, truth), *unsearched))
        print(domain, factor, i, {k: tuple(round(x, 3) for x in v[-1]) for k, v in rows.items()}, flush=True)
    return rows, refused, tuned or (0, 0.0), floors


def run_domain(domain: str, factors: list[int], heldout: int = 0, settings: list[str] | None = None,
               more: bool = False) -> list[str]:
    recipe, method, cases = CASES[domain]
    base = restore.load_recipe(ROOT / "recipes" / recipe)
    fwhm = base.forward[0].psf.fwhm  # type: ignore[union-attr]
    if heldout:  # the priors' own held-out crops (never trained on), through the same table
        truths, what = [], held_out(domain, heldout)[1]
        title = "Held-out crops"
        flag = f" --heldout {heldout}"
    else:
        cases = MORE[domain] if more else cases
        truths = [truth_of(domain, c) for c in cases]
        title, what = "More real files" if more else "Real files", "Cases: " + ", ".join(f"`{c[0]}`" for c in cases)
        flag = " --more" if more else ""
    flag += "".join(f" --set {v}" for v in settings or [])
    lines = [f"## {title}: {domain} (`python -m benchmarks.real --domains {domain} --factors "
             f"{' '.join(map(str, factors))}{flag} --write`)", "",
             f"{time.strftime('%Y-%m-%d')}, {torch.get_num_threads()} threads, restore {restore.__version__}. Recipe "
             f"`{recipe}` with the physics stated: {base.forward[0].psf.kind} PSF FWHM {fwhm} x factor/4, "  # type: ignore[union-attr]
             f"{method} binning, Gaussian noise 3x the crop's own. {what}.", "",
             "| factor | method | PSNR dB | worst vs best classical dB | SSIM | chi2 (obs) | chi2 (2nd draw) | "
             "consistent | regions consistent | prior used | error within 2 spreads | s / image |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for factor in factors:
        label = f"{factor}x"
        if heldout:  # where one crop's observation is too small at this factor: fields of four crops
            truths, tiled = held_out_truths(domain, heldout, factor)
            label += " (2x2 mosaics)" if tiled else ""
        rows, refused, tuned, floors = _rows(domain, factor, truths, settings or [])
        if not rows:
            lines.append(f"| {label} | (all) | refused: {refused} | | | | | | | | | |")
            continue
        best = np.max([np.array(rows[m])[:, 0] for m in ("richardson-lucy", "wiener")], axis=0)
        for name, vals in rows.items():
            v = np.array(vals, dtype=np.float64)
            consistent = np.mean((v[:, 2] >= 0.8) & (v[:, 2] <= 1.2))
            used = "" if np.isnan(v[:, 4]).all() else f"{np.nanmean(v[:, 4]):.0%}"
            why = [f"{kind} {share:.0%}" for kind, share in zip(UNSEARCHED, np.nanmean(v[:, 8:], 0)) if share > 0]
            used += f" ({', '.join(why)})" if used and why else ""
            regions_ok = "" if np.isnan(v[:, 6]).all() else f"{np.nanmean(v[:, 6]):.0%}"
            cover = "" if np.isnan(v[:, 7]).all() else f"{np.nanmean(v[:, 7]):.0%}"
            lines.append(f"| {label} | {name} | {v[:, 0].mean():.2f} | {np.min(v[:, 0] - best):+.2f} | "
                         f"{v[:, 1].mean():.3f} | {np.median(v[:, 2]):.2f} | {np.median(v[:, 3]):.2f} | "
                         f"{consistent:.0%} ({int(round(consistent * len(v)))}/{len(v)}) | {regions_ok} | {used} | "
                         f"{cover} | {v[:, 5].mean():.1f} |")
        lines.append(f"| {label} | (classical settings held) | RL {tuned[0]} iterations, Wiener balance {tuned[1]} "
                     "| | | | | | | | | |")
        lines.append(f"| {label} | (2nd-draw floor: ideal DCT/Haar filter) | | | | | {np.median(floors):.2f} "
                     f"(least {np.min(floors):.2f}) | | | | | |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--factors", type=int, nargs="+", default=[4, 8])
    instead = parser.add_mutually_exclusive_group()
    instead.add_argument("--heldout", type=int, default=0, metavar="N",
                         help="instead: N held-out crops of each prior's training set (the same table)")
    instead.add_argument("--more", action="store_true",
                         help="instead: centred crops of every other real file (MORE), the same table")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override for restore (e.g. consistency.rule=discrepancy), repeatable")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if not REAL.is_dir() and not args.heldout:
        print(f"SKIPPED: {REAL} not found (the real-data benchmark needs ../shared/data/real)")
        return
    for domain in args.domains:
        text = "\n".join(run_domain(domain, args.factors, args.heldout, args.set, args.more))
        print(text, flush=True)
        if args.write:
            write_section(text)


if __name__ == "__main__":
    main()
