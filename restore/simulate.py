"""``restore simulate``: apply a recipe's forward model and noise to a sharp image, seeded.

Example:
    >>> import numpy as np, restore
    >>> from restore.spec import PipelineSpec
    >>> spec = PipelineSpec.model_validate({"forward": [{"kind": "downsample", "factor": 2, "method": "sum"}],
    ...     "noise": {"kind": "poisson", "gain": 1.0}, "prior": {"kind": "builtin", "name": "faces"}})
    >>> simulate(spec, np.full((8, 8), 10.0, np.float32)).shape
    (1, 4, 4)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from .degradations import build_forward, build_likelihood, resolve_noise
from .domains import get_adapter
from .domains.fits import noise_cards
from .errors import RestoreError
from .imageio import as_chw, file_kind
from .pipeline import check_input
from .spec import PipelineSpec, load_recipe


def crop_to_factor(image: np.ndarray, factor: int, source: str = "input") -> np.ndarray:
    """Crop ``(C, H, W)`` at the bottom/right to a multiple of ``factor`` (warns when it crops)."""
    h, w = image.shape[-2:]
    nh, nw = h - h % factor, w - w % factor
    if nh == 0 or nw == 0:
        raise RestoreError(f"image {h}x{w} is smaller than the downsampling factor {factor}", source=source)
    if (nh, nw) != (h, w):
        warnings.warn(f"{source}: cropped {h}x{w} to {nh}x{nw}, a multiple of the factor {factor}", stacklevel=2)
    return image[..., :nh, :nw]


def simulate(
    spec: PipelineSpec | str | Path,
    image: np.ndarray,
    seed: int | None = None,
    noise_header: dict[str, float] | None = None,
    source: str = "input",
) -> np.ndarray:
    """Degrade a sharp ``(C, H, W)`` or ``(H, W)`` array: ``y ~ Noise(A(x))``, returning float32 ``(C, h, w)``.
    ``from_header`` noise values come from ``noise_header``; ``estimate`` is an error (there is no observation)."""
    spec = spec if isinstance(spec, PipelineSpec) else load_recipe(spec)
    forward = build_forward(spec.forward)
    x = crop_to_factor(as_chw(image, source, np.float64), forward.scale(), source)
    likelihood = build_likelihood(spec.noise, resolve_noise(spec.noise, noise_header))
    generator = torch.Generator().manual_seed(spec.seed if seed is None else seed)
    with torch.no_grad():
        mu = forward(torch.from_numpy(x)[None])
        y = likelihood.sample(mu, generator=generator)
    return y[0].numpy().astype(np.float32)


def simulate_file(
    spec: PipelineSpec, input_path: str | Path, output_path: str | Path, seed: int | None = None, overwrite: bool = False
) -> Path:
    """Read a sharp image through the recipe's domain adapter, degrade it, and write the observation in
    the input's format, dtype and flavour, with its metadata (WCS, pixel size, georeferencing) on the coarser
    grid and the noise values used (FITS: GAIN, RDNOISE, SKY, SIGMA, PEDESTAL cards; other formats: text
    ``restore-noise-*``), so that a ``from_header`` recipe reads them back."""
    input_path, output_path = Path(input_path), Path(output_path)
    file_kind(output_path)
    if output_path.exists() and not overwrite:
        raise RestoreError("output exists (use --overwrite)", source=output_path)
    adapter = get_adapter(spec.domain)
    obs = adapter.read(input_path)
    forward = build_forward(spec.forward)
    factor = forward.scale()
    check_input(obs, factor, forward.reach(), sharp=True)
    try:
        values = resolve_noise(spec.noise, obs.noise)
        observed = simulate(spec, obs.data, seed, obs.noise, source=str(input_path))
    except (ValueError, RestoreError) as err:
        message = err.message if isinstance(err, RestoreError) else str(err)
        raise RestoreError(message, source=input_path) from None
    text = {"restore-simulated": f"forward={[op.kind for op in spec.forward]} noise={spec.noise.kind}",
            "restore-seed": str(spec.seed if seed is None else seed),
            **{f"restore-noise-{k}": f"{v:.6g}" for k, v in values.items()}}
    meta = dict(obs.meta)
    if meta.get("header") is not None:
        meta["header"] = meta["header"].copy()
        for key, value, comment in noise_cards(values):
            meta["header"][key] = (value, comment)
    adapter.write_image(output_path, observed, meta, 1.0 / factor, text,
                        overwrite=overwrite)
    return output_path
