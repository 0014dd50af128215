"""Make the embedded samples the recipes point at: `python recipes/samples/make_samples.py [faces galaxies microscopy aerial]`.

Each sharp image is a sample of the domain's shipped prior (not a training image), written in the
domain's file format with realistic metadata; its observation is made with `restore simulate` on the
domain's recipe, so every demo has a known ground truth (`*_sharp.*`) beside its input (`*_observed.*`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

import restore
from restore.imageio import write_array
from restore.priors import builtin_names, load
from restore.simulate import simulate_file

HERE = Path(__file__).parent


def prior_sample(name: str, seed: int) -> np.ndarray:
    prior = load(name)
    with torch.no_grad():
        return prior.generate(prior.sample_latent(1, torch.Generator().manual_seed(seed)))[0].clamp(-1, 1).numpy()


def faces() -> tuple[Path, str]:
    sharp = (prior_sample("faces", 2026) + 1) * 127.5
    path = HERE / "face_sharp.png"
    write_array(path, sharp, {"format": "pil", "dtype": "uint8"}, overwrite=True)
    return path, "face_observed.png"


def galaxies() -> tuple[Path, str]:
    from astropy.io import fits

    adapter = restore.domains.AstronomyAdapter(stretch={"softening": 1.0, "white": 1000.0})
    flux = adapter.stretch.inverse(torch.from_numpy(prior_sample("galaxies", 7)).double()).float().numpy()
    header = fits.Header()
    header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.1, "CRVAL2": 2.2, "CRPIX1": 32.5,
                   "CRPIX2": 32.5, "CDELT1": -0.1 / 3600, "CDELT2": 0.1 / 3600, "CUNIT1": "deg", "CUNIT2": "deg",
                   "BUNIT": "adu", "GAIN": 2.0, "RDNOISE": 5.0, "SKY": 50.0,
                   "COMMENT": "synthetic: a sample of restore's galaxies prior, not a real galaxy"})
    path = HERE / "galaxy_sharp.fits"
    fits.PrimaryHDU(flux[0], header).writeto(path, overwrite=True)
    return path, "galaxy_observed.fits"


def cells() -> tuple[Path, str]:
    import tifffile

    planes = [(prior_sample("microscopy", s)[0] + 1) / 2 * 4000 + 100 for s in (11, 12)]  # 12-bit-like camera counts
    path = HERE / "cells_sharp.ome.tif"
    tifffile.imwrite(path, np.stack(planes).astype(np.uint16), ome=True,
                     metadata={"axes": "CYX", "PhysicalSizeX": 0.065, "PhysicalSizeY": 0.065,
                               "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm",
                               "Description": "synthetic: samples of restore's microscopy prior, not real cells"})
    return path, "cells_observed.ome.tif"


def scene() -> tuple[Path, str]:
    import rasterio
    from rasterio.transform import from_origin

    rgb = ((prior_sample("aerial", 5) + 1) * 127.5).clip(0, 255).round().astype(np.uint8)
    path = HERE / "scene_sharp.tif"
    profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 3, "dtype": "uint8", "crs": "EPSG:32633",
               "transform": from_origin(500000.0, 5000000.0, 2.0, 2.0), "photometric": "RGB"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(rgb)
        dst.update_tags(DESCRIPTION="synthetic: a sample of restore's aerial prior, not a real scene")
    return path, "scene_observed.tif"


SAMPLES = {"faces": (faces, "faces.yaml"), "galaxies": (galaxies, "astronomy.yaml"),
           "microscopy": (cells, "microscopy.yaml"), "aerial": (scene, "satellite.yaml")}


def run(name: str) -> None:
    make, recipe = SAMPLES[name]
    sharp, observed = make()
    spec = restore.load_recipe(HERE.parent / recipe, [f"input={sharp}"])  # the observation may not exist yet
    simulate_file(spec, sharp, HERE / observed, overwrite=True)
    print(f"wrote {sharp.name} and {observed}")


def main(names: list[str]) -> None:
    for name in names or [n for n in SAMPLES if n in builtin_names()]:
        run(name)


if __name__ == "__main__":
    main(sys.argv[1:])
