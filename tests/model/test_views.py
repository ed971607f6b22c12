"""Difference and residual views: the residual of a calibrated simulated light against the truth has
the σ the noise budget predicts (the √N and √(π/2) laws), for average and median masters."""

import math

import numpy as np
import pytest

from ccdgui.model import fitsio
from ccdgui.model.execute import run_to_end
from ccdgui.model.recipe import Recipe
from ccdgui.model.simulate import SimParams, simulate_night
from ccdgui.model.views import (
    combined_variance,
    difference,
    difference_stats,
    noise_budget,
    residual,
    residual_report,
    truth_scale,
)


@pytest.mark.parametrize("method", ["average", "median"])
def test_residual_sigma_is_within_5_percent_of_the_noise_budget(tmp_path, method):
    params = SimParams(nx=400, ny=300, n_bias=3, n_dark=3, n_flat=3, n_light=1, n_stars=8, seed=5)
    night = simulate_night(params)
    recipe = Recipe(combine=method, reject="none" if method == "median" else "sigma")
    result = run_to_end(night.frames, recipe, outdir=tmp_path / "out")
    calibrated = fitsio.read_frame(result.outdir / "calibrated" / "light_r_000.fits").data
    report = residual_report(
        calibrated, night.true_sky_stars, night.true_flat, read_noise=params.read_noise, gain=params.gain,
        dark_current=params.dark_current, light_exposure=params.light_exposure,
        dark_exposure=params.dark_exposure, n_bias=3, n_dark=3, n_flat=3, flat_level=params.flat_level,
        flat_exposure=params.flat_exposure, method=method)
    assert report.measured_sigma == pytest.approx(report.predicted_sigma, rel=0.05)
    assert report.normalised_sigma == pytest.approx(1.0, rel=0.05)
    # the masters matter here: without their terms the prediction would be 7-10 % too low
    masters = sum(v for k, v in report.budget.terms.items() if k.startswith("master"))
    assert masters / report.budget.variance > 0.12
    assert abs(report.median) < 0.05 * report.measured_sigma


def test_the_seed_notebooks_single_frame_numbers():
    budget = noise_budget(read_noise=700, gain=1, dark_current=0, light_exposure=30, dark_exposure=60,
                          sky=0, n_bias=1, n_dark=1)
    assert budget.sigma == pytest.approx(700 * math.sqrt(1 + 0.25 + 0.25))  # ≈ 857 (simulation.md)


def test_combining_laws():
    assert combined_variance(8, "average") == 1 / 8
    assert combined_variance(3, "median") == pytest.approx(0.4487, abs=2e-4)  # exact for normal noise
    assert combined_variance(201, "median") * 201 == pytest.approx(math.pi / 2, rel=0.01)
    assert combined_variance(4, "median") == pytest.approx(0.2982, abs=2e-3)


def test_difference_and_residual_known_answers():
    a = np.array([[1, 2], [3, np.nan]], dtype=np.float32)
    b = np.ones((2, 2), dtype=np.float32)
    copies = a.copy(), b.copy()
    assert np.array_equal(difference(a, b), np.array([[0, 1], [2, np.nan]], np.float32), equal_nan=True)
    assert np.array_equal(a, copies[0], equal_nan=True) and np.array_equal(b, copies[1])
    stats = difference_stats(difference(a, b))
    assert (stats.median, stats.minimum, stats.maximum) == (1, 0, 2)
    with pytest.raises(ValueError, match="2x2 and 3x2"):
        difference(a, np.zeros((2, 3)))
    flat = np.array([[0.5, 1.5]], dtype=np.float32)
    assert np.array_equal(residual(np.array([[4, 4]], np.float32), np.array([[4, 4]], np.float32), flat),
                          np.zeros((1, 2), np.float32))
    assert truth_scale(flat, "median") == 1.0
