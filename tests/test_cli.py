"""The ``restore`` command: exit codes, one-line errors, --strict, simulate then run with header noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from restore.cli import main
from tests.conftest import RECIPES

FAST = ["--set", "search.steps=5", "--set", "search.restarts=2", "--set", "search.refine_steps=0", "-q"]


def test_validate_and_schema(capsys) -> None:
    assert main(["validate", str(RECIPES / "faces.yaml")]) == 0
    assert "valid" in capsys.readouterr().out and main(["schema"]) == 0
    assert "consistency" in json.loads(capsys.readouterr().out)["properties"]
    assert main(["validate", str(RECIPES / "faces.yaml"), "--set", "noise.sigma=-1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "noise.sigma" in err


def test_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run"])
    assert exit_.value.code == 2


def test_bad_override_is_one_line(capsys) -> None:
    assert main(["validate", str(RECIPES / "faces.yaml"), "--set", "noise.sigma=[1,"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not valid YAML" in err


def test_strict_exits_1_when_the_output_is_not_consistent(tmp_path: Path, capsys) -> None:
    args = ["run", str(RECIPES / "satellite.yaml"), "-o", str(tmp_path), *FAST, "--set", "search.chi2_range=[0.01,0.02]"]
    assert main(args) == 0  # not consistent, but not strict
    assert "NOT data-consistent" in capsys.readouterr().out
    assert main([*args, "--overwrite", "--strict"]) == 1
    assert "--strict" in capsys.readouterr().err


def test_simulate_writes_the_noise_it_used_and_run_reads_it_back(tmp_path: Path, capsys) -> None:
    """simulate with given noise values, then run with a from_header recipe: the header carries them."""
    sharp = tmp_path / "sharp.fits"
    fits.writeto(sharp, np.full((64, 64), 50.0, np.float32))
    observed = tmp_path / "observed.fits"
    noise = ["--set", "noise.gain=2.0", "--set", "noise.read_noise=4.0", "--set", "noise.sky=30.0",
             "--set", "noise.offset=100.0"]
    assert main(["simulate", str(RECIPES / "astronomy.yaml"), str(sharp), "-o", str(observed), *noise]) == 0
    header = fits.getheader(observed)
    assert (header["GAIN"], header["RDNOISE"], header["SKY"], header["PEDESTAL"]) == (2.0, 4.0, 30.0, 100.0)
    from_header = ["--set", "noise.offset=from_header"]
    assert main(["run", str(RECIPES / "astronomy.yaml"), str(observed), "-o", str(tmp_path / "out"), *FAST,
                 *from_header]) == 0
    report = json.loads((tmp_path / "out" / "observed.report.json").read_text())
    assert report["noise"] == {"offset": 100.0, "gain": 2.0, "sky": 30.0, "read_noise": 4.0}


def test_progress_writes_one_line_per_stage_when_not_a_terminal() -> None:
    import io

    from restore.progress import progress

    log = io.StringIO()  # not a terminal, like a batch job's log
    bar = progress(range(250), "search", stream=log)
    for i in bar:
        bar.set_postfix(chi2=f"{1 + 1 / (i + 1):.3g}")
    bar.close()
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in log.getvalue()
    assert lines[0].startswith("search: 250 steps in ") and lines[0].endswith("(chi2=1)")
    quiet = io.StringIO()
    bar = progress(range(3), "search", enabled=False, stream=quiet)
    assert list(bar) == [0, 1, 2] and (bar.close() or quiet.getvalue() == "")


def test_threads_come_from_the_option_then_the_recipe_then_the_cores(monkeypatch) -> None:
    import os

    import torch

    from restore.cli import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        set_threads(None)
        assert torch.get_num_threads() == len(os.sched_getaffinity(0))
    finally:
        torch.set_num_threads(before)
    from restore.spec import load_recipe

    assert load_recipe(RECIPES / "faces.yaml", ["threads=2"]).threads == 2
