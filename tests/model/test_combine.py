"""The combine engine: known answers on tiny stacks, equality with ccdproc, odd inputs, progress."""

import numpy as np
import pytest

from ccdgui.model.combine import CombineOptions, combine, inverse_median_scales, iter_combine

from .stacks import assert_file_combines_equal_on_both_paths

NONE = CombineOptions(reject="none")


def stack_of(*columns):
    """Frames of shape (1, k) from per-frame value lists."""
    return [np.asarray([values], dtype=np.float32) for values in zip(*columns, strict=True)]


def test_tiny_known_answers():
    # one pixel, frames 1..6 and an outlier of 100
    frames = [np.full((1, 1), v, np.float32) for v in (1, 2, 3, 4, 5, 6, 100)]
    assert combine(frames, NONE).data[0, 0] == pytest.approx(121 / 7)
    assert combine(frames, CombineOptions(method="median", reject="none")).data[0, 0] == 4
    assert combine(frames, CombineOptions(method="sum", reject="none")).data[0, 0] == 121
    clipped = combine(frames, CombineOptions(sigma_low=3, sigma_high=3))
    assert clipped.data[0, 0] == pytest.approx(3.5) and clipped.count[0, 0] == 6
    minmax = combine(frames, CombineOptions(reject="minmax", minmax_low=1, minmax_high=2))
    assert minmax.data[0, 0] == pytest.approx(3.5) and minmax.count[0, 0] == 4  # mean of 2, 3, 4, 5
    even_median = combine(frames[:6], CombineOptions(method="median", reject="none"))
    assert even_median.data[0, 0] == 3.5


def test_nan_is_missing_and_all_missing_is_nan_with_count_zero():
    frames = stack_of([1, 3, np.nan], [np.nan, np.nan, np.nan])  # pixel 0: 1, 3, missing; pixel 1: none
    for method in ("average", "median", "sum"):
        result = combine(frames, CombineOptions(method=method, reject="sigma"))
        assert result.data[0, 0] == (4 if method == "sum" else 2)
        assert np.isnan(result.data[0, 1])
        assert result.count.tolist() == [[2, 0]] and result.count.dtype == np.uint16


def test_scaling_happens_before_rejection():
    # flats at 10000 and 20000 with the same pattern: unscaled sigma clipping would reject whole frames
    rng = np.random.default_rng(1)
    pattern = rng.uniform(0.9, 1.1, (40, 50)).astype(np.float32)
    levels = (10000, 10500, 20000, 21000, 19000)
    frames = [pattern * level + rng.normal(0, 0.001 * level, pattern.shape).astype(np.float32)
              for level in levels]
    three_sigma = CombineOptions(sigma_low=3, sigma_high=3)
    scaled_first = combine(frames, three_sigma, inverse_median_scales(frames))
    assert scaled_first.count.mean() > 4.6  # MAD of 5 values is itself noisy: some pixels lose one
    np.testing.assert_allclose(scaled_first.data, pattern / np.median(pattern), rtol=0.01)
    unscaled = combine(frames, three_sigma)  # what clipping before scaling would keep
    assert unscaled.count.mean() < 4.4  # the 10000-level frame is thrown away in most pixels


@pytest.fixture(scope="module")
def noisy_stack():
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(11):
        frame = rng.normal(1000, 10, (64, 80)).astype(np.float32)
        frame.flat[rng.integers(0, frame.size, 60)] += rng.choice([-400, 600], 60)
        frames.append(frame)
    return frames


CASES = {
    "average-none": (CombineOptions(method="average", reject="none"), {}),
    "median-none": (CombineOptions(method="median", reject="none"), {}),
    "sum-none": (CombineOptions(method="sum", reject="none"), {}),
    "average-sigma": (CombineOptions(), dict(sigma_clip=True, sigma_clip_low_thresh=5,
                                             sigma_clip_high_thresh=5, sigma_clip_func="median",
                                             sigma_clip_dev_func="mad_std")),
    "median-sigma-3-mean-std": (
        CombineOptions(method="median", sigma_low=3, sigma_high=2.5, sigma_center="mean", sigma_spread="std"),
        dict(sigma_clip=True, sigma_clip_low_thresh=3, sigma_clip_high_thresh=2.5, sigma_clip_func="mean",
             sigma_clip_dev_func="std")),
    "sum-sigma": (CombineOptions(method="sum"), dict(sigma_clip=True, sigma_clip_low_thresh=5,
                                                     sigma_clip_high_thresh=5, sigma_clip_func="median",
                                                     sigma_clip_dev_func="mad_std")),
    "average-minmax": (CombineOptions(reject="minmax"), dict(clip_extrema=True, nlow=1, nhigh=1)),
    "median-minmax-2-1": (CombineOptions(method="median", reject="minmax", minmax_low=2),
                          dict(clip_extrema=True, nlow=2, nhigh=1)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_equal_to_ccdproc(noisy_stack, case):
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.nddata import CCDData
    from astropy.stats import mad_std

    options, kwargs = CASES[case]
    funcs = {"median": np.ma.median, "mean": np.ma.mean, "mad_std": mad_std, "std": np.ma.std}
    for key in ("sigma_clip_func", "sigma_clip_dev_func"):
        if key in kwargs:
            kwargs = {**kwargs, key: funcs[kwargs[key]]}
    scales = [1.0 + 0.01 * i for i in range(len(noisy_stack))]
    theirs = ccdproc.combine([CCDData(f.astype(np.float64) * s, unit="adu") for f, s in
                              zip(noisy_stack, scales, strict=True)], method=options.method, dtype=np.float64,
                             **kwargs)
    ours = combine(noisy_stack, options, scales)
    assert np.max(np.abs(ours.data - theirs.data) / np.abs(theirs.data)) <= 1e-5
    if options.reject != "none":
        assert ours.count.min() < len(noisy_stack)  # something was rejected


def test_inputs_unchanged_and_odd_dtypes_agree(noisy_stack, tmp_path):
    copies = [f.copy() for f in noisy_stack]
    reference = combine(noisy_stack, CombineOptions(method="median"))
    for frame, copy in zip(noisy_stack, copies, strict=True):
        np.testing.assert_array_equal(frame, copy)
    big_endian = [f.astype(">f4") for f in noisy_stack]
    np.testing.assert_array_equal(combine(big_endian, CombineOptions(method="median")).data, reference.data)
    mapped = []
    for index, frame in enumerate(noisy_stack):
        path = tmp_path / f"{index}.npy"
        memmap = np.lib.format.open_memmap(path, mode="w+", dtype=">f4", shape=frame.shape)
        memmap[:] = frame
        mapped.append(np.load(path, mmap_mode="r"))
    np.testing.assert_array_equal(combine(mapped, CombineOptions(method="median")).data, reference.data)
    integers = [np.round(f).astype(np.uint16) for f in noisy_stack]
    as_float = [i.astype(np.float32) for i in integers]
    np.testing.assert_array_equal(combine(integers).data, combine(as_float).data)


def test_iter_combine_reports_progress_and_matches(noisy_stack, monkeypatch):
    monkeypatch.setattr("ccdgui.model.combine.BAND_BYTES", 11 * 80 * 4 * 5)  # 5-row bands
    generator = iter_combine(noisy_stack, CombineOptions())
    fractions = []
    try:
        while True:
            fractions.append(next(generator))
    except StopIteration as stop:
        result = stop.value
    assert len(fractions) == 13 and fractions == sorted(fractions) and fractions[-1] == 1.0
    np.testing.assert_array_equal(result.data, combine(noisy_stack).data)


@pytest.mark.parametrize("arrays, options, message", [
    ([], CombineOptions(), "no frames"),
    ([np.zeros((2, 2)), np.zeros((3, 2))], CombineOptions(), "different sizes"),
    ([np.zeros((2, 2))], CombineOptions(method="mode"), "unknown combine method"),
    ([np.zeros((2, 2))], CombineOptions(reject="magic"), "unknown rejection"),
    ([np.zeros(4)], CombineOptions(), "2-D"),
])
def test_bad_inputs_are_one_line_errors(arrays, options, message):
    with pytest.raises(ValueError, match=message):
        combine(arrays, options)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20, 33])
def test_sorting_network_sorts(n):
    from ccdgui.model.combine import _sorted_rows

    cube = np.random.default_rng(n).normal(0, 1, (n, 5, 7)).astype(np.float32)
    cube[:, 0, 0] = 3.0  # ties
    np.testing.assert_array_equal(np.stack(_sorted_rows(cube)), np.sort(cube, axis=0))


@pytest.mark.parametrize("options", [
    CombineOptions(method=m, reject=r, sigma_center=c, sigma_spread=s)
    for m in ("average", "median", "sum") for r in ("none", "sigma", "minmax")
    for c, s in (("median", "mad_std"), ("mean", "std"))], ids=str)
def test_fast_path_equals_general_path(noisy_stack, options):
    from ccdgui.model.combine import _reduce_masked_band, _reduce_sorted_band

    cube = np.stack(noisy_stack)
    fast, fast_count = _reduce_sorted_band(cube, options)
    general, general_count = _reduce_masked_band(cube, options)
    np.testing.assert_array_equal(fast_count, general_count)
    np.testing.assert_allclose(fast, general, rtol=2e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 11, 20, 25])
def test_median_deviation_by_selection_equals_sorting_the_deviations(n):
    from ccdgui.model.combine import _median_deviation

    rng = np.random.default_rng(n)
    cube = np.sort(rng.normal(0, 1, (n, 40, 30)).astype(np.float32), axis=0)
    cube[:, 0, :] = 1.5  # all tied
    median = np.median(cube, axis=0).astype(np.float32)
    expected = np.median(np.abs(cube - median), axis=0)
    np.testing.assert_array_equal(_median_deviation(cube, median), expected.astype(np.float32))


@pytest.mark.parametrize("n", [1, 2, 3, 6, 7, 20, 33, 64])
def test_pruned_selection_network_finds_the_middle_values(n):
    from ccdgui.model.combine import _select_frames, selection_network, sorting_network

    cube = np.random.default_rng(n).integers(0, 5, (n, 17, 9)).astype(np.float32)  # many ties
    outputs = tuple(sorted({(n - 1) // 2, n // 2}))
    picked = _select_frames(cube, outputs)
    expected = np.sort(cube, axis=0)
    for k in outputs:
        np.testing.assert_array_equal(picked[k], expected[k])
    assert len(selection_network(n, outputs)) <= len(sorting_network(n))


# --- the compiled kernel -----------------------------------------------------------------------------
def _compiled_module():
    from ccdgui.model import combine as engine

    if engine._stack is None:
        pytest.skip("the compiled kernel was not built here (no C compiler at install time)")
    return engine


def test_compiled_kernel_is_built_where_a_compiler_is():
    import shutil

    from ccdgui.model import combine as engine

    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler on this machine")
    assert engine._stack is not None, "ccdgui.model._stack missing: reinstall with pip install -e ."


ALL_OPTIONS = [CombineOptions(method=m, reject=r, sigma_center=c, sigma_spread=s, sigma_low=low,
                              sigma_high=0.8 * low, minmax_low=nlow, minmax_high=nhigh)
               for m in ("average", "median", "sum") for r in ("sigma", "minmax", "none")
               for c, s in (("median", "mad_std"), ("mean", "std")) for low in (5.0, 1.5)
               for nlow, nhigh in ((1, 1), (2, 0), (40, 40))]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 11, 20, 33, 64])
def test_compiled_kernel_equals_numpy_exactly(n):
    """Same float32 operations in the same order: identical values and counts, ties and outliers too."""
    engine = _compiled_module()
    rng = np.random.default_rng(n)
    cube = rng.normal(1000, 10, (n, 7, 37)).astype(np.float32)  # 259 pixels: 4 blocks, one partial
    cube.flat[rng.integers(0, cube.size, cube.size // 20)] += rng.choice([-400, 600], cube.size // 20)
    cube[:, 0, :5] = 3.0
    tried = 0
    for options in ALL_OPTIONS:
        if not engine._compiled_applies(n, options):
            continue
        before = cube.copy()
        data, count = engine._reduce_compiled(list(cube), None, options)
        expected, expected_count = engine._reduce_sorted_band(cube.copy(), options)
        np.testing.assert_array_equal(cube, before)
        np.testing.assert_array_equal(data, expected, err_msg=str(options))
        np.testing.assert_array_equal(count, expected_count, err_msg=str(options))
        tried += 1
    assert tried == 84  # all but the plain average and sum, which need no sorting


def test_compiled_combine_equals_numpy_combine_with_scales_nans_and_odd_inputs(noisy_stack, monkeypatch):
    engine = _compiled_module()
    frames = [f.copy() for f in noisy_stack]
    frames[3][5, 7] = np.nan
    frames[4][9, :] = np.inf  # a band that is not all finite goes the general way
    scales = [1.0 + 0.03 * i for i in range(len(frames))]
    kinds = {"float32": frames, "big-endian": [f.astype(">f4") for f in frames]}
    options = [CombineOptions(), CombineOptions(method="median"),
               CombineOptions(method="median", reject="none"), CombineOptions(reject="minmax", minmax_low=2),
               CombineOptions(method="sum", sigma_center="mean", sigma_spread="std")]
    compiled = {(kind, o): engine.combine(arrays, o, scales)
                for kind, arrays in kinds.items() for o in options}
    monkeypatch.setattr(engine, "_stack", None)
    for (kind, o), result in compiled.items():
        expected = engine.combine(kinds[kind], o, scales)
        np.testing.assert_array_equal(result.data, expected.data, err_msg=f"{kind} {o}")
        np.testing.assert_array_equal(result.count, expected.count, err_msg=f"{kind} {o}")
    assert np.isnan(frames[3][5, 7]) and np.isinf(frames[4][9, 0])  # inputs untouched


def test_compiled_kernel_rejects_inconsistent_buffers():
    engine = _compiled_module()
    rows = [np.zeros(10, np.float32)] * 3
    network = engine._network_array(3, False)
    with pytest.raises(ValueError, match="bytes, expected"):
        engine._stack.reduce_band(rows, None, None, network, np.empty(9, np.float32),
                                  np.empty(10, np.uint16), 0, 1, 0, 0, 5.0, 5.0, 1, 1, 1.48)
    with pytest.raises(ValueError, match="network refers"):
        engine._stack.reduce_band(rows, None, None, engine._network_array(5, False),
                                  np.empty(10, np.float32), np.empty(10, np.uint16), 0, 1, 0, 0, 5.0, 5.0, 1,
                                  1, 1.48)
    with pytest.raises(ValueError, match="unknown stored kind"):
        engine._stack.reduce_band(rows, None, [("q", 1.0, 0.0, None)] * 3, network, np.empty(10, np.float32),
                                  np.empty(10, np.uint16), 0, 1, 0, 0, 5.0, 5.0, 1, 1, 1.48)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 11, 100_000, 100_001])
def test_median_of_equals_numpy_median(n):
    from ccdgui.model.combine import median_of

    rng = np.random.default_rng(n)
    ties = np.round(rng.normal(0, 3, n)).astype(np.float32)
    for values in (rng.normal(1000, 10, n).astype(np.float32), ties):
        before = values.copy()
        expected = np.median(values)
        assert median_of(values) == expected and median_of(values).dtype == np.float32
        np.testing.assert_array_equal(values, before)  # partitions a copy


@pytest.mark.parametrize("bitpix, bscale, bzero, blank", [
    (8, 1.0, 0.0, None), (16, 1.0, 32768.0, None), (16, 0.5, 100.0, -7), (32, 1.0, 0.0, 12345),
    (-32, 1.0, 0.0, None), (-64, 1.0, 0.0, None), (-32, 2.0, -3.0, None)], ids=str)
def test_compiled_kernel_decodes_file_rows_as_numpy_does(tmp_path, monkeypatch, bitpix, bscale, bzero, blank):
    """Rows read straight from FITS files (big-endian, scaled, with BLANK) give exactly numpy's result."""
    from astropy.io import fits


    _compiled_module()  # skips where the kernel was not built
    rng = np.random.default_rng(abs(bitpix))
    stored = {8: np.uint8, 16: np.int16, 32: np.int32, -32: np.float32, -64: np.float64}[bitpix]
    high = 250 if bitpix == 8 else 30000
    paths = []
    for index in range(9):
        values = rng.integers(0, high, (23, 70)).astype(stored)
        if bitpix < 0:
            values = values + rng.random(values.shape).astype(stored)
        if blank is not None and index == 4:
            values[3, 5] = blank  # one band has a missing pixel: it goes the general way
        hdu = fits.PrimaryHDU(values)
        hdu.header["BSCALE"], hdu.header["BZERO"] = bscale, bzero
        if blank is not None:
            hdu.header["BLANK"] = blank
        paths.append(tmp_path / f"f{index}.fits")
        hdu.writeto(paths[-1])
    scales = [1.0 + 0.1 * i for i in range(9)]
    compiled = assert_file_combines_equal_on_both_paths(paths, monkeypatch, 9 * 70 * 4 * 4, scales)
    if blank is not None:
        assert compiled[0].count[3, 5] == 8  # the BLANK pixel is missing, not a value
