"""Calibration verbs: known answers, equality with ccdproc, inputs never modified."""

import numpy as np
import pytest
from astropy.io import fits

from ccdgui.model import calibrate
from ccdgui.model.frame import Frame, FrameKind


def make_frame(data, exptime=None, name="f.fits", kind=FrameKind.LIGHT):
    header = fits.Header()
    if exptime is not None:
        header["EXPTIME"] = exptime
    return Frame(np.asarray(data, dtype=np.float32), header, kind=kind, name=name)


@pytest.fixture
def frames():
    rng = np.random.default_rng(3)
    light = make_frame(rng.normal(1500, 30, (40, 50)), exptime=30.0)
    bias = make_frame(rng.normal(1100, 5, (40, 50)), name="master_bias.fits", kind=FrameKind.MASTER_BIAS)
    dark = make_frame(rng.normal(6, 1, (40, 50)), exptime=60.0, name="master_dark_60s.fits",
                      kind=FrameKind.MASTER_DARK)
    flat = make_frame(rng.uniform(0.9, 1.1, (40, 50)), name="master_flat_r.fits", kind=FrameKind.MASTER_FLAT)
    return light, bias, dark, flat


def snapshot(*frames):
    return [(f.data.copy(), f.header.tostring()) for f in frames]


def assert_unchanged(frames, before):
    for frame, (data, header) in zip(frames, before, strict=True):
        np.testing.assert_array_equal(frame.data, data)
        assert frame.header.tostring() == header


def test_known_answers(frames):
    light, bias, dark, flat = frames
    out = calibrate.subtract_bias(light, bias)
    np.testing.assert_allclose(out.data, light.data - bias.data, rtol=1e-6)
    out = calibrate.subtract_dark(out, dark)
    np.testing.assert_allclose(out.data, light.data - bias.data - 0.5 * dark.data, rtol=1e-6)
    out2 = calibrate.flat_correct(out, flat)
    np.testing.assert_allclose(out2.data, out.data / (flat.data / flat.data.mean(dtype=np.float64)),
                               rtol=1e-6)
    assert out2.header["SUBBIAS"] == "master_bias.fits"
    assert out2.header["SUBDARK"] == "master_dark_60s.fits"
    assert out2.header["FLATCOR"] == "master_flat_r.fits"
    history = str(out2.header["HISTORY"])
    assert "scaled by 0.5" in history and "normalised by its mean" in history
    assert out2.data.dtype == np.float32


def test_inputs_never_mutated(frames):
    before = snapshot(*frames)
    light, bias, dark, flat = frames
    calibrate.flat_correct(calibrate.subtract_dark(calibrate.subtract_bias(light, bias), dark), flat)
    assert_unchanged(frames, before)


def test_equal_to_ccdproc(frames):
    ccdproc = pytest.importorskip("ccdproc")
    from astropy import units as u
    from astropy.nddata import CCDData

    light, bias, dark, flat = frames

    def ccd(frame):
        return CCDData(frame.data.copy(), unit="adu")

    theirs = ccdproc.subtract_bias(ccd(light), ccd(bias))
    theirs = ccdproc.subtract_dark(theirs, ccd(dark), dark_exposure=60 * u.s, data_exposure=30 * u.s,
                                   scale=True)
    theirs = ccdproc.flat_correct(theirs, ccd(flat))
    ours = calibrate.flat_correct(calibrate.subtract_dark(calibrate.subtract_bias(light, bias), dark), flat)
    np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-5)


def test_mismatches_are_clear_errors(frames):
    light, bias, dark, flat = frames
    small = make_frame(np.zeros((10, 10)), name="small.fits")
    with pytest.raises(calibrate.CalibrationError, match="50x40"):
        calibrate.subtract_bias(small, bias)
    with pytest.raises(calibrate.CalibrationError, match="scaling is off"):
        calibrate.subtract_dark(light, dark, scale=False)
    with pytest.raises(calibrate.CalibrationError, match="exposure unknown"):
        calibrate.subtract_dark(make_frame(light.data), dark)
    with pytest.raises(calibrate.CalibrationError, match="non-positive"):
        calibrate.flat_correct(light, make_frame(-np.ones((40, 50))))


def test_same_exposure_dark_is_not_scaled(frames):
    light, _, dark, _ = frames
    dark30 = make_frame(dark.data, exptime=30.0000001, name="d30")
    out = calibrate.subtract_dark(light, dark30, scale=False)
    np.testing.assert_allclose(out.data, light.data - dark.data, rtol=1e-6)
