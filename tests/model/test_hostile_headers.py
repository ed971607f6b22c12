"""Lying header values: each gives one line (a note, or a quarantine reason), never a traceback and
never a silently wrong frame; ``make_plan`` and ``ccdgui reduce`` take every such file in their stride."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from ccdgui.model import calibrate, compressed, fitsio, library
from ccdgui.model.fitsio import FrameError, read_frame, read_header_frame
from ccdgui.model.plan import make_plan
from ccdgui.model.recipe import Recipe

SHAPE = (16, 20)


def write(path: Path, cards: dict | None = None, data: np.ndarray | None = None,
          raw: dict[str, str] | None = None) -> Path:
    """A FITS file with ``cards``; ``raw`` cards are written verbatim after them (values astropy refuses
    to write, such as NAN, and BSCALE/BZERO, which it would apply or drop)."""
    header = fits.Header({"IMAGETYP": "LIGHT", "EXPTIME": 30.0, "FILTER": "R"})
    for key, value in (cards or {}).items():
        header[key] = value
    level = {"BIAS": 1000, "DARK": 1100, "FLAT": 20000}.get(str(header["IMAGETYP"]), 3000)
    rng = np.random.default_rng(len(path.name))
    data = rng.normal(level, 5, SHAPE).astype(np.float32) if data is None else data
    for number, _ in enumerate(raw or {}):
        header[f"RAW{number}"] = 0  # placeholder, replaced below
    fits.PrimaryHDU(data=data, header=header).writeto(path)
    if raw:
        blob = bytearray(path.read_bytes())
        for number, (key, text) in enumerate(raw.items()):
            if key in header:
                start = blob.index(f"{key:8}= ".encode())
                blob[start:start + 80] = b" " * 80  # the original card goes blank
            start = blob.index(f"{f'RAW{number}':8}= ".encode())
            blob[start:start + 80] = f"{key:8}= {text:>20}".ljust(80).encode()
        path.write_bytes(bytes(blob))
    return path


def plan_survives(frames) -> None:
    """Planning a reduction of these frames gives a plan (with notes), never an exception."""
    plan = make_plan(frames, Recipe())
    assert plan is not None


# --- exposure -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cards, raw, shown", [
    ({"EXPTIME": -300}, None, "-300"),
    ({"EXPTIME": -300.0}, None, "-300"),
    ({"EXPTIME": "nan"}, None, "'nan'"),
    ({"EXPTIME": "inf"}, None, "'inf'"),
    ({"EXPTIME": 2e7}, None, "2e+07"),
    ({"EXPTIME": "abc"}, None, "'abc'"),
    (None, {"EXPTIME": "NAN"}, None),
    (None, {"EXPTIME": "-INF"}, None),
])
def test_invalid_exposure_is_unknown_with_a_note(tmp_path, cards, raw, shown):
    frame = read_header_frame(write(tmp_path / "light.fits", cards, raw=raw))
    assert frame.exptime is None
    note = [n for n in frame.notes if n.startswith("EXPTIME = ")]
    assert len(note) == 1 and note[0].endswith("is not a valid exposure: treated as unknown"), frame.notes
    if shown is not None:
        assert note[0] == f"EXPTIME = {shown} is not a valid exposure: treated as unknown"
    assert read_frame(tmp_path / "light.fits").exptime is None
    plan_survives([frame])


def test_negative_exposure_light_is_not_dark_subtracted_negatively(tmp_path):
    """A light with EXPTIME −300 gets no scaled dark (exposure unknown), not the dark × −1."""
    ok = [write(tmp_path / f"dark{i}.fits", {"IMAGETYP": "DARK", "EXPTIME": 300.0}) for i in range(3)]
    bad = write(tmp_path / "light.fits", {"EXPTIME": -300})
    frames = [read_header_frame(p) for p in [*ok, bad]]
    assert frames[-1].exptime is None and library.exposure_key(frames[-1].exptime) is None
    plan_survives(frames)


def test_exposure_in_exposure_keyword_checked_too(tmp_path):
    frame = read_header_frame(_exposure_only(tmp_path / "light.fits", -5.0))
    assert frame.exptime is None
    assert "EXPOSURE = -5 is not a valid exposure: treated as unknown" in frame.notes


def _exposure_only(path: Path, value: float) -> Path:
    fits.PrimaryHDU(np.ones(SHAPE, np.float32), fits.Header({"IMAGETYP": "LIGHT", "EXPOSURE": value})
                    ).writeto(path)
    return path


def test_unparsable_cards_read_and_written(tmp_path):
    """Unquoted NAN/INF values astropy cannot parse: read as text (so refused by the checks), and a
    frame holding such an unrelated card is still written."""
    path = write(tmp_path / "light.fits", raw={"EXPTIME": "NAN", "FOO": "INF", "CCD-TEMP": "NAN"})
    frame = read_frame(path)
    assert frame.exptime is None and frame.temperature is None
    assert "EXPTIME = 'NAN' is not a valid exposure: treated as unknown" in frame.notes
    out = fitsio.write_frame(frame, tmp_path / "out" / "light.fits")
    assert fits.getheader(out)["IMAGETYP"] == "LIGHT"


def test_valid_exposures_give_no_note(tmp_path):
    frame = read_header_frame(write(tmp_path / "bias.fits", {"IMAGETYP": "BIAS", "EXPTIME": 0.0}))
    assert frame.exptime == 0.0 and not any("exposure" in n for n in frame.notes)


# --- BZERO / BSCALE -----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, reason", [
    ({"BSCALE": "'nan'"}, "BSCALE = 'nan' is not a usable pixel scaling"),
    ({"BZERO": "'inf'"}, "BZERO = 'inf' is not a usable pixel scaling"),
    ({"BSCALE": "0"}, "BSCALE = 0 is not a usable pixel scaling"),
    ({"BSCALE": "0.0", "BZERO": "32768"}, "BSCALE = 0 is not a usable pixel scaling"),
    ({"BZERO": "'abc'"}, "BZERO = 'abc' is not a usable pixel scaling"),
    ({"BSCALE": "NAN"}, ""),  # astropy itself refuses the header: quarantined all the same
    ({"BZERO": "-INF"}, ""),
])
def test_unusable_scaling_is_quarantined(tmp_path, raw, reason):
    data = np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE)
    path = write(tmp_path / "scaled.fits", data=data, raw=raw)
    for reader in (read_header_frame, read_frame):
        with pytest.raises(FrameError) as caught:
            reader(path)
        text = str(caught.value)
        assert "\n" not in text and text.startswith(reason), text
    frames, problems = fitsio.scan_folder(tmp_path, lazy=True)
    assert not frames and len(problems) == 1


# --- binning ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cards, raw", [
    ({"XBINNING": 1e300}, None), ({"XBINNING": "inf"}, None), ({"XBINNING": 1e6}, None),
    ({"XBINNING": 2.5}, None), ({"XBINNING": 0}, None), ({"XBINNING": -2}, None),
    ({"XBINNING": 10 ** 40}, None), (None, {"XBINNING": "NAN"}), (None, {"XBINNING": "INF"}),
])
def test_invalid_binning_is_one_with_a_note(tmp_path, cards, raw):
    frame = read_header_frame(write(tmp_path / "light.fits", {"YBINNING": 2, **(cards or {})}, raw=raw))
    assert frame.binning == (1, 2)
    notes = [n for n in frame.notes if n.startswith("XBINNING = ")]
    assert len(notes) == 1 and notes[0].endswith("is not a valid binning: taken as 1"), frame.notes
    assert library.camera_key(frame).binning == (1, 2)
    plan_survives([frame])


def test_valid_binning_untouched(tmp_path):
    frame = read_header_frame(write(tmp_path / "light.fits", {"XBINNING": 2.0, "YBINNING": "3"}))
    assert frame.binning == (2, 3) and not any("binning" in n for n in frame.notes)


# --- DATE-OBS, temperatures -----------------------------------------------------------------------------
@pytest.mark.parametrize("value, night", [
    ("0001-01-01T01:00:00", None), ("9999-12-31T23:00:00", "9999-12-31"), ("garbage", None),
    ("2020-13-45T00:00:00", None), ("", None), ("2020-06-01T04:00:00", "2020-05-31"),
])
def test_date_obs_at_the_calendars_ends(tmp_path, value, night):
    frame = read_header_frame(write(tmp_path / "light.fits", {"DATE-OBS": value}))
    assert library.night_of(frame) == night
    plan_survives([frame])


def test_date_obs_number(tmp_path):
    frame = read_header_frame(write(tmp_path / "light.fits", {"DATE-OBS": 12345}))
    assert library.night_of(frame) is None


@pytest.mark.parametrize("cards, raw", [
    ({"SET-TEMP": "nan"}, None), ({"CCD-TEMP": "inf"}, None), ({"SET-TEMP": "-inf", "CCD-TEMP": "nan"}, None),
    (None, {"SET-TEMP": "NAN"}), (None, {"CCD-TEMP": "INF"}),
])
def test_non_finite_temperature_is_none(tmp_path, cards, raw):
    frame = read_header_frame(write(tmp_path / "light.fits", cards, raw=raw))
    assert frame.temperature is None
    assert library.camera_key(frame).temperature is None
    plan_survives([frame])


# --- GAIN / RDNOISE -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cards", [{"GAIN": "nan"}, {"GAIN": 0}, {"GAIN": -1.5}, {"RDNOISE": "inf"},
                                   {"RDNOISE": -3}])
def test_unusable_gain_or_read_noise_noted(tmp_path, cards):
    frame = read_header_frame(write(tmp_path / "light.fits", cards))
    key = next(iter(cards))
    assert any(n.startswith(f"{key} = ") and "assumed" in n for n in frame.notes), frame.notes
    plan_survives([frame])


# --- sections -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("section, rows, cols", [
    ("[   4:  13,   1: 520]", slice(0, 520), slice(3, 13)),
    ("[1:4096, :]", slice(0, 600), slice(0, 4096)),
    ("[*,1:100]", slice(0, 100), slice(0, 5000)),
    ("[13:4,520:1]", slice(0, 520), slice(3, 13)),
    (" [ 1:10 , 2:3 ] ", slice(1, 3), slice(0, 10)),
])
def test_iraf_sections_accepted(section, rows, cols):
    assert calibrate.parse_section(section, (600, 5000)) == (rows, cols)


@pytest.mark.parametrize("section", [
    "[1:10]", "1:10,1:10", "[1:10,1:10,1:10]", "[a:b,1:2]", "[1:2,3:4]]", "[1-5,1:2]", "[0:2,1:2]",
    "[1:2:3,1:2]", "[１:2,1:2]", "[1:99999999999,1:2]", "",
])
def test_bad_sections_refused_in_one_line(section):
    with pytest.raises(ValueError) as caught:
        calibrate.parse_section(section, (600, 5000))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("hostile", ["[" + " " * 4998 + "]", "[" + "1" * 4998 + "]",
                                     "[" + " " * 2500 + "," + " " * 2497 + "]", "[" + ":" * 4998 + "]"])
def test_hostile_section_refused_fast(hostile):
    assert len(hostile) == 5000
    started = time.perf_counter()
    for _ in range(10):
        with pytest.raises(ValueError, match="5000 characters long"):
            calibrate.parse_section(hostile, (600, 5000))
    assert (time.perf_counter() - started) / 10 < 0.010


def test_hostile_header_section_becomes_a_note(tmp_path):
    frame = read_header_frame(write(tmp_path / "light.fits", {"BIASSEC": "[" + " " * 60 + "1:4" + " " * 5}))
    plan = make_plan([frame], Recipe())
    assert plan is not None


# --- shapes ---------------------------------------------------------------------------------------------
def test_one_dimensional_image_is_a_spectrum(tmp_path):
    path = tmp_path / "spectrum.fits"
    fits.PrimaryHDU(np.arange(100, dtype=np.float32)).writeto(path)
    for reader in (read_header_frame, read_frame):
        with pytest.raises(FrameError, match=r"^1-D spectrum/profile, not a 2-D image$"):
            reader(path)


def test_one_dimensional_extension_is_a_spectrum(tmp_path):
    path = tmp_path / "spectrum_ext.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.arange(10, dtype=np.float32))]).writeto(path)
    with pytest.raises(FrameError, match=r"^1-D spectrum/profile"):
        read_header_frame(path)


# --- gzip bombs ---------------------------------------------------------------------------------------
def _header_bytes(cards: list[tuple[str, object]]) -> bytes:
    text = "".join(f"{k:8}= {('T' if v is True else v)!s:>20}".ljust(80) for k, v in cards) + "END".ljust(80)
    return text.ljust(-(-len(text) // 2880) * 2880).encode()


def _gzip_of(path: Path, header: bytes, zeros: int, level: int = 1) -> Path:
    with gzip.open(path, "wb", compresslevel=level) as out:
        out.write(header)
        piece = bytes(1 << 20)
        for start in range(0, zeros, len(piece)):
            out.write(piece[:min(len(piece), zeros - start)])
    return path


def test_gzip_declaring_a_huge_image_refused(tmp_path):
    header = _header_bytes([("SIMPLE", True), ("BITPIX", 16), ("NAXIS", 2), ("NAXIS1", 1_000_000),
                            ("NAXIS2", 1_000_000)])
    path = _gzip_of(tmp_path / "bomb.fits.gz", header, 32 << 20, level=9)
    assert path.stat().st_size < 200_000
    for reader in (read_header_frame, read_frame):
        with pytest.raises(FrameError) as caught:
            reader(path)
        text = str(caught.value)
        assert text.startswith("compressed file inflates to more than ") and "(header says 2 TB)" in text
        assert "\n" not in text


def test_gzip_inflating_past_its_header_refused(tmp_path):
    """A small declared image followed by megabytes of zeros: inflated size disagrees with the header."""
    header = _header_bytes([("SIMPLE", True), ("BITPIX", 16), ("NAXIS", 2), ("NAXIS1", 20),
                            ("NAXIS2", 16), ("IMAGETYP", "'LIGHT'")])
    path = _gzip_of(tmp_path / "padded.fits.gz", header, 8 << 20)
    with pytest.raises(FrameError) as caught:
        read_header_frame(path)
    text = str(caught.value)
    assert re.fullmatch(r"compressed file inflates to more than .* \(header says 5.76 kB\)", text), text


def test_gzip_over_the_memory_limit_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.fits.gz"
    fits.PrimaryHDU(np.zeros((512, 512), np.float32), fits.Header({"IMAGETYP": "LIGHT"})).writeto(path)
    assert read_frame(path).shape == (512, 512)  # honest, within the limit: read
    monkeypatch.setattr(compressed, "inflate_limit", lambda: 256 * 1024)
    with pytest.raises(FrameError, match=r"^compressed file inflates to more than 262 kB \(header says"):
        read_header_frame(path)


def test_honest_gzip_files_read(tmp_path):
    data = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    single = tmp_path / "single.fits.gz"
    fits.PrimaryHDU(data, fits.Header({"IMAGETYP": "LIGHT", "EXPTIME": 1.0})).writeto(single)
    multi = tmp_path / "multi.fits.gz"
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({"EXPTIME": 2.0})), fits.ImageHDU(data),
                  fits.ImageHDU(data[:4])]).writeto(multi)
    for path, exptime in ((single, 1.0), (multi, 2.0)):
        frame = read_header_frame(path)
        np.testing.assert_array_equal(frame.data, data)
        assert frame.exptime == exptime


def test_damaged_gzip_is_one_line(tmp_path):
    good = tmp_path / "good.fits.gz"
    fits.PrimaryHDU(np.random.default_rng(1).normal(size=(64, 64)).astype(np.float32)).writeto(good)
    blob = good.read_bytes()
    (tmp_path / "cut.fits.gz").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "tiny.fits.gz").write_bytes(b"\x1f\x8b\x08")
    for name in ("cut.fits.gz", "tiny.fits.gz"):
        with pytest.raises(FrameError) as caught:
            read_header_frame(tmp_path / name)
        assert "\n" not in str(caught.value)


# --- all of them at once, through the command line -----------------------------------------------------
def test_reduce_folder_of_hostile_files_never_tracebacks(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(3):
        write(raw / f"bias{i}.fits", {"IMAGETYP": "BIAS", "EXPTIME": 0.0})
        write(raw / f"dark{i}.fits", {"IMAGETYP": "DARK", "EXPTIME": 300.0})
        write(raw / f"flat{i}.fits", {"IMAGETYP": "FLAT", "EXPTIME": 1.0})
    write(raw / "neg_exptime.fits", {"EXPTIME": -300})
    write(raw / "nan_exptime.fits", raw={"EXPTIME": "NAN"})
    write(raw / "huge_exptime.fits", {"EXPTIME": 1e12})
    write(raw / "nan_bscale.fits", raw={"BSCALE": "'nan'"}, data=np.ones(SHAPE, np.int16))
    write(raw / "zero_bscale.fits", raw={"BSCALE": "0"}, data=np.ones(SHAPE, np.int16))
    write(raw / "inf_binning.fits", {"XBINNING": "inf", "YBINNING": 1e300})
    write(raw / "nan_binning.fits", raw={"XBINNING": "NAN", "FOO": "INF"})
    write(raw / "old_date.fits", {"DATE-OBS": "0001-01-01T01:00:00"})
    write(raw / "late_date.fits", {"DATE-OBS": "9999-12-31T23:00:00"})
    write(raw / "nan_temp.fits", {"SET-TEMP": "nan", "CCD-TEMP": "inf"})
    write(raw / "nan_gain.fits", {"GAIN": "nan", "RDNOISE": -1})
    write(raw / "hostile_section.fits", {"BIASSEC": "[" + " " * 60 + "]", "TRIMSEC": "[1:2,3:4,5:6]"})
    fits.PrimaryHDU(np.arange(50, dtype=np.float32)).writeto(raw / "spectrum.fits")
    _gzip_of(raw / "bomb.fits.gz", _header_bytes([("SIMPLE", True), ("BITPIX", 16), ("NAXIS", 2),
                                                  ("NAXIS1", 1_000_000), ("NAXIS2", 1_000_000)]), 1 << 20)
    for extra in ([], ["--cosmic-rays", "median", "--mask-hot-pixels"]):
        out = tmp_path / f"out{len(extra)}"
        result = subprocess.run([sys.executable, "-m", "ccdgui", "reduce", str(raw), str(out), *extra],
                                capture_output=True, text=True, timeout=300)
        said = result.stdout + result.stderr
        assert "Traceback" not in said and "Error:" not in said.replace("FrameError", ""), said
        assert result.returncode == 0, said
        for name in ("nan_bscale.fits", "zero_bscale.fits", "spectrum.fits", "bomb.fits.gz"):
            assert name in said, said  # quarantined, and said so
        calibrated = out / "calibrated"
        for path in calibrated.rglob("*.fits"):
            assert np.isfinite(fits.getdata(path)).any(), path.name
