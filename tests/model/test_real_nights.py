"""Real camera folders from ../shared/data: counts per group, the traps of each set, levels, ccdproc."""

import numpy as np
import pytest
from astropy.io import fits

from ccdgui.model import execute, fitsio, library, plan
from ccdgui.model.frame import FrameKind
from ccdgui.model.recipe import Recipe


def run(frames, recipe=None):
    return execute.run_to_end(frames, recipe or Recipe())


def counts(frames):
    table = {}
    for frame in frames:
        key = (frame.kind.value, frame.exptime, frame.filter, library.temperature_band(frame.temperature))
        table[key] = table.get(key, 0) + 1
    return table


def by_name(result, name):
    return next(m for m in result.masters + result.calibrated if m.name == name)


def test_umd_r_night(shared_data):
    frames, problems = fitsio.scan_folder(shared_data("umd_st8_ngc520/2018-10-19_r"))
    assert problems == []
    assert counts(frames) == {
        ("bias", 0.0, None, -10.0): 3, ("dark", 300.0, None, -10.0): 3, ("dark", 3.0, None, -10.0): 3,
        ("flat", 3.0, "Sloan r'", -10.0): 3, ("light", 300.0, "Sloan r'", -10.0): 3}
    result = run(frames)
    assert sorted(m.name for m in result.masters) == [
        "master_bias.fits", "master_dark_300s.fits", "master_dark_3s.fits", "master_flat_Sloan_r.fits"]
    assert np.median(by_name(result, "master_bias.fits").data) == pytest.approx(897, abs=3)
    assert np.median(by_name(result, "master_dark_300s.fits").data) == pytest.approx(4, abs=3)
    flat = by_name(result, "master_flat_Sloan_r.fits").data
    normalised = flat / flat.mean()
    low, high = np.percentile(normalised, [0.5, 99.5])
    assert 0.92 < low < 0.96 and 1.03 < high < 1.07
    assert len(result.calibrated) == 3
    for light in result.calibrated:
        assert 775 < np.median(light.data) < 795
        assert "SUBDARK" in light.header and light.header["FLATCOR"] == "master_flat_Sloan_r.fits"
    assert not [p for p in result.problems if "light" in p]


def test_umd_g_night_scales_the_300s_dark_for_10s_flats(shared_data):
    frames, _ = fitsio.scan_folder(shared_data("umd_st8_ngc520/2018-10-14_g"))
    result = run(frames)
    flat = by_name(result, "master_flat_Sloan_g.fits")
    assert "scaled by 0.0333333" in str(flat.header["HISTORY"]) or any(
        "scaled by 0.0333333" in str(h) for h in flat.header["HISTORY"])
    assert np.median(by_name(result, "master_bias.fits").data) == pytest.approx(896, abs=3)
    assert np.median(by_name(result, "master_dark_300s.fits").data) == pytest.approx(17, abs=4)
    for light in result.calibrated:
        assert 625 < np.median(light.data) < 645


def test_flats_without_bias_or_dark_are_said_to_keep_their_offset(shared_data):
    """The g night's lights and flats alone: the master flat is made from the flats as read, and the
    plan says so once, for the master; the flats are not said to be 'not calibrated'."""
    frames, _ = fitsio.scan_folder(shared_data("umd_st8_ngc520/2018-10-14_g"))
    kept = [f for f in frames if f.kind in (FrameKind.FLAT, FrameKind.LIGHT)]
    made = plan.make_plan(kept, Recipe())
    said = [n for n in made.notes if "without bias or dark subtraction" in n]
    assert len(said) == 1 and said[0].startswith("master_flat_Sloan_g.fits:") and "weakens" in said[0]
    assert not any("not calibrated" in n for n in made.notes)
    assert all(not steps.skip for steps in made.lights)


def test_both_umd_nights_keep_filters_apart(shared_data):
    frames, _ = fitsio.scan_folder(shared_data("umd_st8_ngc520"))
    result = run(frames)
    assert len(result.calibrated) == 5
    assert sorted(m.name for m in result.masters) == [
        "master_bias_2018-10-13.fits", "master_bias_2018-10-18.fits", "master_dark_300s_2018-10-13.fits",
        "master_dark_300s_2018-10-18.fits", "master_dark_3s.fits", "master_flat_Sloan_g.fits",
        "master_flat_Sloan_r.fits"]
    for light in result.calibrated:
        r_band = light.filter == "Sloan r'"
        flat = "master_flat_Sloan_r.fits" if r_band else "master_flat_Sloan_g.fits"
        assert light.header["FLATCOR"] == flat
        night = "2018-10-18" if r_band else "2018-10-13"
        assert light.header["SUBDARK"] == f"master_dark_300s_{night}.fits"
        assert (775 < np.median(light.data) < 795) if r_band else (625 < np.median(light.data) < 645)


def test_stonybrook_masters_per_temperature_and_no_lights(shared_data):
    frames, problems = fitsio.scan_folder(shared_data("stonybrook_stl1001e"))
    assert problems == []
    assert counts(frames) == {
        ("bias", 0.0, "Visible", -5.0): 3, ("bias", 0.0, "Visible", -10.0): 3,
        ("dark", 60.0, "Visible", -5.0): 3, ("dark", 20.0, "Visible", -5.0): 1,
        ("dark", 30.0, "Visible", -5.0): 1, ("dark", 300.0, "Visible", -5.0): 1,
        ("dark", 60.0, "Visible", -10.0): 1, ("dark", 300.0, "Visible", -10.0): 1,
        ("flat", 23.0, "Visible", -5.0): 3}
    assert all(f.guessed for f in frames if f.kind is FrameKind.FLAT)
    result = run(frames)
    names = sorted(m.name for m in result.masters)
    assert names == sorted([
        "master_bias_-5C.fits", "master_bias_-10C.fits", "master_dark_20s.fits",
        "master_dark_30s.fits", "master_dark_60s_-5C.fits", "master_dark_300s_-5C.fits",
        "master_dark_60s_-10C.fits", "master_dark_300s_-10C.fits", "master_flat_Visible.fits"])
    assert np.median(by_name(result, "master_bias_-5C.fits").data) == pytest.approx(993, abs=2)
    assert np.median(by_name(result, "master_bias_-10C.fits").data) == pytest.approx(991, abs=2)
    for name, level in (("60s_-5C", 23), ("300s_-5C", 106), ("60s_-10C", 12), ("300s_-10C", 53)):
        assert np.median(by_name(result, f"master_dark_{name}.fits").data) == pytest.approx(level, rel=0.15)
    flat = by_name(result, "master_flat_Visible.fits")
    history = " ".join(str(h) for h in flat.header["HISTORY"])
    assert "master_dark_60s_-5C.fits scaled by 0.383333" in history.replace("\n", "")
    normalised = flat.data / flat.data.mean()
    low, high = np.percentile(normalised, [0.5, 99.5])
    assert 0.94 < low < 0.98 and 1.04 < high < 1.08
    assert result.calibrated == [] and any("no light frames" in p for p in result.problems)


def test_umd_masters_equal_ccdproc(shared_data):
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.nddata import CCDData
    from astropy.stats import mad_std

    frames, _ = fitsio.scan_folder(shared_data("umd_st8_ngc520/2018-10-19_r"))
    ours = run(frames, Recipe(combine="median"))
    biases = [CCDData(f.data, unit="adu") for f in frames if f.kind is FrameKind.BIAS]
    theirs = ccdproc.combine(biases, method="median", sigma_clip=True, sigma_clip_low_thresh=5,
                             sigma_clip_high_thresh=5, sigma_clip_func=np.ma.median,
                             sigma_clip_dev_func=mad_std, dtype=np.float64)
    mine = by_name(ours, "master_bias.fits").data
    assert np.max(np.abs(mine - theirs.data) / np.abs(theirs.data)) <= 1e-5


def test_odd_singles_load_or_quarantine_with_reasons(shared_data):
    frames, problems = fitsio.scan_folder(shared_data("odd_singles"))
    reasons = {p.path.name: p.reason for p in problems}
    assert set(reasons) == {"all-images.cal.fits", "l1448_13co.fits", "d-L2-sci-hg-240.00000000.CF.ms.fits"}
    assert "not a FITS file" in reasons["all-images.cal.fits"]
    assert "3-D" in reasons["l1448_13co.fits"]
    loaded = {f.name: f for f in frames}
    assert len(loaded) == 14
    assert loaded["a8280271.fits"].kind is FrameKind.LIGHT and loaded["a8280271.fits"].temperature is None
    assert loaded["dss.14.29.56-62.41.05.fits.gz"].exptime == 4200.0  # EXPOSURE = 70 minutes
    assert loaded["o4sp040b0_raw.fits"].exptime == 30.0 and loaded["o4sp040b0_raw.fits"].shape == (44, 62)
    assert loaded["test0.fits"].kind is FrameKind.UNKNOWN and loaded["test0.fits"].exptime == 0.23
    assert loaded["biastest1.fit"].kind is FrameKind.BIAS
    assert np.median(loaded["biastest1.fit"].data) == pytest.approx(35867, abs=1)
    assert any("BZERO" in n for n in loaded["biastest1.fit"].notes)
    seestar = loaded["Light_M 94_10.0s_IRCUT_20250326-212046.fit"]
    assert seestar.kind is FrameKind.LIGHT and any("GRBG" in n for n in seestar.notes)
    assert loaded["neon-on-dome-10-sec-high-res-though-scope.fit"].kind is FrameKind.UNKNOWN
    assert any("already calibrated" in n for n in loaded["center_cutout_1.fits"].notes)
    assert any("auto-dark" in n for n in loaded["spec-Neg5-tel-expo30s-3x3.00000003.FIT"].notes)
    assert loaded["spec-Neg5-tel-expo30s-3x3.00000003.FIT"].binning == (3, 3)
    assert loaded["d-L2-sci-hg-240.00000000.fits"].kind is FrameKind.UNKNOWN
    expected = fits.getdata(loaded["scale.fits"].path).astype(np.float32)
    np.testing.assert_allclose(loaded["scale.fits"].data, expected, rtol=1e-6)


def test_odd_singles_read_lazily_as_the_window_and_reduce_do(shared_data):
    """Headers first (how the window lists a folder and ``reduce`` takes it in): the same files are
    usable or quarantined, with the same shapes and pixels as a whole read."""
    folder = shared_data("odd_singles")
    eager, eager_problems = fitsio.scan_folder(folder)
    lazy, lazy_problems = fitsio.scan_folder(folder, lazy=True)
    lazy, unusable = fitsio.check_pixels(lazy)
    assert {p.path.name for p in lazy_problems + unusable} == {p.path.name for p in eager_problems}
    whole = {f.name: f for f in eager}
    assert {f.name for f in lazy} == set(whole)
    for frame in lazy:
        assert frame.shape == whole[frame.name].shape, frame.name
        np.testing.assert_array_equal(frame.data, whole[frame.name].data, err_msg=frame.name)
    assert whole["comp.fits"].shape == (300, 440)  # tile-compressed, in HDU 1


def test_overscan_and_trim_match_ccdproc(shared_data):
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.nddata import CCDData

    frame = fitsio.read_frame(shared_data("odd_singles/a8280271.fits"))
    result = run([frame])
    # a light with no masters but an overscan region is calibrated with overscan only, and says so
    assert [f.name for f in result.calibrated] == ["a8280271.fits"]
    assert any("overscan only" in p for p in result.problems)
    prepared = plan._prepare(frame, Recipe(), [])
    assert prepared.shape == (520, 512)
    ccd = CCDData(frame.data.astype(np.float64), unit="adu")
    theirs = ccdproc.subtract_overscan(ccd, overscan=ccd[:, 3:13], overscan_axis=1, median=True)
    theirs = ccdproc.trim_image(theirs[:, 16:528])
    np.testing.assert_allclose(prepared.data, theirs.data, rtol=1e-5, atol=1e-3)


def test_stale_sections_of_a_processed_frame_are_ignored(shared_data):
    frame = fitsio.read_frame(shared_data("odd_singles/center_cutout_1.fits"))
    notes = []
    assert plan._prepare(frame, Recipe(), notes) is frame
    assert notes == []
