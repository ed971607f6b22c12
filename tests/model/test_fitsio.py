"""FITS reading and writing: scaling, multi-extension files, atomic writes, inputs protected."""

import hashlib
import os
import shutil
import subprocess

import numpy as np
import pytest
from astropy.io import fits

from ccdgui.model import fitsio
from ccdgui.model.frame import Frame, FrameKind


def write_uint16(path, values, **cards):
    hdu = fits.PrimaryHDU(np.asarray(values, dtype=np.uint16))
    for key, value in cards.items():
        hdu.header[key] = value
    hdu.writeto(path)
    return path


def test_uint16_with_bzero_becomes_float32_physical(tmp_path):
    values = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    path = write_uint16(tmp_path / "u16.fits", values, IMAGETYP="Bias Frame", EXPTIME=0.0)
    assert fits.getheader(path)["BZERO"] == 32768
    frame = fitsio.read_frame(path)
    assert frame.data.dtype == np.float32 and frame.data.dtype.isnative
    np.testing.assert_array_equal(frame.data, values.astype(np.float32))
    assert frame.kind is FrameKind.BIAS and frame.exptime == 0.0 and frame.name == "u16.fits"


def test_bscale_bzero_and_blank(tmp_path):
    stored = np.array([[1, 2], [3, -32768]], dtype=np.int16)
    hdu = fits.PrimaryHDU(stored)
    hdu.header["BSCALE"] = 0.5
    hdu.header["BZERO"] = 100.0
    hdu.header["BLANK"] = -32768
    hdu.writeto(tmp_path / "s.fits")
    data = fitsio.read_frame(tmp_path / "s.fits").data
    np.testing.assert_allclose(data[0], [100.5, 101.0])
    assert np.isnan(data[1, 1])


def test_extension_inherits_primary_keywords_and_compressed(tmp_path):
    primary = fits.PrimaryHDU()
    primary.header["EXPTIME"] = 12.5
    primary.header["IMAGETYP"] = "DARK"
    image = fits.CompImageHDU(np.arange(64 * 48, dtype=np.float32).reshape(48, 64), compression_type="RICE_1")
    image.header["EXPTIME"] = 30.0  # the extension's own value wins
    fits.HDUList([primary, image]).writeto(tmp_path / "c.fits")
    frame = fitsio.read_frame(tmp_path / "c.fits")
    assert frame.shape == (48, 64) and frame.exptime == 30.0 and frame.kind is FrameKind.DARK
    assert abs(float(frame.data[10, 10]) - 10 * 64 - 10) < 1.0


@pytest.mark.parametrize("maker, reason", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(os.urandom(5000)), "not a FITS file"),
    (lambda p: fits.PrimaryHDU(np.zeros((3, 4, 5), np.float32)).writeto(p), "3-D"),
    (lambda p: fits.PrimaryHDU().writeto(p), "no image"),
    (lambda p: fits.PrimaryHDU(np.full((4, 4), np.nan, np.float32)).writeto(p), "all NaN"),
])
def test_bad_files_raise_one_line_reasons(tmp_path, maker, reason):
    path = tmp_path / "bad.fits"
    maker(path)
    with pytest.raises(fitsio.FrameError, match=reason):
        fitsio.read_frame(path)


def test_truncated_file_is_quarantined_not_raised(tmp_path):
    good = write_uint16(tmp_path / "good.fits", np.ones((100, 100)), IMAGETYP="BIAS")
    data = good.read_bytes()
    (tmp_path / "half.fits").write_bytes(data[: len(data) // 2])
    frames, problems = fitsio.scan_folder(tmp_path)
    assert [f.name for f in frames] == ["good.fits"]
    assert len(problems) == 1 and problems[0].path.name == "half.fits"
    assert "\n" not in problems[0].reason and problems[0].reason


def test_write_is_float32_keeps_header_and_appends_history(tmp_path):
    path = write_uint16(tmp_path / "in.fits", np.full((8, 9), 1000), IMAGETYP="Light Frame",
                        FILTER="Sloan r'", EXPTIME=300.0)
    frame = fitsio.read_frame(path)
    out = fitsio.write_frame(frame.derive(frame.data * 2, history="Doubled"), tmp_path / "out" / "o.fits")
    with fits.open(out) as hdul:
        assert hdul[0].header["BITPIX"] == -32 and "BZERO" not in hdul[0].header
        assert hdul[0].header["FILTER"] == "Sloan r'" and hdul[0].header["EXPTIME"] == 300.0
        history = str(hdul[0].header["HISTORY"])
        assert "Doubled" in history and "Written by ccdgui" in history
        np.testing.assert_array_equal(hdul[0].data, np.full((8, 9), 2000, np.float32))
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".part")]


def test_never_overwrites_input_or_existing(tmp_path):
    path = write_uint16(tmp_path / "in.fits", np.ones((4, 4)))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    frame = fitsio.read_frame(path)
    with pytest.raises(FileExistsError, match="input"):
        fitsio.write_frame(frame, path, overwrite=True)
    other = Frame(np.zeros((4, 4), np.float32), name="x")
    with pytest.raises(FileExistsError, match="input"):
        fitsio.write_frame(other, tmp_path / "in.fits", overwrite=True, protect=[path])
    with pytest.raises(FileExistsError, match="exists"):
        fitsio.write_frame(other, tmp_path / "in.fits")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    frame = Frame(np.zeros((4, 4), np.float32), name="x")

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fitsio, "_write_hdu", explode)
    with pytest.raises(OSError, match="disk full"):
        fitsio.write_frame(frame, tmp_path / "x.fits")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("fitsverify") is None, reason="fitsverify is not installed")
def test_output_passes_fitsverify(tmp_path):
    path = write_uint16(tmp_path / "in.fits", np.arange(100).reshape(10, 10), IMAGETYP="LIGHT",
                        FILTER="Sloan r'", EXPTIME=1.0)
    out = fitsio.write_frame(fitsio.read_frame(path).derive(np.ones((10, 10)), history="x" * 150),
                             tmp_path / "o.fits")
    result = subprocess.run(["fitsverify", "-q", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error" in result.stdout or "OK" in result.stdout


def test_real_frames_match_astropy(shared_data):
    folder = shared_data("umd_st8_ngc520/2018-10-19_r")
    frames, problems = fitsio.scan_folder(folder)
    assert problems == [] and len(frames) == 15
    light = next(f for f in frames if f.name == "NGC520-001-r.fit")
    np.testing.assert_array_equal(light.data, fits.getdata(light.path).astype(np.float32))
    assert light.filter == "Sloan r'" and light.exptime == 300.0 and light.shape == (1020, 1530)
    kinds = {}
    for frame in frames:
        kinds[frame.kind] = kinds.get(frame.kind, 0) + 1
    assert kinds == {FrameKind.BIAS: 3, FrameKind.DARK: 6, FrameKind.FLAT: 3, FrameKind.LIGHT: 3}


def test_killing_the_writer_mid_write_leaves_no_file_under_the_final_name(tmp_path):
    """A child process starts writing a 4000 × 4000 frame slowly and is SIGKILLed half way: the final
    name never exists; only a hidden .part file remains, which folder scans ignore."""
    import os
    import signal
    import sys
    import time

    script = f"""
import sys, time
import numpy as np
from astropy.io import fits
from ccdgui.model import fitsio
from ccdgui.model.frame import Frame, FrameKind
def slow_write(hdu, handle):
    handle.write(b"SIMPLE  =                    T" + b" " * 50)
    handle.flush()
    print("writing", flush=True)
    time.sleep(30)
fitsio._write_hdu = slow_write
frame = Frame(data=np.ones((4000, 4000), np.float32), kind=FrameKind.LIGHT, name="out.fits")
fitsio.write_frame(frame, {str(tmp_path / 'out.fits')!r})
"""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    time.sleep(0.05)
    assert not (tmp_path / "out.fits").exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".out.fits.") and leftovers[0].endswith(".part")
    assert fitsio.iter_fits_paths(tmp_path) == []


def test_a_chosen_image_of_a_multi_extension_file(shared_data):
    path = shared_data("odd_singles/test0.fits")  # HST WFPC2: empty primary, four 40 × 40 SCI images
    images = fitsio.image_hdus(path)
    assert [index for index, _ in images] == [1, 2, 3, 4]
    assert "SCI,2" in images[1][1] and "40×40" in images[1][1]
    first, third = fitsio.read_header_frame(path), fitsio.read_header_frame(path, hdu=3)
    assert (first.hdu, third.hdu) == (1, 3)
    from astropy.io import fits

    with fits.open(path) as hdul:
        np.testing.assert_allclose(third.data, hdul[3].data.astype(np.float32), rtol=1e-6)
        assert not np.array_equal(first.data, third.data)
    frames, _ = fitsio.read_frames([path], lazy=True, hdus={"test0.fits": 4})
    assert frames[0].hdu == 4 and frames[0].header["EXPTIME"] == third.header["EXPTIME"]
