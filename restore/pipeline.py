"""The pipeline: read -> normalise -> engine -> finish -> write (the only room that knows all).

Example:
    >>> import restore, pathlib
    >>> pipe = restore.Pipeline.from_yaml(pathlib.Path(restore.__file__).parents[1] / "recipes" / "faces.yaml",
    ...                                   overrides=["search.steps=2", "search.restarts=2"], progress=False)
    >>> res = pipe.run()
    >>> res.image.shape
    (3, 64, 64)
"""

from __future__ import annotations

import os
import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .claim import Claim
from .degradations import build_forward
from .degradations.noise import Likelihood
from .device import resolve_device
from .domains import Observation, check_observation, get_adapter
from .engine import UNCALIBRATED, Engine, Outcome, Parts, Store, observation_likelihood, resolve_prior_weight
from .errors import RestoreError
from .imageio import MAX_OUTPUT_VALUES
from .priors.registry import load as load_prior
from .rasters import FileRaster, scratch
from .restoration import Restoration, output_names, output_paths
from .search import config_from_spec, fit_to_prior
from .spec import PipelineSpec, load_recipe
from .version import __version__


class Pipeline:
    """Restore observations with a recipe: ``Pipeline.from_yaml(path).run(input)`` -> :class:`Restoration`.

    ``device`` (``"cpu"``, ``"cuda"``, ...) is where the search runs; results come back as NumPy arrays.
    ``keep_samples=False`` drops the per-restart images (``Restoration.samples`` is None), which for large
    frames would take ``restarts`` times the memory of the restoration itself. ``trust_code`` lets a
    ``module`` prior import a factory that is not an installed ``restore.priors`` entry point.
    """

    def __init__(self, spec: PipelineSpec, *, progress: bool = True, device: str | torch.device = "cpu",
                 keep_samples: bool = True, trust_code: bool = False) -> None:
        self.spec = spec
        self.keep_samples = keep_samples
        dev = resolve_device(device)
        prior = load_prior(spec.prior, trust_code).to(dev)
        forward = build_forward(spec.forward).to(dev)
        self.parts = Parts(spec=spec, adapter=get_adapter(spec.domain), forward=forward, prior=prior,
                           config=fit_to_prior(config_from_spec(spec.search, progress), prior), device=dev,
                           reach=forward.reach())
        if resolve_prior_weight(spec.consistency.prior_weight, prior.card, forward.scale())[1] == UNCALIBRATED:
            warnings.warn(f"prior {prior.name!r}: its card has no calibrated prior_weight, so the prior's restoration "
                          "is written whole (w = 1); state consistency.prior_weight (0: the classical solution alone) "
                          "or measure it on held-out data (python -m benchmarks.calibrate)", stacklevel=2)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None, **options: Any) -> Pipeline:
        """A pipeline from a recipe file (``options``: those of the constructor)."""
        return cls(load_recipe(path, overrides), **options)

    @property
    def factor(self) -> int:
        """Sharp pixels per observed pixel along each axis (the forward model's scale)."""
        return self.parts.forward.scale()

    def read(self, source: str | Path | np.ndarray | None) -> Observation:
        """The observation of a file (through the recipe's domain adapter) or of an array in physical units."""
        if source is None:
            if self.spec.input is None:
                raise RestoreError("no input given and the recipe has no 'input'")
            source = self.spec.input
        obs = Observation.from_array(source) if isinstance(source, np.ndarray) else self.parts.adapter.read(source)
        check_input(obs, self.factor, self.parts.reach)
        return obs

    def likelihood(self, obs: Observation) -> Likelihood:
        """The recipe's likelihood for ``obs``, its ``from_header`` / ``estimate`` values resolved."""
        return observation_likelihood(self.spec, obs, self.parts.device)[1]

    def plain(self, source: str | Path | np.ndarray | Observation | None = None) -> np.ndarray:
        """The plain baseline of an observation: bicubic upsampling less the likelihood's background,
        divided by the forward model's flat gain, in the restoration's units."""
        obs = source if isinstance(source, Observation) else self.read(source)
        return Engine(self.parts, obs).plain().numpy()

    def run(self, source: str | Path | np.ndarray | None = None) -> Restoration:
        """Restore one observation (a file path, or an array ``(C, H, W)`` / ``(H, W)`` in physical units).

        With ``layout: tiles``, frames larger than the prior's field are cut into overlapping tiles
        restored in batches (``search.tile_batch`` at a time) and blended; with ``layout: objects`` the
        adapter's detector finds objects, each restored in the prior's framing and pasted back. Where
        the prior's test rejects a tile or object, the classical restoration stands; the whole frame is
        then fitted to every observed pixel (``consistency``). The result is held in memory;
        :meth:`run_to` writes frames of any size straight to files.
        """
        obs = self.read(source)
        return self._finish(obs, Engine(self.parts, obs).restore(_in_memory, self.keep_samples))

    def run_to(self, source: str | Path | np.ndarray | None, directory: str | Path, stem: str | None = None,
               **options: Any) -> tuple[dict[str, Any], list[Path]]:
        """Restore one observation straight into the files :meth:`Restoration.save` writes, in ``directory``
        (``options``: ``suffix``, ``overwrite``, ``figures`` as for ``save``).

        The restoration and its spread go to float32 scratch files beside the outputs as rows are
        finished, and from there, band by band, into the outputs (TIFF and FITS; PNG/JPEG are written
        whole): memory holds the observation and a band of output rows, not the output frame. No
        per-restart images are kept. Existing outputs are an error before anything runs, unless ``overwrite``;
        the outputs are claimed (:class:`~restore.claim.Claim`) while they are written, so a second run on
        them fails at once and a run killed on the way leaves nothing the next one does not clean up.
        Returns the report (as written to ``<stem>.report.json``) and the files written.
        """
        obs = self.read(source)
        suffix, overwrite, figures = options.get("suffix"), options.get("overwrite", False), options.get("figures", True)
        engine = Engine(self.parts, obs)  # noise and layout resolved: their errors come before any file
        created = not Path(directory).exists()
        directory = output_folder(directory)
        paths = output_names(obs.source, self.parts.adapter, directory, stem, suffix, figures)
        stem = paths["report"].name.removesuffix(".report.json")

        def store(shape: tuple[int, ...]) -> FileRaster:
            return scratch(directory, shape, prefix=f".{paths['restored'].name}.")  # type: ignore[arg-type]

        try:
            with Claim(directory, stem, list(paths.values())):
                output_paths(obs.source, self.parts.adapter, directory, stem, suffix, figures, overwrite)
                res = self._finish(obs, engine.restore(store))
                return res.report(), res.save(directory, stem, suffix, overwrite, figures)
        except BaseException:
            if created and not any(directory.iterdir()):
                directory.rmdir()  # nothing left behind, not even the folder
            raise

    def _finish(self, obs: Observation, out: Outcome) -> Restoration:
        """The restoration with its fit quality and provenance: consistent when the whole frame's reduced
        chi-square is inside ``search.chi2_range``."""
        lo, hi = self.parts.config.chi2_range
        consistent = bool(lo <= out.chi2 <= hi)
        if not consistent:
            warnings.warn(f"{obs.source}: restoration is not data-consistent (reduced chi-square {out.chi2:.3g}, "
                          f"target [{lo}, {hi}])", stacklevel=3)
        methods = [op.method for op in self.spec.forward if op.kind == "downsample"]
        stats = out.stats
        provenance = {
            "recipe": self.spec.model_dump(mode="json"), "prior": self.parts.prior.name,
            "prior_sha256": self.parts.prior.card.get("sha256"), "seed": self.spec.seed, "factor": self.factor,
            "domain": self.spec.domain.kind, "restarts": self.parts.config.restarts,
            "chi2_restored": out.chi2_restored, "chi2_range": [lo, hi],
            "regions": stats.regions, "prior_used": sum(bool(r.get("prior_used")) for r in stats.regions),
            "steps": stats.steps, "runtime_s": stats.runtime_s, "restarts_consistent": stats.restarts_consistent,
            "correction": stats.correction, "planes_fitted_as": stats.planes_fitted_as,
            "prior_weight": stats.prior_weight, "noise": out.noise,
            "normalisation": out.normalisation,
            "versions": {"restore": __version__, "torch": torch.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
        }
        return Restoration(image=out.image, samples=out.samples, std=out.std, chi2=out.chi2, consistent=consistent,
                           chi_map=out.chi_map, observation=obs.data, provenance=provenance,
                           writer=self.parts.adapter, factor=self.factor,
                           flux_convention=methods[-1] if methods else "none", meta=obs.meta, source=obs.source)


def output_folder(directory: str | Path) -> Path:
    """The output folder, created if need be; a one-line error when it cannot be (a file in the way,
    no permission) or is not writable."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RestoreError("the output path exists and is not a folder", source=directory) from None
    except NotADirectoryError:
        blocker = next((p for p in directory.parents if p.exists()), directory)
        raise RestoreError(f"cannot create the output folder: {blocker} is not a folder", source=directory) from None
    except OSError as err:
        raise RestoreError(f"cannot create the output folder ({err.strerror})", source=directory) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise RestoreError("the output folder is not writable", source=directory)
    return directory


def check_input(obs: Observation, factor: int, reach: int, sharp: bool = False) -> None:
    """Before any search: the observation (``sharp``: the sharp image ``restore simulate`` degrades) is
    large enough for a forward model of this ``factor`` and ``reach`` (:meth:`LinearOperator.reach`), has a
    valid pixel in every plane, and the result stays within :data:`~restore.imageio.MAX_OUTPUT_VALUES`."""
    minimum = max(4, 2 * reach // factor + 1)
    check_observation(obs, minimum * factor if sharp else minimum)
    c, h, w = obs.data.shape
    values = c * h * w * (1 if sharp else factor**2)
    if values > MAX_OUTPUT_VALUES:
        raise RestoreError(f"too large: the result would hold {values:,} values at {factor}x (limit "
                           f"{MAX_OUTPUT_VALUES:,}); cut the input into pieces first", source=obs.source)


def _in_memory(shape: tuple[int, ...]) -> np.ndarray:
    return np.empty(shape, np.float32)


__all__ = ["Pipeline", "Restoration", "Store", "check_input"]
