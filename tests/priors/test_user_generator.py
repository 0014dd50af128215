"""Bring your own generator: a plain state dict and the factory that builds it become a prior file
(``priors convert --factory``, code only with --trust-code), and the default preset falls back to the
latent space such a prior offers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from restore import Pipeline
from restore.cli import main
from restore.priors import read_card
from restore.spec import load_recipe
from tests.toy_generator import make

ROOT = Path(__file__).resolve().parents[2]
FACTORY = "tests.toy_generator:make"


def _convert(tmp_path: Path, *extra: str) -> list[str]:
    state = tmp_path / "toy.pt"
    torch.save(make().state_dict(), state)  # a plain state dict, as other projects publish them
    return ["priors", "convert", str(state), "-o", str(tmp_path / "toy.safetensors"), "--factory", FACTORY,
            "--latent-dim", "8", "--latent-distribution", "uniform", "--resolution", "16", *extra]


def test_convert_needs_trust_and_writes_a_card_with_the_latent_facts(tmp_path: Path, capsys) -> None:
    assert main(_convert(tmp_path)) == 1
    assert "--trust-code" in capsys.readouterr().err and not (tmp_path / "toy.safetensors").exists()
    assert main(_convert(tmp_path, "--trust-code")) == 0
    card = read_card(tmp_path / "toy.safetensors")
    assert (card.architecture, card.factory, card.latent_dim, card.resolution, card.channels,
            card.latent_distribution) == ("module", FACTORY, 8, 16, 3, "uniform")
    assert main(["priors", "info", str(tmp_path / "toy.safetensors")]) == 1  # its card names code
    assert "--trust-code" in capsys.readouterr().err
    assert main(["priors", "info", str(tmp_path / "toy.safetensors"), "--trust-code"]) == 0
    assert json.loads(capsys.readouterr().out)["factory"] == FACTORY


def test_convert_refuses_a_state_dict_that_does_not_fit_the_factory(tmp_path: Path, capsys) -> None:
    save_file({"linear.weight": torch.zeros(2, 2)}, str(tmp_path / "bad.safetensors"))
    args = ["priors", "convert", str(tmp_path / "bad.safetensors"), "-o", str(tmp_path / "x.safetensors"), "--factory",
            FACTORY, "--latent-dim", "8", "--resolution", "16", "--trust-code"]
    assert main(args) == 1
    assert "does not fit" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # the latent facts are required: a usage error
        main(args[:-5] + ["--trust-code"])
    assert exc.value.code == 2
    assert "--latent-dim and --resolution" in capsys.readouterr().err


def test_a_converted_generator_restores_with_the_default_preset_searching_z(tmp_path: Path) -> None:
    assert main(_convert(tmp_path, "--trust-code")) == 0
    recipe = tmp_path / "r.yaml"
    sample = ROOT / "recipes" / "samples" / "face_observed.png"
    recipe.write_text(f"version: 1\ninput: {sample}\ndomain: {{kind: faces}}\nforward:\n"
                      "  - {kind: downsample, factor: 1, method: mean}\nnoise: {kind: gaussian, sigma: 4.0}\n"
                      f"prior: {{kind: file, path: {tmp_path / 'toy.safetensors'}}}\nlayout: {{kind: tiles}}\n"
                      "search: {preset: default, steps: 3, restarts: 2}\n")
    spec = load_recipe(recipe)
    with pytest.raises(Exception, match="--trust-code"):
        Pipeline(spec, progress=False)
    with pytest.warns(UserWarning, match=r"offers latent spaces \('z',\), not 'w\+': searching 'z'"):
        pipe = Pipeline(spec, progress=False, trust_code=True)
    assert pipe.parts.config.latent == "z" and pipe.parts.config.geocross == 0
    res = pipe.run()
    assert res.image.shape == (3, 16, 16) and res.provenance["prior"] == "toy"


def test_module_priors_carry_framing_for_centred_objects() -> None:
    from restore.priors.registry import load_module_prior
    from restore.spec import ModulePriorSpec

    spec = ModulePriorSpec(factory=FACTORY, latent_dim=8, resolution=16, framing={"x": 8, "y": 7, "size": 10})
    prior = load_module_prior(spec, trust_code=True)
    assert prior.card["framing"] == {"x": 8.0, "y": 7.0, "size": 10.0}
    with pytest.raises(Exception, match="renders"):  # card facts that do not match the generator
        load_module_prior(ModulePriorSpec(factory=FACTORY, latent_dim=8, resolution=32), trust_code=True)


def test_a_safetensors_file_is_never_taken_for_a_pickle_whatever_its_first_byte(tmp_path: Path) -> None:
    from restore.priors.io import refuse_pickle

    path = tmp_path / "w.safetensors"
    for pad in range(300):  # find a header whose length's low byte is 0x80, a pickle's first byte
        save_file({"w": torch.zeros(1)}, str(path), metadata={"pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    refuse_pickle(path)  # no error
    torch.save({"w": torch.zeros(1)}, tmp_path / "p.bin")
    (tmp_path / "p.bin").rename(tmp_path / "p.safetensors")
    with pytest.raises(Exception, match="pickled weights are refused"):
        refuse_pickle(tmp_path / "p.safetensors")
