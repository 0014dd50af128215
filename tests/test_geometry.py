"""restore.geometry and objects mode: detection (faces, astronomical sources), exact cutouts, alignment
to the prior's framing, feathered paste-back, and the whole pipeline on frames."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import restore
from restore.domains import Observation, get_adapter
from restore.domains.faces import haar_cascade
from restore.errors import RestoreError
from restore.geometry import Cutout, Framing, coarse_to_fine, is_whole_pixel_shift, placement, region
from restore.priors import load
from restore.spec import ObjectsLayoutSpec
from restore.tiling import Paster, cosine_window, crop
from tests.conftest import RECIPES

LAYOUT = ObjectsLayoutSpec(kind="objects")
FAST = ["search.restarts=2", "search.steps=60", "search.refine_steps=20", "layout.kind=objects"]


def prior_sample(name: str, seed: int) -> np.ndarray:
    prior = load(name)
    with torch.no_grad():
        return prior.generate(prior.sample_latent(1, torch.Generator().manual_seed(seed)))[0].clamp(-1, 1).numpy()


# ----------------------------------------------------------------------------- geometry
def test_scaled_cutout_puts_the_object_on_the_framing() -> None:
    """Closed form: the object's centre maps to the framing's centre in tile pixels, its size to the framing's."""
    framing = Framing(x=31.0, y=26.0, size=68.5)
    cut = Cutout(x=24.3, y=17.8, size=20.0)
    m = cut.to_tile(framing, factor=4, prior_size=64)
    centre = m @ torch.tensor([24.3, 17.8, 1.0], dtype=torch.float64)
    assert centre[:2].tolist() == pytest.approx([(31.0 + 0.5) / 4 - 0.5, (26.0 + 0.5) / 4 - 0.5])
    assert float(m[0, 0]) == pytest.approx(68.5 / 4 / 20.0)


def test_unit_scale_cutouts_are_exact_crops_and_mask_the_outside() -> None:
    y = torch.arange(3 * 20 * 30, dtype=torch.float32).reshape(3, 20, 30)
    mask = torch.ones_like(y, dtype=torch.bool)
    place = placement(Cutout(x=4.2, y=10.0), Framing(31.5, 31.5), factor=4, prior_size=64)  # 16-pixel tile
    assert is_whole_pixel_shift(place)  # the centre (4.2, 10) lands on (7.2, 7): a whole-pixel shift
    top, left, height, width = region(place, 64, 4)
    assert (top, left, height, width) == (3, -3, 16, 16)
    tile, valid = crop(y, mask, top, left, height, width)
    assert torch.equal(tile[:, :, 3:], y[:, 3:19, 0:13])
    assert not bool(valid[:, :, :3].any()) and bool(valid[:, :, 3:].all())
    scaled = placement(Cutout(x=10.0, y=10.0, size=5.0), Framing(31.5, 31.5, 16.0), factor=4, prior_size=64)
    assert not is_whole_pixel_shift(scaled) and region(scaled, 64, 4)[2] in (20, 21)  # 16 / (16 / 4 / 5) pixels


def test_paste_back_of_the_upsampled_tile_reproduces_the_frame_and_feathers() -> None:
    """Pasting each cutout's own piece of a smooth sharp frame back gives the frame again; outside the
    cutouts nothing is pasted (NaN); the window is flat inside and ramps to ~0 at the edge."""
    f, r = 4, 32
    yy, xx = torch.meshgrid(torch.arange(80.0), torch.arange(96.0), indexing="ij")
    sharp = torch.sin(xx / 9) + torch.cos(yy / 7)
    window = cosine_window(r, 0.125)
    assert float(window[r // 2, r // 2]) == 1.0 and float(window[0, 0]) < 0.01
    paster = Paster((1, 80, 96), window)
    to_fine = coarse_to_fine(f)
    for cut in (Cutout(x=6.0, y=5.0, size=6.0), Cutout(x=15.3, y=12.1, size=8.0)):
        m = cut.to_tile(Framing(15.5, 15.5, 32.0), f, r)
        place = to_fine @ torch.linalg.inv(m) @ torch.linalg.inv(to_fine)
        grid = torch.stack(torch.meshgrid(torch.arange(r, dtype=torch.float64), torch.arange(r, dtype=torch.float64),
                                          indexing="xy") + (torch.ones(r, r, dtype=torch.float64),), -1)
        src = grid @ place.T  # where each tile pixel lands on the sharp frame
        piece = torch.sin(src[..., 0] / 9) + torch.cos(src[..., 1] / 7)
        paster.add(place, piece[None].float(), [0])
    top, top_cover = paster.take(40)  # a band, then the rest: the same as all at once
    rest, rest_cover = paster.take(80)
    out, coverage = torch.cat([top, rest], 1), torch.cat([top_cover, rest_cover], 1)
    inside = coverage[0] >= 1
    assert bool(inside.any()) and torch.allclose(out[0][inside], sharp[inside], atol=0.02)
    assert torch.isnan(out[0][coverage[0] == 0]).all()


# ----------------------------------------------------------------------------- detectors
def _face_photo(seed: int, top: int, left: int) -> tuple[np.ndarray, np.ndarray]:
    """A 160x200 sharp 'photo' with a face-prior sample pasted at (top, left), and its 4x observation."""
    face = (prior_sample("faces", seed) + 1) * 127.5
    canvas = np.full((3, 160, 200), 90.0, np.float32)
    canvas[:, top : top + 64, left : left + 64] = face
    return canvas, restore.simulate(restore.load_recipe(RECIPES / "faces.yaml"), canvas, seed=seed)


NEEDS_CASCADE = pytest.mark.skipif(haar_cascade() is None, reason="OpenCV 4 with its Haar cascades is not installed")


@NEEDS_CASCADE
@pytest.mark.parametrize("seed", [0, 3])
def test_face_detector_finds_the_face_where_it_is(seed: int) -> None:
    _, observed = _face_photo(seed, 40, 70)
    found = get_adapter("faces").detect(Observation.from_array(observed), 4, 16, LAYOUT)
    framing = load("faces").card["framing"]
    assert len(found) == 1
    expect_x, expect_y = (70 + framing["x"] + 0.5) / 4 - 0.5, (40 + framing["y"] + 0.5) / 4 - 0.5
    assert abs(found[0].x - expect_x) < 1.0 and abs(found[0].y - expect_y) < 1.0
    assert found[0].size == pytest.approx(framing["size"] / 4, rel=0.2)


def test_source_detector_finds_sources_brightest_first() -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:60, :80]
    truth = [(20.0, 15.0, 900.0), (60.3, 40.6, 400.0), (45.0, 12.0, 250.0)]
    frame = 100.0 + rng.normal(0, 5, (60, 80))
    for x, y, flux in truth:
        frame += flux / (2 * math.pi * 1.5**2) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
    found = get_adapter("astronomy").detect(Observation.from_array(frame), 4, 16, LAYOUT)
    assert len(found) == 3
    for cut, (x, y, _) in zip(found, truth):
        assert abs(cut.x - x) < 0.3 and abs(cut.y - y) < 0.3 and cut.size is None


def test_face_detection_without_the_cascades_is_a_one_line_error(monkeypatch) -> None:
    """OpenCV missing, or 5.x (which ships no Haar cascades): a one-line error naming the input and the fix."""
    monkeypatch.setattr("restore.domains.faces.haar_cascade", lambda: None)
    with pytest.raises(RestoreError, match=r"photo.png: face detection needs OpenCV 4.*opencv-python-headless<5"):
        get_adapter("faces").detect(Observation.from_array(np.zeros((3, 40, 40)), "photo.png"), 4, 16, LAYOUT)


def test_domains_without_a_detector_say_so() -> None:
    with pytest.raises(RestoreError, match="cannot detect objects"):
        get_adapter("microscopy").detect(Observation.from_array(np.zeros((8, 8))), 4, 16, LAYOUT)


# ----------------------------------------------------------------------------- pipeline
@NEEDS_CASCADE
def test_faces_in_a_photo_are_restored_and_pasted_back(tmp_path: Path) -> None:
    sharp, observed = _face_photo(1, 48, 64)
    pipe = restore.Pipeline.from_yaml(RECIPES / "faces.yaml", FAST, progress=False)
    res = pipe.run(observed)
    assert res.image.shape == (3, 160, 200) and len(res.provenance["regions"]) == 1
    far = (slice(None), slice(0, 20), slice(0, 40))  # far from the face: the classical restoration, no spread
    assert np.isnan(res.std[far]).all()
    assert abs(float(res.image[far].mean()) - 90.0) < 3.0  # the flat background of the photo
    face = sharp[:, 52:108, 68:124]  # the face, less a margin for the shifts below
    shifts = {(dy, dx): float(np.mean((res.image[:, 52 + dy : 108 + dy, 68 + dx : 124 + dx] - face) ** 2))
              for dy in range(-4, 5) for dx in range(-4, 5)}
    best = min(shifts, key=shifts.get)
    assert max(abs(best[0]), abs(best[1])) <= 1  # the restored face sits where the face is
    region = res.provenance["regions"][0]
    assert region["test"] == "chi2_gof" and region["dof"] > 0 and isinstance(region["prior_used"], bool)
    assert np.isfinite(res.std[:, 60:100, 76:116]).all() == region["prior_used"]  # a spread only from the prior
    assert res.consistent == (0.8 <= res.chi2 <= 1.2)  # judged on every pixel of the photo


def test_galaxies_in_a_frame_are_restored_with_flux_kept(tmp_path: Path) -> None:
    sharp = np.zeros((1, 192, 224), np.float32)
    spots = [(20, 30), (100, 130)]
    asinh = get_adapter(restore.load_recipe(RECIPES / "astronomy.yaml").domain)
    for seed, (top, left) in enumerate(spots):
        flux = asinh.normalisation(None).inverse(torch.from_numpy(prior_sample("galaxies", seed + 2)).double())
        sharp[:, top : top + 64, left : left + 64] += flux.float().numpy()
    overrides = [*FAST, "noise.gain=1.0", "noise.read_noise=5.0", "noise.sky=20.0"]
    pipe = restore.Pipeline.from_yaml(RECIPES / "astronomy.yaml", overrides, progress=False)
    observed = restore.simulate(pipe.spec, sharp, seed=0)
    res = pipe.run(observed)
    objects = res.provenance["regions"]
    assert len(objects) >= 2 and res.image.shape == (1, 192, 224)
    for top, left in spots:  # each galaxy's cutout is centred near it (observed pixels)
        assert any(abs(o["x"] - (left + 32) / 4) < 3 and abs(o["y"] - (top + 32) / 4) < 3 for o in objects)
    total_sharp, total_restored = float(sharp.sum()), float(res.image.sum())
    noise_of_total = float(np.sqrt((np.clip(observed, 0, None) / 1.0 + 5.0**2).sum()))  # gain 1, read noise 5
    assert abs(total_restored - total_sharp) < 5 * noise_of_total  # sum binning: flux kept to within the noise


@NEEDS_CASCADE
def test_an_image_without_detections_gets_the_classical_restoration_alone() -> None:
    """Nothing detected: nothing is forced through the prior; the frame is the classical restoration."""
    pipe = restore.Pipeline.from_yaml(RECIPES / "faces.yaml", FAST, progress=False)
    observed = np.full((3, 24, 60), 120.0, np.float32) + np.random.default_rng(0).normal(0, 4, (3, 24, 60))
    with pytest.warns(UserWarning, match="no objects detected"):
        res = pipe.run(observed.astype(np.float32))
    assert res.image.shape == (3, 96, 240) and res.provenance["regions"] == []
    assert np.isnan(res.std).all() and abs(float(res.image.mean()) - 120.0) < 1.0
    assert 0.8 <= res.chi2 <= 1.2


def test_a_rotated_cutout_maps_its_eye_line_to_the_horizontal() -> None:
    cut = Cutout(x=20.0, y=12.0, size=4.0, angle=math.radians(15))
    m = cut.to_tile(Framing(x=31.5, y=31.5, size=32.0), factor=4, prior_size=64)
    left, right = torch.tensor([18.0, 12.0, 1.0], dtype=torch.float64), torch.tensor([22.0, 12.0, 1.0], dtype=torch.float64)
    tilt = torch.tensor([math.cos(cut.angle), math.sin(cut.angle), 0.0], dtype=torch.float64) * 2
    a, b = m @ (torch.tensor([20.0, 12.0, 1.0], dtype=torch.float64) - tilt), m @ (torch.tensor([20.0, 12.0, 1.0], dtype=torch.float64) + tilt)
    assert float(a[1]) == pytest.approx(float(b[1]), abs=1e-9)  # the tilted eye line lands level
    assert [round(v, 6) for v in (m @ torch.tensor([20.0, 12.0, 1.0], dtype=torch.float64)).tolist()] == [7.5, 7.5, 1.0]
    assert not is_whole_pixel_shift(placement(cut, Framing(31.5, 31.5, 32.0), 4, 64))
    del left, right


@NEEDS_CASCADE
@pytest.mark.parametrize("degrees", [-12.0, 12.0])
def test_face_detector_measures_the_in_plane_rotation_from_the_eyes(degrees: float) -> None:
    from scipy import ndimage

    face = (prior_sample("faces", 2) + 1) * 127.5
    canvas = np.full((3, 160, 200), 90.0, np.float32)
    canvas[:, 40:104, 70:134] = face
    rotated = np.stack([ndimage.rotate(c, -degrees, reshape=False, order=1, mode="nearest") for c in canvas])
    found = get_adapter("faces").detect(Observation.from_array(rotated), 1, 64, LAYOUT)
    assert len(found) >= 1
    assert math.degrees(found[0].angle) == pytest.approx(degrees, abs=6.0)
