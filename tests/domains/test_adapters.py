"""One registry over every registered domain adapter (``ADAPTERS``): normalisation round trip, read ->
write -> read keeps data and metadata, the input is never modified."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from astropy.io import fits
from PIL import Image

from restore.domains import BUILTIN_ADAPTERS, adapter_classes, get_adapter
from restore.restoration import Restoration


def _png(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(path)
    return path


def _float_tiff(path: Path) -> Path:
    tifffile.imwrite(path, np.random.default_rng(1).uniform(0, 1, (12, 16)).astype(np.float32))
    return path


def _fits(path: Path) -> Path:
    header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 6.0, "CRPIX2": 8.0, "CRVAL1": 10.0,
                          "CRVAL2": 20.0, "CDELT1": -1e-4, "CDELT2": 1e-4, "GAIN": 2.0, "BUNIT": "adu"})
    fits.writeto(path, np.random.default_rng(2).normal(100, 5, (12, 16)).astype(np.float32), header)
    return path


def _ome(path: Path) -> Path:
    data = np.random.default_rng(3).integers(0, 4000, (2, 12, 16)).astype(np.uint16)
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "CYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    return path


def _geotiff(path: Path) -> Path:
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    data = np.random.default_rng(4).integers(1, 9000, (3, 12, 16)).astype(np.uint16)
    profile = {"driver": "GTiff", "width": 16, "height": 12, "count": 3, "dtype": "uint16", "crs": "EPSG:32633",
               "transform": from_origin(500000.0, 4200000.0, 30.0, 30.0), "compress": "deflate"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


SAMPLES = {"faces": ("face.png", _png), "image": ("plain.tif", _float_tiff), "astronomy": ("frame.fits", _fits),
           "microscopy": ("cells.ome.tif", _ome), "satellite": ("scene.tif", _geotiff)}
"""A small file of each built-in kind; a plug-in adapter adds its own entry here."""

ADAPTERS = sorted(adapter_classes())


def test_every_registered_adapter_has_a_sample() -> None:
    assert set(BUILTIN_ADAPTERS) <= set(SAMPLES) and set(ADAPTERS) <= set(SAMPLES)


@pytest.mark.parametrize("kind", ADAPTERS)
def test_read_normalise_write_read(kind: str, tmp_path: Path) -> None:
    name, make = SAMPLES[kind]
    path = make(tmp_path / name)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    adapter = get_adapter(kind)
    obs = adapter.read(path)
    assert obs.data.ndim == 3 and obs.data.dtype == np.float32 and obs.mask.shape[-2:] == obs.data.shape[-2:]
    x = torch.from_numpy(obs.data).double()
    norm = adapter.normalisation(obs)
    assert torch.allclose(norm.inverse(norm.forward(x)), x, rtol=1e-6, atol=1e-6 * float(x.abs().max() + 1))
    assert norm.describe()["kind"] in ("linear", "asinh")
    image = obs.data.repeat(2, axis=1).repeat(2, axis=2)
    res = Restoration(image=image, samples=None, std=np.zeros_like(image), chi2=1.0, consistent=True,
                      chi_map=np.zeros_like(obs.data), observation=obs.data, provenance={"prior": "test"},
                      writer=adapter, factor=2, flux_convention="mean", meta=obs.meta, source=str(path))
    written = res.save(tmp_path / "out", figures=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # the input is never modified
    back = adapter.read(written[0])
    assert back.data.shape == (obs.data.shape[0], *(2 * s for s in obs.data.shape[1:]))
    assert back.meta.get("format") == obs.meta.get("format") and back.meta.get("dtype") == obs.meta.get("dtype")
    assert np.allclose(back.data, image, atol=1e-4 * float(np.abs(image).max()) + 0.5)
    if kind == "microscopy":
        assert float(back.meta["physical"]["PhysicalSizeX"]) == pytest.approx(0.25)
    if kind == "astronomy":
        assert back.meta["header"]["CDELT2"] == pytest.approx(0.5e-4) and back.noise.get("gain") == 2.0


def _corners_agree(before, after, shape: tuple[int, int], f: int) -> float:
    """Largest sky offset, in sharp pixels, between input pixel positions and the same points on the finer grid."""
    from astropy.wcs import WCS

    w_in, w_out = WCS(before), WCS(after)
    h, w = shape
    worst = 0.0
    for x, y in [(-0.5, -0.5), (w - 0.5, -0.5), (-0.5, h - 0.5), (w - 0.5, h - 0.5), (w / 3, h / 5)]:
        a = np.array(w_in.pixel_to_world_values(x, y))
        xs, ys = w_out.world_to_pixel_values(*a)
        worst = max(worst, float(np.hypot(xs - ((x + 0.5) * f - 0.5), ys - ((y + 0.5) * f - 0.5))))
    return worst


@pytest.mark.parametrize("kind", ["sip", "tpv"])
def test_distorted_wcs_survive_the_finer_grid(kind: str) -> None:
    """SIP coefficients rescale with the pixel size; TPV terms stay valid as the CD matrix carries the scale
    (checked with astropy against the coarse grid: well under 0.1 sharp pixel)."""
    from restore.domains.fits import rescale_wcs

    cards = {"NAXIS": 2, "NAXIS1": 400, "NAXIS2": 300, "CRPIX1": 200.5, "CRPIX2": 150.5, "CRVAL1": 150.0,
             "CRVAL2": 2.0, "CD1_1": -7.3e-5, "CD1_2": 2e-6, "CD2_1": 1.5e-6, "CD2_2": 7.3e-5}
    if kind == "sip":
        cards.update({"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "A_ORDER": 3, "B_ORDER": 3,
                      "A_2_0": 4e-6, "A_1_1": -2e-6, "A_0_2": 3e-6, "A_3_0": 2e-9, "B_2_0": -1e-6, "B_0_2": 5e-6,
                      "B_1_2": 3e-9})
    else:
        cards.update({"CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV", "PV1_1": 1.0, "PV1_4": 0.05, "PV1_7": 0.4,
                      "PV2_1": 1.0, "PV2_5": -0.05, "PV2_9": 0.3})
    header = fits.Header(cards)
    fine = header.copy()
    assert rescale_wcs(fine, 1 / 4) == []
    assert _corners_agree(header, fine, (300, 400), 4) < 0.1
