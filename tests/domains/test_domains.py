"""Domain adapters: exact round trips, untouched inputs, and metadata checked by independent readers
(astropy for WCS, tifffile for OME/ImageJ pixel sizes, rasterio for GeoTIFF georeferencing)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from astropy.io import fits
from astropy.wcs import WCS

from restore.cli import main
from restore.domains import (
    AstronomyAdapter,
    MicroscopyAdapter,
    Observation,
    SatelliteAdapter,
    adapter_classes,
    get_adapter,
)
from restore.domains.astronomy import NOMINAL
from restore.errors import RestoreError
from restore.restoration import Restoration
from restore.spec import AstronomyDomainSpec, validate_recipe

F = 4


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _restoration(obs, adapter, factor: int = F) -> Restoration:
    """A restoration whose image is the observation upsampled by pixel replication (values preserved)."""
    image = obs.data.repeat(factor, axis=1).repeat(factor, axis=2)
    return Restoration(image=image, samples=image[None], std=np.zeros_like(image), chi2=1.0, consistent=True,
                       chi_map=np.zeros_like(obs.data), observation=obs.data, meta=obs.meta, source=obs.source,
                       provenance={"prior": "test"}, writer=adapter, factor=factor, flux_convention="mean")


def _round_trip_normalisation(adapter, obs) -> None:
    x = torch.from_numpy(np.nan_to_num(obs.data)).double()
    norm = adapter.normalisation(obs)
    assert torch.allclose(norm.inverse(norm.forward(x)), x, rtol=1e-6, atol=1e-6 * float(x.abs().max() + 1))


# ----------------------------------------------------------------------------- astronomy
@pytest.fixture
def fits_frame(tmp_path: Path) -> Path:
    header = fits.Header()
    header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 53.1, "CRVAL2": -27.8, "CRPIX1": 12.3,
                   "CRPIX2": 20.7, "CD1_1": -5e-5, "CD1_2": 1e-5, "CD2_1": 1.2e-5, "CD2_2": 5e-5, "BUNIT": "adu",
                   "GAIN": 1.5, "READNOIS": 4.0, "SKY": 100.0, "SATURATE": 6e4})
    data = np.random.default_rng(0).integers(0, 50000, (24, 32)).astype(np.uint16)
    data[3, 4] = 65000  # saturated
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header, name="SCI")])  # stored with BZERO = 32768
    path = tmp_path / "frame.fits"
    hdul.writeto(path)
    return path


def test_astronomy_reads_header_noise_masks_and_round_trips(fits_frame: Path, tmp_path: Path) -> None:
    before = _sha(fits_frame)
    adapter = AstronomyAdapter(AstronomyDomainSpec(stretch={"softening": 10.0, "white": 6e4}))
    obs = adapter.read(fits_frame)
    assert obs.noise == {"gain": 1.5, "read_noise": 4.0, "sky": 100.0, "saturation": 6e4}
    assert not obs.mask[0, 3, 4] and obs.mask.sum() == obs.mask.size - 1
    _round_trip_normalisation(adapter, obs)
    paths = adapter.output_paths(tmp_path / "out", "frame", ".fits")
    adapter.write_restoration(_restoration(obs, adapter), paths, {"restore-prior": "test"})
    with fits.open(paths["restored"]) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "SPREAD", "CHI"]
        out = hdul[0].data
        h2 = hdul[0].header
        assert h2["BUNIT"] == "adu" and h2["RESTGEN"] is True and h2["FLUXCONV"] == "mean"
        assert any("restore-prior" in str(c) for c in h2["HISTORY"])
        valid = obs.mask[0].repeat(F, 0).repeat(F, 1)
        assert np.array_equal(out[valid], obs.data[0].repeat(F, 0).repeat(F, 1)[valid])
        chi_wcs = WCS(hdul["CHI"].header)
    assert _sha(fits_frame) == before
    w_in, w_out = WCS(fits.getheader(fits_frame, 1)), WCS(h2)
    h, w = obs.data.shape[-2:]
    # image corners (pixel edges) and centre agree between input and output to a tiny fraction of a pixel
    for x, y in [(-0.5, -0.5), (w - 0.5, -0.5), (-0.5, h - 0.5), (w - 0.5, h - 0.5), ((w - 1) / 2, (h - 1) / 2)]:
        a = np.array(w_in.pixel_to_world_values(x, y))
        b = np.array(w_out.pixel_to_world_values((x + 0.5) * F - 0.5, (y + 0.5) * F - 0.5))
        assert np.abs(a - b).max() * 3600 < 0.01 * 0.18  # < 1 % of an input pixel (0.18 arcsec)
    assert np.allclose(chi_wcs.wcs.crpix, w_in.wcs.crpix)


def test_astronomy_png_cutouts_unstretch_with_the_nominal_stretch() -> None:
    stretch = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64) * 2 - 1
    flux = NOMINAL.inverse(stretch)
    assert float(flux[0]) == pytest.approx(0.0) and float(flux[-1]) == pytest.approx(1000.0)


def test_astronomy_stretch_follows_the_data() -> None:
    """Unset softening and white: the noise level and the robust maximum above the sky (scene units)."""
    rng = np.random.default_rng(3)
    frame = 500.0 + rng.normal(0, 7.0, (1, 96, 96))
    frame[0, 40:48, 40:48] += 3000.0
    norm = AstronomyAdapter().normalisation(Observation.from_array(frame), gain=16.0)
    assert norm.softening == pytest.approx(7.0 / 16.0, rel=0.15)
    assert norm.white == pytest.approx(np.percentile(frame - np.median(frame), 99.9) / 16.0, rel=1e-3)


# ----------------------------------------------------------------------------- microscopy
@pytest.mark.parametrize("flavour", ["ome", "imagej", "plain"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_microscopy_round_trip_and_pixel_size(flavour: str, dtype: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    top = 200 if dtype == "uint8" else 60000
    stack = (rng.uniform(0, top, (3, 16, 20))).astype(dtype)
    path = tmp_path / f"stack.{'ome.' if flavour == 'ome' else ''}tif"
    if flavour == "ome":
        tifffile.imwrite(path, stack, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65,
                                                          "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})
    elif flavour == "imagej":
        if dtype == "uint8" or dtype == "uint16" or dtype == "float32":
            tifffile.imwrite(path, stack, imagej=True, resolution=(1 / 0.65, 1 / 0.65), metadata={"axes": "ZYX", "unit": "um"})
    else:
        tifffile.imwrite(path, stack, resolution=(1 / 0.65, 1 / 0.65))
    before = _sha(path)
    adapter = MicroscopyAdapter()
    obs = adapter.read(path)
    assert obs.data.shape == (3, 16, 20) and obs.meta["flavour"] == flavour
    _round_trip_normalisation(adapter, obs)
    paths = adapter.output_paths(tmp_path / "out", "stack", "".join(path.suffixes))
    adapter.write_restoration(_restoration(obs, adapter), paths, {"restore-generated": "true"})
    assert _sha(path) == before
    with tifffile.TiffFile(paths["restored"]) as tif:
        out = tif.series[0].asarray()
        assert out.dtype == np.dtype(dtype) and out.shape == (3, 64, 80)
        assert np.array_equal(out, stack.repeat(F, 1).repeat(F, 2))
        if flavour == "ome":
            assert 'PhysicalSizeX="0.1625"' in tif.ome_metadata
        else:
            xres = tif.pages.first.tags["XResolution"].value
            assert xres[0] / xres[1] == pytest.approx(F / 0.65, rel=1e-6)


# ----------------------------------------------------------------------------- satellite
@pytest.mark.parametrize("point", [False, True], ids=["area", "point"])
@pytest.mark.parametrize("bands,dtype", [(3, "uint8"), (4, "uint16"), (1, "uint16")])
def test_geotiff_georeferencing_checked_by_rasterio(point: bool, bands: int, dtype: str, tmp_path: Path) -> None:
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    data = np.random.default_rng(2).integers(1, 200, (bands, 12, 16)).astype(dtype)
    data[:, 0, 0] = 0  # nodata
    path = tmp_path / "scene.tif"
    profile = {"driver": "GTiff", "width": 16, "height": 12, "count": bands, "dtype": dtype, "crs": "EPSG:32633",
               "transform": from_origin(500000.0, 4200000.0, 10.0, 10.0), "nodata": 0}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if point:
            dst.update_tags(AREA_OR_POINT="Point")
    before = _sha(path)
    adapter = SatelliteAdapter()
    obs = adapter.read(path)
    assert obs.data.shape == (bands, 12, 16) and not obs.mask[:, 0, 0].any() and obs.mask[:, 1, 1].all()
    _round_trip_normalisation(adapter, obs)
    paths = adapter.output_paths(tmp_path / "out", "scene", ".tif")
    adapter.write_restoration(_restoration(obs, adapter), paths, {"restore-generated": "true"})
    assert _sha(path) == before
    with rasterio.open(path) as a, rasterio.open(paths["restored"]) as b:
        assert b.crs == a.crs and b.nodata == a.nodata and b.count == bands
        assert np.allclose(b.bounds, a.bounds)
        assert np.allclose(b.res, (a.res[0] / F, a.res[1] / F))
        assert np.array_equal(b.read(), data.repeat(F, 1).repeat(F, 2))


# ----------------------------------------------------------------------------- plug-ins
def test_a_plugin_adapter_with_a_required_option_registers_and_saves(tmp_path: Path, monkeypatch, capsys) -> None:
    pkg = tmp_path / "site"
    (pkg / "toy_restore_adapter").mkdir(parents=True)
    (pkg / "toy_restore_adapter" / "__init__.py").write_text(
        "from restore.domains import DomainAdapter, LinearScale\n"
        "from restore.spec import Spec\n\n"
        "class ToySpec(Spec):\n"
        "    kind: str = 'toy'\n"
        "    scale: float\n\n"
        "class ToyAdapter(DomainAdapter):\n"
        "    '''A toy adapter from another package, with a required option.'''\n"
        "    kind = 'toy'\n"
        "    spec_class = ToySpec\n\n"
        "    def normalisation(self, obs, gain=1.0):\n"
        "        return LinearScale(0.0, 255.0 * self.spec.scale)\n"
    )
    dist = pkg / "toy_restore_adapter-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-restore-adapter\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[restore.domains]\ntoy = toy_restore_adapter:ToyAdapter\n")
    monkeypatch.syspath_prepend(str(pkg))
    assert "toy" in adapter_classes()
    recipe = {"domain": {"kind": "toy", "scale": 2.0}, "forward": [{"kind": "downsample", "factor": 2}],
              "noise": {"kind": "gaussian", "sigma": 1.0}, "prior": {"kind": "builtin", "name": "faces"}}
    adapter = get_adapter(validate_recipe(recipe).domain)
    assert type(adapter).__name__ == "ToyAdapter" and adapter.normalisation(None).high == 510.0
    obs = Observation.from_array(np.full((1, 4, 4), 7.0, np.float32), "toy.tif")
    written = _restoration(obs, adapter, factor=2).save(tmp_path / "out", figures=False)
    assert tifffile.imread(written[0]).shape == (8, 8)  # saved by the recipe's adapter, its option intact
    with pytest.raises(RestoreError, match="scale"):
        get_adapter(validate_recipe({**recipe, "domain": {"kind": "toy"}}).domain)
    assert main(["domains"]) == 0
    assert "toy" in capsys.readouterr().out
    sys.modules.pop("toy_restore_adapter", None)
