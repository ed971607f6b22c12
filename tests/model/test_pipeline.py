"""The pipeline against known answers: the seed's noise algebra, truth recovery and ccdproc."""

import numpy as np
import pytest
from astropy.stats import mad_std

from ccdgui.model import execute
from ccdgui.model.frame import FrameKind
from ccdgui.model.progress import Cancelled, CancelToken
from ccdgui.model.recipe import Recipe
from ccdgui.model.simulate import SimParams, simulate_night


def run(frames, recipe=None, cancel=None):
    generator = execute.run(frames, recipe or Recipe(), cancel)
    progress = []
    try:
        while True:
            progress.append(next(generator))
    except StopIteration as stop:
        return stop.value, progress


def master(result, kind):
    return next(m for m in result.masters if m.kind is kind)


def star_free(night, margin=1.0):
    """Pixels with no star light above ``margin`` ADU and no hot pixel."""
    stars = night.true_sky_stars - night.params.sky
    return stars < margin


def test_seed_claim_one_bias_one_dark_true_flat():
    """(light − bias − t_L/t_D·(dark − bias)) / true flat has σ ≈ 700·√1.5 / mean flat ≈ 876."""
    night = simulate_night(SimParams(n_bias=1, n_dark=1, n_flat=0, n_light=1, seed=11))
    bias, dark, light = (next(f for f in night.frames if f.kind is k)
                         for k in (FrameKind.BIAS, FrameKind.DARK, FrameKind.LIGHT))
    calibrated = (light.data - bias.data - 30.0 / 60.0 * (dark.data - bias.data)) / night.true_flat
    good = star_free(night) & (dark.data - bias.data < 500)
    expected = 700 * np.sqrt(1.5) / night.true_flat.mean()
    assert expected == pytest.approx(876, rel=0.01)
    assert mad_std(calibrated[good]) == pytest.approx(expected, rel=0.03)
    assert mad_std((light.data - 1100)[good & (night.true_flat > 0)]) == pytest.approx(700, rel=0.03)


def test_pipeline_single_frames_sigma_is_857_over_local_flat():
    night = simulate_night(SimParams(nx=1000, ny=1000, n_bias=1, n_dark=1, n_flat=3, n_light=1, seed=5))
    result, _ = run(night.frames)
    calibrated = result.calibrated[0].data
    relative_flat = night.true_flat / night.true_flat.mean()
    good = star_free(night)
    assert mad_std((calibrated * relative_flat)[good]) == pytest.approx(857, rel=0.03)


@pytest.mark.parametrize("n_bias, n_dark", [(4, 4), (9, 3)])
def test_averaged_masters_shrink_noise_as_the_algebra_says(n_bias, n_dark):
    night = simulate_night(SimParams(nx=600, ny=500, n_bias=n_bias, n_dark=n_dark, n_flat=3, n_light=1,
                                     seed=n_bias))
    result, _ = run(night.frames, Recipe(reject="none"))
    relative_flat = night.true_flat / night.true_flat.mean()
    measured = mad_std((result.calibrated[0].data * relative_flat)[star_free(night)])
    # light − B̄ − ½(D̄ − B̄) = light − ½B̄ − ½D̄
    expected = 700 * np.sqrt(1 + 0.25 / n_bias + 0.25 / n_dark)
    assert measured == pytest.approx(expected, rel=0.03)


def test_median_master_is_sqrt_pi_over_2_noisier():
    params = SimParams(nx=400, ny=300, n_bias=41, n_dark=0, n_flat=0, n_light=0, realistic_bias=False, seed=2)
    frames = simulate_night(params).frames
    average = master(run(frames, Recipe(combine="average", reject="none"))[0], FrameKind.MASTER_BIAS)
    median = master(run(frames, Recipe(combine="median", reject="none"))[0], FrameKind.MASTER_BIAS)
    ratio = np.std(median.data - 1100.0) / np.std(average.data - 1100.0)
    assert ratio == pytest.approx(np.sqrt(np.pi / 2), rel=0.05)
    assert np.std(average.data - 1100.0) == pytest.approx(700 / np.sqrt(41), rel=0.03)


@pytest.fixture(scope="module")
def night():
    return simulate_night(SimParams(nx=800, ny=600, n_bias=5, n_dark=5, n_flat=5, n_light=2,
                                    filters=("r", "g"), cosmic_rays=5, seed=7))


def test_simulate_reduce_recovers_truth(night):
    result, progress = run(night.frames)
    assert {m.name for m in result.masters} == {"master_bias.fits", "master_dark_60s.fits",
                                                "master_flat_r.fits", "master_flat_g.fits"}
    assert len(result.calibrated) == 4
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    truth = night.true_flat.mean() * night.true_sky_stars
    for light in result.calibrated:
        residual = light.data - truth
        relative_flat = night.true_flat / night.true_flat.mean()
        expected_sigma = 700 * np.sqrt(1 + 0.25 / 5 + 0.25 / 5)
        assert abs(np.median(residual)) < 3.0  # ADU; σ per pixel ≈ 734
        assert mad_std(residual * relative_flat) == pytest.approx(expected_sigma, rel=0.03)
        # the star field is recovered where it was planted: bright star pixels, averaged
        bright = night.true_sky_stars - night.params.sky > 300
        assert bright.sum() > 50
        recovered = np.mean(light.data[bright]) / np.mean(truth[bright])
        assert recovered == pytest.approx(1.0, abs=0.05)
        assert light.header["SUBBIAS"] == "master_bias.fits" and "FLATCOR" in light.header
        assert light.filter in ("r", "g") and light.kind is FrameKind.CALIBRATED


def test_master_headers(night):
    result, _ = run(night.frames)
    bias = master(result, FrameKind.MASTER_BIAS)
    assert bias.header["IMAGETYP"] == "MASTER BIAS" and bias.header["NCOMBINE"] == 5
    dark = master(result, FrameKind.MASTER_DARK)
    assert dark.header["EXPTIME"] == 60.0 and dark.header["IMAGETYP"] == "MASTER DARK"
    flat = next(m for m in result.masters if m.name == "master_flat_g.fits")
    assert flat.header["FILTER"] == "g" and np.median(flat.data) == pytest.approx(1.0, abs=0.01)
    assert "sigma clipping" in str(bias.header["HISTORY"])


def test_inputs_are_not_mutated(night):
    before = [(f.data.copy(), f.header.tostring(), f.kind, f.name) for f in night.frames]
    run(night.frames)
    for frame, (data, header, kind, name) in zip(night.frames, before, strict=True):
        np.testing.assert_array_equal(frame.data, data)
        assert (frame.header.tostring(), frame.kind, frame.name) == (header, kind, name)


def test_cancel_stops_the_run(night):
    token = CancelToken()
    generator = execute.run(night.frames, Recipe(), token)
    next(generator)
    token.cancel()
    with pytest.raises(Cancelled):
        for _ in generator:
            pass


def test_missing_masters_are_reported_not_fatal(night):
    lights_and_biases = [f for f in night.frames if f.kind in (FrameKind.BIAS, FrameKind.LIGHT)]
    result, _ = run(lights_and_biases)
    assert len(result.calibrated) == 4
    assert any("no master flat" in p for p in result.problems)
    assert any("no master dark" in p for p in result.problems)
    only_biases, _ = run([f for f in night.frames if f.kind is FrameKind.BIAS])
    assert [m.name for m in only_biases.masters] == ["master_bias.fits"]
    assert any("no light frames" in p for p in only_biases.problems)


def test_recipe_json_round_trip():
    recipe = Recipe(combine="median", reject="minmax", minmax_low=2, sigma_high=3.5)
    assert Recipe.from_dict(Recipe().from_dict(recipe.to_dict()).to_dict()) == recipe
    with pytest.raises(ValueError, match="unknown recipe option"):
        Recipe.from_dict({"combine": "median", "bogus": 1})


CCDPROC_CASES = {
    "average-sigma": dict(combine="average", reject="sigma"),
    "median-none": dict(combine="median", reject="none"),
    "average-minmax": dict(combine="average", reject="minmax"),
    "median-sigma-mean-std": dict(combine="median", reject="sigma", sigma_low=3, sigma_high=3,
                                  sigma_center="mean", sigma_spread="std"),
}


@pytest.mark.parametrize("case", list(CCDPROC_CASES))
def test_masters_and_lights_equal_ccdproc(case):
    ccdproc = pytest.importorskip("ccdproc")
    from astropy import units as u
    from astropy.nddata import CCDData

    options = CCDPROC_CASES[case]
    recipe = Recipe(**options)
    night = simulate_night(SimParams(nx=120, ny=90, n_bias=7, n_dark=6, n_flat=5, n_light=1, cosmic_rays=2,
                                     seed=3))
    ours, _ = run(night.frames, recipe)

    def ccd(frame):
        return CCDData(frame.data.astype(np.float64), unit="adu")

    func = {"median": np.ma.median, "mean": np.ma.mean}[recipe.sigma_center]
    dev = {"mad_std": mad_std, "std": np.ma.std}[recipe.sigma_spread]

    def combine(ccds):
        kwargs = dict(method=recipe.combine, dtype=np.float64)
        if recipe.reject == "sigma":
            kwargs.update(sigma_clip=True, sigma_clip_low_thresh=recipe.sigma_low,
                          sigma_clip_high_thresh=recipe.sigma_high, sigma_clip_func=func,
                          sigma_clip_dev_func=dev)
        if recipe.reject == "minmax":
            kwargs.update(clip_extrema=True, nlow=recipe.minmax_low, nhigh=recipe.minmax_high)
        return ccdproc.combine(ccds, **kwargs)

    kinds = {k: [f for f in night.frames if f.kind is k] for k in FrameKind}
    bias = combine([ccd(f) for f in kinds[FrameKind.BIAS]])
    dark = combine([ccdproc.subtract_bias(ccd(f), bias) for f in kinds[FrameKind.DARK]])
    flats = [ccdproc.subtract_dark(ccdproc.subtract_bias(ccd(f), bias), dark, dark_exposure=60 * u.s,
                                   data_exposure=5 * u.s, scale=True) for f in kinds[FrameKind.FLAT]]
    flats = [f.multiply(1 / np.median(f.data.astype(np.float32))) for f in flats]  # pre-scaled
    flat = combine(flats)
    light = ccd(kinds[FrameKind.LIGHT][0])
    light = ccdproc.subtract_dark(ccdproc.subtract_bias(light, bias), dark, dark_exposure=60 * u.s,
                                  data_exposure=30 * u.s, scale=True)
    light = ccdproc.flat_correct(light, flat)

    def rel_diff(a, b):
        """Largest difference relative to the frame's scale: bias-subtracted frames sit near 0, where
        float32 arithmetic on ~1100 ADU inputs leaves ~1e-4 ADU of rounding in either program."""
        return np.max(np.abs(a - b)) / np.max(np.abs(b))

    assert rel_diff(master(ours, FrameKind.MASTER_BIAS).data, bias.data) <= 1e-5
    assert rel_diff(master(ours, FrameKind.MASTER_DARK).data, dark.data) <= 1e-5
    assert rel_diff(master(ours, FrameKind.MASTER_FLAT).data, flat.data) <= 1e-5
    assert rel_diff(ours.calibrated[0].data, light.data) <= 1e-5


def test_user_reclassification_is_part_of_the_recipe(night):
    lights = [f for f in night.frames if f.kind is FrameKind.LIGHT]
    recipe = Recipe(kind_overrides={lights[0].name: "unknown"})
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    result, _ = run(night.frames, recipe)
    assert len(result.calibrated) == 3 and lights[0].kind is FrameKind.LIGHT
    assert any("unknown type not used" in p for p in result.problems)


def test_two_at_a_time_keeps_order_and_stops_on_cancel():
    import threading
    import time

    from ccdgui.model.execute import _two_at_a_time

    running, most = set(), [0]
    lock = threading.Lock()

    def work(item):
        with lock:
            running.add(item)
            most[0] = max(most[0], len(running))
        time.sleep(0.02 * (item % 3))  # finish out of order
        with lock:
            running.discard(item)
        return item * item

    assert list(_two_at_a_time(work, range(9), CancelToken())) == [i * i for i in range(9)]
    assert most[0] == 2
    cancel, started = CancelToken(), []
    results = _two_at_a_time(lambda item: started.append(item) or item, range(100), cancel)
    assert next(results) == 0
    cancel.cancel()
    with pytest.raises(Cancelled):
        next(results)
    assert len(started) <= 4  # nothing new starts after a cancel
