"""Bad-pixel masks and cosmic-ray cleaning against known answers, ccdproc's ccdmask and scipy."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from ccdgui.model import masks
from ccdgui.model.frame import FrameKind
from ccdgui.model.simulate import Camera, SimParams, iter_night


# --- running median ----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [3, 5, (3, 7), (7, 1)])
def test_running_median_equals_scipy_median_filter(size):
    ndimage = pytest.importorskip("scipy.ndimage")
    data = np.random.default_rng(0).normal(0, 1, (150, 37)).astype(np.float32)  # > one band of rows
    box = (size, size) if isinstance(size, int) else size
    np.testing.assert_array_equal(masks.running_median(data, size), ndimage.median_filter(data, size=box))


def test_running_median_refuses_even_boxes():
    with pytest.raises(ValueError):
        masks.running_median(np.zeros((5, 5), np.float32), 4)


# --- hot pixels ----------------------------------------------------------------------------------------
HOT = [(3, 7), (100, 250), (250, 3), (399, 299), (0, 0), (222, 111)]  # (row, column)
HOT_CURRENT = [10.0, 25.0, 40.0, 60.0, 80.0, 100.0]                     # e⁻/s


def synthetic_dark(exptime: float, gain: float = 1.0, seed: int = 0) -> np.ndarray:
    """A bias-subtracted dark (ADU): 0.1 e⁻/s Poisson current + 5 ADU read noise + the HOT pixels."""
    rng = np.random.default_rng(seed)
    current = np.full((400, 300), 0.1)
    for (y, x), amps in zip(HOT, HOT_CURRENT, strict=True):
        current[y, x] = amps
    electrons = rng.poisson(current * exptime)
    return (electrons / gain + rng.normal(0, 5, current.shape)).astype(np.float32)


def hot_truth(shape=(400, 300)) -> np.ndarray:
    truth = np.zeros(shape, bool)
    truth[tuple(np.array(HOT).T)] = True
    return truth


@pytest.mark.parametrize("threshold", [None, 4.0])
def test_hot_pixels_are_exactly_the_injected_ones(threshold):
    dark = synthetic_dark(60.0)
    before = dark.copy()
    found = masks.hot_pixel_mask(dark, 60.0, threshold=threshold)
    np.testing.assert_array_equal(found, hot_truth())
    np.testing.assert_array_equal(dark, before)
    assert found.dtype == bool


def test_hot_pixel_mask_scales_with_exposure_and_gain():
    expected = hot_truth()
    for exptime in (30.0, 120.0, 600.0):
        found = masks.hot_pixel_mask(synthetic_dark(exptime, seed=1), exptime)
        np.testing.assert_array_equal(found, expected)
    # the same electrons read at 2 e⁻/ADU: half the ADU, the same current once the gain is given
    np.testing.assert_array_equal(masks.hot_pixel_mask(synthetic_dark(60.0, gain=2.0), 60.0, gain=2.0),
                                  expected)
    # a limit between two hot currents splits them
    assert masks.hot_pixel_mask(synthetic_dark(60.0), 60.0, threshold=50.0).sum() == 3


@pytest.mark.parametrize("exptime", [0, -5.0, float("nan")])
def test_hot_pixel_mask_needs_a_positive_exposure(exptime):
    with pytest.raises(ValueError):
        masks.hot_pixel_mask(np.zeros((4, 4), np.float32), exptime)


def test_hot_pixels_of_the_simulated_camera_are_recovered_from_a_master_dark():
    """The simulator (the guide's camera: 700 e⁻ read noise) plants int(1e-4·nx·ny) = 25 hot pixels.
    Its 3-frame master dark has ~7 e⁻/s of noise in current, so the fixed 4 e⁻/s limit of the guide would
    flag thousands of pixels; the automatic limit (median + 10 σ) finds exactly the planted ones."""
    params = SimParams(nx=500, ny=500, n_bias=3, n_dark=3, n_flat=0, n_light=0, seed=7)
    frames = list(iter_night(params))
    bias = np.mean([f.data for f in frames if f.kind is FrameKind.BIAS], axis=0)
    master_dark = np.mean([f.data for f in frames if f.kind is FrameKind.DARK], axis=0) - bias
    found = masks.hot_pixel_mask(master_dark, params.dark_exposure, gain=params.gain)
    truth = np.zeros(500 * 500, bool)
    truth[Camera(params).hot_pixel_index] = True
    assert found.sum() == 25
    np.testing.assert_array_equal(found.ravel(), truth)
    assert masks.hot_pixel_mask(master_dark, params.dark_exposure, threshold=4.0).sum() > 1000


# --- flat defects --------------------------------------------------------------------------------------
def flat_with_defects(seed: int = 1, shape=(300, 400)) -> tuple[np.ndarray, list]:
    """A vignetted flat with 1 % pixel noise and known defects; returns (flat, defect slices)."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    flat = (1 - 0.15 * ((x - nx / 2) ** 2 + (y - ny / 2) ** 2) / (nx / 2) ** 2) * rng.normal(1, 0.01, shape)
    flat = flat.astype(np.float32)
    defects = [np.s_[:, 57], np.s_[100:, 200], np.s_[40, 120], np.s_[90:92, 30:32], np.s_[10, 10],
               np.s_[-1, -1]]
    flat[defects[0]] *= 0.85   # a bad column, 15 % low
    flat[defects[1]] *= 1.2    # half a column, 20 % high
    flat[defects[2]] = 0.05    # a dead pixel
    flat[defects[3]] = 0.3     # a 2 × 2 dead cluster
    flat[defects[4]] = 2.0     # a hot one
    flat[defects[5]] = 0.0     # a dead corner pixel
    return flat, defects


@pytest.mark.parametrize("byblocks", [True, False])
def test_flat_mask_agrees_with_ccdproc_ccdmask_and_finds_every_defect(byblocks):
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.nddata import CCDData

    flat, defects = flat_with_defects()
    before = flat.copy()
    ours = masks.flat_mask(flat)
    theirs = ccdproc.ccdmask(CCDData(flat, unit="adu"), byblocks=byblocks)
    agreement = (ours == theirs).mean()
    # same blocks: identical; ccdproc's default running 15 × 15 σ differs on a handful of noise pixels
    assert agreement == 1.0 if byblocks else agreement >= 0.999, agreement
    for where in defects:
        assert ours[where].all(), where
    n_defects = 300 + 200 + 1 + 4 + 1 + 1
    assert n_defects <= ours.sum() < n_defects + 0.0005 * flat.size  # few 9σ noise pixels
    np.testing.assert_array_equal(flat, before)


def test_flat_mask_with_a_rectangular_median_box_agrees_with_ccdproc():
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.nddata import CCDData

    flat, _ = flat_with_defects(seed=2, shape=(200, 250))
    kwargs = dict(ncmed=7, nlmed=3, ncsig=20, nlsig=10, lsigma=6.0, hsigma=8.0)
    ours = masks.flat_mask(flat, **kwargs)
    theirs = ccdproc.ccdmask(CCDData(flat, unit="adu"), byblocks=True, **kwargs)
    assert (ours == theirs).mean() >= 0.999


def test_flat_mask_flags_non_finite_pixels_without_blinding_their_block():
    flat, _ = flat_with_defects()
    flat[45, 125] = np.nan  # in the dead pixel's 15 × 15 block
    flat[200, 300] = np.inf
    found = masks.flat_mask(flat)
    assert found[45, 125] and found[200, 300] and found[40, 120]


# --- combining and applying ------------------------------------------------------------------------------
def test_combine_and_apply_masks():
    a = np.zeros((3, 3), bool)
    a[0, 0] = True
    b = np.zeros((3, 3), bool)
    b[2, 2] = True
    both = masks.combine_masks(a, None, b)
    np.testing.assert_array_equal(both, a | b)
    assert not a[2, 2] and masks.combine_masks(None) is None and masks.combine_masks() is None
    with pytest.raises(ValueError):
        masks.combine_masks(a, np.zeros((3, 4), bool))
    data = np.arange(9, dtype=np.float32).reshape(3, 3)
    out = masks.apply_mask(data, both)
    assert np.isnan(out[0, 0]) and np.isnan(out[2, 2]) and np.isnan(out).sum() == 2
    assert np.isfinite(data).all() and out[1, 1] == 4
    assert masks.apply_mask(data, both, fill=-1.0)[0, 0] == -1.0
    with pytest.raises(ValueError):
        masks.apply_mask(data, np.zeros((2, 2), bool))


# --- cosmic rays ---------------------------------------------------------------------------------------
SKY, READ_NOISE = 200.0, 5.0
FWHM = 4.0


def sky_stars_and_hits(seed: int, shape=(300, 300)):
    """Sky + 15 Gaussian stars (FWHM 4 px, peaks 300–30 000 ADU) + Poisson and read noise, gain 1; then
    30 single-pixel hits and 12 streaks of 2–3 px (rows, columns, both diagonals; 300–5000 ADU), none
    within 6 px of a star's centre, some on the frame's edges. Returns (image, truth, stars, hits)."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    truth = np.full(shape, SKY)
    stars = []
    for _ in range(15):
        sy, sx = rng.uniform(15, ny - 15), rng.uniform(15, nx - 15)
        sigma = FWHM / 2.3548
        truth += rng.uniform(300, 30000) * np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / (2 * sigma**2))
        stars.append((int(round(sy)), int(round(sx))))
    image = (rng.poisson(truth) + rng.normal(0, READ_NOISE, shape)).astype(np.float32)
    hits = {(int(rng.integers(0, ny)), int(rng.integers(0, nx))) for _ in range(30)}
    hits |= {(0, nx // 2), (ny - 1, 35), (ny // 3, nx - 1), (ny - 1, nx - 1)}  # on the edges, in a corner
    directions = [(0, 1), (1, 0), (1, 1), (1, -1)]
    for i in range(12):
        hy, hx = int(rng.integers(3, ny - 3)), int(rng.integers(3, nx - 3))
        dy, dx = directions[i % 4]
        hits |= {(hy + k * dy, hx + k * dx) for k in range(2 + i % 2)}
    hits = sorted(p for p in hits if all((p[0] - s[0]) ** 2 + (p[1] - s[1]) ** 2 > 36 for s in stars))
    for p in hits:
        image[p] += rng.uniform(300, 5000)
    return image, truth.astype(np.float32), stars, hits


def check_cleaning(image, truth, stars, hits, cleaned, found) -> None:
    rows, cols = np.array(hits).T
    assert found[rows, cols].mean() >= 0.95, f"found {found[rows, cols].mean():.3f} of the hit pixels"
    for star in stars:
        assert not found[star], star
        assert cleaned[star] == pytest.approx(image[star], rel=0.01)
    noise = np.sqrt(truth[rows, cols] + READ_NOISE**2)
    cleaned_hits = found[rows, cols]
    assert (np.abs(cleaned[rows, cols] - truth[rows, cols])[cleaned_hits] < 5 * noise[cleaned_hits]).all()
    untouched = ~found
    np.testing.assert_array_equal(cleaned[untouched], image[untouched])


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("method", ["median", "lacosmic"])
def test_cosmic_rays_are_cleaned_and_stars_kept(method, seed):
    if method == "lacosmic":
        pytest.importorskip("astroscrappy")
    image, truth, stars, hits = sky_stars_and_hits(seed)
    before = image.copy()
    cleaned, found, used = masks.clean_cosmic_rays(image, method=method, gain=1.0, read_noise=READ_NOISE)
    assert used == method and found.dtype == bool and cleaned.dtype == np.float32
    check_cleaning(image, truth, stars, hits, cleaned, found)
    hit_mask = np.zeros(image.shape, bool)
    hit_mask[tuple(np.array(hits).T)] = True
    # L.A.Cosmic also takes faint neighbours of its hits; both find a few 5σ noise peaks
    assert (found & ~masks._grow(hit_mask)).sum() <= 10
    wrong = found & ~hit_mask  # false alarms do no harm: they get the local level too
    assert (np.abs(cleaned - truth)[wrong] < 5 * np.sqrt(truth + READ_NOISE**2)[wrong]).all()
    np.testing.assert_array_equal(image, before)


def test_median_method_keeps_bright_close_pairs_of_sharp_stars():
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:200, 0:200]
    truth = np.full((200, 200), SKY)
    for i, (fwhm, peak) in enumerate([(2.0, 5000), (2.5, 60000), (3.0, 30000), (4.0, 30000), (6.0, 60000)]):
        cy, cx, s = 30 + 35 * i, 30 + 35 * i, fwhm / 2.3548
        truth += peak * np.exp(-((x - cx - 0.3) ** 2 + (y - cy - 0.4) ** 2) / (2 * s**2))
        truth += 0.6 * peak * np.exp(-((x - cx - 3) ** 2 + (y - cy - 4) ** 2) / (2 * s**2))
    image = (rng.poisson(truth) + rng.normal(0, READ_NOISE, truth.shape)).astype(np.float32)
    _, found, _ = masks.clean_cosmic_rays(image, "median", read_noise=READ_NOISE)
    assert not found[truth > SKY + 50].any()


def test_lacosmic_cleans_the_simulators_wide_tracks_that_the_median_method_leaves():
    pytest.importorskip("astroscrappy")
    camera = Camera(SimParams(nx=300, ny=300, seed=1))
    rng = np.random.default_rng(5)
    tracks = camera.cosmic_rays(rng, 30)  # the guide's ellipses, semi-axes 5 × 2 px, ~10 000 ADU
    image = (rng.poisson(SKY, tracks.shape) + rng.normal(0, READ_NOISE, tracks.shape) + tracks)
    image = image.astype(np.float32)
    _, found, _ = masks.clean_cosmic_rays(image, "lacosmic", read_noise=READ_NOISE)
    assert (found & (tracks > 0)).sum() >= 0.95 * (tracks > 0).sum()
    _, found, _ = masks.clean_cosmic_rays(image, "median", read_noise=READ_NOISE)
    assert (found & (tracks > 0)).sum() < 0.2 * (tracks > 0).sum()  # a documented limit


@pytest.mark.parametrize("method", ["median", "lacosmic"])
def test_masked_and_non_finite_pixels_are_left_alone(method):
    if method == "lacosmic":
        pytest.importorskip("astroscrappy")
    image, truth, stars, hits = sky_stars_and_hits(1, shape=(150, 150))
    single = [p for p in hits if all(abs(p[0] - q[0]) + abs(p[1] - q[1]) > 2 for q in hits if q != p)]
    kept, hole = single[0], single[1]
    mask = np.zeros(image.shape, bool)
    mask[kept] = True
    image[hole] = np.nan
    cleaned, found, _ = masks.clean_cosmic_rays(image, method, read_noise=READ_NOISE, mask=mask)
    assert not found[kept] and cleaned[kept] == image[kept]
    assert not found[hole] and np.isnan(cleaned[hole]) and np.isnan(cleaned).sum() == 1
    others = [p for p in hits if p not in (kept, hole)]
    assert np.mean([found[p] for p in others]) >= 0.95


def test_gain_converts_adu_to_electrons():
    pytest.importorskip("astroscrappy")
    image, truth, stars, hits = sky_stars_and_hits(2, shape=(150, 150))
    rows, cols = np.array(hits).T
    for method in ("median", "lacosmic"):
        cleaned, found, _ = masks.clean_cosmic_rays(image / 2, method, gain=2.0, read_noise=READ_NOISE)
        assert found[rows, cols].mean() >= 0.95
        assert np.median(cleaned[rows, cols]) == pytest.approx(SKY / 2, rel=0.05)  # still in ADU


def test_auto_picks_lacosmic_when_installed_and_median_when_not(monkeypatch):
    image, *_ = sky_stars_and_hits(4, shape=(100, 100))
    expected = "lacosmic" if masks.astroscrappy_available() else "median"
    assert masks.clean_cosmic_rays(image)[2] == expected
    assert masks.HAS_ASTROSCRAPPY is masks.astroscrappy_available()
    monkeypatch.setitem(sys.modules, "astroscrappy", None)  # as if not installed
    assert not masks.astroscrappy_available() and not masks.HAS_ASTROSCRAPPY
    assert masks.clean_cosmic_rays(image)[2] == "median"
    with pytest.raises(ValueError, match="astroscrappy"):
        masks.clean_cosmic_rays(image, method="lacosmic")


def test_bad_arguments_are_refused():
    image = np.zeros((20, 20), np.float32)
    with pytest.raises(ValueError):
        masks.clean_cosmic_rays(image, method="magic")
    with pytest.raises(ValueError):
        masks.clean_cosmic_rays(image, gain=0)
    with pytest.raises(ValueError):
        masks.clean_cosmic_rays(image, mask=np.zeros((3, 3), bool))
    with pytest.raises(ValueError):
        masks.clean_cosmic_rays(np.zeros(20, np.float32))


def test_importing_the_module_does_not_import_astroscrappy():
    import subprocess

    code = "import sys, ccdgui.model.masks; print('astroscrappy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- cancelling the long steps -------------------------------------------------------------------------
class Stop(Exception):
    pass


class CountingCancel:
    """A cancel argument that counts its checks and raises Stop at check number ``stop_at``."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.checks, self.stop_at = 0, stop_at

    def check(self) -> None:
        self.checks += 1
        if self.stop_at is not None and self.checks >= self.stop_at:
            raise Stop()


def hits_blobs_and_bad_pixels(seed: int = 0, shape=(240, 200)):
    """sky_stars_and_hits plus a bad column and two 3 × 3 hits each ringed by bad pixels 3 px out: no
    pixel of their 5 × 5 boxes is left to clean them with, so L.A.Cosmic fills them with the background
    level of the whole image (a global quantity: bands must not change it)."""
    image, *_ = sky_stars_and_hits(seed, shape)
    bad = np.zeros(shape, bool)
    bad[:, 150] = True
    for y, x, amplitude in [(150, 60, 3000), (40, 120, 800)]:
        image[y - 1:y + 2, x - 1:x + 2] += amplitude
        image[y, x] += amplitude
        bad[y - 3:y + 4, x - 3:x + 4] = True
        bad[y - 2:y + 3, x - 2:x + 3] = False
    return image, bad


@pytest.mark.parametrize("band_pixels", [200 * 8, 200 * 13, 2**18])
def test_lacosmic_in_bands_is_astroscrappy_on_the_whole_frame_bit_for_bit(monkeypatch, band_pixels):
    astroscrappy = pytest.importorskip("astroscrappy")
    if tuple(int(p) for p in astroscrappy.__version__.split(".")[:2]) < (1, 2):
        pytest.skip("astroscrappy < 1.2 estimates the noise differently")
    monkeypatch.setattr(masks, "COSMIC_BAND_PIXELS", band_pixels)  # 8 and 13 rows: 30 and 19 bands
    for seed, gain, read_noise in [(0, 1.0, 5.0), (3, 1.3, 7.1)]:
        image, bad = hits_blobs_and_bad_pixels(seed)
        expected = astroscrappy.detect_cosmics(image, inmask=bad, sigclip=5.0, objlim=5.0, gain=gain,
                                               readnoise=read_noise, satlevel=np.inf, niter=4,
                                               sepmed=False, cleantype="medmask")
        cancel = CountingCancel()
        found, cleaned = masks.lacosmic(image, bad, 5.0, 5.0, gain, read_noise, cancel)
        assert expected[0][149:152, 59:62].all() and expected[0][39:42, 119:122].all()
        assert expected[1][150, 60] == expected[1][40, 120]  # the fill, the same in far-apart bands
        np.testing.assert_array_equal(found, expected[0])
        np.testing.assert_array_equal(cleaned, expected[1])
        assert cancel.checks > 30 * (band_pixels < 2**18)


@pytest.mark.parametrize("method", ["median", "lacosmic"])
def test_cosmic_cleaning_in_bands_equals_one_band_and_stops_when_cancelled(monkeypatch, method):
    if method == "lacosmic":
        pytest.importorskip("astroscrappy")
    image, bad = hits_blobs_and_bad_pixels(1)
    whole = masks.clean_cosmic_rays(image, method, read_noise=READ_NOISE, mask=bad)
    monkeypatch.setattr(masks, "BAND_ROWS", 9)
    monkeypatch.setattr(masks, "COSMIC_BAND_PIXELS", 200 * 9)
    cancel = CountingCancel()
    banded = masks.clean_cosmic_rays(image, method, read_noise=READ_NOISE, mask=bad, cancel=cancel)
    np.testing.assert_array_equal(banded[0], whole[0])
    np.testing.assert_array_equal(banded[1], whole[1])
    assert cancel.checks >= 3 * 240 // 9  # every band of every filter
    halfway = CountingCancel(cancel.checks // 2)
    with pytest.raises(Stop):
        masks.clean_cosmic_rays(image, method, read_noise=READ_NOISE, cancel=halfway)


def test_flat_mask_in_bands_is_unchanged_and_stops_when_cancelled(monkeypatch):
    flat = np.random.default_rng(2).normal(1.0, 0.01, (250, 170)).astype(np.float32)
    flat[17, 33] = 0.5
    whole = masks.flat_mask(flat)
    monkeypatch.setattr(masks, "BAND_ROWS", 20)  # one row of 15-row blocks at a time, 13 median bands
    cancel = CountingCancel()
    np.testing.assert_array_equal(masks.flat_mask(flat, cancel=cancel), whole)
    assert whole[17, 33] and cancel.checks >= 13 + 16
    with pytest.raises(Stop):
        masks.flat_mask(flat, cancel=CountingCancel(20))
