"""Astronomy: FITS images through astropy, with an exactly invertible asinh stretch.

Reading picks the image HDU (``hdu`` or the first with 2-D data), applies BSCALE/BZERO, masks BLANK,
NaN and saturated pixels, and takes noise parameters from the header (first match of
:data:`restore.domains.fits.NOISE_KEYWORDS`: GAIN/EGAIN/CCDGAIN, RDNOISE/READNOIS/RON/READNOISE,
SKY/BACKGND/SKYLEVEL, SATURATE/SATLEVEL). PNG/TIFF cutouts (e.g. stretched survey composites) are
read as luminance in stretch space and un-stretched with the nominal stretch (softening 1, white
1000), so a prior trained on them learns in the same normalised space as FITS restoration uses.
Unset stretch values follow the data: ``softening`` is the noise level (robust, from a high-pass
residual) and ``white`` the 99.9th percentile above the median sky, both in the scene's units (the
observation divided by the forward model's flat gain); the values used are in the report.

Writing puts the restored image in the primary HDU and the spread (``SPREAD``) and chi map
(``CHI``, on the observation's grid with its original WCS) in named extensions of one file. The WCS
is rescaled to the finer grid (``CRPIX' = (CRPIX - 0.5) * f + 0.5``, ``CD``/``CDELT`` divided by
``f``; SIP coefficients rescaled, TPV/TNX terms kept), BUNIT is kept, and the flux convention
of the forward model is stated (``FLUXCONV``).

Example:
    >>> import torch
    >>> from restore.spec import AstronomyDomainSpec
    >>> spec = AstronomyDomainSpec(stretch={"softening": 2.0, "white": 500.0})
    >>> norm = AstronomyAdapter(spec).normalisation(None)
    >>> x = torch.tensor([-3.0, 0.0, 10.0, 500.0], dtype=torch.float64)
    >>> torch.allclose(norm.inverse(norm.forward(x)), x), norm.forward(torch.tensor(500.0)).item()
    (True, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..degradations.noise import estimate_sigma
from ..geometry import Cutout
from ..imageio import atomic_write, clean_header, file_kind, read_array, write_fits
from ..spec import AstronomyDomainSpec, ObjectsLayoutSpec
from .base import DomainAdapter, Observation
from .fits import check_wcs, header_noise, rescale_wcs

if TYPE_CHECKING:  # pragma: no cover
    from ..restoration import Restoration


@dataclass(frozen=True)
class Asinh:
    """``v = 2 * asinh(x / s) / asinh(w / s) - 1`` and its exact inverse."""

    softening: float
    white: float

    @property
    def _norm(self) -> float:
        return math.asinh(self.white / self.softening)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * torch.asinh(x / self.softening) / self._norm - 1

    def inverse(self, v: torch.Tensor) -> torch.Tensor:
        return self.softening * torch.sinh((v + 1) / 2 * self._norm)

    def for_planes(self, planes: torch.Tensor) -> Asinh:
        return self

    def describe(self) -> dict[str, Any]:
        return {"kind": "asinh", "softening": self.softening, "white": self.white}


NOMINAL = Asinh(1.0, 1000.0)
"""The stretch of PNG/TIFF survey cutouts (the galaxies prior's training images)."""


class AstronomyAdapter(DomainAdapter):
    kind = "astronomy"
    spec_class = AstronomyDomainSpec

    def normalisation(self, obs: Observation | None, gain: float = 1.0) -> Asinh:
        """The asinh stretch; unset values from ``obs`` (``gain``: observed value per unit of the scene)."""
        stretch = self.spec.stretch  # type: ignore[attr-defined]
        softening, white = stretch.softening, stretch.white
        if (softening is None or white is None) and obs is not None:
            values = obs.data[obs.mask & np.isfinite(obs.data)]
            if values.size:
                sky = float(np.median(values))
                if softening is None:
                    try:
                        softening = estimate_sigma(torch.from_numpy(obs.data), torch.from_numpy(obs.mask)) / gain
                    except ValueError:
                        softening = None
                if white is None:
                    white = float(np.percentile(values - sky, 99.9)) / gain
        softening = softening if softening and softening > 0 else NOMINAL.softening
        white = max(white if white and white > 0 else NOMINAL.white, 10 * softening)
        return Asinh(float(softening), float(white))

    def read(self, path: str | Path) -> Observation:
        path = Path(path)
        if file_kind(path) != "fits":
            data, meta = read_array(path)
            luminance = data[:3].mean(axis=0, keepdims=True) / 255.0 * 2 - 1  # stretch space -> prior range
            flux = NOMINAL.inverse(torch.from_numpy(luminance).double()).float().numpy()
            return Observation(data=flux, mask=np.isfinite(flux), meta=meta, source=str(path))
        data, meta = read_array(path, hdu=self.spec.hdu)  # type: ignore[attr-defined]
        header = meta["header"]
        check_wcs(header, str(path))
        mask = np.isfinite(data)
        if "BLANK" in header and "BSCALE" not in header and "BZERO" not in header:
            mask &= data != float(header["BLANK"])
        noise = header_noise(meta)
        saturation = self.spec.saturation  # type: ignore[attr-defined]
        saturation = saturation if saturation is not None else noise.get("saturation")
        if saturation is not None:
            mask &= ~(data >= saturation)
        data = np.where(mask, data, np.nan).astype(np.float32)
        return Observation(data=data, mask=mask, noise=noise, meta=meta, source=str(path))

    def detect(self, obs: Observation, factor: int, tile: int, layout: ObjectsLayoutSpec) -> list[Cutout]:
        """Sources in a frame: the image smoothed with a 1-pixel Gaussian, thresholded at
        ``layout.threshold`` robust standard deviations (median absolute deviation) above the median
        sky, connected pixels grouped (``scipy.ndimage``); each source of at least 5 pixels becomes a
        cutout at the observed pixel scale (whole-pixel crops: the likelihood stays exact) centred on
        its flux-weighted centroid, brightest first. Sources closer than a quarter cutout to a
        brighter one share its cutout."""
        from scipy import ndimage

        lum = np.where(obs.mask, obs.data, np.nan).mean(axis=0)
        valid = np.isfinite(lum)
        if not valid.any():
            return []
        sky = float(np.median(lum[valid]))
        smooth = ndimage.gaussian_filter(np.where(valid, lum - sky, 0.0), 1.0)
        noise = 1.4826 * float(np.median(np.abs(smooth[valid] - np.median(smooth[valid])))) or 1e-12
        labels, n = ndimage.label((smooth > layout.threshold * noise) & valid)
        if n == 0:
            return []
        index = np.arange(1, n + 1)
        sizes = ndimage.sum_labels(np.ones_like(lum), labels, index)
        flux = ndimage.sum_labels(np.where(valid, lum - sky, 0.0), labels, index)
        centres = ndimage.center_of_mass(np.clip(smooth, 0, None), labels, index)
        found: list[Cutout] = []
        for i in np.argsort(-flux):
            if sizes[i] < 5:
                continue
            y, x = centres[i]
            if all(max(abs(x - c.x), abs(y - c.y)) >= tile / 4 for c in found):
                found.append(Cutout(x=float(x), y=float(y), size=None, score=float(flux[i])))
            if len(found) == layout.max_objects:
                break
        return found

    def output_paths(self, directory: Path, stem: str, suffix: str) -> dict[str, Path]:
        return {"restored": directory / f"{stem}.restored{suffix}"}

    def write_restoration(self, res: Restoration, paths: dict[str, Path], text: dict[str, str],
                          overwrite: bool = False) -> None:
        from astropy.io import fits

        if file_kind(paths["restored"]) != "fits":
            spread = paths["restored"].with_name(paths["restored"].name.replace(".restored", ".spread"))
            meta = {**res.meta, "dtype": "float32"}
            self.write_image(paths["restored"], res.image, meta, res.factor, text, overwrite)
            self.write_image(spread, res.std, meta, res.factor, text, overwrite)
            return
        original = res.meta.get("header") if res.meta.get("header") is not None else fits.Header()
        header = clean_header(original, ("EXTNAME", "EXTVER", "XTENSION", "PCOUNT", "GCOUNT"))
        f = res.factor
        notes = rescale_wcs(header, 1.0 / f)
        method = res.flux_convention
        header["RESTGEN"] = (True, "restore: sub-resolution detail invented")
        header["RESTFACT"] = (f, "restored grid is this many times finer")
        header["RESTCHI2"] = (float(res.chi2), "reduced chi-square vs the observation")
        header["FLUXCONV"] = (method, "sum: pixels add to flux; mean: surf. brightness")
        for line in [*notes, *(f"{k}: {v}" for k, v in text.items())]:
            header.add_history(line[:70])
        spread_header = fits.Header([("EXTNAME", "SPREAD"), ("BUNIT", header.get("BUNIT", ""))])
        chi_header = clean_header(original, ("BUNIT", "EXTNAME", "EXTVER"))
        chi_header["EXTNAME"] = "CHI"
        hdus = [(header, res.image), (spread_header, res.std), (chi_header, res.chi_map)]
        atomic_write(paths["restored"], lambda tmp: write_fits(tmp, hdus), overwrite=overwrite)
