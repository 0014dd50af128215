"""The malformed-input corpus (``tests/corpus.py``): one line, the right exit status, no traceback,
inputs untouched, nothing left behind; through the CLI and through ``Pipeline.run``."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest

from restore import Pipeline
from restore.cli import main
from restore.errors import RestoreError
from tests.corpus import FAST, build

ROOT = Path(tempfile.mkdtemp(prefix="restore-corpus-"))
CASES = build(ROOT)


def snapshot() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(ROOT.rglob("*"))}


def test_the_corpus_is_large_and_its_names_unique() -> None:
    assert len(CASES) >= 80
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli(case, capsys) -> None:
    before = snapshot()
    try:
        status = main(case.argv)
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line and not line.startswith("warning:")]
    assert "Traceback" not in err
    assert status == case.status, err
    assert len(lines) == 1, err
    assert case.message in lines[0], lines[0]
    assert snapshot() == before  # inputs unchanged, nothing written or left behind


PIPELINE_CASES = [c for c in CASES if c.source is not None]


@pytest.mark.parametrize("case", PIPELINE_CASES, ids=[c.name for c in PIPELINE_CASES])
def test_pipeline_run(case) -> None:
    before = snapshot()
    overrides = [FAST[1], FAST[3], *case.overrides]
    with pytest.raises(RestoreError) as info:
        Pipeline.from_yaml(case.recipe, overrides=overrides, progress=False).run(case.source)
    assert "\n" not in str(info.value) and case.message in str(info.value), str(info.value)
    assert snapshot() == before
