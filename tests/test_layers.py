"""The house is one-directional: no module of ``restore/`` imports one of a higher layer, and there is
no import circle between files (lazy and ``TYPE_CHECKING`` imports included: the walk reads every
``import`` statement with ``ast``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "restore"

LAYERS = [
    ["errors", "version"],
    ["spec"],
    ["rasters", "imageio", "device", "claim", "progress"],
    ["degradations", "priors", "geometry", "tiling"],
    ["chimap", "search", "restoration", "correction"],
    ["domains"],
    ["engine"],
    ["pipeline"],
    ["simulate", "training", "batch", "cli", "__init__", "__main__"],
]
"""Bottom to top; a unit is a top-level module or sub-package of ``restore``."""

RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules of ``restore`` that ``path`` imports, anywhere in the file."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "restore"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "restore":
                continue
            for alias in node.names:  # `from . import x` may name a submodule
                sub = f"{target}.{alias.name}"
                found.add(sub if (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists() else target)
    return found


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


FILES = sorted(PACKAGE.rglob("*.py"))
GRAPH = {_module(p): _imports(p) for p in FILES}


def test_every_unit_is_in_a_declared_layer() -> None:
    assert {_unit(m) for m in GRAPH} <= set(RANK), {_unit(m) for m in GRAPH} - set(RANK)


@pytest.mark.parametrize("path", FILES, ids=[_module(p) for p in FILES])
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    here = _unit(_module(path))
    upward = [m for m in GRAPH[_module(path)] if RANK[_unit(m)] > RANK[here]]
    assert not upward, f"{_module(path)} ({here}) imports {upward} from above"


def test_there_is_no_import_circle() -> None:
    def resolve(name: str) -> str:  # `restore.x` imported as a package means its __init__
        return name if name in GRAPH else name.rpartition(".")[0]

    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted({resolve(m) for m in GRAPH.get(node, ())} - {node}):
            if nxt.split(".")[:2] == node.split(".")[:2] and nxt.count(".") == 1:  # a unit's own __init__ re-export
                continue
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for module in GRAPH:
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("module", ["pipeline", "engine"])
def test_pipeline_and_engine_methods_take_few_parameters(module: str) -> None:
    """Private methods at most four parameters, public ones at most four positional ones (without
    ``self``; ``*args`` and ``**kwargs`` count)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            a = fn.args
            positional = [p.arg for p in a.posonlyargs + a.args if p.arg not in ("self", "cls")]
            star = int(a.vararg is not None) + int(a.kwarg is not None)
            total = len(positional) + len(a.kwonlyargs) + star
            if fn.name.startswith("_") and not fn.name.startswith("__"):
                assert total <= 4, f"{cls.name}.{fn.name} takes {total} parameters"
            else:
                assert len(positional) + star <= 4, f"{cls.name}.{fn.name} takes {len(positional) + star} positional"
