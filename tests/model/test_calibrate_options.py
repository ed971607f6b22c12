"""Calibration options (overscan fits, flat minimum, bad columns, exposure units) and headers that stay
true (WCS after a trim, BUNIT), against ccdproc and astropy where they have an answer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits

from ccdgui.model import calibrate, fitsio, masks
from ccdgui.model.frame import Frame, FrameKind

from .test_masks import flat_with_defects

ODD = "odd_singles"


def _data_file(shared_data, name: str):
    """A private copy of a shared real file (the originals are read-only)."""
    return shared_data(f"{ODD}/{name}")


def _max_relative(mine: np.ndarray, theirs: np.ndarray, raw: np.ndarray | None = None) -> float:
    """max |mine − theirs| / |theirs|, or / |raw| (the pixel before the step) when given: an overscan-
    subtracted bias is ~0, where only the float32 rounding of its raw level would be compared."""
    scale = np.abs(theirs if raw is None else raw).astype(np.float64)
    return float(np.max(np.abs(mine - theirs) / scale))


# --- overscan ------------------------------------------------------------------------------------------
def _ccdproc_overscan(data: np.ndarray, section: str, method: str, fit: str, order: int) -> np.ndarray:
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.modeling import models
    from astropy.nddata import CCDData

    model = {"none": None, "polynomial": models.Polynomial1D(order),
             "legendre": models.Legendre1D(order)}[fit]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = ccdproc.subtract_overscan(CCDData(data.astype(np.float64), unit="adu"), fits_section=section,
                                        median=method == "median", model=model)
    return np.asarray(out.data)


@pytest.mark.parametrize("fit, order", [("none", 1), ("polynomial", 1), ("polynomial", 3),
                                        ("legendre", 1), ("legendre", 4)])
@pytest.mark.parametrize("method", ["median", "mean"])
def test_overscan_fit_agrees_with_ccdproc_on_a_sloped_overscan(fit, order, method):
    rng = np.random.default_rng(3)
    ny, nx = 200, 120
    rows = np.arange(ny, dtype=np.float64)[:, None]
    level = 1000 + 0.8 * rows + 2e-3 * (rows - 100) ** 2           # a curved, sloped bias level
    image = np.where(np.arange(nx) < 100, 3000.0, 0.0)              # columns 1..100 see 3000 ADU of sky
    data = (level + rng.normal(0, 5, (ny, nx)) + image).astype(np.float32)
    section = "[101:120, 1:200]"                                  # 20 columns beside the image
    frame = Frame(data=data, kind=FrameKind.LIGHT, name="sloped.fits")
    out = calibrate.subtract_overscan(frame, section, method, fit=fit, order=order)
    theirs = _ccdproc_overscan(data, section, method, fit, order)
    assert _max_relative(out.data, theirs, data) <= 1e-5
    if fit != "none" and order >= 2:  # the fit follows the curve: the image is flat at 3000 ± noise
        assert abs(float(np.median(out.data[:, :100])) - 3000.0) < 1.0
        assert np.std(out.data[:, :100].mean(axis=1) - 3000) < 1.0
    history = "".join(str(h) for h in out.header["HISTORY"]).replace(" ", "")  # split lines lose spaces
    assert (f"{fit}fitoforder{order}" in history) == (fit != "none")


@pytest.mark.parametrize("fit, order", [("none", 1), ("polynomial", 2), ("legendre", 3)])
def test_overscan_fit_agrees_with_ccdproc_on_a_real_frame(shared_data, fit, order):
    path = _data_file(shared_data, "a8280271.fits")
    frame = fitsio.read_frame(path)
    section = str(frame.header["BIASSEC"])
    out = calibrate.subtract_overscan(frame, section, "median", fit=fit, order=order)
    theirs = _ccdproc_overscan(frame.data, section, "median", fit, order)
    assert _max_relative(out.data, theirs, frame.data) <= 1e-5


def test_overscan_options_are_checked_and_marked_without_pixels():
    frame = Frame(data=np.ones((20, 30), np.float32))
    for bad in (dict(fit="spline"), dict(fit="legendre", order=-1), dict(fit="polynomial", order=1.5),
                dict(method="mode")):
        with pytest.raises(ValueError):
            calibrate.subtract_overscan(frame, "[26:30,1:20]", **bad)
    header = fits.Header()
    calibrate.mark_overscan(header, "[26:30,1:20]", "mean", (20, 30), fit="legendre", order=2)
    assert header["OVERSCAN"] == "[26:30,1:20]"
    assert "mean per row, legendre fit of order 2" in " ".join(header["HISTORY"])
    assert calibrate.OVERSCAN_FITS == ("none", "polynomial", "legendre")


# --- flat: min_value and the norm ----------------------------------------------------------------------
def test_flat_min_value_agrees_with_ccdproc():
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.nddata import CCDData

    rng = np.random.default_rng(4)
    flat_data = rng.normal(20000, 200, (60, 80)).astype(np.float32)
    flat_data[10, 10], flat_data[30:33, 40] = 5.0, 0.0           # dead pixels would blow the light up
    light = Frame(data=rng.normal(1000, 30, (60, 80)).astype(np.float32), name="light.fits")
    flat = Frame(data=flat_data, kind=FrameKind.MASTER_FLAT, name="flat.fits")
    norm = calibrate.flat_norm_value(flat)
    out = calibrate.flat_correct(light, flat, min_value=0.5)
    theirs = ccdproc.flat_correct(CCDData(light.data.astype(np.float64), unit="adu"),
                                  CCDData(flat_data.astype(np.float64), unit="adu"),
                                  min_value=0.5 * norm, norm_value=norm)
    assert _max_relative(out.data, theirs.data) <= 1e-5
    assert np.isfinite(out.data).all() and out.data[30, 40] == pytest.approx(light.data[30, 40] / 0.5)
    assert "raised" in " ".join(out.header["HISTORY"])


@pytest.mark.parametrize("norm", [0.0, -3.0, float("nan"), float("inf")])
def test_flat_norm_must_be_finite_and_positive(norm):
    light = Frame(data=np.ones((5, 5), np.float32))
    flat = Frame(data=np.ones((5, 5), np.float32), name="flat.fits")
    with pytest.raises(calibrate.CalibrationError, match="flat.fits"):
        calibrate.flat_correct(light, flat, norm=norm)
    if np.isfinite(norm):  # a flat's own mean or median is finite (non-finite pixels are left out)
        with pytest.raises(calibrate.CalibrationError, match="non-positive"):
            calibrate.flat_norm_value(Frame(data=np.full((5, 5), norm, np.float32), name="flat.fits"))


# --- bad columns ---------------------------------------------------------------------------------------
def test_flat_mask_bad_columns_agree_with_ccdproc_and_find_a_faint_column():
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.nddata import CCDData

    flat, defects = flat_with_defects()
    flat[50:120:3, 330] = 0.2        # an intermittent column: every third pixel dead
    theirs = ccdproc.ccdmask(CCDData(flat, unit="adu"), byblocks=True, findbadcolumns=True)
    ours = masks.flat_mask(flat, findbadcolumns=True)
    assert (ours == theirs).mean() == 1.0
    assert ours[50:118, 330].all() and not masks.flat_mask(flat)[50:118, 330].all()
    for where in defects:
        assert ours[where].all(), where

    flat[:, 300] *= 0.96             # a faint column: few of its pixels are 9 σ off, its block sums are
    assert masks.flat_mask(flat)[:, 300].sum() < 100
    ours = masks.flat_mask(flat, findbadcolumns=True)
    theirs = ccdproc.ccdmask(CCDData(flat, unit="adu"), byblocks=True, findbadcolumns=True)
    assert ours[:, 300].all()
    assert (ours == theirs).mean() >= 0.998  # only the faint column differs: ccdproc finds 131 of 300
    assert set(np.nonzero(ours != theirs)[1]) == {300}


def test_flat_mask_bad_columns_leave_a_clean_flat_alone():
    rng = np.random.default_rng(7)
    flat = (20000 * rng.normal(1, 0.01, (300, 400))).astype(np.float32)  # in ADU, as flats come
    assert masks.flat_mask(flat, findbadcolumns=True).sum() <= masks.flat_mask(flat).sum() + 45


# --- exposure units ------------------------------------------------------------------------------------
def _frame(cards: dict, comments: dict | None = None) -> Frame:
    header = fits.Header()
    for key, value in cards.items():
        header[key] = (value, (comments or {}).get(key, ""))
    return Frame(data=np.zeros((4, 4), np.float32), header=header)


@pytest.mark.parametrize("cards, comments, seconds", [
    ({"EXPOSURE": 65.0}, {"EXPOSURE": "Observation: Exposure Minutes"}, 3900.0),
    ({"EXPTIME": 2.0}, {"EXPTIME": "[min] exposure"}, 120.0),
    ({"EXPTIME": 2.0, "EXPUNIT": "minutes"}, {}, 120.0),
    ({"EXPTIME": 2.0, "TIMEUNIT": "min"}, {}, 120.0),
    ({"EXPTIME": 2.0, "TIMEUNIT": "s"}, {}, 2.0),
    ({"EXPTIME": 30.0, "TIMEUNIT": "min"}, {"EXPTIME": "[s] exposure"}, 30.0),   # the card's own unit wins
    ({"EXPTIME": 500.0}, {"EXPTIME": "exposure (ms)"}, 0.5),
    ({"EXPTIME": 60.0}, {"EXPTIME": "minimum exposure"}, 60.0),                 # 'minimum' is no unit
    ({"EXPTIME": 60.0, "TIMEUNIT": "fortnight"}, {}, None),
])
def test_exposure_units(cards, comments, seconds):
    frame = _frame(cards, comments)
    assert frame.exptime == (None if seconds is None else pytest.approx(seconds))


def test_dss_plate_exposure_in_minutes_is_known(shared_data):
    frame = fitsio.read_header_frame(_data_file(shared_data, "HorseHead.fits"))
    assert frame.exptime == 3900.0
    assert "exposure given in minutes (EXPOSURE = 65): 3900 s used" in frame.notes
    assert not any("treated as unknown" in note for note in frame.notes)


def test_dark_in_minutes_scales_a_light_in_seconds():
    dark = _frame({"EXPOSURE": 5.0}, {"EXPOSURE": "exposure time minutes"})
    light = _frame({"EXPTIME": 600.0}, {"EXPTIME": "Exposure time in seconds"})
    assert calibrate.dark_scale_factor(light, dark) == pytest.approx(2.0)
    assert calibrate.dark_scale_factor(_frame({"EXPTIME": 300.0}), dark) == 1.0


# --- headers that stay true ----------------------------------------------------------------------------
def _sky(header: fits.Header, x: float, y: float) -> np.ndarray:
    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(header).all_pix2world([[x, y]], 0)[0]


def _tan_header() -> fits.Header:
    header = fits.Header()
    for key, value in dict(CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CRVAL1=83.8, CRVAL2=-5.4, CRPIX1=40.5,
                           CRPIX2=30.5, CD1_1=-1e-4, CD1_2=2e-5, CD2_1=2e-5, CD2_2=1e-4, CTYPE1A="RA---TAN",
                           CTYPE2A="DEC--TAN", CRVAL1A=10.0, CRVAL2A=20.0, CRPIX1A=1.0, CRPIX2A=1.0,
                           CDELT1A=-2e-4, CDELT2A=2e-4, LTV1=-4.0, LTV2=0.0).items():
        header[key] = value
    return header


def test_trim_keeps_a_synthetic_wcs_and_ltv_true():
    frame = Frame(data=np.zeros((60, 80), np.float32), header=_tan_header())
    out = calibrate.trim(frame, "[11:70, 6:55]")  # first kept pixel: column 10, row 5 (0-based)
    for x, y in [(10, 5), (45.3, 22.7), (69, 54)]:
        assert np.abs(_sky(frame.header, x, y) - _sky(out.header, x - 10, y - 5)).max() < 1e-9
    assert out.header["CRPIX1A"] == -9.0 and out.header["CRPIX2A"] == -4.0
    assert out.header["LTV1"] == -14.0 and out.header["LTV2"] == -5.0
    header = frame.header.copy()  # the plan marks a header without pixels: the same shift
    calibrate.mark_trim(header, "[11:70, 6:55]", frame.shape)
    assert all(header[k] == out.header[k] for k in ("CRPIX1", "CRPIX2", "CRPIX1A", "LTV1"))


@pytest.mark.parametrize("name", ["sip-wcs.fit", "center_cutout_1.fits"])
def test_trim_keeps_a_real_wcs_true(shared_data, name):
    frame = fitsio.read_frame(_data_file(shared_data, name))
    ny, nx = frame.shape
    section = f"[{nx // 4 + 1}:{nx - 3}, {ny // 5 + 1}:{ny - 2}]"
    out = calibrate.trim(frame, section)
    col0, row0 = nx // 4, ny // 5
    for x, y in [(col0, row0), (nx / 2 + 0.3, ny / 2 - 0.6), (nx - 4, ny - 3)]:
        assert np.abs(_sky(frame.header, x, y) - _sky(out.header, x - col0, y - row0)).max() < 1e-9


def test_written_frames_carry_a_unit_ccddata_reads(tmp_path):
    from astropy.nddata import CCDData

    plain = Frame(data=np.ones((6, 7), np.float32), kind=FrameKind.MASTER_BIAS, name="bias.fits")
    odd = Frame(data=np.ones((6, 7), np.float32), header=fits.Header({"BUNIT": "COUNTS"}))
    kept = Frame(data=np.ones((6, 7), np.float32), header=fits.Header({"BUNIT": "electron"}))
    for frame, unit in ((plain, "adu"), (odd, "adu"), (kept, "electron")):
        path = fitsio.write_frame(frame, tmp_path / f"{unit}-{id(frame)}.fits")
        ccd = CCDData.read(path)
        assert str(ccd.unit) == unit and ccd.data.shape == (6, 7)
    assert plain.header.get("BUNIT") is None  # the frame itself is untouched


def test_calibrated_real_frame_reads_back_as_ccddata(shared_data, tmp_path):
    from astropy.nddata import CCDData

    frame = fitsio.read_frame(_data_file(shared_data, "a8280271.fits"))
    out = calibrate.trim(calibrate.subtract_overscan(frame, str(frame.header["BIASSEC"]), fit="legendre",
                                                     order=2), str(frame.header["TRIMSEC"]))
    path = fitsio.write_frame(out, tmp_path / "out" / "a.fits")
    ccd = CCDData.read(path)
    assert str(ccd.unit) == "adu" and ccd.data.shape == out.shape
