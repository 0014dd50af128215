"""The ``restore`` command. Exit codes: 0 success, 1 failed input or recipe, 2 usage error."""


from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from .errors import RestoreError

DESCRIPTION = ("Restore degraded scientific and photographic images with a generative prior, fitted to every "
               "observed pixel. Exit codes: 0 success, 1 failed input or recipe, 2 usage error.")


def _recipe(args: argparse.Namespace):
    from .spec import load_recipe

    return load_recipe(args.recipe, args.set)


def cmd_validate(args: argparse.Namespace) -> int:
    from .pipeline import Pipeline

    spec = _recipe(args)
    pipe = Pipeline(spec, progress=False, trust_code=args.trust_code)  # adapter, forward model, prior (code if trusted)
    print(f"{args.recipe}: valid ({len(spec.forward)} forward operators, factor {pipe.factor}, "
          f"prior {pipe.parts.prior.name!r})")
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
    from .batch import expand_inputs, run_batch, summary
    from .pipeline import Pipeline

    spec = _recipe(args)
    set_threads(args.threads if args.threads is not None else spec.threads)
    inputs = expand_inputs(args.inputs) if args.inputs else ([spec.input] if spec.input else [])
    if not inputs:
        raise RestoreError("no input given and the recipe has no 'input'", source=args.recipe)
    out_dir = Path(args.output) if args.output else spec.output.dir
    overwrite = args.overwrite or spec.output.overwrite
    pipe = Pipeline(spec, progress=not args.quiet, device=args.device, keep_samples=False,  # files hold no samples
                    trust_code=args.trust_code)

    def show(outcome) -> None:
        if outcome.status == "failed":
            print(f"error: {outcome.reason}", file=sys.stderr)
        elif outcome.status == "skipped":
            print(f"{outcome.source}: skipped, {outcome.reason}")
        else:
            report = outcome.report
            status = "consistent" if report["consistent"] else "NOT data-consistent"
            used = f"prior used in {report['prior_used']} of {len(report['regions'])} regions"
            print(f"{outcome.source} -> {outcome.written[0]} (reduced chi-square {report['chi2']:.3f}, {status}; {used})")

    outcomes = run_batch(pipe, inputs, out_dir, overwrite, spec.output.figures, on_outcome=show)
    if len(outcomes) > 1:
        print(summary(outcomes))
    if any(o.status == "done" for o in outcomes):
        print("warning: detail below the observation's resolution was invented by the prior where it was used; "
              "see the spread maps and the reports", file=sys.stderr)
    inconsistent = sum(o.status == "done" and not o.report["consistent"] for o in outcomes)
    if any(o.status == "failed" for o in outcomes):
        return 1
    if args.strict and inconsistent:
        print(f"error: {inconsistent} of {len(inputs)} outputs are not data-consistent (--strict)", file=sys.stderr)
        return 1
    return 0


def cmd_priors(args: argparse.Namespace) -> int:
    from .priors import builtin_names, convert_rosinality, read_card
    from .priors.registry import builtin_path
    from .priors.registry import load as load_prior_file

    if args.action == "list":
        for name in builtin_names():
            card = read_card(builtin_path(name))
            print(f"{name:12s} {card.architecture} {card.resolution}x{card.resolution}x{card.channels}  "
                  f"domain={card.domain}  licence: {card.licence}")
        return 0
    if args.action in ("info", "convert") and not args.name:
        parser_error(f"priors {args.action} needs a NAME (a builtin prior, a .safetensors file or a checkpoint)")
    if args.action == "info":
        path = Path(args.name) if Path(args.name).suffix else builtin_path(args.name)
        card = read_card(path)
        load_prior_file(path, args.trust_code)  # the card is checked against its tensors
        print(card.model_dump_json(indent=2))
        return 0
    if not args.output:
        parser_error("priors convert needs -o NAME.safetensors")
    if args.factory:
        from .priors.registry import convert_state_dict

        if not (args.latent_dim and args.resolution):
            parser_error("priors convert --factory needs --latent-dim and --resolution (the generator's latent facts)")
        facts = {"latent_dim": args.latent_dim, "resolution": args.resolution, "channels": args.channels,
                 "latent_distribution": args.latent_distribution}
        prior = convert_state_dict(args.name, args.output, args.factory, facts, args.trust_code)
    else:
        prior = convert_rosinality(args.name, args.output)
    print(f"wrote {args.output} ({prior.card['architecture']}, {prior.resolution}px, latent {prior.latent_dim})")
    return 0


def cmd_train_prior(args: argparse.Namespace) -> int:
    from .training import load_train_spec, train

    prior = train(load_train_spec(args.config, args.set))
    print(f"wrote prior {prior.name!r} ({prior.card['iterations']} iterations, {prior.card['wall_time_s']} s)")
    return 0


def cmd_domains(args: argparse.Namespace) -> int:
    from .domains import adapter_classes

    for name, cls in sorted(adapter_classes().items()):
        doc = " ".join((cls.__doc__ or cls.spec_class.__doc__ or "").strip().split("\n\n")[0].split())
        print(f"{name:12s} {cls.__module__}.{cls.__name__}\n             {doc}")
    return 0


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="YAML recipe")
    p.add_argument("--trust-code", action="store_true",
                   help="let a module prior import a factory that is not an installed restore.priors entry point")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value, e.g. forward.0.psf.fwhm=3 (repeatable)",
    )


class Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (exit 2), pointing at ``--help``."""

    def error(self, message: str):  # type: ignore[override]
        parser_error(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="restore", description=DESCRIPTION)
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

    p = sub.add_parser("run", help="restore images with a recipe (files, folders or patterns)",
                       description="restore observations with a recipe; a failing input is reported and the rest go "
                                   "on, inputs whose outputs all exist are skipped (so rerunning a killed batch "
                                   "resumes it), and a summary ends a run of several; exit 1 if any failed")
    _add_recipe_args(p)
    p.add_argument("inputs", nargs="*", help="observations: files, folders (their image files) or quoted patterns "
                                              "such as 'night1/*.fits' (default: the recipe's input)")
    p.add_argument("-o", "--output", help="output folder (default: output.dir, ./restored of the working directory)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--device", default="cpu", help="where the search runs: cpu (default), cuda, cuda:1, mps")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch intra-op threads (default: the cores this process may use)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when an output's whole-frame reduced chi-square is outside search.chi2_range")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("priors", help="list, describe or convert priors",
                       description="list the builtin priors, show a prior's model card (info NAME), or convert to "
                                   ".safetensors with a card: a rosinality StyleGAN2 checkpoint (convert CKPT -o OUT), "
                                   "or any generator's state dict with the factory that builds it (convert STATE -o "
                                   "OUT --factory pkg.mod:make --latent-dim 100 --resolution 32 --trust-code)")
    p.add_argument("action", choices=["list", "info", "convert"], help="what to do")
    p.add_argument("name", nargs="?", default="", help="prior name or file (info), checkpoint or state dict (convert)")
    p.add_argument("-o", "--output", help="converted .safetensors file (convert)")
    p.add_argument("--factory", metavar="PKG.MOD:FUNC",
                   help="convert: the function that builds the generator (runs code: needs --trust-code unless it "
                        "is an installed restore.priors entry point)")
    p.add_argument("--latent-dim", type=int, help="convert --factory: length of the generator's latent z")
    p.add_argument("--resolution", type=int, help="convert --factory: side of the square images it renders")
    p.add_argument("--channels", type=int, default=3, help="convert --factory: image channels (default 3)")
    p.add_argument("--latent-distribution", choices=["normal", "uniform"], default="normal",
                   help="convert --factory: distribution of z (default normal; uniform on [-1, 1])")
    p.add_argument("--trust-code", action="store_true", help="let --factory, or a card's factory, import and run code")
    p.set_defaults(func=cmd_priors)

    p = sub.add_parser("train-prior", help="train a prior from a YAML training config",
                       description="train a StyleGAN2 prior on a folder of domain images, as a YAML training "
                                   "config describes (see priors/*.yaml); running it again resumes")
    p.add_argument("config", help="YAML training config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. iterations=9000 (repeatable)")
    p.set_defaults(func=cmd_train_prior)

    p = sub.add_parser("domains", help="list the domain adapters (built in and from entry points)")
    p.set_defaults(func=cmd_domains)
    return parser


def parser_error(message: str) -> None:
    """A usage error: one line, exit status 2."""
    print(f"restore: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def set_threads(threads: int | None) -> None:
    """torch intra-op threads: ``threads``, or the cores this process may use (``os.sched_getaffinity``).
    More threads than free cores collapse (measured 18x slower at load 12 on 2 cores)."""
    import os

    import torch

    if threads is not None and threads < 1:
        parser_error("--threads must be >= 1")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(threads or cores)


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
