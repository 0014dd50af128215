"""`restore train-prior`: a few iterations make a loadable prior; interrupt + resume repeats the curve."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from restore.cli import main
from restore.errors import RestoreError
from restore.priors import load_prior, read_card
from restore.spec import AugmentSpec
from restore.training import TrainSpec, load_train_spec, train
from restore.training.train import augment, intensity_curve, split_holdout


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        yy, xx = np.mgrid[:16, :16]
        blob = np.exp(-((yy - rng.uniform(4, 12)) ** 2 + (xx - rng.uniform(4, 12)) ** 2) / 8.0)
        rgb = np.stack([blob * rng.uniform(100, 255) for _ in range(3)], -1)
        Image.fromarray(rgb.astype(np.uint8)).save(folder / f"img_{i:02d}.png")
    return folder


def _spec(images: Path, tmp_path: Path, **extra) -> TrainSpec:
    return TrainSpec(name="toy", data=str(images), resolution=16, batch=4, iterations=6, out=tmp_path / "toy.safetensors",
                     generator={"style_dim": 16, "n_mlp": 1, "channels": {4: 8, 8: 8, 16: 8}}, r1_every=2,
                     checkpoint_every=2, progress=False, card={"licence": "CC0", "training_data": "blobs"},
                     **extra)


def test_training_writes_a_loadable_prior_with_a_valid_card(images: Path, tmp_path: Path) -> None:
    prior = train(_spec(images, tmp_path))
    card = read_card(tmp_path / "toy.safetensors")
    assert card.licence == "CC0" and card.resolution == 16 and card.iterations == 6  # type: ignore[attr-defined]
    assert card.training_images == 10 and card.holdout_images == 2  # type: ignore[attr-defined]
    loaded = load_prior(tmp_path / "toy.safetensors")
    with torch.no_grad():
        z = torch.randn(2, 16)
        assert torch.allclose(loaded.generate(z), prior.generate(z), atol=1e-6)


def test_interrupt_and_resume_continue_the_same_loss_curve(images: Path, tmp_path: Path) -> None:
    full = train(_spec(images, tmp_path / "a", checkpoint=tmp_path / "a" / "ckpt.pt"))
    spec = _spec(images, tmp_path / "b", checkpoint=tmp_path / "b" / "ckpt.pt")
    train(spec, stop_after=3)
    assert int(torch.load(tmp_path / "b" / "ckpt.pt", weights_only=True)["iteration"]) == 3
    resumed = train(spec)
    assert resumed.card["losses"] == full.card["losses"]
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(resumed.generate(z), full.generate(z))


def test_time_limit_stops_exports_and_resumes(images: Path, tmp_path: Path) -> None:
    spec = _spec(images, tmp_path, checkpoint=tmp_path / "ckpt.pt", max_minutes=1e-9, evaluate=False)
    first = train(spec)
    assert len(first.card["losses"]) == 1 and read_card(spec.out).iterations == 1  # type: ignore[attr-defined]
    assert int(torch.load(tmp_path / "ckpt.pt", weights_only=True)["iteration"]) == 1
    resumed = train(spec.model_copy(update={"max_minutes": None}))
    assert len(resumed.card["losses"]) == 6


def test_training_on_a_missing_device_is_a_one_line_error(images: Path, tmp_path: Path) -> None:
    with pytest.raises(RestoreError, match="device 'nosuch' is not available"):
        train(_spec(images, tmp_path, device="nosuch"))


def test_holdout_split_is_deterministic() -> None:
    files = [Path(f"{i}.png") for i in range(20)]
    train_files, held = split_holdout(files, 0.1)
    assert len(held) == 2 and not set(train_files) & set(held)


def test_cli_train_prior_from_yaml(images: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"name": "cli", "data": "imgs", "resolution": 16, "batch": 4, "iterations": 2,
                                      "out": "cli.safetensors", "progress": False,
                                      "generator": {"style_dim": 8, "n_mlp": 1, "channels": {4: 8, 8: 8, 16: 8}}}))
    assert load_train_spec(config).out == tmp_path / "cli.safetensors"
    assert main(["train-prior", str(config)]) == 0
    assert (tmp_path / "cli.safetensors").is_file()


def test_sample_quality_metric_ranks_real_above_blurred() -> None:
    from restore.training.evaluate import blurred, evaluate, sliced_wasserstein

    gen = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    def sharp(n: int) -> torch.Tensor:  # noqa: E306
        cy, cx = torch.rand(n, 1, 1, generator=gen) * 20 + 6, torch.rand(n, 1, 1, generator=gen) * 20 + 6
        return (torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 4.0) * 2 - 1)[:, None]
    train_set, held = sharp(64), sharp(64)
    real = sliced_wasserstein(train_set, held)["mean"]
    assert real < sliced_wasserstein(blurred(train_set, 2.0), held)["mean"]
    report = evaluate(train_set[:16].clone(), train_set, held)
    assert report["nearest_training_rms"]["samples_median"] == 0.0  # copies of training images are caught
    assert report["nearest_training_rms"]["holdout_median"] > 0.0


def test_holdout_by_group(tmp_path: Path) -> None:
    files = [tmp_path / f"t{i}.png" for i in range(40)]
    (tmp_path / "manifest.csv").write_text("file,fov\n" + "".join(f"t{i}.png,{i // 4}\n" for i in range(40)))
    train_files, held = split_holdout(files, 0.1, "fov")
    held_fovs = {int(f.stem[1:]) // 4 for f in held}
    assert held and held_fovs.isdisjoint({int(f.stem[1:]) // 4 for f in train_files})


def test_training_configs_get_the_recipes_one_line_errors(tmp_path: Path) -> None:
    from restore.errors import RestoreError

    config = tmp_path / "bad.yaml"
    config.write_text("name: x\ndata: imgs/\nout: x.safetensors\nbatch: 1\n")
    with pytest.raises(RestoreError, match=r"bad.yaml: batch: must be greater than or equal to 2"):
        load_train_spec(config)
    config.write_text("- a list\n- not a mapping\n")
    with pytest.raises(RestoreError, match="bad.yaml: must be a YAML mapping"):
        load_train_spec(config)
    config.write_text("name: x\ndata: imgs/\nout: x.safetensors\n")
    assert load_train_spec(config, ["batch=8"]).batch == 8  # --set works as for recipes


def test_cutout_blanks_one_square_per_image_of_the_stated_side() -> None:
    spec = AugmentSpec(flip_x=False, translate=0.0, cutout=0.25)
    x = torch.ones(5, 2, 16, 16)
    out = augment(x, spec, torch.Generator().manual_seed(0))
    zeros = (out == 0).all(1)  # the same hole in every channel
    assert zeros.flatten(1).sum(1).tolist() == [16] * 5  # a 4x4 square each
    for hole in zeros:
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert rows.max() - rows.min() == 3 and cols.max() - cols.min() == 3


def test_intensity_curve_is_a_power_within_the_stated_range_and_keeps_the_ends() -> None:
    u = torch.linspace(0, 1, 11).repeat(64, 1, 1, 1)
    out = (intensity_curve(u * 2 - 1, 3.0, torch.Generator().manual_seed(0)) + 1) / 2
    torch.testing.assert_close(out[..., 0], torch.zeros(64, 1, 1), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[..., -1], torch.ones(64, 1, 1))
    g = torch.log(out[..., 5]) / math.log(0.5)  # each image's exponent, read back at u = 0.5
    assert g.min() >= 1 / 3 - 1e-4 and g.max() <= 3 + 1e-4 and g.max() / g.min() > 3  # spread over the range
    torch.testing.assert_close(out[..., 2], 0.2 ** g)  # one power per image
