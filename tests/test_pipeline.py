"""restore.Pipeline and `restore run`: arrays and files in, Restoration and files out."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import restore
from restore.cli import main
from restore.errors import RestoreError
from restore.priors import StyleGAN2Generator, save_prior
from restore.priors.io import load_prior
from restore.search import project_to_sphere
from tests.conftest import RECIPES


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Path:
    torch.manual_seed(1)
    g = StyleGAN2Generator(32, 32, 2, {4: 32, 8: 32, 16: 16, 32: 16})
    save_prior(tmp_path / "tiny.safetensors", g, {"name": "tiny", "domain": "test", "licence": "CC0"})
    recipe = {
        "domain": {"kind": "image", "low": 0.0, "high": 1.0},
        "forward": [{"kind": "psf", "psf": {"kind": "gaussian", "fwhm": 1.0}}, {"kind": "downsample", "factor": 4}],
        "noise": {"kind": "gaussian", "sigma": 0.02},
        "prior": {"kind": "file", "path": "tiny.safetensors"},
        "search": {"latent": "z", "restarts": 3, "steps": 400, "lr": 0.3},
        "output": {"dir": "out"},
        "seed": 0,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _truth(recipe: Path) -> np.ndarray:
    spec = restore.load_recipe(recipe)
    prior = load_prior(spec.prior.path)
    with torch.no_grad():
        z = project_to_sphere(prior.sample_latent(1, torch.Generator().manual_seed(3)), prior.latent_radius())
        x = prior.generate(z)[0]
    return ((x + 1) / 2).numpy()  # the image domain maps [0, 1] to the prior's [-1, 1]


def test_pipeline_restores_an_array_in_physical_units(tiny_recipe: Path) -> None:
    truth = _truth(tiny_recipe)
    pipe = restore.Pipeline.from_yaml(tiny_recipe, progress=False)
    observed = restore.simulate(pipe.spec, truth, seed=1)
    before = observed.copy()
    res = pipe.run(observed)
    assert np.array_equal(observed, before)  # input not modified
    assert res.image.shape == (3, 32, 32) and res.image.dtype == np.float32
    assert res.samples.shape == (3, 3, 32, 32) and res.std.shape == (3, 32, 32)
    assert res.chi_map.shape == observed.shape
    assert res.consistent and 0.5 < res.chi2 <= 1.2
    bicubic = np.stack([np.array(Image.fromarray(c).resize((32, 32), Image.BICUBIC)) for c in observed])
    err = lambda a: float(np.mean((a - truth) ** 2))  # noqa: E731
    assert err(res.image) < err(bicubic) / 2  # at least 3 dB better than bicubic
    assert res.provenance["prior"] == "tiny" and len(res.provenance["prior_sha256"]) == 64
    assert res.provenance["seed"] == 0 and "torch" in res.provenance["versions"]


def test_pipeline_on_a_device_returns_numpy_like_on_the_cpu(tiny_recipe: Path, device) -> None:
    observed = restore.simulate(restore.load_recipe(tiny_recipe), _truth(tiny_recipe), seed=1)
    overrides = ["search.steps=5", "search.refine_steps=2"]
    here = restore.Pipeline.from_yaml(tiny_recipe, overrides, progress=False).run(observed)
    there = restore.Pipeline.from_yaml(tiny_recipe, overrides, progress=False, device=device).run(observed)
    assert isinstance(there.image, np.ndarray) and there.image.shape == here.image.shape
    assert np.allclose(there.image, here.image, atol=1e-3) and abs(there.chi2 - here.chi2) < 1e-3 * here.chi2


def test_dropping_samples_keeps_the_restoration(tiny_recipe: Path) -> None:
    observed = restore.simulate(restore.load_recipe(tiny_recipe), _truth(tiny_recipe), seed=1)
    overrides = ["search.steps=5", "search.refine_steps=2"]
    full = restore.Pipeline.from_yaml(tiny_recipe, overrides, progress=False).run(observed)
    lean = restore.Pipeline.from_yaml(tiny_recipe, overrides, progress=False, keep_samples=False).run(observed)
    assert lean.samples is None and full.samples is not None
    assert np.array_equal(lean.image, full.image) and np.array_equal(lean.std, full.std, equal_nan=True)


def test_a_missing_device_is_a_one_line_error(tiny_recipe: Path, capsys) -> None:
    with pytest.raises(RestoreError, match="device 'cuda:99' is not available"):
        restore.Pipeline.from_yaml(tiny_recipe, progress=False, device="cuda:99")
    assert main(["run", str(tiny_recipe), str(tiny_recipe), "--device", "nosuch", "-o", "x"]) == 1
    err = capsys.readouterr().err
    assert "device 'nosuch' is not available" in err and err.count("\n") == 1


def test_2d_arrays_and_padding_for_small_observations(tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = StyleGAN2Generator(16, 16, 1, {4: 8, 8: 8, 16: 8}, img_channels=1)
    save_prior(tmp_path / "grey.safetensors", g, {"name": "grey"})
    spec = restore.PipelineSpec.model_validate({
        "domain": {"kind": "image", "low": 0, "high": 1}, "forward": [{"kind": "downsample", "factor": 2, "method": "mean"}],
        "noise": {"kind": "gaussian", "sigma": 0.1}, "prior": {"kind": "file", "path": str(tmp_path / "grey.safetensors")},
        "search": {"steps": 3, "restarts": 2}})
    res = restore.Pipeline(spec, progress=False).run(np.full((5, 6), 0.5, np.float32))
    assert res.image.shape == (1, 10, 12) and res.chi_map.shape == (1, 5, 6)
    assert len(res.provenance["regions"]) == 1


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_cli_run_writes_all_outputs_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    recipe = RECIPES / "faces.yaml"
    sample = RECIPES / "samples" / "face_observed.png"
    before = _sha(sample)
    args = ["run", str(recipe), "-o", str(tmp_path), "--set", "search.steps=5", "--set", "search.restarts=2", "-q"]
    assert main(args) == 0
    assert _sha(sample) == before
    stem = "face_observed"
    for name in (f"{stem}.restored.png", f"{stem}.spread.png", f"{stem}.report.json", f"{stem}.compare.png"):
        assert (tmp_path / name).is_file(), name
    report = json.loads((tmp_path / f"{stem}.report.json").read_text())
    for key in ("chi2", "consistent", "steps", "runtime_s", "prior", "seed", "recipe", "generated"):
        assert key in report
    restored = Image.open(tmp_path / f"{stem}.restored.png")
    assert restored.size == (64, 64) and restored.text["restore-generated"] == "true"
    capsys.readouterr()
    assert main(args) == 0  # finished outputs: skipped, not redone and not overwritten
    assert "skipped, outputs exist" in capsys.readouterr().out
    (tmp_path / f"{stem}.compare.png").unlink()  # one output missing, others not this run's: refused
    assert main(args) == 1
    assert "output exists" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


def test_cli_run_missing_input_is_exit_1(tmp_path: Path, capsys) -> None:
    assert main(["run", str(RECIPES / "faces.yaml"), str(tmp_path / "nope.png")]) == 1
    assert "input not found" in capsys.readouterr().err


def _upsample(y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(y, scale_factor=4, mode="bicubic", align_corners=False)


def _oracle_pipeline(tmp_path: Path, monkeypatch, restorer, search: dict, correct: bool = True) -> restore.Pipeline:
    """A 1-channel, 4x pipeline whose search is replaced by ``restorer`` (tile observation -> sharp tile);
    ``correct=False``: the engine's anchor is the output (for tests of the blending itself)."""
    import restore.engine as pipeline_module
    from restore.search import SearchResult

    def oracle(problem, y, config, mask=None, seed=0):
        images = problem.normalise(restorer(y)).repeat_interleave(config.restarts, 0)
        n = images.shape[0]
        ones = torch.ones(n, dtype=torch.bool)
        return SearchResult(images, torch.ones(n), ones, torch.zeros(n, dtype=torch.long), torch.zeros(n), 1, 0.0)

    monkeypatch.setattr(pipeline_module, "latent_search", oracle)
    torch.manual_seed(0)
    save_prior(tmp_path / "p.safetensors", StyleGAN2Generator(32, 8, 1, {4: 8, 8: 8, 16: 8, 32: 8}, img_channels=1), {"name": "p"})
    spec = restore.PipelineSpec.model_validate({
        "domain": {"kind": "image", "low": 0, "high": 1}, "forward": [{"kind": "downsample", "factor": 4, "method": "mean"}],
        "noise": {"kind": "gaussian", "sigma": 0.1}, "prior": {"kind": "file", "path": str(tmp_path / "p.safetensors")},
        "search": search, "consistency": {"correct": correct}})
    return restore.Pipeline(spec, progress=False)


def test_tiled_restoration_matches_untiled_and_has_no_seams(tmp_path: Path, monkeypatch) -> None:
    """With an identity-like restorer (bicubic upsampling of each tile), tiles blend into the untiled result."""
    pipe = _oracle_pipeline(tmp_path, monkeypatch, _upsample, {"restarts": 2, "tile_batch": 3}, correct=False)
    yy, xx = np.mgrid[:40, :52]
    observed = (np.sin(yy / 5.0) * np.cos(xx / 7.0) + 0.1 * yy / 40).astype(np.float32)
    res = pipe.run(observed)
    assert len(res.provenance["regions"]) > 4
    untiled = _upsample(torch.from_numpy(observed)[None, None])[0].numpy()
    inner = (slice(0, 1), slice(8, -8), slice(8, -8))
    assert np.abs(res.image[inner] - untiled[inner]).max() < 0.02
    assert res.samples.shape == (2, 1, 160, 208)
    # no seam: the tiled image's gradient follows the untiled one, at tile borders as elsewhere
    for axis in (0, 1):
        grad_tiled, grad_untiled = np.diff(res.image[0], axis=axis), np.diff(untiled[0], axis=axis)
        typical = np.abs(grad_untiled[8:-8, 8:-8]).mean()
        assert np.abs(grad_tiled - grad_untiled)[8:-8, 8:-8].max() < 0.2 * typical


def test_planes_restored_one_by_one_keep_their_own_values(tmp_path: Path, monkeypatch) -> None:
    """A 3-plane stack with a single-channel prior: each plane blends only its own tiles."""
    replicate = lambda y: y.repeat_interleave(4, -1).repeat_interleave(4, -2)  # noqa: E731
    pipe = _oracle_pipeline(tmp_path, monkeypatch, replicate, {"restarts": 2})
    observed = np.stack([np.full((12, 20), v, np.float32) for v in (0.2, 0.5, 0.9)])
    res = pipe.run(observed)
    for plane, value in enumerate((0.2, 0.5, 0.9)):
        assert np.allclose(res.image[plane], value, atol=1e-5)
        assert np.allclose(res.samples[:, plane], value, atol=1e-5)


def test_run_to_writes_what_run_and_save_write_holding_a_band_of_rows(tmp_path: Path, monkeypatch) -> None:
    """Straight to files: the same files as an in-memory run, no scratch left, and the blending keeps a band of
    rows (not the frame) in memory."""
    from restore.tiling import Band

    held: list[int] = []
    accumulate = Band.accumulate  # the rows a band holds, after each restoration is added
    monkeypatch.setattr(Band, "accumulate", lambda self, *a: (accumulate(self, *a), held.append(self.den.shape[-2]))[0])
    pipe = _oracle_pipeline(tmp_path, monkeypatch, _upsample, {"restarts": 2, "tile_batch": 3})
    yy, xx = np.mgrid[:96, :20]
    observed = (np.sin(yy / 5.0) * np.cos(xx / 7.0)).astype(np.float32)
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "tall.tif", observed)
    report, written = pipe.run_to(tmp_path / "tall.tif", tmp_path / "streamed")
    assert 0 < max(held) <= 2 * 8 * 4 and pipe.spec.search.tile_batch == 3  # two tile rows of 8 px at 4x, of 384
    res = pipe.run(tmp_path / "tall.tif")
    res.save(tmp_path / "memory")
    for path in written:
        twin = tmp_path / "memory" / path.name
        if path.suffix == ".tif":
            assert np.array_equal(tifffile.imread(path), tifffile.imread(twin))
    assert report["chi2"] == pytest.approx(res.chi2, rel=1e-6) and report["regions"] == res.provenance["regions"]
    assert sorted(p.name for p in (tmp_path / "streamed").iterdir()) == sorted(p.name for p in written)
    monkeypatch.setattr("restore.engine.latent_search", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RestoreError, match="output exists"):  # before any search runs
        pipe.run_to(tmp_path / "tall.tif", tmp_path / "streamed")
    with pytest.raises(RuntimeError, match="boom"):  # a failed run leaves no scratch files behind
        pipe.run_to(tmp_path / "tall.tif", tmp_path / "failed")
    assert not (tmp_path / "failed").exists()  # nothing left, not even the folder it made


def test_a_prior_whose_card_has_no_calibrated_weight_is_named_in_a_warning(tiny_recipe: Path) -> None:
    with pytest.warns(UserWarning, match=r"prior 'tiny': its card has no calibrated prior_weight"):
        restore.Pipeline.from_yaml(tiny_recipe, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a weight stated in the recipe: nothing to warn of
        restore.Pipeline.from_yaml(tiny_recipe, ["consistency.prior_weight=0.5"], progress=False)
