"""Batch runs: many inputs (files, folders, globs) through one pipeline, one bad file never stopping
the rest, finished outputs skipped, so that a run killed overnight is resumed by running it again.

Example:
    >>> import restore, pathlib, tempfile
    >>> recipes = pathlib.Path(restore.__file__).parents[1] / "recipes"
    >>> pipe = restore.Pipeline.from_yaml(recipes / "faces.yaml", ["search.steps=2", "search.restarts=2"],
    ...                                   progress=False)
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> [r.status for r in run_batch(pipe, [recipes / "samples" / "face_observed.png"], out)]
    ['done']
    >>> [r.status for r in run_batch(pipe, [recipes / "samples" / "face_observed.png"], out)]
    ['skipped']
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RestoreError
from .imageio import file_kind
from .pipeline import Pipeline
from .restoration import output_names

GLOB_CHARS = set("*?[")


@dataclass
class Outcome:
    """What became of one input: ``done``, ``skipped`` (its outputs exist) or ``failed`` (with the reason)."""

    source: Path
    status: str
    reason: str = ""
    report: dict[str, Any] = field(default_factory=dict, repr=False)
    written: list[Path] = field(default_factory=list, repr=False)


def expand_inputs(items: Sequence[str | Path]) -> list[Path]:
    """Files as given; a folder gives its image files (sorted, not recursive); a pattern with ``*?[`` that
    names no file gives its matches (sorted). An item matching nothing is a one-line error."""
    found: list[Path] = []
    for item in map(str, items):
        path = Path(item)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.is_file() and _is_image(p))
            if not images:
                raise RestoreError("folder holds no image files (PNG/JPEG/WebP, TIFF or FITS)", source=path)
            found += images
        elif path.exists() or not GLOB_CHARS & set(item):
            if not path.exists():
                raise RestoreError("input not found", source=path)
            found.append(path)
        else:
            matches = sorted(Path(p) for p in glob.glob(item) if Path(p).is_file())
            if not matches:
                raise RestoreError("pattern matches no file", source=item)
            found += matches
    return found


def _is_image(path: Path) -> bool:
    try:
        file_kind(path)
    except RestoreError:
        return False
    return not path.name.startswith(".")


def plan(pipe: Pipeline, inputs: Sequence[Path], directory: str | Path, figures: bool = True) -> dict[Path, dict[str, Path]]:
    """The output files of each input; a one-line error, before anything runs, when two inputs would write
    the same output (say, ``a/x.fits`` and ``b/x.fits`` into one folder)."""
    owners: dict[Path, Path] = {}
    planned: dict[Path, dict[str, Path]] = {}
    for source in inputs:
        if source in planned:
            continue
        paths = output_names(str(source), pipe.parts.adapter, directory, figures=figures)
        for out in paths.values():
            if out in owners:
                raise RestoreError(f"{owners[out]} and {source} would write the same output {out.name}; restore them "
                                   "into different folders (-o), or rename one", source=out.parent)
            owners[out] = source
        planned[source] = paths
    return planned


def run_batch(pipe: Pipeline, inputs: Sequence[Path], directory: str | Path, overwrite: bool = False,
              figures: bool = True, on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Restore each input into ``directory`` (planned first: see :func:`plan`); an input whose outputs all
    exist is skipped (unless ``overwrite``), a failing input is reported and the batch goes on.
    ``on_outcome`` sees each outcome as it happens."""
    outcomes = []
    for source, paths in plan(pipe, inputs, directory, figures).items():
        if not overwrite and all(p.exists() for p in paths.values()):
            outcome = Outcome(source, "skipped", "outputs exist (--overwrite to redo)")
        else:
            try:
                report, written = pipe.run_to(source, directory, overwrite=overwrite, figures=figures)
                outcome = Outcome(source, "done", report=report, written=written)
            except RestoreError as err:
                outcome = Outcome(source, "failed", str(err))
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes


def summary(outcomes: Sequence[Outcome]) -> str:
    """``3 done, 1 skipped, 1 failed``."""
    counts = {status: sum(o.status == status for o in outcomes) for status in ("done", "skipped", "failed")}
    return ", ".join(f"{n} {status}" for status, n in counts.items())
