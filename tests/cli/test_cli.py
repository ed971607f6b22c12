"""`ccdgui simulate` → `ccdgui reduce` end to end, and clear one-line errors."""

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.stats import mad_std

from ccdgui.cli import main

SMALL = ["--size", "300", "200", "--n-bias", "4", "--n-dark", "4", "--n-flat", "3", "--n-light", "2",
         "--filters", "r,g", "--seed", "4"]


def sha256s(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.fits"))}


def ccdgui(*args):
    return subprocess.run([sys.executable, "-m", "ccdgui", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    folder = tmp_path_factory.mktemp("night")
    assert main(["simulate", str(folder), *SMALL]) == 0
    return folder


def test_simulate_writes_frames_and_truth(night):
    names = sorted(p.name for p in night.glob("*.fits"))
    assert len(names) == 4 + 4 + 2 * 3 + 2 * 2
    header = fits.getheader(next(night.glob("light_g_*.fits")))
    assert header["IMAGETYP"] == "LIGHT" and header["EXPTIME"] == 30.0 and header["FILTER"] == "g"
    assert header["NAXIS1"] == 300 and header["NAXIS2"] == 200
    for key in ("GAIN", "RDNOISE", "DATE-OBS"):
        assert key in header
    flat = fits.getdata(night / "truth" / "flat.fits")
    assert flat.shape == (200, 300) and 0.9 < flat.mean() < 1.0
    assert fits.getdata(night / "truth" / "sky_stars.fits").min() >= 19.9


def test_reduce_end_to_end(night, tmp_path, capsys):
    before = sha256s(night)
    out = tmp_path / "reduced"
    assert main(["reduce", str(night), str(out), "--combine", "median", "--sigma-low", "4"]) == 0
    assert sha256s(night) == before
    said = capsys.readouterr().err  # the simulation's truth/ folder is named as such, not "unknown"
    assert "2 simulation truth file(s) (IMAGETYP = TRUTH) left aside: flat.fits, sky_stars.fits" in said
    assert "unknown type" not in said
    masters = sorted(p.name for p in (out / "masters").iterdir())
    assert masters == ["master_bias.fits", "master_dark_60s.fits", "master_flat_g.fits", "master_flat_r.fits"]
    calibrated = sorted(p.name for p in (out / "calibrated").iterdir())
    assert calibrated == sorted(p.name for p in night.glob("light_*.fits"))
    header = fits.getheader(out / "masters" / "master_dark_60s.fits")
    assert header["IMAGETYP"] == "MASTER DARK" and header["NCOMBINE"] == 4 and header["EXPTIME"] == 60.0
    assert fits.getheader(out / "masters" / "master_flat_g.fits")["FILTER"] == "g"
    record = json.loads((out / "recipe.json").read_text())
    assert record["recipe"]["combine"] == "median" and record["recipe"]["sigma_low"] == 4.0
    checksums = {entry["file"].split("/")[-1]: entry["sha256"] for entry in record["inputs"]}
    assert checksums == before
    assert record["software"]["ccdgui"]
    # calibrated ≈ mean(true flat) × true sky+stars
    mean_flat = fits.getdata(night / "truth" / "flat.fits").mean()
    truth = fits.getdata(night / "truth" / "sky_stars.fits") * mean_flat
    light = fits.getdata(out / "calibrated" / "light_r_000.fits")
    assert light.dtype == np.dtype(">f4")
    assert abs(np.median(light - truth)) < 15
    assert mad_std(light - truth) < 1000


def test_recipe_replay_gives_identical_masters(night, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["reduce", str(night), str(first), "--reject", "minmax", "--quiet"]) == 0
    assert main(["reduce", str(night), str(second), "--recipe", str(first / "recipe.json"), "--quiet"]) == 0
    assert json.loads((second / "recipe.json").read_text())["recipe"]["reject"] == "minmax"
    np.testing.assert_array_equal(fits.getdata(first / "masters" / "master_bias.fits"),
                                  fits.getdata(second / "masters" / "master_bias.fits"))


@pytest.mark.skipif(shutil.which("fitsverify") is None, reason="fitsverify is not installed")
def test_outputs_pass_fitsverify(night, tmp_path):
    out = tmp_path / "r"
    assert main(["reduce", str(night), str(out), "--quiet"]) == 0
    files = sorted(out.rglob("*.fits"))
    result = subprocess.run(["fitsverify", "-q", "-e", *map(str, files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert result.stdout.count("OK") == len(files)


def test_biases_alone_give_a_master_bias(night, tmp_path):
    biases = tmp_path / "biases"
    biases.mkdir()
    for path in night.glob("bias_*.fits"):
        shutil.copy(path, biases)
    assert main(["reduce", str(biases), str(tmp_path / "out"), "--quiet"]) == 0
    assert [p.name for p in (tmp_path / "out" / "masters").iterdir()] == ["master_bias.fits"]


@pytest.mark.parametrize("args, message", [
    (["reduce", "{empty}", "{out}"], "no readable FITS frame"),
    (["reduce", "{missing}", "{out}"], "does not exist"),
    (["reduce", "{empty}", "{out}", "--combine", "mode"], "combine = 'mode': one of average, median, sum"),
    (["simulate", "{out}", "--size", "0", "10"], "must be ≥ 8"),
    (["reduce", "{empty}", "{out}", "--recipe", "{bad_recipe}"], "not valid JSON"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_give_one_line_errors(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "junk.fits").write_bytes(b"not fits at all" * 100)
    (tmp_path / "bad.json").write_text("{ nope")
    places = {"empty": tmp_path / "empty", "out": tmp_path / "out", "missing": tmp_path / "missing",
              "bad_recipe": tmp_path / "bad.json"}
    result = ccdgui(*[a.format(**places) for a in args])
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if not line.startswith("ccdgui: skipped")]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_version():
    result = ccdgui("--version")
    assert result.returncode == 0 and result.stdout.startswith("ccdgui ")


def test_reduce_a_real_night_with_bad_files_mixed_in(shared_data, tmp_path):
    """The UMD r night plus generated bad files: every bad file is skipped with its reason, the good
    frames still reduce to the same levels, inputs stay byte-identical, outputs pass fitsverify."""
    night = shared_data("umd_st8_ngc520/2018-10-19_r")
    good = sorted(night.glob("*.fit*"))
    (night / "zero.fits").write_bytes(b"")
    (night / "half.fits").write_bytes(good[0].read_bytes()[: good[0].stat().st_size // 2])
    (night / "noise.fits").write_bytes(np.random.default_rng(0).bytes(30000))
    nan_frame = fits.PrimaryHDU(np.full((20, 20), np.nan, np.float32))
    nan_frame.header.update(IMAGETYP="LIGHT", EXPTIME=300.0)
    nan_frame.writeto(night / "allnan.fits")
    odd = fits.PrimaryHDU(np.ones((50, 60), np.uint16) * 900)
    odd.header.update(IMAGETYP="Bias Frame")
    odd.writeto(night / "small_bias.fits")  # another size: its own master, never mixed in
    before = sha256s(night)
    out = tmp_path / "reduced"
    done = ccdgui("reduce", night, out)
    assert done.returncode == 0, done.stderr
    for name, reason in (("zero.fits", "empty file"), ("half.fits", "truncated"),
                         ("noise.fits", "not a FITS file"), ("allnan.fits", "no finite pixel")):
        assert any(name in line and reason in line for line in done.stderr.splitlines()), (name, done.stderr)
    assert "Traceback" not in done.stderr
    assert sha256s(night) == before
    calibrated = sorted((out / "calibrated").iterdir())
    assert len(calibrated) == 3
    for path in calibrated:
        assert 775 < np.median(fits.getdata(path)) < 795
    masters = sorted(p.name for p in (out / "masters").iterdir())
    assert masters == ["master_bias_1530x1020_-10C_2018-10-18.fits",  # names say how the two differ
                       "master_bias_60x50_unknownT_unknown-night.fits",
                       "master_dark_300s.fits", "master_dark_3s.fits", "master_flat_Sloan_r.fits"]
    record = json.loads((out / "recipe.json").read_text())
    assert {q["file"].split("/")[-1] for q in record["quarantined"]} == {
        "zero.fits", "half.fits", "noise.fits", "allnan.fits"}
    if shutil.which("fitsverify"):
        files = sorted(out.rglob("*.fits"))
        result = subprocess.run(["fitsverify", "-q", "-e", *map(str, files)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_masks_and_cosmic_rays_from_the_command_line(tmp_path):
    night = tmp_path / "night"
    assert main(["simulate", str(night), "--size", "300", "200", "--n-bias", "3", "--n-dark", "3",
                 "--n-flat", "3", "--n-light", "1", "--cosmic-rays", "20", "--seed", "8"]) == 0
    out = tmp_path / "out"
    assert main(["reduce", str(night), str(out), "--quiet", "--mask-hot-pixels", "--cosmic-rays",
                 "auto"]) == 0
    light = fits.open(next((out / "calibrated").iterdir()))[0]
    assert light.header["NBADPIX"] == int(1e-4 * 300 * 200)  # the simulated camera's hot pixels
    assert np.isnan(light.data).sum() == light.header["NBADPIX"]
    from ccdgui.model.masks import astroscrappy_available

    if astroscrappy_available():  # the guide's hits are 10 × 4 px blobs: L.A.Cosmic's job
        assert light.header["NCOSMIC"] > 300
        assert "(lacosmic)" in str(light.header["HISTORY"])
    record = json.loads((out / "recipe.json").read_text())
    assert record["recipe"]["hot_pixels"] is True and record["recipe"]["cosmic_rays"] == "auto"
