"""restore.rasters and the band-by-band writers: files checked by tifffile and astropy as independent readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from astropy.io import fits

from restore.imageio import write_fits, write_tiff
from restore.rasters import FileRaster, bands, copy_rows, preview, read_rows, scratch


def _planes(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 60000, shape).astype(np.float32)


@pytest.mark.parametrize(
    ("file_shape", "samples", "kwargs"),
    [((2, 3, 37, 41), 1, {"ome": True, "metadata": {"axes": "ZCYX"}}),  # pages one after another
     ((2, 37, 41, 3), 3, {"photometric": "rgb", "metadata": {"axes": "TYXS"}}),  # samples interleaved, 2 pages
     ((37, 41), 1, {})],
)
def test_tiff_written_by_rows_is_what_tifffile_reads(tmp_path: Path, file_shape: tuple, samples: int, kwargs: dict) -> None:
    pages = int(np.prod(file_shape[:-3 if samples > 1 else -2]))
    planes = _planes((pages * samples, 37, 41))
    source = scratch(tmp_path, planes.shape)
    for top, n in ((0, 5), (5, 30), (35, 2)):  # uneven bands
        source.write_rows(top, planes[:, top : top + n])
    write_tiff(tmp_path / "out.tif", source, file_shape, "uint16", samples=samples, **kwargs)
    read = tifffile.imread(tmp_path / "out.tif").astype(np.float32)
    if samples > 1:  # the pipeline's plane order: samples first, then pages
        read = np.moveaxis(read, -1, 0)
    assert np.array_equal(read.reshape(planes.shape), np.clip(np.rint(planes), 0, 65535))


def test_fits_hdus_written_by_rows_are_valid_for_astropy(tmp_path: Path) -> None:
    image, chi = _planes((1, 50, 30), 1), _planes((3, 7, 5), 2)
    spread = scratch(tmp_path, (1, 50, 30))
    copy_rows(image / 7, spread)
    header = fits.Header([("BUNIT", "adu"), ("OBJECT", "test")])
    hdus = [(header, image), (fits.Header([("EXTNAME", "SPREAD")]), spread), (fits.Header([("EXTNAME", "CHI")]), chi)]
    write_fits(tmp_path / "out.fits", hdus)
    with fits.open(tmp_path / "out.fits") as hdul:
        hdul.verify("exception")
        assert [h.name for h in hdul] == ["PRIMARY", "SPREAD", "CHI"]
        assert hdul[0].header["BUNIT"] == "adu" and hdul[0].header["EXTEND"]
        assert np.array_equal(hdul[0].data, image[0])
        assert np.allclose(hdul["SPREAD"].data, image[0] / 7)
        assert np.array_equal(hdul["CHI"].data, chi)
    assert (tmp_path / "out.fits").stat().st_size % 2880 == 0


def test_file_raster_rows_and_previews(tmp_path: Path) -> None:
    planes = _planes((2, 300, 20))
    raster = FileRaster(tmp_path / "r.bin", 16, planes.shape, ">f4")
    (tmp_path / "r.bin").write_bytes(b"\0" * (16 + planes.nbytes))
    raster.write_rows(0, planes)
    assert np.array_equal(read_rows(raster, 290, 50), planes[:, 290:])  # fewer rows at the bottom
    assert np.array_equal(np.fromfile(tmp_path / "r.bin", ">f4", offset=16).reshape(planes.shape), planes)
    assert np.array_equal(preview(raster, limit=100), planes[:, ::3, ::3])
    assert [n for _, n in bands(300, 20, 2, budget=4 * 20 * 2 * 128)] == [128, 128, 44]
    with pytest.raises(ValueError, match="do not fit"):
        raster.write_rows(299, planes[:, :2])
