"""Absolute thresholds (clip_min / clip_max) and per-frame weights in the combine engine: known answers,
the compiled kernel equal to numpy bit for bit, ccdproc or a float64 reference to 1e-5, the helpers."""

import numpy as np
import pytest

from ccdgui.model import combine as engine
from ccdgui.model.combine import (
    CombineOptions,
    combine,
    estimate,
    exposure_weights,
    inverse_variance_weights,
    keyword_weights,
)

METHODS = ("average", "median", "sum")
REJECTS = ("none", "sigma", "minmax")


def _column(*values):
    return [np.full((1, 1), v, np.float32) for v in values]


# --- known answers and validation ---------------------------------------------------------------------
def test_thresholds_known_answers_compare_before_scaling():
    frames = _column(1, 2, 3, 4, 60000)
    saturated = CombineOptions(reject="none", clip_max=50000)
    result = combine(frames, saturated)
    assert result.data[0, 0] == 2.5 and result.count[0, 0] == 4
    # 30000 scaled by 2 is 60000 but was 30000 as given: kept, as ccdproc's minmax_clipping keeps it
    scaled = combine(_column(1, 2, 3, 4, 30000), saturated, [1, 1, 1, 1, 2])
    assert scaled.data[0, 0] == pytest.approx(60010 / 5) and scaled.count[0, 0] == 5
    low_and_high = combine(frames, CombineOptions(method="median", reject="none", clip_min=2, clip_max=50000))
    assert low_and_high.data[0, 0] == 3 and low_and_high.count[0, 0] == 3  # 2 is kept: not below 2
    # thresholds first, then min/max rejection on the values left (IRAF's order)
    minmax = combine(frames, CombineOptions(reject="minmax", minmax_low=1, minmax_high=1, clip_max=50000))
    assert minmax.data[0, 0] == 2.5 and minmax.count[0, 0] == 2
    nothing_left = combine(frames, CombineOptions(clip_min=70000))
    assert np.isnan(nothing_left.data[0, 0]) and nothing_left.count[0, 0] == 0


def test_weights_known_answers_and_median_ignores_them():
    frames = _column(1, 2, 4)
    assert combine(frames, CombineOptions(reject="none"), weights=[1, 1, 2]).data[0, 0] == 2.75
    assert combine(frames, CombineOptions(method="sum", reject="none"), weights=[1, 1, 2]).data[0, 0] == 11
    assert combine(frames, CombineOptions(method="median", reject="none"), weights=[5, 0, 0]).data[0, 0] == 2
    zero_weight_kept = combine(frames, CombineOptions(reject="none"), weights=[0, 1, 1])
    assert zero_weight_kept.data[0, 0] == 3 and zero_weight_kept.count[0, 0] == 3  # counted, weighs nothing
    assert combine(frames, CombineOptions(reject="none", clip_max=3), weights=[1, 3, 8]).data[0, 0] == 1.75


@pytest.mark.parametrize("options, message", [
    (CombineOptions(clip_min=float("nan")), "clip_min must be a finite number"),
    (CombineOptions(clip_max=float("inf")), "clip_max must be a finite number"),
    (CombineOptions(clip_max="60000"), "clip_max must be a finite number"),
    (CombineOptions(clip_min=True), "clip_min must be a finite number"),
    (CombineOptions(clip_min=5, clip_max=5), "must be below clip_max"),
])
def test_bad_thresholds_are_one_line_errors(options, message):
    with pytest.raises(ValueError, match=message):
        combine(_column(1, 2), options)


@pytest.mark.parametrize("weights, message", [
    ([1, 2], "2 weights for 3 frames"), ([1, -1, 1], "finite numbers ≥ 0"), ([1, np.nan, 1], "finite"),
    ([0, 0, 0], "all zero"), (["a", 1, 1], "must be numbers"), ([1, 1e39, 1], "float32 range"),
])
def test_bad_weights_are_one_line_errors(weights, message):
    with pytest.raises(ValueError, match=message):
        combine(_column(1, 2, 3), weights=weights)


def test_estimate_is_unaffected_by_thresholds():
    for method in METHODS:
        for reject in REJECTS:
            plain = CombineOptions(method=method, reject=reject)
            clipped = CombineOptions(method=method, reject=reject, clip_min=10, clip_max=60000)
            for n in (3, 20, 80):
                assert str(estimate(n, 2048, 2048, clipped)) == str(estimate(n, 2048, 2048, plain))


# --- compiled kernel == numpy, bit for bit ------------------------------------------------------------
def _stack_with_extremes(n: int, seed: int, shape=(9, 37)) -> list[np.ndarray]:
    """Noise around 1000 with outliers, 'saturated' 60000s (some pixels in most frames), low values, ties."""
    rng = np.random.default_rng(seed)
    cube = rng.normal(1000, 10, (n,) + shape).astype(np.float32)
    cube.flat[rng.integers(0, cube.size, cube.size // 20)] += rng.choice([-400, 600], cube.size // 20)
    cube.flat[rng.integers(0, cube.size, cube.size // 15)] = 60000
    cube.flat[rng.integers(0, cube.size, cube.size // 30)] = -50
    cube[:, 0, :6] = 60000  # every value beyond the threshold
    cube[:, 1, :8] = np.round(cube[:, 1, :8] / 10) * 10  # ties
    cube[: max(1, n - 1), 2, :4] = 60000  # one value left
    return list(cube)


def _option_grid():
    for method in METHODS:
        for reject in REJECTS:
            for centre, spread in (("median", "mad_std"), ("mean", "std")):
                if reject != "sigma" and centre == "mean":
                    continue
                yield CombineOptions(method=method, reject=reject, sigma_low=2.0, sigma_high=1.6,
                                     sigma_center=centre, sigma_spread=spread, minmax_low=1, minmax_high=2,
                                     clip_min=0.0, clip_max=50000.0)


def _compiled():
    if engine._stack is None:
        pytest.skip("the compiled kernel was not built here")
    return engine


@pytest.mark.parametrize("n", [*range(1, 41), 64])
def test_kernel_equals_numpy_sorted_path_exactly(n):
    """Thresholds, weights and both, every method and rejection, with and without scales (which break
    ties), straight against _reduce_sorted_band."""
    _compiled()
    cube = np.stack(_stack_with_extremes(n, n))
    rng = np.random.default_rng(100 + n)
    factors = np.float32(1) + rng.uniform(-0.05, 0.05, n).astype(np.float32)
    factors[0] = 1
    weights = rng.uniform(0.2, 3, n).astype(np.float32)
    weights[n // 2] = 0
    low, high = engine._clip_limits(CombineOptions(clip_min=0.0, clip_max=50000.0))
    clipped = (cube < low) | (cube > high)
    tried = 0
    for scales in (None, factors):
        scaled = cube.copy()
        for index, scale in enumerate(scales if scales is not None else []):
            if scale != 1:
                scaled[index] *= scale
        for clip in (True, False):
            for options in _option_grid():
                if not clip:
                    options = CombineOptions(**{**options.__dict__, "clip_min": None, "clip_max": None})
                for w in (None, weights):
                    weighted_median = w is not None and options.method == "median"
                    if not engine._compiled_applies(n, options) or weighted_median:
                        continue
                    compiled = engine._reduce_compiled(list(cube), scales, options, weights=w)
                    assert compiled is not None
                    mask = clipped if clip else None
                    expected = engine._reduce_sorted_band(scaled.copy(), options, False, mask, w)
                    message = f"{options} weights={w is not None} scales={scales is not None}"
                    np.testing.assert_array_equal(compiled[0], expected[0], err_msg=message)
                    np.testing.assert_array_equal(compiled[1], expected[1], err_msg=message)
                    tried += 1
    assert tried == 64


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 20, 31, 40])
def test_compiled_combine_equals_numpy_combine(n, monkeypatch):
    """Whole combines in several bands, some with NaN (the general path), every option pairing."""
    _compiled()
    frames = _stack_with_extremes(n, 7 * n, shape=(24, 53))
    frames[0][20, 3] = np.nan
    frames[-1][22, :] = np.nan
    monkeypatch.setattr(engine, "BAND_BYTES", n * 53 * 4 * 5)  # 5-row bands
    rng = np.random.default_rng(n)
    scales = list(1 + rng.uniform(-0.05, 0.05, n))
    weights = list(rng.uniform(0.2, 3, n))
    cases = []
    for options in _option_grid():
        no_clip = CombineOptions(**{**options.__dict__, "clip_min": None, "clip_max": None})
        cases += [(options, None), (options, weights), (no_clip, weights)]
    compiled = [combine(frames, o, scales, w) for o, w in cases]
    monkeypatch.setattr(engine, "_stack", None)
    for (options, w), result in zip(cases, compiled, strict=True):
        expected = combine(frames, options, scales, w)
        message = f"{options} weights={w is not None}"
        np.testing.assert_array_equal(result.data, expected.data, err_msg=message)
        np.testing.assert_array_equal(result.count, expected.count, err_msg=message)
    assert compiled[0].count[0, 0] == 0 and np.isnan(compiled[0].data[0, 0])  # all beyond the threshold


def test_kernel_arguments_are_checked():
    engine = _compiled()
    rows = [np.zeros(10, np.float32)] * 3
    network = engine._network_array(3, False)

    def call(*extra, method=0, reject=1, low=1):
        return engine._stack.reduce_band(rows, None, None, network, np.empty(10, np.float32),
                                         np.empty(10, np.uint16), method, reject, 0, 0, 5.0, 5.0, low, 1,
                                         1.48, *extra)

    assert call(np.ones(3, np.float32), 1.0, None) is True
    with pytest.raises(ValueError, match="weights has"):
        call(np.ones(2, np.float32))
    with pytest.raises(TypeError):
        call([1.0, 1.0, 1.0])
    with pytest.raises(TypeError):
        call(None, "low")
    with pytest.raises(ValueError, match="NaN"):
        call(None, None, float("nan"))
    for kwargs in (dict(method=3), dict(reject=-1), dict(low=-1)):
        with pytest.raises(ValueError, match="unknown method"):
            call(**kwargs)
    with pytest.raises(ValueError, match="network refers"):
        engine._stack.reduce_band(rows, None, None, np.array([[1, 1]], np.int32), np.empty(10, np.float32),
                                  np.empty(10, np.uint16), 0, 1, 0, 0, 5.0, 5.0, 1, 1, 1.48)


def test_threshold_compares_as_in_double():
    """A float32 value beside a threshold that float32 cannot hold is judged as in double (as ccdproc)."""
    value = np.float32(1000.0000610351562)  # the float32 after 1000
    for clip_max, kept in ((1000.00004, 1), (1000.0000610351562, 2), (1000.00007, 2)):
        frames = [np.full((1, 1), 999, np.float32), np.full((1, 1), value, np.float32)]
        assert combine(frames, CombineOptions(reject="none", clip_max=clip_max)).count[0, 0] == kept
    frames = [np.full((1, 1), 1000, np.float32), np.full((1, 1), value, np.float32)]
    assert combine(frames, CombineOptions(reject="none", clip_min=1000.00004)).count[0, 0] == 1


# --- against ccdproc and a float64 reference --------------------------------------------------------
@pytest.fixture(scope="module")
def stack():
    rng = np.random.default_rng(3)
    frames = []
    for _ in range(13):
        frame = rng.normal(1000, 10, (48, 64)).astype(np.float32)
        frame.flat[rng.integers(0, frame.size, 40)] += rng.choice([-400, 600], 40)
        frame.flat[rng.integers(0, frame.size, 60)] = 60000  # saturated
        frame.flat[rng.integers(0, frame.size, 20)] = 5  # dead
        frames.append(frame)
    return frames


SCALES = [1.0 + 0.01 * i for i in range(13)]
WEIGHTS = [0.5 + 0.2 * i for i in range(13)]
SIGMA = dict(sigma_clip=True, sigma_clip_low_thresh=3, sigma_clip_high_thresh=3, sigma_clip_func="median",
             sigma_clip_dev_func="mad_std")


def _ccd(frames, scales=None, nan=None):
    from astropy.nddata import CCDData

    out = []
    for index, frame in enumerate(frames):
        data = frame.astype(np.float64) * (scales[index] if scales else 1)
        if nan is not None:
            data[nan[index]] = np.nan
        out.append(CCDData(data, unit="adu"))
    return out


def _close(ours, theirs, where=None):
    where = np.isfinite(theirs) if where is None else where
    assert where.any()
    assert np.max(np.abs(ours[where] - theirs[where]) / np.abs(theirs[where])) <= 1e-5


@pytest.mark.parametrize("method", METHODS)
def test_thresholds_equal_ccdproc_minmax_clipping(stack, method):
    """ccdproc's minmax_clipping compares the values before its scaling, as here."""
    ccdproc = pytest.importorskip("ccdproc")
    theirs = ccdproc.combine(_ccd(stack), method=method, dtype=np.float64, scale=np.array(SCALES),
                             minmax_clip=True, minmax_clip_min=10, minmax_clip_max=50000)
    ours = combine(stack, CombineOptions(method=method, reject="none", clip_min=10, clip_max=50000), SCALES)
    assert ours.count.min() < len(stack) and (ours.data / ours.count).max() < 2000
    np.testing.assert_array_equal(theirs.mask, ours.count == 0)
    _close(ours.data, theirs.data, ours.count > 0)


@pytest.mark.filterwarnings("ignore:Input data contains invalid values")
@pytest.mark.parametrize("method", METHODS)
def test_thresholds_then_sigma_equal_ccdproc_on_missing_values(stack, method):
    """Thresholds first: as ccdproc given the thresholded values as NaN (ccdproc's own order would let
    them into the sigma-clipping centre and spread)."""
    ccdproc = pytest.importorskip("ccdproc")
    scaled = [f * np.float32(s) for f, s in zip(stack, SCALES, strict=True)]
    beyond = [(f < 10) | (f > 50000) for f in stack]
    theirs = ccdproc.combine(_ccd(scaled, nan=beyond), method=method, dtype=np.float64, **SIGMA)
    options = CombineOptions(method=method, sigma_low=3, sigma_high=3, clip_min=10, clip_max=50000)
    ours = combine(stack, options, SCALES)
    _close(ours.data, theirs.data, ours.count > 0)


@pytest.mark.parametrize("method", ("average", "sum"))
def test_weights_equal_ccdproc_without_rejection(stack, method):
    ccdproc = pytest.importorskip("ccdproc")
    theirs = ccdproc.combine(_ccd(stack, SCALES), method=method, dtype=np.float64, weights=np.array(WEIGHTS))
    _close(combine(stack, CombineOptions(method=method, reject="none"), SCALES, WEIGHTS).data, theirs.data)


def test_median_ignores_weights_as_ccdproc_does(stack):
    ccdproc = pytest.importorskip("ccdproc")
    weighted = ccdproc.combine(_ccd(stack), method="median", weights=np.array(WEIGHTS), **SIGMA)
    plain = ccdproc.combine(_ccd(stack), method="median", **SIGMA)
    np.testing.assert_array_equal(weighted.data, plain.data)
    median = CombineOptions(method="median", sigma_low=3, sigma_high=3)
    np.testing.assert_array_equal(combine(stack, median, weights=WEIGHTS).data, combine(stack, median).data)


@pytest.mark.parametrize("reject", ("sigma", "minmax"))
def test_weights_with_rejection_against_ccdproc(stack, reject):
    """Same kept values as ccdproc's Combiner; the sum equals ccdproc's; ccdproc's weighted average
    divides by every frame's weight, ours by the kept ones': ours = theirs × Σw / Σw kept."""
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.stats import mad_std

    frames = _ccd([f * np.float32(s) for f, s in zip(stack, SCALES, strict=True)])
    combiner = ccdproc.Combiner(frames, dtype=np.float64)
    combiner.weights = np.array(WEIGHTS)
    if reject == "sigma":
        combiner.sigma_clipping(low_thresh=3, high_thresh=3, func=np.ma.median, dev_func=mad_std)
        options = dict(sigma_low=3, sigma_high=3)
    else:
        combiner.clip_extrema(nlow=1, nhigh=2)
        options = dict(minmax_low=1, minmax_high=2)
    kept = ~combiner.data_arr.mask
    kept_weight = (np.asarray(WEIGHTS)[:, None, None] * kept).sum(axis=0)
    ours = combine(stack, CombineOptions(reject=reject, **options), SCALES, WEIGHTS)
    np.testing.assert_array_equal(ours.count, kept.sum(axis=0))
    _close(ours.data, combiner.average_combine().data * np.sum(WEIGHTS) / kept_weight)
    _close(combine(stack, CombineOptions(method="sum", reject=reject, **options), SCALES, WEIGHTS).data,
           combiner.sum_combine().data)


def _reference(frames, scales, weights, clip, reject, method):
    """Float64 reference of the documented semantics: thresholds on the values as given, then one
    astropy sigma clip (median, MAD) or min/max on the scaled values left, then the weighted statistic."""
    from astropy.stats import sigma_clip

    cube = np.stack(frames).astype(np.float64)
    missing = (cube < clip[0]) | (cube > clip[1]) | ~np.isfinite(cube)
    cube = cube * np.asarray(scales)[:, None, None]
    cube[missing] = np.nan
    if reject == "sigma":
        cube[sigma_clip(cube, sigma=3, axis=0, maxiters=1, cenfunc="median", stdfunc="mad_std").mask] = np.nan
    elif reject == "minmax":
        order = np.argsort(cube, axis=0, kind="stable")  # NaN last
        rank = np.argsort(order, axis=0)
        count = np.isfinite(cube).sum(axis=0)
        cube[(rank < 1) | (rank >= count - 1)] = np.nan
    w = np.asarray(weights, dtype=np.float64)[:, None, None] * np.isfinite(cube)
    if method == "median":
        return np.nanmedian(cube, axis=0)
    total = np.nansum(cube * w, axis=0)
    return total / w.sum(axis=0) if method == "average" else total


@pytest.mark.parametrize("reject", REJECTS)
@pytest.mark.parametrize("method", METHODS)
def test_thresholds_and_weights_against_float64_reference(stack, method, reject):
    frames = [f.copy() for f in stack]
    frames[2][5, :] = np.nan  # a missing row: the general path for its band
    options = CombineOptions(method=method, reject=reject, sigma_low=3, sigma_high=3, minmax_low=1,
                             minmax_high=1, clip_min=10, clip_max=50000)
    ours = combine(frames, options, SCALES, WEIGHTS)
    expected = _reference(frames, SCALES, WEIGHTS, (10, 50000), reject, method)
    np.testing.assert_array_equal(np.isnan(ours.data), np.isnan(expected))
    _close(ours.data, expected)


# --- weight helpers -----------------------------------------------------------------------------------
def test_exposure_weights():
    assert exposure_weights([10, 20, 30.0]) == pytest.approx([0.5, 1, 1.5])
    assert exposure_weights([0, 60]) == [0, 2]
    for bad, message in (([10, None], "frame 2: no exposure time"), ([10, -1], "frame 2: exposure time -1"),
                         ([float("nan"), 1], "frame 1"), ([0, 0], "every frame's exposure time is 0")):
        with pytest.raises(ValueError, match=message):
            exposure_weights(bad)
    with pytest.raises(ValueError, match="^b.fits: exposure time 'x' cannot be a weight"):
        exposure_weights([1, "x"], names=["a.fits", "b.fits"])


def test_keyword_weights():
    from astropy.io import fits

    headers = [fits.Header({"WEIGHT": 1.0}), fits.Header({"WEIGHT": 3}), {"WEIGHT": "2"}]
    assert keyword_weights(headers, "WEIGHT") == pytest.approx([0.5, 1.5, 1.0])
    bad = (({}, "^frame 2: no WEIGHT in its header$"), ({"WEIGHT": -2}, "frame 2: WEIGHT -2"),
           ({"WEIGHT": "nan"}, "frame 2: WEIGHT 'nan'"), ({"WEIGHT": True}, "frame 2: WEIGHT"))
    for header, message in bad:
        with pytest.raises(ValueError, match=message):
            keyword_weights([headers[0], header], "WEIGHT")
    with pytest.raises(ValueError, match="^dark.fits: no WEIGHT"):
        keyword_weights([headers[0], {}], "WEIGHT", names=["light.fits", "dark.fits"])


def test_inverse_variance_weights(tmp_path):
    rng = np.random.default_rng(5)
    frames = [rng.normal(1000, sigma, (300, 200)).astype(np.float32) for sigma in (5, 10, 20)]
    frames[0].flat[rng.integers(0, frames[0].size, 300)] = 60000  # hot pixels barely move a MAD
    frames[1][4, 4] = np.nan
    weights = inverse_variance_weights(frames)
    assert np.mean(weights) == pytest.approx(1)
    assert weights[0] / weights[1] == pytest.approx(4, rel=0.1)
    assert weights[1] / weights[2] == pytest.approx(4, rel=0.1)
    scaled = inverse_variance_weights(frames, scales=[1, 0.5, 0.25])  # all σ 5 once scaled
    assert scaled == pytest.approx([1, 1, 1], rel=0.1)
    path = tmp_path / "frame.npy"
    np.save(path, frames[1].astype(">f4"))
    mapped = np.load(path, mmap_mode="r")
    assert inverse_variance_weights([frames[0], mapped, frames[2]]) == pytest.approx(weights)
    with pytest.raises(ValueError, match="^flat.fits: no noise to weight by"):
        inverse_variance_weights([frames[0], np.ones((10, 10), np.float32)], names=["a.fits", "flat.fits"])
