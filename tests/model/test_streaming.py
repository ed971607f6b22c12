"""Stacks read from disk band by band: same answers as in memory, memory that does not grow with the
number of frames, cancel within half a second, and an estimate before the work starts."""

import time
import tracemalloc

import numpy as np
import pytest
from astropy.io import fits

from ccdgui.model import combine, execute, fitsio
from ccdgui.model import rows as row_sources
from ccdgui.model.combine import CombineOptions
from ccdgui.model.frame import FrameKind
from ccdgui.model.progress import Cancelled, CancelToken
from ccdgui.model.recipe import Recipe
from ccdgui.model.simulate import SimParams, iter_night


def write(path, data, **header):
    hdu = fits.PrimaryHDU(data)
    for key, value in header.items():
        hdu.header[key] = value
    hdu.writeto(path)
    return path


@pytest.mark.parametrize("dtype, scale", [("int16", (1.0, 32768.0)), ("float32", (1.0, 0.0)),
                                          ("int32", (0.5, 100.0)), ("uint8", (2.0, -3.0)),
                                          ("float64", (1.0, 0.0))])
def test_rows_from_disk_equal_the_whole_frame(tmp_path, dtype, scale):
    rng = np.random.default_rng(1)
    stored = rng.integers(0, 120, (37, 23)).astype(dtype)
    hdu = fits.PrimaryHDU(stored)
    hdu.header["BSCALE"], hdu.header["BZERO"] = scale
    hdu.writeto(tmp_path / "f.fits")
    lazy = fitsio.read_header_frame(tmp_path / "f.fits")
    rows = lazy.stack_source()
    assert isinstance(rows, row_sources.RawRows) and not lazy.loaded
    whole = fitsio.read_frame(tmp_path / "f.fits").data
    np.testing.assert_array_equal(rows[5:17], whole[5:17])
    np.testing.assert_array_equal(rows.read(), whole)
    np.testing.assert_allclose(whole, stored * scale[0] + scale[1], rtol=1e-6)
    assert rows[30:99].shape == (7, 23)


def test_header_scan_classifies_without_reading_pixels_and_check_pixels_quarantines(tmp_path):
    write(tmp_path / "b.fits", np.ones((8, 8), np.uint16), IMAGETYP="Bias Frame")
    write(tmp_path / "nan.fits", np.full((8, 8), np.nan, np.float32), IMAGETYP="LIGHT", EXPTIME=3.0)
    (tmp_path / "cut.fits").write_bytes((tmp_path / "b.fits").read_bytes()[:2880 + 50])
    frames, problems = fitsio.scan_folder(tmp_path, lazy=True)
    assert [f.kind for f in frames] == [FrameKind.BIAS, FrameKind.LIGHT]
    assert not any(f.loaded for f in frames)
    assert [(p.path.name, p.reason) for p in problems] == [
        ("cut.fits", "truncated file: data shorter than the header says")]
    good, bad = fitsio.check_pixels(frames)
    assert [f.name for f in good] == ["b.fits"] and not good[0].loaded
    assert [(p.path.name, p.reason) for p in bad] == [("nan.fits", "no finite pixel (all NaN/Inf)")]


def night_on_disk(tmp_path, **params):
    folder = tmp_path / "night"
    folder.mkdir()
    for frame in iter_night(SimParams(**params)):
        fitsio.write_frame(frame, folder / frame.name)
    return folder


def masters_of(frames, recipe):
    result = execute.run_to_end(frames, recipe)
    return {m.name: m.data for m in result.masters}, {c.name: c.data for c in result.calibrated}


def test_streamed_and_spilled_reduce_equals_the_in_memory_one(tmp_path):
    folder = night_on_disk(tmp_path, nx=96, ny=64, n_bias=5, n_dark=4, n_flat=4, n_light=2, seed=5)
    eager, _ = fitsio.scan_folder(folder)
    in_memory = masters_of(eager, Recipe())
    lazy, _ = fitsio.scan_folder(folder, lazy=True)
    streamed = masters_of(lazy, Recipe(stack_memory_mb=0))  # every processed stack goes to scratch
    assert not any(f.loaded for f in lazy)                   # nothing left in memory afterwards
    for produced, expected in zip(streamed, in_memory, strict=True):
        assert produced.keys() == expected.keys() and len(produced) > 0
        for name in expected:
            np.testing.assert_array_equal(produced[name], expected[name])


def test_memory_of_a_stack_from_disk_does_not_grow_with_its_length(tmp_path, monkeypatch):
    monkeypatch.setattr(combine, "BAND_BYTES", 256 * 1024)
    rng = np.random.default_rng(0)
    paths = [write(tmp_path / f"b{i:02d}.fits", rng.normal(1000, 10, (512, 512)).astype(np.float32),
                   IMAGETYP="BIAS") for i in range(30)]
    frames, _ = fitsio.read_frames(paths, lazy=True)
    sources = [f.stack_source() for f in frames]
    tracemalloc.start()
    result = combine.combine(sources, CombineOptions(method="median", reject="sigma"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stack_bytes = 30 * 512 * 512 * 4
    assert peak < stack_bytes / 4, f"peak {peak / 2**20:.1f} MB for a {stack_bytes / 2**20:.0f} MB stack"
    expected = combine.combine([f.data for f in frames], CombineOptions(method="median", reject="sigma"))
    np.testing.assert_array_equal(result.data, expected.data)


def test_cancel_takes_effect_within_half_a_second():
    arrays = [np.random.default_rng(i).normal(0, 1, (2048, 2048)).astype(np.float32) for i in range(12)]
    from ccdgui.model.frame import Frame

    frames = [Frame(data=a, kind=FrameKind.BIAS, name=f"b{i}.fits") for i, a in enumerate(arrays)]
    token = CancelToken()
    generator = execute.run(frames, Recipe(combine="median"), token)
    next(generator)
    next(generator)
    token.cancel()
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        while True:
            next(generator)
    assert time.perf_counter() - started < 0.5


def test_estimate_counts_the_stack_only_when_it_is_in_memory():
    options = CombineOptions(method="median", reject="sigma")
    in_memory = combine.estimate(40, 4096, 4096, options)
    from_disk = combine.estimate(40, 4096, 4096, options, from_disk=True)
    assert in_memory.peak_bytes > 40 * 4096 * 4096 * 4
    assert from_disk.peak_bytes < 600 * 2**20
    assert from_disk.seconds > in_memory.seconds > 1.0
    assert "MB" in str(from_disk) and "s" in str(from_disk)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
def test_bias_subtracted_frames_stay_on_disk_and_combine_exactly(tmp_path, monkeypatch, compiled):
    """subtract_bias on a frame still on disk returns a lazy frame (rows minus bias, band by band) with
    the same pixels and header as the eager verb; a stack of them combines to exactly the same master."""
    from ccdgui.model import calibrate
    from ccdgui.model.frame import Frame

    if not compiled:
        monkeypatch.setattr(combine, "_stack", None)
    elif combine._stack is None:
        pytest.skip("no compiled kernel here")
    rng = np.random.default_rng(5)
    bias = Frame(data=rng.normal(1000, 3, (41, 67)).astype(np.float32), name="master_bias.fits")
    paths = [write(tmp_path / f"d{i}.fits", rng.integers(900, 1400, (41, 67)).astype(np.uint16),
                   IMAGETYP="DARK", EXPTIME=60.0) for i in range(7)]
    lazy_inputs, eager_inputs = [], []
    for path in paths:
        raw = fitsio.read_header_frame(path)
        lazy = calibrate.subtract_bias(raw, bias)
        assert not raw.loaded and not lazy.loaded
        assert isinstance(lazy.stack_source(), row_sources.ProcessedRows)
        eager = calibrate.subtract_bias(fitsio.read_frame(path), bias)
        assert eager.loaded and list(eager.header["HISTORY"]) == list(lazy.header["HISTORY"])
        assert lazy.header["SUBBIAS"] == eager.header["SUBBIAS"] == "master_bias.fits"
        np.testing.assert_array_equal(lazy.stack_source()[3:9], eager.data[3:9])
        lazy_inputs.append(lazy)
        eager_inputs.append(eager)
    monkeypatch.setattr(combine, "BAND_BYTES", 7 * 67 * 4 * 5)  # several bands
    for options in (CombineOptions(), CombineOptions(method="median", reject="none")):
        streamed = combine.combine([f.stack_source() for f in lazy_inputs], options)
        in_memory = combine.combine([f.data for f in eager_inputs], options)
        np.testing.assert_array_equal(streamed.data, in_memory.data)
        np.testing.assert_array_equal(streamed.count, in_memory.count)
    np.testing.assert_array_equal(lazy_inputs[0].data, eager_inputs[0].data)  # loading it whole agrees


def test_calibration_steps_on_a_frame_on_disk_equal_the_whole_frame_verbs(tmp_path):
    """bias, a scaled dark and a flat applied to a frame still on disk: nothing is read until the pixels
    are asked for, then the same float32 values and the same header as the verbs on a loaded frame."""
    from ccdgui.model import calibrate
    from ccdgui.model.frame import Frame

    rng = np.random.default_rng(9)
    shape = (29, 53)
    bias = Frame(data=rng.normal(1000, 3, shape).astype(np.float32), name="b.fits")
    dark = Frame(data=rng.normal(20, 2, shape).astype(np.float32), name="d.fits")
    dark.header["EXPTIME"] = 60.0
    flat = Frame(data=rng.uniform(0.8, 1.2, shape).astype(np.float32) * 3e4, name="f.fits")
    flat.data[4, 4] = 0.0  # a dead pixel: division by zero gives inf in both
    path = write(tmp_path / "light.fits", rng.integers(1000, 9000, shape).astype(np.uint16),
                 IMAGETYP="LIGHT", EXPTIME=102.0)

    def chain(frame):
        darkened = calibrate.subtract_dark(calibrate.subtract_bias(frame, bias), dark)
        return calibrate.flat_correct(darkened, flat)

    raw = fitsio.read_header_frame(path)
    lazy = chain(raw)
    assert not raw.loaded and not lazy.loaded and len(lazy.rows.steps) == 3 and lazy.rows.decode is None
    eager = chain(fitsio.read_frame(path))
    assert repr(lazy.header) == repr(eager.header)
    np.testing.assert_array_equal(lazy.rows[7:19], eager.data[7:19])
    band = np.empty((5, shape[1]), np.float32)
    lazy.rows.read_into(2, 7, band)
    np.testing.assert_array_equal(band, eager.data[2:7])
    kept = lazy.materialised()
    np.testing.assert_array_equal(kept.data, eager.data)
    assert np.isinf(kept.data[4, 4]) and kept.materialised() is kept
    kept.release()
    assert kept.loaded  # in memory for good
