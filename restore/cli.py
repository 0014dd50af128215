"""The ``restore`` command. Exit codes: 0 success, 1 failed input or recipe, 2 usage error."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from .errors import RestoreError


def _recipe(args: argparse.Namespace):  # noqa: ANN202 - returns PipelineSpec
    from .spec import load_recipe

    return load_recipe(args.recipe, args.set)


def cmd_validate(args: argparse.Namespace) -> int:
    spec = _recipe(args)
    print(f"{args.recipe}: valid ({len(spec.forward)} forward operators, factor {spec.factor()})")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .spec import PipelineSpec

    print(json.dumps(PipelineSpec.model_json_schema(), indent=2))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulate import simulate_file

    spec = _recipe(args)
    source = Path(args.input) if args.input else spec.input
    if source is None:
        raise RestoreError("no input given and the recipe has no 'input'", source=args.recipe)
    out = simulate_file(spec, source, args.output, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="YAML recipe")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value, e.g. forward.0.psf.fwhm=3 (repeatable)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="restore", description=__doc__)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"restore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a recipe (exit 0 valid, 1 invalid)")
    _add_recipe_args(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the recipe JSON Schema (for editors)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("simulate", help="degrade a sharp image with a recipe's forward model and noise")
    _add_recipe_args(p)
    p.add_argument("input", nargs="?", help="sharp image (default: the recipe's input)")
    p.add_argument("-o", "--output", required=True, help="observation to write")
    p.add_argument("--seed", type=int, default=None, help="noise seed (default: the recipe's seed)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=cmd_simulate)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``restore`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, category, *a, **k: f"warning: {message}\n"
    try:
        return int(args.func(args))
    except RestoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
