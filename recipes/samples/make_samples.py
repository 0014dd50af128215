"""Make the embedded samples the recipes point at (run from anywhere: `python recipes/samples/make_samples.py`).

The sharp face is a sample of the shipped `faces` prior (not a training image); its observation is
made with `restore simulate` on the faces recipe, so the demo has a known ground truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import restore
from restore.imageio import write_array
from restore.priors import load
from restore.simulate import simulate_file

HERE = Path(__file__).parent


def main() -> None:
    prior = load("faces")
    with torch.no_grad():
        face = prior.generate(prior.sample_latent(1, torch.Generator().manual_seed(2026)))[0]
    sharp = ((face.clamp(-1, 1) + 1) * 127.5).numpy()
    write_array(HERE / "face_sharp.png", sharp, {"format": "pil", "dtype": "uint8"}, overwrite=True)
    spec = restore.load_recipe(HERE.parent / "faces.yaml")
    simulate_file(spec, HERE / "face_sharp.png", HERE / "face_observed.png", overwrite=True)
    print(f"wrote {HERE / 'face_sharp.png'} and {HERE / 'face_observed.png'}: {np.round(sharp.mean(), 1)} mean")


if __name__ == "__main__":
    main()
