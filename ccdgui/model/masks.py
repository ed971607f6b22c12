"""Bad pixels and cosmic rays, as pure functions on float32 (ny, nx) arrays (inputs are never modified).

* Hot pixels: dark current (bias-subtracted master dark × gain / exposure, e⁻/s) above a limit, as in the
  Astropy CCD Data Reduction Guide's "identifying hot pixels" (4 e⁻/s, raised for noisy darks).
* Flat defects: IRAF's ``ccdmask`` as ccdproc implements it with ``byblocks=True``: the flat minus its
  running median, in units of a robust σ per block ((69.1 − 30.9 percentile) / 2), beyond −lsigma or
  +hsigma is bad. numpy only (scipy is not a run-time dependency).
* Cosmic rays: L.A.Cosmic with the optional ``astroscrappy`` package's filters, else a numpy median
  method for hits of one to three pixels (wide tracks need L.A.Cosmic: ``pip install ccdgui[cosmics]``).
Masks are boolean arrays, True = bad, the numpy.ma convention.

The long steps take ``cancel``: ``None``, or anything whose ``check()`` raises to stop (a pipeline
CancelToken); it is called between bands of rows, at most ~0.2 s of work apart on a 4096² frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

BAND_ROWS = 128  # rows of a running filter computed at once (bounded memory, a cancel check per band)


class Cancel(Protocol):
    """What ``cancel`` arguments need: ``check()`` raises when the work should stop."""

    def check(self) -> None: ...


def _checker(cancel: Cancel | None) -> Callable[[], None]:
    """``cancel.check``, or a no-op for ``None``."""
    return cancel.check if cancel is not None else _no_check


def _no_check() -> None:
    pass


# --- running order statistics without scipy ------------------------------------------------------------
def running_median(data: np.ndarray, size: int | tuple[int, int], cancel: Cancel | None = None) -> np.ndarray:
    """Median over a box (``size`` or (rows, columns), odd) around every pixel, edges mirrored like
    scipy.ndimage's default "reflect" mode, computed in bands of rows so memory stays bounded."""
    check = _checker(cancel)
    rows, cols = (size, size) if np.isscalar(size) else size
    if rows < 1 or cols < 1 or rows % 2 != 1 or cols % 2 != 1:
        raise ValueError(f"running median box must be odd and positive, got {size}")
    image = np.asarray(data, dtype=np.float32)
    padded = np.pad(image, ((rows // 2, rows // 2), (cols // 2, cols // 2)), mode="symmetric")
    middle = rows * cols // 2
    out = np.empty(image.shape, dtype=np.float32)
    for start in range(0, image.shape[0], BAND_ROWS):
        check()
        stop = min(start + BAND_ROWS, image.shape[0])
        window = np.lib.stride_tricks.sliding_window_view(padded[start:stop + rows - 1], (rows, cols))
        values = window.reshape(window.shape[0], window.shape[1], -1)  # rows × cols values per pixel
        if not values.flags.writeable:  # a view (one-column box): partition needs a copy
            values = values.copy()
        values.partition(middle, axis=-1)
        out[start:stop] = values[..., middle]
    return out


def _third_highest_neighbour(data: np.ndarray, cancel: Cancel | None = None) -> np.ndarray:
    """Per pixel, the third highest of its 8 neighbours (outside the frame counts as −∞)."""
    check = _checker(cancel)
    padded = np.pad(data, 1, mode="constant", constant_values=-np.inf)
    offsets = [(dy, dx) for dy in (0, 1, 2) for dx in (0, 1, 2) if (dy, dx) != (1, 1)]
    ny, nx = data.shape
    out = np.empty_like(data)
    for start in range(0, ny, BAND_ROWS):
        check()
        stop = min(start + BAND_ROWS, ny)
        stack = np.stack([padded[start + dy:stop + dy, dx:dx + nx] for dy, dx in offsets])
        out[start:stop] = np.partition(stack, 5, axis=0)[5]
    return out


def _grow(mask: np.ndarray) -> np.ndarray:
    """The mask and its 8 neighbours."""
    padded = np.pad(mask, 1)
    ny, nx = mask.shape
    out = mask.copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out |= padded[dy:dy + ny, dx:dx + nx]
    return out


def _finite_or_median(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image with non-finite pixels replaced by the median of the finite ones, mask of those pixels)."""
    bad = ~np.isfinite(image)
    if not bad.any():
        return image, bad
    fill = np.float32(np.median(image[~bad])) if not bad.all() else np.float32(0)
    return np.where(bad, fill, image), bad


# --- hot pixels ----------------------------------------------------------------------------------------
HOT_PIXEL_LIMIT = 4.0    # e⁻/s: the least dark current called hot (the guide's value)
HOT_PIXEL_SIGMAS = 10.0  # … and never within this many σ of the typical current (noisy master darks)


def hot_pixel_mask(master_dark: np.ndarray, exptime: float, threshold: float | None = None,
                   gain: float = 1.0) -> np.ndarray:
    """Pixels whose dark current, ``master_dark`` (bias-subtracted, ADU) × ``gain`` (e⁻/ADU) /
    ``exptime`` (s), exceeds ``threshold`` e⁻/s. ``None`` (default): :func:`hot_pixel_threshold`,
    i.e. 4 e⁻/s unless the dark is too noisy to measure current that finely."""
    if not exptime or not np.isfinite(exptime) or exptime <= 0:
        raise ValueError(f"the dark's exposure must be positive to measure dark current, got {exptime}")
    if not gain > 0:
        raise ValueError(f"gain must be positive, got {gain}")
    current = np.asarray(master_dark, dtype=np.float32) * np.float32(gain / exptime)
    if threshold is None:
        threshold = hot_pixel_threshold(current)
    with np.errstate(invalid="ignore"):
        return current > np.float32(threshold)


def hot_pixel_threshold(current: np.ndarray) -> float:
    """The automatic hot-pixel limit (e⁻/s) for a dark-current image: max(4, median + 10 σ), σ from
    the median absolute deviation of up to ~250 000 sampled pixels."""
    values = np.asarray(current, dtype=np.float32).ravel()
    values = values[::max(1, values.size // 250_000)]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return HOT_PIXEL_LIMIT
    median = float(np.median(values))
    sigma = 1.4826 * float(np.median(np.abs(values - median)))
    return max(HOT_PIXEL_LIMIT, median + HOT_PIXEL_SIGMAS * sigma)


# --- flat defects ----------------------------------------------------------------------------------------
def flat_mask(flat: np.ndarray, ncmed: int = 7, nlmed: int = 7, ncsig: int = 15, nlsig: int = 15,
              lsigma: float = 9.0, hsigma: float = 9.0, findbadcolumns: bool = False, ngood: int = 5,
              cancel: Cancel | None = None) -> np.ndarray:
    """Defects of a flat (or a ratio of two flats), like ccdproc ``ccdmask(byblocks=True)``: the flat
    minus its nlmed × ncmed running median (rows × columns), divided by the percentile σ of its
    nlsig × ncsig block, below −``lsigma`` or above +``hsigma``. Non-finite pixels are bad too (and
    are replaced by the median before filtering, so they do not blind their block as in ccdproc).

    ``findbadcolumns`` (IRAF ccdmask's column step, see :func:`_bad_columns`): columns whose unflagged
    pixels are low or high together are flagged, a block of lines at a time, and gaps of at most
    ``ngood`` unflagged pixels between bad pixels of a column are filled (as ccdproc does)."""
    if ncsig < 1 or nlsig < 1:
        raise ValueError(f"sigma blocks must be at least 1 × 1, got {nlsig} × {ncsig}")
    if ngood < 0:
        raise ValueError(f"ngood must not be negative, got {ngood}")
    data, bad = _finite_or_median(np.asarray(flat, dtype=np.float32))
    residual = data - running_median(data, (nlmed, ncmed), cancel)
    sigma = _block_sigmas(residual, nlsig, ncsig, cancel)
    found = bad | (residual < -lsigma * sigma) | (residual > hsigma * sigma)
    if findbadcolumns:
        found = _bad_columns(residual, sigma, found, nlsig, lsigma, hsigma, ngood, cancel)
    return found


def _percentile_sigma(values: np.ndarray) -> float:
    """ccdmask's σ of a sample: (69.1 − 30.9 percentile) / 2 (0 for fewer than 2 values)."""
    if values.size < 2:
        return 0.0
    high, low = np.percentile(values, [69.1, 30.9])
    return float(high - low) / 2.0


def _column_outliers(total: np.ndarray, spread: np.ndarray, count: np.ndarray, lsigma: float,
                     hsigma: float) -> np.ndarray:
    """Columns whose residual sum ``total`` of ``count`` (≥ 2) pixels is an outlier among the columns:
    ``total / spread`` (spread: √n × pixel σ) beyond −lsigma or +hsigma Gaussian σ of that ratio over
    all columns (twice its percentile σ: measured, not assumed, as the running median makes neighbouring
    residuals of a column correlated, and ccdmask's pixel σ is half a Gaussian σ)."""
    usable = (count >= 2) & (spread > 0)
    score = np.zeros(total.shape)
    score[usable] = total[usable] / spread[usable]
    sigma = 2.0 * _percentile_sigma(score[usable])  # the percentile σ is half a Gaussian σ
    if not sigma > 0:
        return np.zeros(total.shape, bool)
    return usable & ((score < -lsigma * sigma) | (score > hsigma * sigma))


def _bad_columns(residual: np.ndarray, sigma: np.ndarray, found: np.ndarray, nlsig: int, lsigma: float,
                 hsigma: float, ngood: int, cancel: Cancel | None = None) -> np.ndarray:
    """``found`` plus bad column sections, as IRAF ccdmask: in each block of ``nlsig`` lines, the
    residuals of each column's unflagged pixels are summed, and a column whose sum (in units of its
    √n × pixel σ) is an outlier among the block's columns beyond −lsigma / +hsigma Gaussian σ is
    flagged over the block (so a column a few per cent low is found where no pixel of it is; a
    whole-column sum was left out: on real flats the running median's edge and neighbour biases made
    it flag hundreds of good columns). Last, runs of at most ``ngood`` unflagged pixels between flagged
    ones of a column are flagged, with ccdproc's loop (``ccdmask(findbadcolumns=True)``), whose column
    sums are not followed: they compare the clipped sum with √(block width − sum), which flags no low
    column and flagged half the pixels of real flats in ADU."""
    check = _checker(cancel)
    out = found.copy()
    ny = out.shape[0]
    wide = sigma.astype(np.float64)
    for top in range(0, ny, nlsig):
        if top % BAND_ROWS < nlsig:
            check()
        good = ~found[top:top + nlsig]
        total = np.where(good, residual[top:top + nlsig], 0).sum(axis=0, dtype=np.float64)
        count = good.sum(axis=0)
        spread = np.sqrt(count) * wide[top]  # σ is the same down a block's column
        out[top:top + nlsig, _column_outliers(total, spread, count, lsigma, hsigma)] = True
    for line in range(ny - ngood - 1):  # ccdproc's gap filling, all columns at once
        if line % BAND_ROWS == 0:
            check()
        start = out[line]
        for step in range(2, ngood + 2):
            out[line:line + step, start & out[line + step]] = True
    return out


def _block_sigmas(residual: np.ndarray, nlsig: int, ncsig: int, cancel: Cancel | None = None) -> np.ndarray:
    """(69.1 − 30.9 percentile) / 2 of each nlsig × ncsig block (blocks start at pixel 0, 0; the last
    row and column of blocks may be smaller), spread back over the block's pixels."""
    ny, nx = residual.shape
    full_y, full_x = ny // nlsig * nlsig, nx // ncsig * ncsig
    sigma = np.empty(residual.shape, dtype=np.float32)
    check = _checker(cancel)
    step = max(1, BAND_ROWS // nlsig) * nlsig  # whole rows of blocks at a time
    for top in range(0, full_y if full_x else 0, step):
        check()
        bottom = min(top + step, full_y)
        blocks = residual[top:bottom, :full_x].reshape((bottom - top) // nlsig, nlsig, nx // ncsig, ncsig)
        blocks = blocks.transpose(0, 2, 1, 3).reshape((bottom - top) // nlsig, nx // ncsig, -1)
        high, low = np.percentile(blocks, [69.1, 30.9], axis=-1)
        sigma[top:bottom, :full_x] = np.repeat(np.repeat((high - low) / 2.0, nlsig, axis=0), ncsig, axis=1)
    for top in range(0, ny, nlsig):
        for left in range(0, nx, ncsig):
            if top + nlsig <= full_y and left + ncsig <= full_x:
                continue  # a whole block, done above
            block = residual[top:top + nlsig, left:left + ncsig]
            high, low = np.percentile(block, [69.1, 30.9])
            sigma[top:top + nlsig, left:left + ncsig] = (high - low) / 2.0
    return sigma


# --- combining and applying masks ------------------------------------------------------------------------
def combine_masks(*masks: np.ndarray | None) -> np.ndarray | None:
    """Logical OR of the masks given (``None`` ones skipped); ``None`` when none is given."""
    present = [np.asarray(m, dtype=bool) for m in masks if m is not None]
    if not present:
        return None
    if len({m.shape for m in present}) != 1:
        raise ValueError("masks of different shapes: " + ", ".join(str(m.shape) for m in present))
    return np.logical_or.reduce(present)


def apply_mask(data: np.ndarray, mask: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """A float32 copy of ``data`` with masked pixels set to ``fill`` (NaN: ignored by later stacking)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != np.shape(data):
        raise ValueError(f"mask {mask.shape} and image {np.shape(data)} differ in shape")
    out = np.array(data, dtype=np.float32, copy=True)
    out[mask] = fill
    return out


# --- cosmic rays -----------------------------------------------------------------------------------------
COSMIC_METHODS = ("auto", "lacosmic", "median")
#: Seconds per pixel of cosmic-ray cleaning on the 2-core reference machine (for estimates).
COSMIC_SECONDS_PER_PIXEL = {"lacosmic": 2.8e-6, "median": 0.5e-6}
LACOSMIC_OBJLIM = 5.0  # L.A.Cosmic's contrast limit protecting stars (astroscrappy's default)
LACOSMIC_PAD = 6       # mirrored border added around the image for L.A.Cosmic
# the full median, not astroscrappy's separable default: ~2.7× slower (about 11 s for a 2000² light on
# two cores), but it alone spares the cores of bright close pairs of stars
LACOSMIC_SEPMED = False
LACOSMIC_NITER = 4
LACOSMIC_SIGFRAC = 0.3    # neighbours of hits join them above sigfrac × sigma (astroscrappy's default)
COSMIC_BAND_PIXELS = 2**18  # pixels of one L.A.Cosmic filter call (~0.1 s of medfilt7 on two cores)


def astroscrappy_available() -> bool:
    """Whether the optional L.A.Cosmic package can be imported (tried on each call, never at import)."""
    try:
        import astroscrappy  # noqa: F401
    except ImportError:
        return False
    return True


def __getattr__(name: str) -> bool:
    """``HAS_ASTROSCRAPPY``, computed when first asked for (importing this module stays light)."""
    if name == "HAS_ASTROSCRAPPY":
        return astroscrappy_available()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def clean_cosmic_rays(data: np.ndarray, method: str = "auto", sigma: float = 5.0, gain: float = 1.0,
                      read_noise: float = 10.0, mask: np.ndarray | None = None,
                      objlim: float = LACOSMIC_OBJLIM,
                      cancel: Cancel | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """(cleaned float32 copy, mask of cleaned pixels, method used: "lacosmic" or "median").

    ``data`` in ADU with its sky (not sky-subtracted), ``gain`` in e⁻/ADU, ``read_noise`` in e⁻;
    ``sigma`` is the detection limit in units of the expected noise; pixels in ``mask`` (bad pixels)
    are never flagged (nor used by L.A.Cosmic); non-finite pixels are left as they are, never flagged.
    "auto" is "lacosmic" when astroscrappy is installed, else "median". ``cancel.check()`` is called
    between bands of rows (the result does not depend on the bands)."""
    if method not in COSMIC_METHODS:
        raise ValueError(f"unknown cosmic-ray method {method!r} (use {', '.join(COSMIC_METHODS)})")
    if not (sigma > 0 and gain > 0 and read_noise >= 0 and objlim > 1):
        raise ValueError(f"need sigma > 0, gain > 0, read_noise ≥ 0, objlim > 1; got {sigma}, {gain}, "
                         f"{read_noise}, {objlim}")
    image = np.asarray(data, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"cosmic-ray cleaning needs a 2-D image, got shape {image.shape}")
    given = np.zeros(image.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    if given.shape != image.shape:
        raise ValueError(f"mask {given.shape} and image {image.shape} differ in shape")
    if method == "auto":
        method = "lacosmic" if astroscrappy_available() else "median"
    finite, nonfinite = _finite_or_median(image)
    ignore = given | nonfinite
    if method == "lacosmic":
        cleaned, found = _lacosmic_clean(finite, sigma, gain, read_noise, ignore, objlim, cancel)
    else:
        cleaned, found = _median_clean(finite, sigma, gain, read_noise, ignore, objlim, cancel)
    found &= ~ignore
    out = image.copy()
    out[found] = cleaned[found]
    return out, found, method


def _lacosmic_clean(image: np.ndarray, sigma: float, gain: float, read_noise: float, ignore: np.ndarray,
                    objlim: float, cancel: Cancel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """L.A.Cosmic: 4 iterations, the full (not separable, see LACOSMIC_SEPMED) median, masked 5 × 5
    median replacement, no saturation cut. The image is mirrored by LACOSMIC_PAD pixels first, else
    hits on the outermost rows and columns are missed. See :func:`lacosmic`."""
    try:
        import astroscrappy  # noqa: F401
    except ImportError as exc:
        raise ValueError("the L.A.Cosmic method needs the optional astroscrappy package "
                         "(pip install astroscrappy, or ccdgui[cosmics]); use method='median'") from exc
    pad = min(LACOSMIC_PAD, *(n - 1 for n in image.shape))
    found, cleaned = lacosmic(np.pad(image, pad, mode="reflect"), np.pad(ignore, pad, mode="reflect"),
                              sigma, objlim, gain, read_noise, cancel)
    inside = (slice(pad, pad + image.shape[0]), slice(pad, pad + image.shape[1]))
    return np.asarray(cleaned[inside], dtype=np.float32), np.asarray(found[inside], dtype=bool)


def lacosmic(data: np.ndarray, inmask: np.ndarray, sigclip: float, objlim: float, gain: float,
             readnoise: float, cancel: Cancel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(cosmic-ray mask, cleaned image): ``astroscrappy.detect_cosmics(data, inmask, sigclip=sigclip,
    objlim=objlim, gain=gain, readnoise=readnoise, satlevel=inf, niter=4, sepmed=False,
    cleantype="medmask")`` (astroscrappy ≥ 1.2) bit for bit, but cancellable: the same loop in numpy
    around astroscrappy's C filters, each filter run on bands of rows (plus the rows its box reaches)
    with a cancel check between bands. The masked-median replacement is done here (the C one is not
    exported), taking the lower median of the unmasked 5 × 5 neighbours as astroscrappy does."""
    from astroscrappy import utils

    check = _checker(cancel)
    f32 = np.float32  # astroscrappy's scalar arguments are C floats
    sigclip, objlim, gain = float(f32(sigclip)), float(f32(objlim)), float(f32(gain))
    sigcliplow = float(f32(LACOSMIC_SIGFRAC) * f32(sigclip))
    cleanarr = np.ascontiguousarray(data, dtype=np.float32) * gain
    clean_var = cleanarr + float(f32(readnoise) * f32(readnoise))
    mask = utils.dilate3(np.ascontiguousarray(inmask, dtype=np.uint8)).astype(bool)  # no saturated stars
    goodpix = ~mask
    check()
    background_level = utils.median(cleanarr[goodpix], int(goodpix.sum()))
    check()
    background_var_level = utils.median(clean_var[goodpix], int(goodpix.sum()))
    rows = max(8, COSMIC_BAND_PIXELS // max(1, cleanarr.shape[1]))

    def banded(function: Callable[[np.ndarray], np.ndarray], array: np.ndarray, reach: int) -> np.ndarray:
        """``function(array)``, computed on bands of rows with ``reach`` rows either side."""
        out = np.empty(array.shape, dtype=np.float32)
        ny = array.shape[0]
        for start in range(0, ny, rows):
            check()
            stop = min(start + rows, ny)
            top, bottom = max(0, start - reach), min(ny, stop + reach)
            out[start:stop] = function(np.ascontiguousarray(array[top:bottom]))[start - top:stop - top]
        return out

    def laplacian(band: np.ndarray) -> np.ndarray:
        conved = utils.laplaceconvolve(utils.subsample(band))
        conved[conved < 0] = 0.0
        return utils.rebin(conved)

    crmask = np.zeros(cleanarr.shape, dtype=bool)
    for _ in range(LACOSMIC_NITER):
        s = banded(laplacian, cleanarr, 2)
        m5 = banded(utils.medfilt5, clean_var, 2)
        m5[m5 < 0.00001] = 0.00001
        noise = np.sqrt(m5)
        del m5
        s /= 2.0 * noise
        check()
        sp = s - banded(utils.medfilt5, s, 2)
        del s
        cosmics = np.logical_and(sp > sigclip, goodpix)
        f = banded(utils.medfilt3, cleanarr, 1)
        f = (f - banded(utils.medfilt7, f, 3)) / noise
        f[f < 0.01] = 0.01
        del noise
        check()
        cosmics = np.logical_and(cosmics, (sp / f) > objlim)
        del f
        check()
        cosmics = np.logical_and(utils.dilate3(cosmics), goodpix)
        cosmics = np.logical_and(sp > sigclip, cosmics)
        cosmics = np.logical_and(utils.dilate3(cosmics), goodpix)
        cosmics = np.logical_and(sp > sigcliplow, cosmics)
        del sp
        crmask |= cosmics
        if not cosmics.any():
            break
        check()
        _clean_medmask(cleanarr, crmask, mask, background_level)
        _clean_medmask(clean_var, crmask, mask, background_var_level)
    cleanarr /= gain
    return crmask, cleanarr


def _clean_medmask(image: np.ndarray, crmask: np.ndarray, mask: np.ndarray, fill: float) -> None:
    """In place, as astroscrappy's ``clean_medmask``: each ``crmask`` pixel two or more pixels inside the
    border gets the lower median of the pixels of its 5 × 5 box in neither mask (``fill`` if none is)."""
    ny, nx = image.shape
    ys, xs = np.nonzero(crmask[2:ny - 2, 2:nx - 2])
    if ys.size == 0:
        return
    ys, xs = ys + 2, xs + 2
    dy, dx = (a.ravel() for a in np.mgrid[-2:3, -2:3])
    around_y, around_x = ys[:, None] + dy, xs[:, None] + dx
    excluded = crmask[around_y, around_x] | mask[around_y, around_x]
    values = np.where(excluded, np.float32(np.inf), image[around_y, around_x])
    values.sort(axis=1)
    count = 25 - excluded.sum(axis=1)
    lower = values[np.arange(ys.size), np.maximum(count - 1, 0) // 2]
    image[ys, xs] = np.where(count > 0, lower, np.float32(fill))


def _median_clean(image: np.ndarray, sigma: float, gain: float, read_noise: float, ignore: np.ndarray,
                  objlim: float, cancel: Cancel | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The numpy method. With m5, m3 the 5 × 5 and 3 × 3 running medians and the expected noise
    n = sqrt(max(m5, 0) · gain + read_noise²) / gain (ADU), a pixel x is a hit when
      1. x − m5 > sigma · n                        (it stands out of its surroundings),
      2. x − (third highest of its 8 neighbours) > sigma · n   (it is a peak of at most 3 pixels: any pixel
         on a star's slope has at least three brighter neighbours),
      3. x − m3 > (1 − 1/objlim) · (x − m5)        (the excess is its own: a resolved star's peak shares
         most of it with its neighbours, so its 3 × 3 median is well above the 5 × 5 one).
    Neighbours of hits passing 1 at sigma / 2 and 3 join them (the faint ends of short tracks).
    Hits get m5. Masked pixels are never flagged."""
    check = _checker(cancel)
    median5 = running_median(image, 5, cancel)
    median3 = running_median(image, 3, cancel)
    electrons = np.maximum(median5, 0) * np.float32(gain)
    noise = np.sqrt(electrons + np.float32(read_noise) ** 2) / np.float32(gain)
    check()
    excess = image - median5
    own = (image - median3) > np.float32(1 - 1 / objlim) * excess
    check()
    peak = image - _third_highest_neighbour(image, cancel) > np.float32(sigma) * noise
    found = (excess > np.float32(sigma) * noise) & peak & own & ~ignore
    found |= _grow(found) & (excess > np.float32(sigma / 2) * noise) & own & ~ignore
    return median5, found
