"""restore.imageio: plain array I/O, atomic non-clobbering writes, compressed TIFFs (imagecodecs),
one-line errors for what cannot be read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from restore.errors import RestoreError
from restore.imageio import as_chw, atomic_write, description, file_kind, read_array, write_array


@pytest.mark.parametrize("suffix", [".png", ".tif", ".fits"])
def test_write_then_read_round_trips(suffix: str, tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 255, (3, 6, 8)).astype(np.float32)
    meta = {"format": file_kind(tmp_path / f"a{suffix}"), "dtype": "uint8"} if suffix != ".fits" else {}
    write_array(tmp_path / f"a{suffix}", data, meta)
    back, _ = read_array(tmp_path / f"a{suffix}")
    assert np.array_equal(back, data)


@pytest.mark.parametrize("compression", ["lzw", "zlib", "jpeg"])
def test_compressed_tiffs_are_read(compression: str, tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 255, (16, 16, 3)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", data, compression=compression, photometric="rgb")
    back, meta = read_array(tmp_path / "c.tif")
    assert back.shape == (3, 16, 16) and meta["dtype"] == "uint8"
    if compression != "jpeg":  # lossless
        assert np.array_equal(back, np.moveaxis(data, -1, 0))


def test_atomic_write_refuses_to_clobber_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    atomic_write(target, lambda tmp: tmp.write_text("one"))
    with pytest.raises(RestoreError, match="output exists"):
        atomic_write(target, lambda tmp: tmp.write_text("two"))

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, fail, overwrite=True)
    assert target.read_text() == "one" and sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_unreadable_inputs_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(RestoreError, match="bad.png: cannot read image"):
        read_array(tmp_path / "bad.png")
    with pytest.raises(RestoreError, match="unsupported file type"):
        file_kind(tmp_path / "x.docx")
    with pytest.raises(RestoreError, match=r"must have 2 or 3 dimensions"):
        as_chw(np.zeros((1, 2, 3, 4)))
    assert description({"a": "1", "b": "x"}) == "a=1; b=x" and description({}) is None
