"""Recipes as specs: shipped recipes validate, broken ones fail in one line naming the key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

import restore
from restore.cli import main
from restore.errors import RestoreError
from restore.spec import PipelineSpec
from tests.conftest import RECIPES

SHIPPED = sorted(RECIPES.glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_recipes_validate(path: Path) -> None:
    spec = restore.load_recipe(path)
    assert spec.input is not None and spec.input.is_file()
    assert main(["validate", str(path)]) == 0


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {
    "domain": {"kind": "faces"},
    "forward": [{"kind": "psf", "psf": {"kind": "gaussian", "fwhm": 2.0}}, {"kind": "downsample", "factor": 4}],
    "noise": {"kind": "gaussian", "sigma": 3.0},
    "prior": {"kind": "builtin", "name": "faces"},
}


def _broken(change):
    data = json.loads(json.dumps(BASE))
    change(data)
    return data


BROKEN = {
    "unknown key": (lambda d: d["forward"][0]["psf"].update(fwhmm=2), "forward.0.psf.fwhmm: unknown key"),
    "wrong type": (lambda d: d["forward"][1].update(factor="four"), "forward.1.factor: must be a valid integer"),
    "negative fwhm": (lambda d: d["forward"][0]["psf"].update(fwhm=-1), "forward.0.psf.fwhm: must be greater than 0"),
    "factor 0": (lambda d: d["forward"][1].update(factor=0), "forward.1.factor: must be greater than or equal to 1"),
    "missing file": (lambda d: d.update(input="nope.png"), "input: file not found"),
    "missing psf file": (lambda d: d["forward"][0].update(psf={"kind": "file", "path": "psf.fits"}), "forward.0.psf.path: file not found"),
    "unknown kind": (lambda d: d["noise"].update(kind="laplace"), "noise: "),
    "missing key": (lambda d: d.pop("noise"), "noise: required key missing"),
    "top-level typo": (lambda d: d.update(serach={}), "serach: unknown key"),
    "bad sigma": (lambda d: d["noise"].update(sigma="lots"), "noise.sigma: "),
    "even size": (lambda d: d["forward"][0]["psf"].update(size=8), "forward.0.psf.size: must be odd"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_recipes_fail_in_one_line_naming_the_key(name: str, tmp_path: Path, capsys) -> None:
    change, expected = BROKEN[name]
    path = _write(tmp_path, _broken(change))
    with pytest.raises(RestoreError) as info:
        restore.load_recipe(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_relative_paths_resolve_from_the_recipe_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    shutil.copy(RECIPES / "samples" / "face_observed.png", tmp_path / "sub" / "obs.png")
    path = _write(tmp_path, {**BASE, "input": "sub/obs.png", "output": {"dir": "out"}})
    spec = restore.load_recipe(path)
    assert spec.input == tmp_path / "sub" / "obs.png"
    assert spec.output.dir == Path("out")  # outputs resolve from the working directory, like -o


def test_overrides_set_nested_keys_and_list_items(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE)
    spec = restore.load_recipe(path, ["forward.0.psf.fwhm=3", "search.restarts=16", "noise.sigma=0.5", "seed=7"])
    assert spec.forward[0].psf.fwhm == 3.0
    assert spec.search.restarts == 16 and spec.noise.sigma == 0.5 and spec.seed == 7
    with pytest.raises(RestoreError, match="forward.5: no list item 5"):
        restore.load_recipe(path, ["forward.5.factor=2"])
    with pytest.raises(RestoreError, match="forward.0.psf.fwhm: must be greater than 0"):
        restore.load_recipe(path, ["forward.0.psf.fwhm=-3"])


def test_yaml_round_trip(tmp_path: Path) -> None:
    spec = restore.load_recipe(RECIPES / "faces.yaml", ["search.restarts=3"])
    again = tmp_path / "again.yaml"
    again.write_text(spec.to_yaml())
    assert restore.load_recipe(again) == spec


def test_json_schema_lists_the_kinds(capsys) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    text = json.dumps(schema)
    for kind in ("gaussian", "moffat", "airy", "motion", "file", "poisson_gaussian", "downsample"):
        assert f'"{kind}"' in text
    assert schema == PipelineSpec.model_json_schema()


def test_cli_exit_codes(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["validate"])
    assert usage.value.code == 2
    with pytest.raises(SystemExit) as unknown:
        main(["frobnicate"])
    assert unknown.value.code == 2
    assert main(["validate", str(tmp_path / "absent.yaml")]) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("forward: [\n")
    assert main(["validate", str(bad)]) == 1
    assert "invalid YAML" in capsys.readouterr().err


def test_psf_widths_in_physical_units_convert_to_pixels() -> None:
    import torch

    from restore.degradations import build_psf, moffat_psf
    from restore.degradations.psf import airy_psf, airy_radius
    from restore.spec import AiryPsfSpec, MoffatPsfSpec

    arcsec = build_psf(MoffatPsfSpec(fwhm=1.0, beta=3.0, unit="arcsec", pixel_scale=0.2))
    assert torch.allclose(arcsec, moffat_psf(5.0, 3.0))
    optics = AiryPsfSpec(wavelength=500e-9, aperture=2.4, unit="arcsec", pixel_scale=0.02)
    assert torch.allclose(build_psf(optics), airy_psf(airy_radius(500e-9, 2.4, 0.02)))
    with pytest.raises(ValueError, match="pixel_scale is required"):
        MoffatPsfSpec(fwhm=1.0, unit="arcsec")
