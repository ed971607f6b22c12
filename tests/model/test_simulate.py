"""The simulator reproduces the guide's physics and numbers (shared/design/simulation.md)."""

import time

import numpy as np
import pytest
from astropy.stats import mad_std

from ccdgui.model.frame import FrameKind
from ccdgui.model.simulate import SimParams, iter_night, make_camera, simulate_night


def frames_of(night, kind):
    return [f for f in night.frames if f.kind is kind]


@pytest.fixture(scope="module")
def seed_camera():
    return make_camera(SimParams())


def test_flat_at_2000_matches_the_guide(seed_camera):
    flat = seed_camera.flat
    assert flat.shape == (2000, 2000) and flat.dtype == np.float32
    assert flat.min() == pytest.approx(0.94, abs=0.01)
    assert flat.mean() == pytest.approx(0.98, abs=0.01)
    assert flat.max() <= 1.0


def test_hot_pixels_exact_count_fixed_positions_and_value():
    params = SimParams(nx=700, ny=500, n_bias=0, n_dark=3, n_flat=0, n_light=0, seed=9)
    camera = make_camera(params)
    expected = int(1e-4 * 700 * 500)
    assert camera.hot_pixel_index.size == expected == 35
    hot_value = 10000 * params.dark_current * params.dark_exposure / params.gain
    for dark in frames_of(simulate_night(params), FrameKind.DARK):
        dark_current = dark.data - camera.bias_image
        hottest = np.sort(np.argsort(dark_current, axis=None)[-expected:])
        np.testing.assert_array_equal(hottest, camera.hot_pixel_index)
        assert np.median(dark_current.flat[hottest]) == pytest.approx(hot_value, abs=5 * 700)


def test_bias_frame_level_noise_and_fixed_columns():
    night = simulate_night(SimParams(nx=600, ny=400, n_bias=1, n_dark=0, n_flat=0, n_light=0, seed=3))
    bias = frames_of(night, FrameKind.BIAS)[0]
    assert np.median(bias.data) == pytest.approx(1100, abs=5)
    assert mad_std(bias.data) == pytest.approx(700, rel=0.02)
    quiet = SimParams(nx=600, ny=400, n_bias=2, n_dark=0, n_flat=0, n_light=0, read_noise=2, seed=3)
    first, second = frames_of(simulate_night(quiet), FrameKind.BIAS)
    columns = np.argsort(np.mean(first.data, axis=0))[-5:]
    assert set(columns) == set(np.argsort(np.mean(second.data, axis=0))[-5:])
    pattern = first.data[:, columns[0]] - 1100
    assert 1 < pattern.mean() < 110 and pattern.min() > -10 and pattern.max() < 120
    np.testing.assert_allclose(first.data[:, columns] - second.data[:, columns], 0, atol=20)


def test_dark_and_light_levels():
    params = SimParams(nx=500, ny=500, n_bias=0, n_dark=1, n_flat=1, n_light=1, read_noise=5,
                       dark_current=2.0, sky=300, seed=4)
    night = simulate_night(params)
    camera = make_camera(params)
    dark = frames_of(night, FrameKind.DARK)[0]
    assert np.median(dark.data - camera.bias_image) == pytest.approx(2.0 * 60, abs=1.5)
    light = frames_of(night, FrameKind.LIGHT)[0]
    star_free = camera.stars < 0.01
    expected = camera.bias_image + 2.0 * 30 + camera.flat * 300
    assert np.median((light.data - expected)[star_free]) == pytest.approx(0, abs=1.0)
    flat = frames_of(night, FrameKind.FLAT)[0]
    assert np.median(flat.data - camera.bias_image) == pytest.approx(
        np.median(camera.flat) * 20000 + 2.0 * 5, rel=0.01)


def test_reproducible_and_independent_of_other_counts():
    small = dict(nx=64, ny=48, seed=5)
    a = simulate_night(SimParams(**small))
    b = simulate_night(SimParams(**small))
    for x, y in zip(a.frames, b.frames, strict=True):
        np.testing.assert_array_equal(x.data, y.data)
        assert x.name == y.name
    other_seed = simulate_night(SimParams(nx=64, ny=48, seed=6))
    assert not np.array_equal(a.frames[0].data, other_seed.frames[0].data)
    more_lights = simulate_night(SimParams(n_light=5, n_bias=7, **small))
    np.testing.assert_array_equal(more_lights.frames[0].data, a.frames[0].data)
    light = frames_of(a, FrameKind.LIGHT)[0]
    np.testing.assert_array_equal(frames_of(more_lights, FrameKind.LIGHT)[0].data, light.data)


def test_star_field_is_fixed_across_lights():
    night = simulate_night(SimParams(nx=300, ny=200, n_bias=0, n_dark=0, n_flat=0, n_light=2, read_noise=1,
                                     seed=8))
    first, second = frames_of(night, FrameKind.LIGHT)
    bright = night.true_sky_stars > 500
    assert bright.sum() > 20
    assert np.corrcoef(first.data[bright], second.data[bright])[0, 1] > 0.99


@pytest.mark.parametrize("nx, ny", [(300, 200), (64, 48), (17, 9)])
def test_non_square_and_tiny_sizes(nx, ny):
    night = simulate_night(SimParams(nx=nx, ny=ny, n_bias=1, n_dark=1, n_flat=1, n_light=1, cosmic_rays=3))
    assert all(f.shape == (ny, nx) and f.data.dtype == np.float32 for f in night.frames)
    assert night.true_flat.shape == (ny, nx) and np.isfinite(night.true_flat).all()


def test_headers_as_a_camera_writes_them():
    params = SimParams(nx=32, ny=32, n_bias=1, n_dark=1, n_flat=1, n_light=1, filters=("r", "g"))
    frames = list(iter_night(params))
    kinds = [f.kind for f in frames]
    assert kinds == [FrameKind.BIAS, FrameKind.DARK, FrameKind.FLAT, FrameKind.FLAT, FrameKind.LIGHT,
                     FrameKind.LIGHT]
    light = frames[-1]
    for key in ("IMAGETYP", "EXPTIME", "FILTER", "GAIN", "RDNOISE", "DATE-OBS", "CCD-TEMP", "OBJECT"):
        assert key in light.header
    assert light.header["IMAGETYP"] == "LIGHT" and light.header["FILTER"] == "g"
    assert light.header["EXPTIME"] == 30.0 and frames[1].header["EXPTIME"] == 60.0
    assert "FILTER" not in frames[0].header
    dates = [f.header["DATE-OBS"] for f in frames]
    assert dates == sorted(dates) and len(set(dates)) == len(dates)
    assert len({f.name for f in frames}) == len(frames)


def test_cosmic_rays_only_in_lights_and_bright():
    params = SimParams(nx=200, ny=200, n_bias=1, n_dark=0, n_flat=0, n_light=1, read_noise=5, cosmic_rays=4,
                       n_stars=0, hot_pixels=False, seed=1)
    night = simulate_night(params)
    light = frames_of(night, FrameKind.LIGHT)[0]
    hits = light.data > 5000
    assert 4 * 10 <= hits.sum() <= 4 * 40
    assert (frames_of(night, FrameKind.BIAS)[0].data < 1300).all()


def test_a_2000_square_light_is_quick(seed_camera):
    params = SimParams(n_bias=0, n_dark=0, n_flat=0, n_light=1)
    started = time.perf_counter()
    next(iter_night(params))
    assert time.perf_counter() - started < 2.0  # loose: machines are shared
