"""Display numbers: intervals, histograms and the pyramid/window that keeps redraws screen-sized."""

import numpy as np
import pytest

from ccdgui.model import display


def test_bin2_is_the_mean_of_each_two_by_two_block_and_drops_an_odd_edge():
    data = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    before = data.copy()
    out = display.bin2(data)
    assert out.shape == (2, 3) and out.dtype == np.float32
    assert out[0, 0] == pytest.approx((0 + 1 + 7 + 8) / 4)
    assert out[1, 2] == pytest.approx((18 + 19 + 25 + 26) / 4)
    np.testing.assert_array_equal(data, before)


def test_pyramid_levels_halve_and_stop_at_the_smallest_size():
    pyramid = display.Pyramid(np.ones((4096, 3000), np.float32), smallest=256)
    assert pyramid.level(1).shape == (2048, 1500)
    assert pyramid.level(2).shape == (1024, 750)
    assert pyramid.level(9).shape == (512, 375)  # a further halving would make a side < 256
    assert pyramid.level_for(1.0) == 0 and pyramid.level_for(1.9) == 0
    assert pyramid.level_for(2.0) == 1 and pyramid.level_for(5.5) == 2
    assert pyramid.level_for(float("nan")) == 0


def test_visible_window_covers_the_view_with_a_margin_and_clips_to_the_frame():
    rows, cols = display.visible_window((1024, 1024), 4, 400, 800, 0, 400, margin=0.25)
    # columns: (400 - 100) / 4 = 75 … (800 + 100) / 4 = 225; rows: 0 (clipped) … 500 / 4 = 125
    assert (cols.start, cols.stop, rows.start, rows.stop) == (75, 225, 0, 125)
    rows, cols = display.visible_window((100, 100), 1, 500, 600, 500, 600)
    assert rows.stop <= rows.start  # the view is off the frame: nothing to draw


def test_interval_limits_follow_the_percentiles_of_the_frame():
    rng = np.random.default_rng(0)
    data = rng.normal(1000, 10, (1000, 1000)).astype(np.float32)
    lo, hi = display.interval_limits(data, display.DisplayState())  # 0.5 … 99.9 %
    assert lo == pytest.approx(1000 - 2.576 * 10, abs=1.0)
    assert hi == pytest.approx(1000 + 3.090 * 10, abs=1.5)


def test_displayable_replaces_nan_without_touching_the_input():
    data = np.ones((10, 10), np.float32)
    data[3, 4] = np.nan
    shown, mask = display.displayable(data)
    assert np.isfinite(shown).all() and mask[3, 4] and mask.sum() == 1
    assert np.isnan(data[3, 4])


def test_debayer_superpixel_puts_each_colour_where_the_pattern_says():
    # a GRBG mosaic: row 0 = G R G R …, row 1 = B G B G …
    mosaic = np.zeros((4, 6), np.float32)
    mosaic[0::2, 0::2], mosaic[0::2, 1::2] = 10, 100      # G, R
    mosaic[1::2, 0::2], mosaic[1::2, 1::2] = 1000, 20     # B, G
    rgb = display.debayer(mosaic, "GRBG")
    assert rgb.shape == (2, 3, 3)
    np.testing.assert_array_equal(rgb[..., 0], 100)
    np.testing.assert_array_equal(rgb[..., 1], 15)
    np.testing.assert_array_equal(rgb[..., 2], 1000)
    assert display.bayer_pattern({"BAYERPAT": "grbg "}) == "GRBG"
    assert display.bayer_pattern({"BAYERPAT": "RGGB", "XBAYROFF": 1}) == "GRBG"
    assert display.bayer_pattern({"BAYERPAT": "RGGB", "YBAYROFF": 1}) == "GBRG"
    assert display.bayer_pattern({}) is None
    with pytest.raises(ValueError):
        display.debayer(mosaic, "RGBX")


def test_colour_balance_matches_each_channels_background_and_noise_to_green():
    rng = np.random.default_rng(3)
    rgb = np.stack([rng.normal(500, 5, (200, 200)), rng.normal(900, 10, (200, 200)),
                    rng.normal(300, 20, (200, 200))], axis=-1).astype(np.float32)
    before = rgb.copy()
    out = display.balanced(rgb)
    for channel in range(3):
        assert np.median(out[..., channel]) == pytest.approx(900, abs=1.0)
        assert display.robust_sigma(out[..., channel]) == pytest.approx(10, rel=0.05)
    np.testing.assert_array_equal(rgb, before)
