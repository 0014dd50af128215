"""Prior files: rosinality conversion, pickle refusal, model cards, user modules, shipped priors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from restore.cli import main
from restore.errors import RestoreError
from restore.priors import (
    DCGANGenerator,
    ModelCard,
    StyleGAN2Generator,
    builtin_names,
    convert_rosinality,
    load,
    load_prior,
    read_card,
    rosinality_channels,
    save_prior,
)
from restore.spec import ModulePriorSpec


def _rosinality_checkpoint(path: Path, size: int = 16, channel_multiplier: int = 1) -> StyleGAN2Generator:
    torch.manual_seed(0)
    channels = {r: c // 32 for r, c in rosinality_channels(size, channel_multiplier).items()}  # shrunk widths
    g = StyleGAN2Generator(size, 32, 3, channels)
    state = {k: v.clone() for k, v in g.state_dict().items()}
    args = argparse.Namespace(size=size, latent=32, n_mlp=3, channel_multiplier=channel_multiplier)
    torch.save({"g_ema": state, "latent_avg": torch.full((32,), 0.25), "args": args}, path)
    return g


def test_rosinality_checkpoint_round_trips_through_convert(tmp_path: Path) -> None:
    ckpt = tmp_path / "550000.pt"
    g = _rosinality_checkpoint(ckpt)
    out = tmp_path / "converted.safetensors"
    assert main(["priors", "convert", str(ckpt), "-o", str(out)]) == 0
    prior = load_prior(out)
    assert prior.card["architecture"] == "stylegan2" and prior.resolution == 16
    assert torch.allclose(prior.latent_avg, torch.full((32,), 0.25))
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = g.synthesis(g.mapping(z)[:, None].expand(-1, g.num_styles, -1))
        assert torch.equal(prior.generate(z), ref)


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_that_would_execute_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = str(marker)
    ckpt = tmp_path / "evil.pt"
    torch.save({"g_ema": {}, "payload": exploit}, ckpt)
    with pytest.raises(RestoreError, match="refused to load checkpoint"):
        convert_rosinality(ckpt, tmp_path / "x.safetensors")
    assert not marker.exists()
    with pytest.raises(RestoreError, match="pickled weights are refused"):
        load_prior(ckpt)
    assert not marker.exists()


def test_dcgan_and_stylegan2_save_and_load_with_cards(tmp_path: Path) -> None:
    for gen in (DCGANGenerator(16, 16, 8), StyleGAN2Generator(16, 16, 2, {4: 16, 8: 8, 16: 8})):
        path = tmp_path / f"{type(gen).__name__}.safetensors"
        save_prior(path, gen.eval(), {"name": "toy", "domain": "test", "licence": "CC0", "training_data": "none"})
        card = read_card(path)
        assert isinstance(card, ModelCard) and card.licence == "CC0"
        prior = load_prior(path)
        z = torch.randn(2, prior.latent_dim)
        with torch.no_grad():
            assert torch.allclose(prior.generate(z), gen(z), atol=1e-6)


def test_float16_storage_halves_the_file(tmp_path: Path) -> None:
    g = StyleGAN2Generator(16, 32, 2, {4: 32, 8: 32, 16: 16})
    save_prior(tmp_path / "a.safetensors", g, {"name": "a"})
    save_prior(tmp_path / "b.safetensors", g, {"name": "b"}, dtype=torch.float16)
    assert (tmp_path / "b.safetensors").stat().st_size < 0.6 * (tmp_path / "a.safetensors").stat().st_size
    assert read_card(tmp_path / "b.safetensors").storage_dtype == "float16"


def test_files_without_a_card_are_refused(tmp_path: Path) -> None:
    save_file({"w": torch.zeros(2)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(RestoreError, match="no model card"):
        load_prior(tmp_path / "bare.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(RestoreError, match="not a safetensors prior"):
        load_prior(tmp_path / "junk.safetensors")


def test_user_module_prior_from_a_factory(tmp_path: Path) -> None:
    from tests.toy_generator import make

    save_file(make().state_dict(), str(tmp_path / "toy.safetensors"))
    spec = ModulePriorSpec(factory="tests.toy_generator:make", weights=tmp_path / "toy.safetensors", latent_dim=8,
                           resolution=16, channels=3)
    with pytest.raises(RestoreError, match="would run code named by the recipe.*--trust-code"):
        load(spec)  # a recipe never runs code unless asked
    prior = load(spec, trust_code=True)
    assert prior.latent_spaces == ("z",) and prior.generate(torch.zeros(2, 8)).shape == (2, 3, 16, 16)


def test_a_recipe_naming_code_is_refused_by_validate_and_run(tmp_path: Path, capsys) -> None:
    import yaml

    recipe = tmp_path / "evil.yaml"
    recipe.write_text(yaml.safe_dump({"forward": [{"kind": "downsample", "factor": 2}],
                                      "noise": {"kind": "gaussian", "sigma": 1.0},
                                      "prior": {"kind": "module", "factory": "os:abort", "latent_dim": 8,
                                                "resolution": 16}}))
    for command in (["validate", str(recipe)], ["run", str(recipe), str(tmp_path / "x.png")]):
        (tmp_path / "x.png").write_bytes(b"")
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--trust-code" in err


@pytest.mark.parametrize("name", builtin_names())
def test_shipped_priors_load_generate_and_name_their_data(name: str) -> None:
    prior = load(name)
    card = prior.card
    assert card["licence"] != "unspecified" and card["training_data"] != "unspecified"
    with torch.no_grad():
        x = prior.generate(prior.sample_latent(4, torch.Generator().manual_seed(0)))
    assert x.shape == (4, prior.channels, prior.resolution, prior.resolution)
    assert torch.isfinite(x).all() and -3 < float(x.min()) and float(x.max()) < 3
    assert prior.gauss_std.min() > 0


def test_priors_cli_list_and_info(capsys) -> None:
    assert main(["priors", "list"]) == 0
    assert "faces" in capsys.readouterr().out
    assert main(["priors", "info", "faces"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "faces"
    assert main(["priors", "info", "nonexistent"]) == 1
