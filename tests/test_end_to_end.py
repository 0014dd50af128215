"""`restore run` end to end through each domain adapter, with tiny priors (few search steps)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml
from astropy.io import fits
from astropy.wcs import WCS

from restore.cli import main
from restore.priors import StyleGAN2Generator, save_prior


def _prior(tmp_path: Path, channels: int) -> Path:
    torch.manual_seed(0)
    path = tmp_path / f"prior{channels}.safetensors"
    save_prior(path, StyleGAN2Generator(16, 16, 1, {4: 8, 8: 8, 16: 8}, img_channels=channels), {"name": f"tiny{channels}"})
    return path


def _recipe(tmp_path: Path, domain: dict, forward: list, noise: dict, prior: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"domain": domain, "forward": forward, "noise": noise,
                                    "prior": {"kind": "file", "path": str(prior)},
                                    "search": {"steps": 3, "restarts": 2, "refine_steps": 2}}))
    return path


def test_run_fits_writes_extensions_and_a_rescaled_wcs(tmp_path: Path) -> None:
    header = fits.Header()
    header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 10.0, "CRVAL2": -5.0, "CRPIX1": 6.5,
                   "CRPIX2": 4.0, "CDELT1": -1e-4, "CDELT2": 1e-4, "BUNIT": "adu", "GAIN": 2.0, "RDNOISE": 3.0})
    data = np.random.default_rng(0).uniform(0, 50, (6, 10)).astype(np.float32)  # 2 x 3 tiles of 4 px
    data[2, 2] = np.nan
    fits.PrimaryHDU(data, header).writeto(tmp_path / "obs.fits")
    recipe = _recipe(tmp_path, {"kind": "astronomy"}, [{"kind": "downsample", "factor": 4, "method": "sum"}],
                     {"kind": "poisson_gaussian", "gain": "from_header", "read_noise": "from_header"}, _prior(tmp_path, 1))
    assert main(["run", str(recipe), str(tmp_path / "obs.fits"), "-o", str(tmp_path / "out"), "-q"]) == 0
    with fits.open(tmp_path / "out" / "obs.restored.fits") as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "SPREAD", "CHI"]
        assert hdul[0].data.shape == (24, 40) and hdul["CHI"].data.shape == (6, 10)
        assert np.isnan(hdul["CHI"].data[2, 2]) and hdul[0].header["FLUXCONV"] == "sum"
        out_wcs = WCS(hdul[0].header)
    a = WCS(header).pixel_to_world_values(-0.5, -0.5)
    b = out_wcs.pixel_to_world_values(-0.5, -0.5)
    assert np.allclose(a, b, atol=1e-10)
    assert (tmp_path / "out" / "obs.report.json").is_file() and not (tmp_path / "out" / "obs.spread.fits").exists()


def test_run_ome_stack_plane_by_plane(tmp_path: Path) -> None:
    stack = np.random.default_rng(1).integers(100, 4000, (3, 8, 8)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cells.ome.tif", stack, ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.4, "PhysicalSizeY": 0.4})
    recipe = _recipe(tmp_path, {"kind": "microscopy"}, [{"kind": "downsample", "factor": 2, "method": "mean"}],
                     {"kind": "gaussian", "sigma": 50.0}, _prior(tmp_path, 1))
    assert main(["run", str(recipe), str(tmp_path / "cells.ome.tif"), "-o", str(tmp_path / "out"), "-q"]) == 0
    with tifffile.TiffFile(tmp_path / "out" / "cells.restored.ome.tif") as tif:
        assert tif.series[0].shape == (3, 16, 16) and tif.series[0].dtype == np.uint16
        assert 'PhysicalSizeX="0.2"' in tif.ome_metadata
    spread = tifffile.imread(tmp_path / "out" / "cells.spread.ome.tif")
    assert spread.dtype == np.float32 and spread.shape == (3, 16, 16)


def test_run_geotiff_with_an_extra_band_passes_it_through(tmp_path: Path) -> None:
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    data = np.random.default_rng(2).integers(1, 250, (4, 8, 8)).astype(np.uint8)
    with rasterio.open(tmp_path / "scene.tif", "w", driver="GTiff", width=8, height=8, count=4, dtype="uint8",
                       crs="EPSG:32631", transform=from_origin(1000.0, 2000.0, 8.0, 8.0), nodata=0) as dst:
        dst.write(data)
    recipe = _recipe(tmp_path, {"kind": "satellite"}, [{"kind": "downsample", "factor": 2, "method": "mean"}],
                     {"kind": "gaussian", "sigma": 3.0}, _prior(tmp_path, 3))
    with pytest.warns(UserWarning, match=r"planes \[3\] do not fit"):
        assert main(["run", str(recipe), str(tmp_path / "scene.tif"), "-o", str(tmp_path / "out"), "-q"]) == 0
    with rasterio.open(tmp_path / "scene.tif") as a, rasterio.open(tmp_path / "out" / "scene.restored.tif") as b:
        assert b.count == 4 and b.crs == a.crs and np.allclose(b.bounds, a.bounds) and np.allclose(b.res, (4.0, 4.0))


def test_run_single_band_geotiff_through_an_rgb_prior(tmp_path: Path) -> None:
    """One band (a panchromatic or single-band product) through a 3-channel prior: fitted by the prior's channel
    mean, written as one band, and the report says so."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    data = np.random.default_rng(3).integers(1, 250, (1, 8, 8)).astype(np.uint8)
    with rasterio.open(tmp_path / "pan.tif", "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8",
                       crs="EPSG:32631", transform=from_origin(1000.0, 2000.0, 8.0, 8.0)) as dst:
        dst.write(data)
    recipe = _recipe(tmp_path, {"kind": "satellite"}, [{"kind": "downsample", "factor": 2, "method": "mean"}],
                     {"kind": "gaussian", "sigma": 3.0}, _prior(tmp_path, 3))
    assert main(["run", str(recipe), str(tmp_path / "pan.tif"), "-o", str(tmp_path / "out"), "-q"]) == 0
    with rasterio.open(tmp_path / "out" / "pan.restored.tif") as b:
        assert b.count == 1 and b.shape == (16, 16)
    report = json.loads((tmp_path / "out" / "pan.report.json").read_text())
    assert report["planes_fitted_as"] == "prior channel mean"


SHIPPED = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("recipe", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_each_shipped_recipe_runs_on_its_embedded_sample(recipe: Path, tmp_path: Path) -> None:
    """As shipped (shorter search): the restoration has the sample's format and 4x its size, and is
    closer to the sample's known truth than the observation's plain upsampling."""
    import restore

    fast = ["search.steps=80", "search.restarts=2", "search.refine_steps=30"]
    assert main(["run", str(recipe), "-o", str(tmp_path), "-q", *[a for s in fast for a in ("--set", s)]]) == 0
    spec = restore.load_recipe(recipe, fast)
    written = sorted(tmp_path.glob("*.restored.*"))
    assert len(written) == 1 and "".join(written[0].suffixes[-1:]) == spec.input.suffixes[-1]
    adapter = restore.domains.get_adapter(spec.domain)
    observed, restored = adapter.read(spec.input), adapter.read(written[0])
    assert restored.data.shape == (observed.data.shape[0], *(4 * s for s in observed.data.shape[1:]))
    truth = adapter.read(spec.input.with_name(spec.input.name.replace("_observed", "_sharp"))).data
    plain = restore.Pipeline(spec, progress=False).plain(observed)
    norm = adapter.normalisation(observed)
    err = lambda a: float(((norm.forward(torch.from_numpy(a)) - norm.forward(torch.from_numpy(truth))) ** 2).mean())  # noqa: E731
    assert err(restored.data) < 1.5 * err(plain)
