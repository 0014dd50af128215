"""Faces: 8-bit photographs (PNG/JPEG/WebP; greyscale, RGBA and palette images become RGB), 0..255 -> [-1, 1].

Example:
    >>> FacesAdapter().normalisation(None).forward(__import__("torch").tensor(255.0)).item()
    1.0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RestoreError
from ..geometry import Cutout
from ..imageio import file_kind
from ..spec import FacesDomainSpec, ObjectsLayoutSpec
from .base import DomainAdapter, LinearScale, Observation

DETECT_PIXELS = 4096 * 4096
"""Largest image the face detector searches: larger photos are detected at a reduced size."""


def haar_cascade() -> Path | None:
    """OpenCV's frontal-face Haar cascade, or None without OpenCV or with an OpenCV that ships none (5.x)."""
    try:
        import cv2
    except ImportError:
        return None
    path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / "haarcascade_frontalface_default.xml"
    return path if path.is_file() else None


class FacesAdapter(DomainAdapter):
    """Photographs of faces; transparent pixels (alpha 0) are masked out of the likelihood. With
    ``layout: {kind: objects}`` faces are found in ordinary photos (:meth:`detect`)."""

    kind = "faces"
    spec_class = FacesDomainSpec

    def normalisation(self, obs: Observation | None, gain: float = 1.0) -> LinearScale:
        return LinearScale(0.0, 255.0)

    def read(self, path: str | Path) -> Observation:
        if file_kind(path) != "pil":
            raise RestoreError("the faces domain reads photographs (PNG/JPEG/WebP); use domain: {kind: image} "
                               "for other files", source=path)
        obs = super().read(path)
        if obs.meta.get("dtype") != "uint8":
            raise RestoreError(f"is a {np.dtype(obs.meta.get('dtype')).itemsize * 8}-bit image; the faces domain "
                               "takes 8-bit photographs (convert it, or use domain: {kind: image})", source=path)
        if obs.data.shape[0] == 1:
            obs.data = np.repeat(obs.data, 3, axis=0)
            obs.mask = np.repeat(obs.mask, 3, axis=0)
        elif obs.data.shape[0] == 4:
            obs.mask = obs.mask[:3] & (obs.data[3:4] > 0)
            obs.data = obs.data[:3]
        return obs

    def detect(self, obs: Observation, factor: int, tile: int, layout: ObjectsLayoutSpec) -> list[Cutout]:
        """Faces in an ordinary photo: OpenCV's frontal-face Haar cascade (``opencv-python-headless<5``,
        offline) on the photo upsampled ``factor`` times, so that faces are at the prior's scale (at most
        :data:`DETECT_PIXELS`: larger photos are searched at a reduced scale, for faces that large).
        Boxes are in the cascade's own convention, which the prior card's ``framing`` was measured in;
        where OpenCV's eye cascade finds both eyes, their line gives the in-plane rotation to undo."""
        cascade_file = haar_cascade()
        if cascade_file is None:
            raise RestoreError("face detection needs OpenCV 4 with its Haar cascades: pip install "
                               "'opencv-python-headless<5' (or restore an aligned crop)", source=obs.source)
        import cv2

        grey = np.nan_to_num(obs.data[:3].mean(axis=0)).clip(0, 255).astype(np.uint8)
        h, w = grey.shape
        zoom = min(float(factor), (DETECT_PIXELS / (h * w)) ** 0.5)  # large photos: detected at a capped size
        big = cv2.resize(grey, (round(w * zoom), round(h * zoom)), interpolation=cv2.INTER_CUBIC if zoom > 1
                         else cv2.INTER_AREA)
        zoom = big.shape[1] / w
        smallest = max(8, round(tile * zoom / 2))
        if min(big.shape) < smallest:
            return []  # no face of the prior's scale fits
        pad = min(big.shape) // 2  # a face may fill the photo or be cut by its edge
        big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        cascade = cv2.CascadeClassifier(str(cascade_file))
        boxes, _, weights = cascade.detectMultiScale3(big, scaleFactor=1.1, minNeighbors=5,
                                                      minSize=(smallest,) * 2,
                                                      outputRejectLevels=True)
        eyes = cv2.CascadeClassifier(str(cascade_file.parent / "haarcascade_eye.xml"))
        found = [Cutout(x=float((bx - pad + bw / 2) / zoom - 0.5), y=float((by - pad + bh / 2) / zoom - 0.5),
                        size=float(bw / zoom), score=float(s), angle=eye_angle(big, (bx, by, bw, bh), eyes))
                 for (bx, by, bw, bh), s in zip(np.asarray(boxes).reshape(-1, 4), np.ravel(weights))]
        return sorted(found, key=lambda c: -c.score)[: layout.max_objects]


def eye_angle(image: np.ndarray, box: tuple[int, int, int, int], eyes: Any, limit: float = 0.5) -> float:
    """The angle (radians, y down) of the line through a face's eyes: the largest eye detection in each
    half of the box's upper 60 %; 0 when the eyes are not both found or the angle exceeds ``limit``."""
    bx, by, bw, bh = (int(v) for v in box)
    if eyes.empty():
        return 0.0
    import cv2

    upper = image[by : by + int(0.6 * bh), bx : bx + bw]
    zoom = max(1.0, 128 / max(bw, 1))  # the eye cascade wants faces of 128 px or more; angles do not scale
    upper = cv2.resize(upper, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC) if zoom > 1 else upper
    bw = int(bw * zoom)
    found = eyes.detectMultiScale(upper, 1.1, 3, minSize=(max(8, bw // 8),) * 2)
    centres = [(x + w / 2, y + h / 2, w) for x, y, w, h in np.asarray(found).reshape(-1, 4)]
    left = [c for c in centres if c[0] < bw / 2]
    right = [c for c in centres if c[0] >= bw / 2]
    if not left or not right:
        return 0.0
    (lx, ly, _), (rx, ry, _) = max(left, key=lambda c: c[2]), max(right, key=lambda c: c[2])
    angle = float(np.arctan2(ry - ly, rx - lx))
    return angle if abs(angle) <= limit else 0.0
