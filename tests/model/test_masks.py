"""Bad-pixel masks and cosmic-ray cleaning against known answers and ccdproc's ccdmask."""

import numpy as np
import pytest

from ccdgui.model import masks
from ccdgui.model.simulate import Camera, SimParams, simulate_night


def test_running_median_equals_a_direct_median_with_mirrored_edges():
    data = np.random.default_rng(0).normal(0, 1, (23, 31)).astype(np.float32)
    padded = np.pad(data, 2, mode="symmetric")
    expected = np.array([[np.median(padded[y:y + 5, x:x + 5]) for x in range(31)] for y in range(23)])
    np.testing.assert_allclose(masks.running_median(data, 5), expected, rtol=1e-6)


def test_hot_pixels_of_a_simulated_camera_are_found_exactly():
    params = SimParams(nx=400, ny=300, n_bias=3, n_dark=3, n_flat=1, n_light=1, seed=2)
    night = simulate_night(params)
    from ccdgui.model import pipeline

    result = pipeline.run_to_end(night.frames, pipeline.Recipe())
    dark = next(m for m in result.masters if m.kind.value == "master dark")
    before = dark.data.copy()
    found = masks.hot_pixel_mask(dark.data, dark.exptime)
    truth = np.zeros(dark.data.size, bool)
    truth[Camera(params).hot_pixel_index] = True
    assert found.sum() == int(1e-4 * 400 * 300) == 12
    np.testing.assert_array_equal(found.ravel(), truth)
    np.testing.assert_array_equal(dark.data, before)
    # the same current measured in a dark twice as long gives the same mask
    np.testing.assert_array_equal(masks.hot_pixel_mask(dark.data * 2, dark.exptime * 2), found)
    with pytest.raises(ValueError):
        masks.hot_pixel_mask(dark.data, 0)


def flat_with_defects(rng, shape=(150, 200)):
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    flat = (1 - 0.1 * ((x - 100) ** 2 + (y - 75) ** 2) / 100**2 + rng.normal(0, 0.005, shape))
    flat = flat.astype(np.float32)
    flat[:, 57] *= 0.8           # a bad column
    flat[40, 120] = 0.1          # dead pixels
    flat[90:92, 30:32] = 0.3
    flat[10, 10] = 2.0           # a hot one
    return flat


def test_flat_mask_agrees_with_ccdproc_ccdmask_and_finds_every_defect():
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.nddata import CCDData

    flat = flat_with_defects(np.random.default_rng(1))
    before = flat.copy()
    ours = masks.flat_mask(flat)
    theirs = ccdproc.ccdmask(CCDData(flat, unit="adu"), byblocks=True)
    assert (ours == theirs).mean() >= 0.999, f"agree on {(ours == theirs).mean():.5f}"
    assert ours[:, 57].all() and ours[40, 120] and ours[90:92, 30:32].all() and ours[10, 10]
    assert ours.sum() < 150 + 6 + 20
    np.testing.assert_array_equal(flat, before)


def sky_with_stars_and_hits(rng, shape=(200, 200)):
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    image = np.full(shape, 100.0)
    stars = [(30, 40), (120, 150), (170, 60), (80, 100)]
    for sy, sx in stars:
        image += 2000 * np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / (2 * 1.7**2))  # FWHM 4 px
    image = rng.poisson(image).astype(np.float32) + rng.normal(0, 5, shape).astype(np.float32)
    clean = image.copy()
    hits = [(10, 10), (50, 180), (150, 20), (190, 190), (100, 30)]
    for hy, hx in hits:
        image[hy, hx] += 3000
    image[60, 60:63] += 2500          # a short streak
    return image, clean, stars, hits + [(60, 60), (60, 61), (60, 62)]


@pytest.mark.parametrize("method", ["median", "lacosmic"])
def test_cosmic_rays_are_cleaned_and_stars_kept(method):
    if method == "lacosmic":
        pytest.importorskip("astroscrappy")
    image, clean, stars, hits = sky_with_stars_and_hits(np.random.default_rng(3))
    before = image.copy()
    cleaned, found, used = masks.clean_cosmic_rays(image, method=method, gain=1.0, read_noise=5.0)
    assert used == method
    assert all(found[p] for p in hits), [p for p in hits if not found[p]]
    for sy, sx in stars:
        assert not found[sy, sx]
        assert cleaned[sy, sx] == pytest.approx(image[sy, sx], rel=0.01)
    for p in hits:
        assert abs(cleaned[p] - 100) < 5 * np.sqrt(100 + 25)
    assert found.sum() < len(hits) + 20  # few false alarms on 40 000 pixels
    np.testing.assert_array_equal(image, before)


def test_auto_uses_lacosmic_when_installed_and_bad_method_is_refused():
    image, *_ = sky_with_stars_and_hits(np.random.default_rng(4))
    expected = "lacosmic" if masks.astroscrappy_available() else "median"
    assert masks.clean_cosmic_rays(image)[2] == expected
    with pytest.raises(ValueError):
        masks.clean_cosmic_rays(image, method="magic")


def test_combine_and_apply_masks():
    a = np.zeros((3, 3), bool)
    a[0, 0] = True
    b = np.zeros((3, 3), bool)
    b[2, 2] = True
    both = masks.combine_masks(a, None, b)
    assert both.sum() == 2 and masks.combine_masks(None) is None
    data = np.ones((3, 3), np.float32)
    out = masks.apply_mask(data, both)
    assert np.isnan(out[0, 0]) and np.isnan(out[2, 2]) and np.isfinite(data).all()
