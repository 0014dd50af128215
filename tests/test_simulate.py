"""`restore simulate`: seeded degradation of PNG, TIFF and FITS files, keeping format and metadata."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

import restore
from restore.cli import main
from tests.conftest import RECIPES


def _recipe(tmp_path: Path, forward: list, noise: dict) -> Path:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump({"forward": forward, "noise": noise, "prior": {"kind": "builtin", "name": "faces"}}))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_png_round_trip_is_seeded_and_keeps_dtype(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    recipe = _recipe(tmp_path, [{"kind": "downsample", "factor": 4, "method": "bicubic"}], {"kind": "gaussian", "sigma": 2.0})
    before = _sha(tmp_path / "in.png")
    assert main(["simulate", str(recipe), str(tmp_path / "in.png"), "-o", str(tmp_path / "a.png")]) == 0
    assert main(["simulate", str(recipe), str(tmp_path / "in.png"), "-o", str(tmp_path / "b.png")]) == 0
    assert _sha(tmp_path / "in.png") == before  # input untouched
    a, b = np.array(Image.open(tmp_path / "a.png")), np.array(Image.open(tmp_path / "b.png"))
    assert a.shape == (8, 12, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert main(["simulate", str(recipe), str(tmp_path / "in.png"), "-o", str(tmp_path / "c.png"), "--seed", "5"]) == 0
    assert not np.array_equal(a, np.array(Image.open(tmp_path / "c.png")))
    # refuses to overwrite
    assert main(["simulate", str(recipe), str(tmp_path / "in.png"), "-o", str(tmp_path / "a.png")]) == 1


def test_tiff_sum_binning_conserves_flux_in_expectation(tmp_path: Path) -> None:
    sharp = np.full((64, 64), 100.0, dtype=np.float32)
    tifffile.imwrite(tmp_path / "in.tif", sharp)
    recipe = _recipe(tmp_path, [{"kind": "downsample", "factor": 4, "method": "sum"}], {"kind": "poisson", "gain": 1.0})
    out = tmp_path / "out.tif"
    assert main(["simulate", str(recipe), str(tmp_path / "in.tif"), "-o", str(out)]) == 0
    obs = tifffile.imread(out)
    assert obs.shape == (16, 16) and obs.dtype == np.float32
    assert abs(obs.mean() - 1600.0) < 5 * np.sqrt(1600.0 / obs.size)


def test_fits_keeps_header_and_rescales_wcs(tmp_path: Path) -> None:
    header = fits.Header()
    header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0, "CRPIX1": 33.5,
                   "CRPIX2": 20.0, "CD1_1": -1e-4, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 1e-4, "BUNIT": "electron",
                   "GAIN": 2.0, "RDNOISE": 5.0})
    data = np.random.default_rng(1).uniform(50, 100, (48, 64)).astype(np.float32)
    fits.PrimaryHDU(data, header).writeto(tmp_path / "in.fits")
    recipe = _recipe(
        tmp_path,
        [{"kind": "psf", "psf": {"kind": "moffat", "fwhm": 3.0, "beta": 3.5}}, {"kind": "downsample", "factor": 4, "method": "sum"}],
        {"kind": "poisson_gaussian", "gain": "from_header", "read_noise": "from_header"},
    )
    out = tmp_path / "obs.fits"
    assert main(["simulate", str(recipe), str(tmp_path / "in.fits"), "-o", str(out)]) == 0
    with fits.open(out) as hdul:
        obs, h2 = hdul[0].data, hdul[0].header
    assert obs.shape == (12, 16) and h2["BUNIT"] == "electron"
    w_in, w_out = WCS(header), WCS(h2)
    f = 4
    # observed pixel centres map to the centres of the sharp-grid blocks they cover
    for oy, ox in [(0, 0), (11, 15), (6, 8)]:
        sharp_xy = (ox * f + (f - 1) / 2, oy * f + (f - 1) / 2)
        a = w_out.pixel_to_world_values(ox, oy)
        b = w_in.pixel_to_world_values(*sharp_xy)
        assert np.allclose(a, b, atol=1e-9)


def test_simulate_from_python_crops_to_a_multiple_of_the_factor() -> None:
    spec = restore.PipelineSpec.model_validate({"forward": [{"kind": "downsample", "factor": 3, "method": "mean"}],
                                                "noise": {"kind": "gaussian", "sigma": 1e-6},
                                                "prior": {"kind": "builtin", "name": "faces"}})
    with pytest.warns(UserWarning, match="cropped 10x11 to 9x9"):
        out = restore.simulate(spec, np.ones((10, 11), np.float32))
    assert out.shape == (1, 3, 3) and np.allclose(out, 1.0, atol=1e-4)


def test_corrupt_input_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png")
    recipe = _recipe(tmp_path, [{"kind": "downsample", "factor": 2}], {"kind": "gaussian", "sigma": 1.0})
    assert main(["simulate", str(recipe), str(tmp_path / "bad.png"), "-o", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert "bad.png: cannot read image" in err and err.count("\n") == 1


def test_simulate_goes_through_the_domain_adapter(tmp_path: Path) -> None:
    """GeoTIFF and OME-TIFF observations keep their georeferencing / pixel size on the coarser grid."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    data = np.random.default_rng(3).integers(1, 250, (3, 32, 48)).astype(np.uint8)
    scene = tmp_path / "scene.tif"
    with rasterio.open(scene, "w", driver="GTiff", width=48, height=32, count=3, dtype="uint8", crs="EPSG:32631",
                       transform=from_origin(300000.0, 5000000.0, 0.5, 0.5), nodata=0) as dst:
        dst.write(data)
    recipe = tmp_path / "sat.yaml"
    recipe.write_text(yaml.safe_dump({"domain": {"kind": "satellite"}, "forward": [{"kind": "downsample", "factor": 4, "method": "mean"}],
                                      "noise": {"kind": "gaussian", "sigma": 1.0}, "prior": {"kind": "builtin", "name": "faces"}}))
    assert main(["simulate", str(recipe), str(scene), "-o", str(tmp_path / "obs.tif")]) == 0
    with rasterio.open(scene) as a, rasterio.open(tmp_path / "obs.tif") as b:
        assert b.crs == a.crs and np.allclose(b.bounds, a.bounds) and np.allclose(b.res, (2.0, 2.0))
        assert b.read().shape == (3, 8, 12) and b.dtypes[0] == "uint8"

    stack = np.random.default_rng(4).integers(0, 4000, (2, 32, 32)).astype(np.uint16)
    ome = tmp_path / "cells.ome.tif"
    tifffile.imwrite(ome, stack, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.1})
    recipe.write_text(yaml.safe_dump({"domain": {"kind": "microscopy"}, "forward": [{"kind": "downsample", "factor": 4, "method": "sum"}],
                                      "noise": {"kind": "poisson", "gain": 1.0}, "prior": {"kind": "builtin", "name": "faces"}}))
    assert main(["simulate", str(recipe), str(ome), "-o", str(tmp_path / "cells_obs.ome.tif")]) == 0
    with tifffile.TiffFile(tmp_path / "cells_obs.ome.tif") as tif:
        assert tif.series[0].shape == (2, 8, 8) and 'PhysicalSizeX="0.4"' in tif.ome_metadata


@pytest.mark.parametrize(("recipe", "sample"), [("faces.yaml", "face_sharp.png"), ("microscopy.yaml", "cells_sharp.ome.tif"),
                                                ("satellite.yaml", "scene_sharp.tif"), ("astronomy.yaml", "galaxy_sharp.fits")])
def test_simulate_states_its_noise_so_from_header_reads_it_back(recipe: str, sample: str, tmp_path: Path) -> None:
    """One meaning of from_header: what simulate used is what a from_header recipe reads from its output."""
    import restore
    from restore.degradations import NOISE_PARAMETERS, resolve_noise
    from restore.simulate import simulate_file

    spec = restore.load_recipe(RECIPES / recipe)
    if spec.noise.kind == "poisson_gaussian" and any(getattr(spec.noise, k) == "from_header" for k in ("gain", "sky")):
        spec = restore.load_recipe(RECIPES / recipe, ["noise.gain=2.0", "noise.read_noise=3.0", "noise.sky=10.0"])
    used = resolve_noise(spec.noise)
    out = simulate_file(spec, RECIPES / "samples" / sample, tmp_path / f"observed{''.join(Path(sample).suffixes)}")
    from_header = restore.load_recipe(RECIPES / recipe, [f"noise.{k}=from_header" for k in NOISE_PARAMETERS[type(spec.noise)]])
    obs = restore.domains.get_adapter(from_header.domain).read(out)
    assert resolve_noise(from_header.noise, obs.noise) == pytest.approx(used)
