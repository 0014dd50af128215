"""Property tests of the adapters (hypothesis): random shapes, dtypes and invalid pixels written as the
file kinds each domain reads come back with their shape, dtype, mask and values, and a write/read
round trip keeps them; an image with no valid pixel is refused, never restored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from restore.domains import check_observation, get_adapter
from restore.errors import RestoreError
from restore.spec import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _write(kind: str, path: Path, data: np.ndarray) -> None:
    if kind == "fits":
        fits.PrimaryHDU(data[0] if data.shape[0] == 1 else data).writeto(path)
    elif kind == "geotiff":  # bands interleaved, as scenes are stored
        tifffile.imwrite(path, np.moveaxis(data, 0, -1), photometric="rgb")
    elif kind == "tiff":
        tifffile.imwrite(path, data[0] if data.shape[0] == 1 else data, imagej=data.shape[0] > 1,
                         metadata={"axes": "ZYX"} if data.shape[0] > 1 else None)
    else:
        Image.fromarray(np.moveaxis(data, 0, -1) if data.shape[0] == 3 else data[0]).save(path)


CASES = {  # domain -> file kind, dtypes it takes, plane counts
    "astronomy": ("fits", [np.float32, np.int16, np.float64], [1]),
    "microscopy": ("tiff", [np.uint8, np.uint16, np.float32], [1, 2, 3]),
    "satellite": ("geotiff", [np.uint8, np.uint16], [3]),
    "faces": ("png", [np.uint8], [1, 3]),
}


@pytest.mark.parametrize("domain", list(CASES))
@SETTINGS
@given(h=st.integers(4, 40), w=st.integers(4, 40), dtype=st.integers(0, 2), planes=st.integers(0, 2),
       holes=st.floats(0, 0.5), seed=st.integers(0, 2**16))
def test_adapters_read_what_was_written(domain: str, h: int, w: int, dtype: int, planes: int, holes: float,
                                        seed: int, tmp_path_factory) -> None:
    kind, dtypes, counts = CASES[domain]
    dt, c = np.dtype(dtypes[dtype % len(dtypes)]), counts[planes % len(counts)]
    rng = np.random.default_rng(seed)
    top = 255 if dt.kind in "ui" and dt.itemsize == 1 else 4000
    data = rng.integers(0, top, (c, h, w)).astype(dt)
    floating = dt.kind == "f"
    if floating:
        data[rng.random(data.shape) < holes] = np.nan
    path = tmp_path_factory.mktemp(domain) / f"x.{'tif' if kind == 'geotiff' else kind}"
    _write(kind, path, data)
    adapter = get_adapter(load_recipe(RECIPES / f"{domain}.yaml").domain)
    obs = adapter.read(path)
    want = 3 if domain == "faces" else c
    assert obs.data.shape == (want, h, w) and obs.data.dtype == np.float32
    assert obs.mask.shape[-2:] == (h, w)
    expected = np.broadcast_to(data.astype(np.float32), (want, h, w)) if domain == "faces" and c == 1 else data
    valid = np.isfinite(expected.astype(np.float64))
    assert np.array_equal(np.broadcast_to(obs.mask, obs.data.shape), valid)  # invalid pixels masked, the rest kept
    np.testing.assert_array_equal(obs.data[valid], expected.astype(np.float32)[valid])
    if valid.reshape(want, -1).any(1).all():
        check_observation(obs)
    else:
        with pytest.raises(RestoreError, match="no valid pixel"):
            check_observation(obs)
    out = path.with_name(f"y{path.suffix}")  # a round trip through the adapter's writer keeps values and shape
    adapter.write_image(out, np.nan_to_num(obs.data), obs.meta, 1.0, {})
    again = adapter.read(out)
    assert again.data.shape == obs.data.shape
    np.testing.assert_allclose(again.data, np.nan_to_num(obs.data), rtol=1e-6)
