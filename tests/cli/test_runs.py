"""Runs into output folders: replay and verify, overwrite, locks, killed runs, full disks, changed
inputs. Every problem ends in one line and an exit status, never a traceback or a partial file."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from astropy.io import fits

from ccdgui.cli import main
from ccdgui.model import execute, fitsio
from ccdgui.model.files import sha256_of

from .conftest import one_line_error, simulated_folder

SMALL = ["--size", "120", "90", "--n-bias", "3", "--n-dark", "3", "--n-flat", "3", "--n-light", "3",
         "--seed", "7"]


@pytest.fixture
def night(tmp_path):
    return simulated_folder(tmp_path, SMALL)


def test_replay_reproduces_every_output_bit_for_bit(night, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reduce", str(night), str(out), "--quiet"]) == 0
    record = json.loads((out / "recipe.json").read_text())
    assert len(record["outputs"]) == 6 and record["input_root"] == str(night.resolve())
    assert {o["file"]: o["sha256"] for o in record["outputs"]} == {
        p.relative_to(out).as_posix(): sha256_of(p) for p in out.rglob("*.fits")}
    capsys.readouterr()
    assert main(["reduce", "--recipe", str(out / "recipe.json"), "--quiet"]) == 0
    assert "6 outputs reproduced bit for bit from 12 input(s)" in capsys.readouterr().err


def test_replay_refuses_a_changed_input_and_names_it(night, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reduce", str(night), str(out), "--quiet"]) == 0
    light = night / "light_r_001.fits"
    with fits.open(light, mode="update") as hdul:
        hdul[0].data[5, 5] += 100
    capsys.readouterr()
    assert main(["reduce", "--recipe", str(out / "recipe.json"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "light_r_001.fits: sha256" in err and "1 input(s) differ from the recipe: refused" in err
    assert main(["reduce", "--recipe", str(out / "recipe.json"), "--quiet", "--allow-changed-inputs"]) == 1
    err = capsys.readouterr().err
    assert "calibrated/light_r_001.fits: differs" in err and "1 output(s) not reproduced (of 6)" in err


def test_a_non_empty_output_folder_is_refused_and_overwrite_replaces_the_run_whole(night, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reduce", str(night), str(out), "--quiet"]) == 0
    (out / "notes.txt").write_text("mine")
    assert main(["reduce", str(night), str(out), "--quiet"]) == 2
    assert "is not empty (it holds the outputs of a previous run)" in one_line_error(capsys)
    (night / "light_r_002.fits").unlink()  # a rerun with fewer lights
    assert main(["reduce", str(night), str(out), "--quiet", "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "calibrated").iterdir()) == ["light_r_000.fits", "light_r_001.fits"]
    assert (out / "notes.txt").read_text() == "mine"  # not an output of ours: left alone
    assert json.loads((out / "recipe.json").read_text())["calibrated"] == ["light_r_000.fits",
                                                                          "light_r_001.fits"]


def test_output_folder_problems_end_in_one_line(night, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["reduce", str(night), str(tmp_path / "file"), "--quiet"]) == 2
    assert "exists and is not a folder" in one_line_error(capsys)
    assert main(["reduce", str(night), str(night / "sub" / ".."), "--quiet"]) == 2
    assert "must differ from the input folder" in one_line_error(capsys)
    assert main(["reduce", str(night / "inner"), str(night), "--quiet"]) == 2
    one_line_error(capsys)


def test_a_second_run_into_a_locked_folder_refuses_and_a_stale_lock_is_cleared(night, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(["sleep", "30"])
    try:
        (out / execute.LOCK_NAME).write_text(str(holder.pid))
        assert main(["reduce", str(night), str(out), "--quiet"]) == 2
        assert f"another ccdgui run (process {holder.pid}) is writing into" in one_line_error(capsys)
    finally:
        holder.kill()
        holder.wait()
    assert main(["reduce", str(night), str(out), "--quiet"]) == 0  # its process is gone: the lock is stale
    assert not (out / execute.LOCK_NAME).exists()


def test_a_full_disk_names_enospc_keeps_finished_masters_and_leaves_no_partial_file(night, tmp_path,
                                                                                 monkeypatch, capsys):
    out = tmp_path / "out"
    real_write = fitsio.write_frame
    written = []

    def write_until_full(frame, path, **kwargs):
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        return real_write(frame, path, **kwargs)

    monkeypatch.setattr(fitsio, "write_frame", write_until_full)
    assert main(["reduce", str(night), str(out), "--quiet"]) == 2
    line = one_line_error(capsys)
    assert "cannot write masters/master_flat_r.fits: no space left on device (ENOSPC)" in line
    assert "outputs finished so far are kept" in line
    assert sorted(p.name for p in (out / "masters").iterdir()) == ["master_bias.fits", "master_dark_60s.fits"]
    assert not list(out.rglob("*.part")) and not (out / "recipe.json").exists()
    assert not (out / execute.LOCK_NAME).exists()
    monkeypatch.setattr(fitsio, "write_frame", real_write)
    assert main(["reduce", str(night), str(out), "--quiet"]) == 2  # the stopped run's outputs are there
    assert "holds the outputs of a previous run" in one_line_error(capsys)
    assert main(["reduce", str(night), str(out), "--quiet", "--overwrite"]) == 0


def test_a_real_full_disk(night, tmp_path, capsys):
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        assert main(["reduce", str(night), str(mount / "out"), "--quiet"]) == 2
        assert "no space left on device (ENOSPC)" in one_line_error(capsys)
        assert not list(mount.rglob("*.part")) and not list(mount.rglob(".ccdgui-scratch-*"))
        for path in (mount / "out").rglob("*.fits"):  # whatever has a final name is complete
            assert fitsio.read_frame(path).shape == (90, 120)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_killed_run_leaves_no_partial_file_and_the_next_run_clears_up(tmp_path):
    night = tmp_path / "big"
    assert main(["simulate", str(night), "--size", "1500", "1500", "--n-bias", "8", "--n-dark", "8",
                 "--n-flat", "8", "--n-light", "6", "--seed", "1"]) == 0
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "ccdgui", "reduce", str(night), str(out), "--quiet"],
                           stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out / "masters").is_dir() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    for path in out.rglob("*.fits"):  # complete, whatever was written before the kill
        assert fitsio.read_frame(path).shape == (1500, 1500)
    done = subprocess.run([sys.executable, "-m", "ccdgui", "reduce", str(night), str(out), "--quiet",
                           "--overwrite"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not list(out.rglob("*.part")) and not list(out.glob(".ccdgui*"))
    assert len(json.loads((out / "recipe.json").read_text())["outputs"]) == 9


def test_outputs_follow_the_umask(night, tmp_path):
    out = tmp_path / "out"
    assert main(["reduce", str(night), str(out), "--quiet"]) == 0
    modes = {oct(p.stat().st_mode & 0o777) for p in out.rglob("*") if p.is_file()}
    expected = 0o666 & ~fitsio._UMASK
    assert modes == {oct(expected)}


def test_simulate_never_overwrites_without_being_asked(night, capsys):
    before = sha256_of(night / "bias_000.fits")
    assert main(["simulate", str(night), *SMALL, "--seed", "8"]) == 2
    assert "already holds" in one_line_error(capsys) and sha256_of(night / "bias_000.fits") == before
    assert main(["simulate", str(night), *SMALL, "--seed", "8", "--overwrite"]) == 0
    assert sha256_of(night / "bias_000.fits") != before


def test_an_input_changed_during_the_run_is_an_error_named(night, tmp_path):
    from ccdgui.model.plan import make_plan
    from ccdgui.model.recipe import Recipe

    frames, _ = fitsio.scan_folder(night, lazy=True)
    plan = make_plan(frames, Recipe(), root=night)
    running = execute.execute(plan, Recipe(), tmp_path / "out")
    next(running)
    later = time.time() + 5
    os.utime(night / "flat_r_000.fits", (later, later))
    try:
        while True:
            next(running)
    except StopIteration as stop:
        result = stop.value
    assert result.changed_inputs == ["flat_r_000.fits"]
    assert "input flat_r_000.fits changed during the run: its outputs are not trustworthy" in result.problems
    record = json.loads((tmp_path / "out" / "recipe.json").read_text())
    assert record["changed_inputs"] == ["flat_r_000.fits"]


def test_new_recipe_options_reach_the_engine_and_replay(night, tmp_path, capsys):
    """Weights, absolute clipping, a flat floor, overscan fitting and bad columns, from the command line
    into the masters' headers and recipe.json, and replayed bit for bit."""
    for path in night.glob("*.fits"):  # an overscan strip for the fit to use
        with fits.open(path, mode="update") as hdul:
            hdul[0].header["BIASSEC"] = "[1:4,1:90]"
    out = tmp_path / "out"
    flags = ["--weights", "inverse_variance", "--clip-max", "60000", "--flat-min-value", "0.5",
             "--overscan-fit", "legendre", "--overscan-order", "2", "--mask-flat-defects",
             "--flat-bad-columns", "--quiet"]
    assert main(["reduce", str(night), str(out), *flags]) == 0
    record = json.loads((out / "recipe.json").read_text())
    assert len(record["values"]["master_bias.fits"]["weights"]) == 3
    assert record["recipe"]["clip_max"] == 60000 and record["recipe"]["overscan_fit"] == "legendre"
    history = " ".join(fits.getheader(out / "masters/master_flat_r.fits")["HISTORY"])
    assert "values outside [-inf, 60000] rejected first" in history
    assert "weighted by inverse_variance" in history and "legendre fit of order 2" in history
    capsys.readouterr()
    assert main(["reduce", "--recipe", str(out / "recipe.json"), "--quiet"]) == 0
    assert "6 outputs reproduced bit for bit" in capsys.readouterr().err


def test_options_that_do_not_go_together_are_refused_before_any_work(night, tmp_path, capsys):
    assert main(["reduce", str(night), str(tmp_path / "out"), "--weights", "keyword"]) == 2
    assert "needs weights_keyword" in one_line_error(capsys)
    assert main(["reduce", str(night), str(tmp_path / "out"), "--clip-min", "5", "--clip-max", "1"]) == 2
    assert "must be below clip_max" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()
