"""A corpus of malformed inputs, recipes, priors and command lines (issue #13).

Every case must end in a one-line error before any search step: exit status 1 for bad input
(2 for usage), no traceback, no input modified, nothing left in the output folder.
``python -m tests.corpus DIR`` writes the corpus into ``DIR`` and lists its cases; ``tests/test_corpus.py``
runs each through the CLI and, where it names an input file, through ``Pipeline.run``.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile
import torch
import yaml
from astropy.io import fits
from PIL import Image
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
FAST = ["--set", "search.steps=1", "--set", "search.restarts=1"]


@dataclass
class Case:
    """One malformed thing: the command line (paths inside ``root``), the exit status due and a
    fragment of the one-line message."""

    name: str
    argv: list[str]
    status: int
    message: str
    recipe: Path | None = None  # with ``source``: also run through Pipeline.run
    source: Path | None = None
    overrides: list[str] = field(default_factory=list)


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _fits(path: Path, data: np.ndarray | None, **cards: object) -> Path:
    """A FITS file with header ``cards``; non-finite values (which astropy will not write) are put in
    the bytes afterwards, as a broken pipeline would have written them."""
    hdu = fits.PrimaryHDU(data)
    raw = {}
    for key, value in cards.items():  # a str value is put into the bytes as it is (BSCALE="1E30")
        if isinstance(value, str) and key in ("BSCALE", "BZERO") or isinstance(value, float) and not np.isfinite(value):
            raw[key], value = value, {"BSCALE": 1.0}.get(key, 0.0)
        hdu.header[key] = value
    hdu.writeto(path, overwrite=True)
    blob = path.read_bytes()
    for key, value in raw.items():
        at = blob.index(f"{key:8s}= ".encode())
        blob = blob[:at] + f"{key:8s}= {str(value).upper():>20s}".ljust(80).encode() + blob[at + 80:]
    path.write_bytes(blob)
    return path


def _bomb_png(path: Path, width: int, height: int) -> Path:
    """A small PNG that declares ``width x height`` 8-bit grey pixels (zeros, deflated)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * width
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(min(height, 64))) + comp.flush()  # truncated stream
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def _recipe(path: Path, base: str, **changes: object) -> Path:
    data = yaml.safe_load((RECIPES / f"{base}.yaml").read_text())
    data["input"] = str(RECIPES / data["input"])
    data.update(changes)
    path.write_text(yaml.safe_dump(data))
    return path


def _prior(path: Path, mutate: Callable[[dict, dict], None]) -> Path:
    """A copy of a tiny valid prior with its tensors or card changed by ``mutate(tensors, card)``."""
    from safetensors.torch import load_file, safe_open

    from restore.priors.io import save_prior
    from restore.priors.stylegan2 import StyleGAN2Generator

    torch.manual_seed(0)
    save_prior(path, StyleGAN2Generator(16, 16, 1, {4: 8, 8: 8, 16: 8}), {"name": "tiny", "domain": "faces"})
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    card = json.loads(meta["card"])
    mutate(tensors, card)
    meta["card"] = json.dumps(card)
    save_file(tensors, str(path), metadata=meta)
    return path


def build(root: Path) -> list[Case]:
    """Write the corpus into ``root`` (an empty folder) and return its cases."""
    d = root / "in"
    d.mkdir(parents=True)
    out = str(root / "out")
    rng = np.random.default_rng(0)
    face = RECIPES / "faces.yaml"
    astro = RECIPES / "astronomy.yaml"
    micro = RECIPES / "microscopy.yaml"
    sat = RECIPES / "satellite.yaml"
    cases: list[Case] = []

    def run(name: str, recipe: Path, source: Path, message: str, *extra: str, status: int = 1) -> None:
        overrides = [extra[i + 1] for i, a in enumerate(extra) if a == "--set"]
        cases.append(Case(name, ["run", str(recipe), str(source), "-o", out, "-q", *FAST, *extra], status, message,
                          recipe, source, overrides))

    def cli(name: str, argv: list[str], message: str, status: int = 1) -> None:
        cases.append(Case(name, argv, status, message))

    grey = rng.integers(0, 255, (16, 16), dtype=np.uint8)
    rgb = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    sky = rng.normal(100, 5, (32, 32)).astype(np.float32)
    # --- files that are not what they say, or nothing at all
    (d / "empty.png").write_bytes(b"")
    run("empty PNG", face, d / "empty.png", "cannot read")
    (d / "truncated.png").write_bytes((RECIPES / "samples" / "face_observed.png").read_bytes()[:60])
    run("truncated PNG", face, d / "truncated.png", "cannot read")
    (d / "noise.png").write_bytes(rng.bytes(2000))
    run("random bytes as PNG", face, d / "noise.png", "cannot read")
    _fits(d / "fits_bytes.fits", sky).rename(d / "fits_bytes.png")
    run("FITS bytes named .png", face, d / "fits_bytes.png", "FITS file named")
    _png(d / "png_bytes.png", rgb).rename(d / "png_bytes.fits")
    run("PNG bytes named .fits", astro, d / "png_bytes.fits", "PNG file named")
    _png(d / "png_bytes2.png", grey).rename(d / "png_bytes.tif")
    run("PNG bytes named .tif", micro, d / "png_bytes.tif", "PNG file named")
    (d / "text.tif").write_text("not a tiff\n")
    run("text named .tif", sat, d / "text.tif", "cannot read")
    (d / "text.fits").write_text("SIMPLE  = T\n")
    run("text named .fits", astro, d / "text.fits", "cannot read")
    (d / "image.xyz").write_bytes(b"abc")
    run("unknown suffix", face, d / "image.xyz", "unsupported file type")
    (d / "folder.png").mkdir()
    run("folder named .png", face, d / "folder.png", "folder")
    run("missing input", face, d / "missing.png", "not found")
    # --- sizes
    run("1x1 PNG", face, _png(d / "one.png", rgb[:1, :1]), "too small")
    run("1x1 FITS", astro, _fits(d / "one.fits", sky[:1, :1], GAIN=1.0, RDNOISE=1.0, SKY=0.0), "too small")
    run("3x3 TIFF (microscopy, 4x)", micro, Path(tifffile.imwrite(d / "three.tif", grey[:3, :3]) or d / "three.tif"),
        "too small")
    run("2x40 strip", sat, Path(tifffile.imwrite(d / "strip.tif", rgb[:2, :, :]) or d / "strip.tif"), "too small")
    run("PNG bomb 40000x40000", face, _bomb_png(d / "bomb.png", 40000, 40000), "too large")
    run("PNG bomb 100000x4000", face, _bomb_png(d / "wide.png", 100000, 4000), "too large")
    big = fits.Header({"SIMPLE": True, "BITPIX": -32, "NAXIS": 2, "NAXIS1": 60000, "NAXIS2": 60000})
    (d / "huge.fits").write_bytes(big.tostring().encode() + b"\0" * 2880)
    run("FITS declaring 60000x60000", astro, d / "huge.fits", "too large")
    tifffile.imwrite(d / "huge.tif", np.zeros((16, 16), np.uint16))
    with tifffile.TiffFile(d / "huge.tif", mode="r+b") as tif:
        for code in (256, 257):  # ImageWidth, ImageLength
            tif.pages.first.tags[code].overwrite(40000)
    run("TIFF declaring 40000x40000", micro, d / "huge.tif", "too large")
    run("output too large (faces, 32x)", face, _png(d / "zeros.png", np.zeros((2000, 2000, 3), np.uint8)), "too large",
        "--set", "forward.1.factor=32")
    # --- shapes and dtypes
    run("4-D FITS", astro, _fits(d / "cube4.fits", np.zeros((2, 2, 16, 16), np.float32)), "dimensions")
    run("1-D FITS", astro, _fits(d / "line.fits", np.zeros(64, np.float32)), "no image HDU")
    run("FITS with no data", astro, _fits(d / "nodata.fits", None), "no image HDU")
    tab = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.zeros(3))])
    fits.HDUList([fits.PrimaryHDU(), tab]).writeto(d / "table.fits")
    run("FITS with a table only", astro, d / "table.fits", "no image HDU")
    run("FITS HDU index out of range", astro, _fits(d / "hdu.fits", sky, GAIN=1.0, RDNOISE=1.0, SKY=0.0), "HDU 5",
        "--set", "domain.hdu=5")
    tifffile.imwrite(d / "complex.tif", (rng.normal(size=(16, 16)) + 1j).astype(np.complex64))
    run("complex TIFF", micro, d / "complex.tif", "complex")
    tifffile.imwrite(d / "bool.tif", rng.random((16, 16)) > 0.5)
    run("boolean TIFF", micro, d / "bool.tif", "boolean")
    tifffile.imwrite(d / "pages.tif", rng.integers(0, 255, (300, 16, 16, 3), dtype=np.uint8), photometric="rgb")
    run("300-page TIFF into satellite", sat, d / "pages.tif", "pages")
    tifffile.imwrite(d / "five.tif", np.zeros((2, 3, 2, 16, 16), np.uint16), imagej=True, metadata={"axes": "TZCYX"})
    run("5-D TIFF into satellite", sat, d / "five.tif", "pages")
    run("16-bit grey PNG into faces", face, _png(d / "grey16.png", (rng.random((16, 16)) * 65535).astype(np.uint16)),
        "16-bit")
    run("float TIFF into faces", face, Path(tifffile.imwrite(d / "face.tif", rgb.astype(np.float32)) or d / "face.tif"),
        "PNG/JPEG")
    # --- no valid pixel
    nan = np.full((32, 32), np.nan, np.float32)
    run("all-NaN FITS", astro, _fits(d / "nan.fits", nan, GAIN=1.0, RDNOISE=1.0, SKY=0.0), "no valid pixel")
    run("all-inf FITS", astro, _fits(d / "inf.fits", nan * 0 + np.inf, GAIN=1.0, RDNOISE=1.0, SKY=0.0), "no valid pixel")
    run("all-BLANK FITS", astro, _fits(d / "blank.fits", np.full((32, 32), -99, np.int16), BLANK=-99, GAIN=1.0,
                                       RDNOISE=1.0, SKY=0.0), "no valid pixel")
    run("SATURATE=0 FITS", astro, _fits(d / "sat0.fits", sky, SATURATE=0.0, GAIN=1.0, RDNOISE=1.0, SKY=0.0),
        "no valid pixel")
    run("all-NaN float TIFF (microscopy)", micro, Path(tifffile.imwrite(d / "nan.tif", nan) or d / "nan.tif"),
        "no valid pixel")
    stack = np.stack([sky, nan])
    run("one all-NaN plane of two", micro, Path(tifffile.imwrite(d / "halfnan.tif", stack, imagej=True,
        metadata={"axes": "ZYX"}) or d / "halfnan.tif"), "plane 2 has no valid pixel")
    rgba = np.zeros((16, 16, 4), np.uint8)
    run("fully transparent PNG", face, _png(d / "clear.png", rgba), "no valid pixel")
    tifffile.imwrite(d / "nodata.tif", np.zeros((32, 32, 3), np.uint8), photometric="rgb",
                     extratags=[(42113, "s", 0, "0", False)])
    run("all-nodata GeoTIFF", sat, d / "nodata.tif", "no valid pixel")
    run("all-nodata by recipe", sat, Path(tifffile.imwrite(d / "zeros.tif", np.zeros((32, 32, 3), np.uint8),
        photometric="rgb") or d / "zeros.tif"), "no valid pixel", "--set", "domain.nodata=0")
    # --- header values
    run("BSCALE=1e36 (beyond float32)", astro, _fits(d / "bscale.fits", np.full((32, 32), 30000, np.int16),
                                                     BSCALE="1E36", GAIN=1.0, RDNOISE=1.0, SKY=0.0), "BSCALE")
    run("CRPIX1 = NaN", astro, _fits(d / "crpix.fits", sky, CRPIX1=float("nan"), GAIN=1.0, RDNOISE=1.0, SKY=0.0),
        "CRPIX1")
    run("CDELT1 = 0", astro, _fits(d / "cdelt.fits", sky, CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CDELT1=0.0, CDELT2=0.0,
                                   GAIN=1.0, RDNOISE=1.0, SKY=0.0), "WCS")
    run("GAIN = -2", astro, _fits(d / "gain.fits", sky, GAIN=-2.0, RDNOISE=1.0, SKY=0.0), "gain")
    run("GAIN = 0", astro, _fits(d / "gain0.fits", sky, GAIN=0.0, RDNOISE=1.0, SKY=0.0), "gain")
    run("RDNOISE = NaN", astro, _fits(d / "rdn.fits", sky, GAIN=1.0, RDNOISE=float("nan"), SKY=0.0), "RDNOISE")
    run("RDNOISE = -1", astro, _fits(d / "rdn1.fits", sky, GAIN=1.0, RDNOISE=-1.0, SKY=0.0), "read_noise")
    run("SKY = inf", astro, _fits(d / "skyinf.fits", sky, GAIN=1.0, RDNOISE=1.0, SKY=float("inf")), "SKY")
    run("GAIN missing, from_header", astro, _fits(d / "nogain.fits", sky, RDNOISE=1.0, SKY=0.0), "GAIN")
    run("SATURATE = NaN", astro, _fits(d / "satnan.fits", sky, SATURATE=float("nan"), GAIN=1.0, RDNOISE=1.0, SKY=0.0),
        "SATURATE")
    # --- recipes
    (d / "latin1.yaml").write_bytes("version: 1\n# caf\xe9\n".encode("latin-1"))
    cli("recipe not UTF-8", ["validate", str(d / "latin1.yaml")], "UTF-8")
    (d / "recipe_png.yaml").write_bytes((RECIPES / "samples" / "face_observed.png").read_bytes())
    cli("recipe is a PNG", ["validate", str(d / "recipe_png.yaml")], "UTF-8")
    (d / "list.yaml").write_text("- a\n- b\n")
    cli("recipe is a YAML list", ["validate", str(d / "list.yaml")], "mapping")
    (d / "empty.yaml").write_text("")
    cli("empty recipe", ["validate", str(d / "empty.yaml")], "is empty")
    (d / "syntax.yaml").write_text("domain: {kind: faces\nforward: [\n")
    cli("YAML syntax error", ["validate", str(d / "syntax.yaml")], "invalid YAML")
    (d / "dup.yaml").write_text((face.read_text()) + "seed: 1\n")
    cli("duplicate key", ["validate", str(d / "dup.yaml")], "duplicate key 'seed'")
    cli("unknown key", ["validate", str(_recipe(d / "unknown.yaml", "faces", colour="blue"))], "colour")
    cli("missing recipe", ["validate", str(d / "nope.yaml")], "not found")
    cli("recipe is a folder", ["validate", str(d)], "is a folder")
    for value in (".inf", ".nan", "-1", "0", "abc"):
        cli(f"noise.sigma={value}", ["validate", str(face), "--set", f"noise.sigma={value}"], "noise.sigma")
    cli("noise gain .inf", ["validate", str(micro), "--set", "noise.gain=.inf"], "noise.gain")
    cli("psf fwhm NaN", ["validate", str(face), "--set", "forward.0.psf.fwhm=.nan"], "fwhm")
    cli("factor 0", ["validate", str(face), "--set", "forward.1.factor=0"], "factor")
    cli("chi2_range reversed", ["validate", str(face), "--set", "search.chi2_range=[1.2,0.8]"], "chi2_range")
    cli("unknown domain", ["validate", str(face), "--set", "domain.kind=radar"], "domain")
    cli("unknown builtin prior", ["validate", str(face), "--set", "prior.name=nobody"], "no built-in prior 'nobody'")
    cli("builtin prior as a path", ["validate", str(face), "--set", "prior.name=../../etc/passwd"], "prior.name")
    cli("prior file missing", ["validate", str(_recipe(d / "pf.yaml", "faces", prior={"kind": "file", "path":
        str(d / "none.safetensors")}))], "not found")
    abort = _recipe(d / "abort.yaml", "faces", prior={"kind": "module", "factory": "os:abort", "resolution": 64,
                                                      "channels": 3, "latent_dim": 8})
    cli("module prior os:abort (validate)", ["validate", str(abort)], "--trust-code")
    cli("module prior os:abort (run)", ["run", str(abort), "-o", out, "-q"], "--trust-code")
    cli("--set broken YAML", ["validate", str(face), "--set", "noise.sigma=[1,"], "not valid YAML")
    cli("--set without =", ["validate", str(face), "--set", "noise.sigma"], "key.path=value")
    cli("--set unknown key", ["validate", str(face), "--set", "search.colour=1"], "colour")
    cli("--set into a list past its end", ["validate", str(face), "--set", "forward.7.factor=2"], "no list item 7")
    cli("recipe input missing", ["run", str(_recipe(d / "noin.yaml", "faces", input=str(d / "gone.png"))), "-o", out,
                                 "-q"], "not found")
    # --- outputs
    (root / "taken").write_text("x")
    cli("-o names a file", ["run", str(face), "-o", str(root / "taken"), "-q", *FAST], "not a folder")
    cli("-o under /dev/null", ["run", str(face), "-o", "/dev/null/out", "-q", *FAST], "not a folder")
    cli("-o under a file", ["run", str(face), "-o", str(root / "taken" / "sub"), "-q", *FAST], "not a folder")
    (root / "out2").mkdir()
    (root / "out2" / "face_observed.restored.png").write_text("x")
    cli("output exists", ["run", str(face), "-o", str(root / "out2"), "-q", *FAST], "output exists")
    (d / "a").mkdir()
    (d / "b").mkdir()
    _png(d / "a" / "same.png", rgb)
    _png(d / "b" / "same.png", rgb)
    cli("two inputs, one output name", ["run", str(face), str(d / "a" / "same.png"), str(d / "b" / "same.png"), "-o", out,
                                        "-q", *FAST], "same output")
    cli("simulate -o without a suffix", ["simulate", str(face), "-o", str(root / "taken")], "unsupported file type")
    (root / "taken.png").write_text("x")
    cli("simulate -o exists", ["simulate", str(face), "-o", str(root / "taken.png")], "output exists")
    _fits(d / "nan64.fits", np.full((64, 64), np.nan, np.float32))
    cli("simulate all-NaN FITS", ["simulate", str(astro), str(d / "nan64.fits"), "-o", str(root / "sim.fits")],
        "no valid pixel")
    cli("simulate 1x1", ["simulate", str(face), str(d / "one.png"), "-o", str(root / "sim.png")], "too small")
    # --- priors
    tiny = face.read_text().replace("{kind: builtin, name: faces}", "{kind: file, path: PRIOR}")

    def prior_case(name: str, prior: Path, message: str) -> None:
        recipe = d / f"prior_{len(cases)}.yaml"
        recipe.write_text(tiny.replace("PRIOR", str(prior)).replace("samples/", str(RECIPES / "samples") + "/"))
        cli(f"{name} (validate)", ["validate", str(recipe)], message)
        cli(f"{name} (info)", ["priors", "info", str(prior)], message)

    (d / "junk.safetensors").write_bytes(rng.bytes(500))
    prior_case("prior of random bytes", d / "junk.safetensors", "not a safetensors prior")
    save_file({"w": torch.zeros(2)}, str(d / "nocard.safetensors"))
    prior_case("prior without a card", d / "nocard.safetensors", "no model card")
    prior_case("card without arguments", _prior(d / "noargs.safetensors", lambda t, c: c.pop("arguments")), "arguments")
    prior_case("card resolution wrong", _prior(d / "res.safetensors", lambda t, c: c.update(resolution=32)),
               "resolution")
    prior_case("card channels wrong", _prior(d / "ch.safetensors", lambda t, c: c.update(channels=1)), "channels")
    prior_case("card latent_dim wrong", _prior(d / "ld.safetensors", lambda t, c: c.update(latent_dim=7)), "latent_dim")
    prior_case("weights of the wrong shape", _prior(d / "shape.safetensors", lambda t, c: t.update(
        {k: torch.zeros(3) for k in list(t)[:1]})), "do not match")
    prior_case("NaN weights", _prior(d / "nanw.safetensors", lambda t, c: t.update(
        {k: v * float("nan") for k, v in list(t.items())[:1]})), "not finite")
    torch.save({"a": torch.zeros(1)}, d / "weights.pt")
    prior_case("pickled prior", d / "weights.pt", "pickled weights are refused")
    cli("priors info outside the weights", ["priors", "info", "../../pyproject"], "no built-in prior")
    cli("priors info unknown", ["priors", "info", "nobody"], "no built-in prior")
    torch.save({"g_ema": {"style.1.weight": torch.zeros(4, 4)}}, d / "partial.pt")
    cli("priors convert partial checkpoint", ["priors", "convert", str(d / "partial.pt"), "-o",
                                              str(root / "conv.safetensors")], "incomplete")
    (d / "junk.pt").write_bytes(rng.bytes(300))
    cli("priors convert junk", ["priors", "convert", str(d / "junk.pt"), "-o", str(root / "conv.safetensors")],
        "refused to load")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"g_ema": Evil()}, d / "evil.pt")
    cli("priors convert evil pickle", ["priors", "convert", str(d / "evil.pt"), "-o", str(root / "conv.safetensors")],
        "refused to load")
    # --- training configs
    (d / "train_list.yaml").write_text("- name: x\n")
    cli("training config a list", ["train-prior", str(d / "train_list.yaml")], "mapping")
    (d / "train_noname.yaml").write_text("data: imgs/\nout: x.safetensors\n")
    cli("training config without name", ["train-prior", str(d / "train_noname.yaml")], "name")
    (d / "train_nodata.yaml").write_text(f"name: x\ndata: {d / 'none'}/*.png\nout: {root / 'x.safetensors'}\n")
    cli("training config without images", ["train-prior", str(d / "train_nodata.yaml")], "no training images")
    # --- usage (exit 2)
    cli("priors info without a name", ["priors", "info"], "needs a NAME", status=2)
    cli("priors convert without -o", ["priors", "convert", str(d / "partial.pt")], "needs -o", status=2)
    cli("--threads 0", ["run", str(face), "--threads", "0", "-o", out], "--threads", status=2)
    cli("unknown option", ["run", str(face), "--colour"], "unrecognized", status=2)
    cli("no subcommand", [], "required", status=2)
    cli("--device nonsense", ["run", str(face), "--device", "abacus", "-o", out, "-q"], "device")
    return cases


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path("corpus")
    cases = build(root)
    for case in cases:
        print(f"{case.status}  {case.name}: restore {' '.join(case.argv)}")
    print(f"{len(cases)} cases in {root}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
