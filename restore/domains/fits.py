"""FITS conventions shared by the adapters: noise keywords in headers, and the WCS on a rescaled grid.

Example:
    >>> from astropy.io import fits
    >>> h = fits.Header([("GAIN", 2.0), ("RDNOISE", 5.0)])
    >>> header_noise({"header": h})
    {'gain': 2.0, 'read_noise': 5.0}
"""

from __future__ import annotations

from typing import Any

from ..errors import RestoreError
from ..imageio import NOISE_KEYWORDS

COMMENTS = {"gain": "e-/ADU", "read_noise": "e-", "sky": "ADU, photon background", "sigma": "ADU, noise std",
            "offset": "ADU, noise-free pedestal"}


def noise_cards(values: dict[str, float]) -> list[tuple[str, float, str]]:
    """Header cards ``(keyword, value, comment)`` stating the noise ``values`` (what ``simulate`` used)."""
    return [(NOISE_KEYWORDS[k][0], float(v), COMMENTS.get(k, "")) for k, v in values.items() if k in NOISE_KEYWORDS]


def header_noise(meta: dict[str, Any]) -> dict[str, float]:
    """Noise parameters found in a FITS header (first matching keyword of :data:`NOISE_KEYWORDS`)."""
    header = meta.get("header")
    found: dict[str, float] = {}
    if header is None:
        return found
    for name, keys in NOISE_KEYWORDS.items():
        for key in keys:
            if key in header and isinstance(header[key], (int, float)) and not isinstance(header[key], bool):
                found[name] = float(header[key])
                break
    return found


def check_wcs(header: Any, source: str) -> None:
    """A one-line error for a celestial WCS that maps pixels nowhere: a singular or non-finite
    pixel-to-world matrix (``CDELT = 0``, a zero ``CD``)."""
    if header is None or not any(f"CTYPE{i}" in header for i in (1, 2)):
        return
    import warnings

    import numpy as np
    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            matrix = WCS(header, naxis=2).pixel_scale_matrix
        except Exception as err:  # astropy's InvalidTransformError and friends
            raise RestoreError(f"invalid WCS ({' '.join(str(err).split())[:120]})", source=source) from None
    if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix)) == 0:
        raise RestoreError("invalid WCS: the pixel-to-world matrix is singular (a CDELT or CD of zero)", source=source)


def rescale_wcs(header: Any, scale: float) -> list[str]:
    """Update a FITS header's WCS in place for pixels ``scale`` times larger (``1/f`` to refine).

    ``CRPIX' = (CRPIX - 0.5) / scale + 0.5`` keeps pixel edges aligned; ``CDELT`` and ``CD`` scale by
    ``scale`` (a ``PC`` matrix is unitless and kept). SIP coefficients act on pixel offsets from CRPIX, so
    ``A_p_q' = A_p_q * scale^(p + q - 1)`` (and ``B``, ``AP``, ``BP`` alike). TPV/TNX/ZPN ``PV`` terms act on
    intermediate world coordinates, which the scaled ``CD``/``CDELT`` keep unchanged: they stay as they
    are. A DSS plate solution (``AMDX``) cannot be rescaled and is dropped with a note, which is returned.

    Example:
        >>> from astropy.io import fits
        >>> h = fits.Header({"CTYPE1": "RA---TAN-SIP", "CRPIX1": 10.5, "CD1_1": 1e-4, "A_ORDER": 2, "A_2_0": 1e-5})
        >>> rescale_wcs(h, 0.25), h["CRPIX1"], round(h["A_2_0"] / 1e-5, 6)
        ([], 40.5, 0.25)
    """
    notes: list[str] = []
    axes = int(header.get("WCSAXES", header.get("NAXIS", 2)) or 2)
    for i in range(1, min(axes, 2) + 1):
        if f"CRPIX{i}" in header:
            header[f"CRPIX{i}"] = (header[f"CRPIX{i}"] - 0.5) / scale + 0.5
        if f"CDELT{i}" in header:
            header[f"CDELT{i}"] = header[f"CDELT{i}"] * scale
        for j in range(1, 3):
            if f"CD{i}_{j}" in header:
                header[f"CD{i}_{j}"] = header[f"CD{i}_{j}"] * scale
    for key in list(header.keys()):
        parts = key.split("_")
        if len(parts) == 3 and parts[0] in ("A", "B", "AP", "BP") and parts[1].isdigit() and parts[2].isdigit():
            header[key] = header[key] * scale ** (int(parts[1]) + int(parts[2]) - 1)
    dss = [k for k in header if k.startswith(("AMDX", "AMDY", "PLTRAH", "PPO"))]
    if dss:
        for key in set(dss):
            header.remove(key, ignore_missing=True, remove_all=True)
        notes.append("restore: DSS plate solution dropped when the pixel grid was rescaled")
    return notes
