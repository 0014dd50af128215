"""The ``restore`` command. Exit codes: 0 success, 1 failed input or recipe, 2 usage error."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from .errors import RestoreError


def _recipe(args: argparse.Namespace):
    from .spec import load_recipe

    return load_recipe(args.recipe, args.set)


def cmd_validate(args: argparse.Namespace) -> int:
    spec = _recipe(args)
    from .degradations import build_forward

    print(f"{args.recipe}: valid ({len(spec.forward)} forward operators, factor {build_forward(spec.forward).scale()})")
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


def cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import Pipeline

    spec = _recipe(args)
    inputs = [Path(p) for p in args.inputs] or ([spec.input] if spec.input else [])
    if not inputs:
        raise RestoreError("no input given and the recipe has no 'input'", source=args.recipe)
    for path in inputs:
        if not path.is_file():
            raise RestoreError("input not found", source=path)
    out_dir = Path(args.output) if args.output else spec.output.dir
    overwrite = args.overwrite or spec.output.overwrite
    pipe = Pipeline(spec, progress=not args.quiet, device=args.device, keep_samples=False)  # files hold no samples
    inconsistent = 0
    for path in inputs:  # straight to files: memory holds a band of the output, not the frame
        report, written = pipe.run_to(path, out_dir, overwrite=overwrite, figures=spec.output.figures)
        status = "consistent" if report["consistent"] else "NOT data-consistent"
        used = f"prior used in {report['prior_used']} of {len(report['regions'])} regions"
        print(f"{path} -> {written[0]} (reduced chi-square {report['chi2']:.3f}, {status}; {used})")
        inconsistent += not report["consistent"]
    print("warning: detail below the observation's resolution was invented by the prior where it was used; "
          "see the spread maps and the reports", file=sys.stderr)
    if args.strict and inconsistent:
        print(f"error: {inconsistent} of {len(inputs)} outputs are not data-consistent (--strict)", file=sys.stderr)
        return 1
    return 0


def cmd_priors(args: argparse.Namespace) -> int:
    from .priors import builtin_names, convert_rosinality, read_card
    from .priors.registry import builtin_path

    if args.action == "list":
        for name in builtin_names():
            card = read_card(builtin_path(name))
            print(f"{name:12s} {card.architecture} {card.resolution}x{card.resolution}x{card.channels}  "
                  f"domain={card.domain}  licence: {card.licence}")
        return 0
    if args.action == "info":
        path = Path(args.name) if Path(args.name).suffix else builtin_path(args.name)
        print(read_card(path).model_dump_json(indent=2))
        return 0
    if not args.output:
        raise RestoreError("convert needs -o NAME.safetensors")
    prior = convert_rosinality(args.name, args.output)
    print(f"wrote {args.output} ({prior.card['architecture']}, {prior.resolution}px, latent {prior.latent_dim})")
    return 0


def cmd_train_prior(args: argparse.Namespace) -> int:
    from .training import load_train_spec, train

    prior = train(load_train_spec(args.config))
    print(f"wrote prior {prior.name!r} ({prior.card['iterations']} iterations, {prior.card['wall_time_s']} s)")
    return 0


def cmd_domains(args: argparse.Namespace) -> int:
    from .domains import adapter_classes

    for name, cls in sorted(adapter_classes().items()):
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:12s} {cls.__module__}.{cls.__name__}  {doc[0] if doc else ''}")
    return 0


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="YAML recipe")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value, e.g. forward.0.psf.fwhm=3 (repeatable)",
    )


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

    p = sub.add_parser("run", help="restore images with a recipe")
    _add_recipe_args(p)
    p.add_argument("inputs", nargs="*", help="observations (default: the recipe's input)")
    p.add_argument("-o", "--output", help="output folder (default: output.dir, ./restored of the working directory)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--device", default="cpu", help="where the search runs: cpu (default), cuda, cuda:1, mps")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when an output's whole-frame reduced chi-square is outside search.chi2_range")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("priors", help="list, describe or convert priors")
    p.add_argument("action", choices=["list", "info", "convert"])
    p.add_argument("name", nargs="?", default="", help="prior name or file (info), checkpoint (convert)")
    p.add_argument("-o", "--output", help="converted .safetensors file")
    p.set_defaults(func=cmd_priors)

    p = sub.add_parser("train-prior", help="train a prior from a YAML training config")
    p.add_argument("config")
    p.set_defaults(func=cmd_train_prior)

    p = sub.add_parser("domains", help="list the domain adapters (built in and from entry points)")
    p.set_defaults(func=cmd_domains)
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
