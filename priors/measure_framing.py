"""Measure where a prior's training images have their object, in the detector's own convention, and
store it in the prior's card (``framing``), so that objects found in a photo are aligned the same way.

    python priors/measure_framing.py faces ../shared/data/faces --domain faces --limit 1000

Runs the domain adapter's detector on each training image at the prior's resolution (upsampled 4x, as
at restoration time) and writes the median box centre and size; prints their spread.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from restore.domains import get_adapter
from restore.priors.io import update_card
from restore.priors.registry import builtin_path
from restore.spec import ObjectsLayoutSpec
from restore.training.train import list_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prior", help="builtin prior name or .safetensors file")
    parser.add_argument("data", help="folder or glob of training images")
    parser.add_argument("--domain", default="faces")
    parser.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args()
    adapter = get_adapter(args.domain)
    layout = ObjectsLayoutSpec(kind="objects", max_objects=1)
    boxes = []
    for path in list_images(args.data)[: args.limit]:
        obs = adapter.read(path)
        found = adapter.detect(obs, 4, obs.data.shape[-1] // 4, layout)
        if found:
            boxes.append((found[0].x, found[0].y, found[0].size))
    b = np.array(boxes)
    q1, med, q3 = np.percentile(b, [25, 50, 75], axis=0)
    print(f"detected in {len(b)} of {min(args.limit, len(list_images(args.data)))} images")
    for i, name in enumerate("x y size".split()):
        print(f"{name}: median {med[i]:.2f}, quartiles {q1[i]:.2f} .. {q3[i]:.2f}")
    path = Path(args.prior) if args.prior.endswith(".safetensors") else builtin_path(args.prior)
    update_card(path, {"framing": {"x": round(float(med[0]), 2), "y": round(float(med[1]), 2),
                                   "size": round(float(med[2]), 2)}})
    print(f"framing written to {path}")


if __name__ == "__main__":
    main()
