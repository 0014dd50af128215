"""Batch runs: folders and patterns, keep going past a bad file, a summary, clashing names refused,
exclusive claims, and a run killed with ``kill -9`` resumed bit-identically."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restore import Pipeline
from restore.batch import expand_inputs, plan, run_batch, summary
from restore.claim import Claim
from restore.cli import main
from restore.errors import RestoreError

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "faces.yaml"
SAMPLE = ROOT / "recipes" / "samples" / "face_observed.png"
FAST = ["--set", "search.steps=3", "--set", "search.restarts=1", "-q", "--threads", "1"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(SAMPLE, d / f"{name}.png")
    (d / "notes.txt").write_text("not an image")
    return d


def test_inputs_expand_from_folders_and_patterns(folder: Path) -> None:
    assert [p.name for p in expand_inputs([folder])] == ["a.png", "b.png", "c.png"]
    assert [p.name for p in expand_inputs([str(folder / "[ab].png"), folder / "c.png"])] == ["a.png", "b.png", "c.png"]
    with pytest.raises(RestoreError, match="pattern matches no file"):
        expand_inputs([str(folder / "z*.png")])
    with pytest.raises(RestoreError, match="input not found"):
        expand_inputs([folder / "zz.png"])


def test_a_bad_file_does_not_stop_the_batch_and_the_summary_says_so(folder: Path, tmp_path: Path, capsys) -> None:
    (folder / "b.png").write_bytes(b"broken")
    out = tmp_path / "out"
    assert main(["run", str(RECIPE), str(folder), "-o", str(out), *FAST]) == 1
    captured = capsys.readouterr()
    assert "1 done" not in captured.out and "2 done, 0 skipped, 1 failed" in captured.out
    assert f"error: {folder / 'b.png'}: cannot read image" in captured.err
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".report.json")) == ["a.report.json", "c.report.json"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no claims or scratch files left
    (folder / "b.png").write_bytes(SAMPLE.read_bytes())
    assert main(["run", str(RECIPE), str(folder), "-o", str(out), *FAST]) == 0  # rerun: only b is done
    assert "1 done, 2 skipped, 0 failed" in capsys.readouterr().out


def test_two_inputs_with_one_output_name_are_refused_before_anything_runs(tmp_path: Path) -> None:
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        shutil.copy(SAMPLE, tmp_path / sub / "same.png")
    pipe = Pipeline.from_yaml(RECIPE, ["search.steps=2"], progress=False)
    with pytest.raises(RestoreError, match=r"x/same.png and .*y/same.png would write the same output"):
        plan(pipe, [tmp_path / "x" / "same.png", tmp_path / "y" / "same.png"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_claimed_output_fails_at_once_and_a_stale_claim_is_cleaned(tmp_path: Path) -> None:
    pipe = Pipeline.from_yaml(RECIPE, ["search.steps=2", "search.restarts=1"], progress=False)
    out = tmp_path / "out"
    out.mkdir()
    outputs = [out / "face_observed.restored.png"]
    with Claim(out, "face_observed", outputs):  # another run holds these outputs
        t0 = time.perf_counter()
        [outcome] = run_batch(pipe, [SAMPLE], out)
        assert outcome.status == "failed" and "being written by another run" in outcome.reason
        assert time.perf_counter() - t0 < 5  # before any search
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = Claim(out, "face_observed", outputs)
    stale.acquire()
    text = stale.path.read_text().replace(str(os.getpid()), dead.stdout.strip())
    stale.path.write_text(text)  # the claim of a process that is gone
    (out / ".face_observed.restored.png.1234.scratch.f32").write_bytes(b"\0" * 64)  # its scratch file
    outputs[0].write_bytes(b"half")  # and an output it had finished
    [outcome] = run_batch(pipe, [SAMPLE], out)
    assert outcome.status == "done", outcome.reason
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in outcome.written)
    assert Image.open(outputs[0]).size == (64, 64)
    assert summary([outcome]) == "1 done, 0 skipped, 0 failed"


def test_a_run_killed_with_sigkill_resumes_and_gives_bit_identical_outputs(folder: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "restore", "run", str(RECIPE), str(folder), "--set", "search.steps=30",
               "--set", "search.restarts=2", "-q", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ref, out = tmp_path / "ref", tmp_path / "out"
    subprocess.run([*command, "-o", str(ref)], check=True, env=env, capture_output=True)
    proc = subprocess.Popen([*command, "-o", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "a.report.json").exists() or not (out / ".b.claim").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / ".b.claim").exists() and not (out / "c.report.json").exists()  # killed in the middle of b
    rerun = subprocess.run([*command, "-o", str(out)], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "2 done, 1 skipped, 0 failed" in rerun.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref.iterdir())  # nothing stale left
    for name in ("a", "b", "c"):
        for kind in ("restored", "spread"):
            same = np.array_equal(np.asarray(Image.open(out / f"{name}.{kind}.png")),
                                  np.asarray(Image.open(ref / f"{name}.{kind}.png")))
            assert same, f"{name}.{kind}"
