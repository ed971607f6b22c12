"""Bad pixels and cosmic rays, as pure functions on arrays (inputs are never modified).

* Hot pixels: dark current (master dark, bias-subtracted, × gain / exposure) above a limit in e⁻/s, as in
  the Astropy CCD Data Reduction Guide's chapter on identifying bad pixels.
* Flat defects: like ccdproc's ``ccdmask`` (IRAF's algorithm) in its by-blocks form: the flat minus its
  7 × 7 running median, in units of a robust σ measured in 15 × 15 blocks ((69.1 − 30.9 percentile) / 2);
  beyond −9σ or +9σ is bad. Written with numpy alone (no scipy at run time).
* Cosmic rays: L.A.Cosmic through the optional ``astroscrappy`` package when it is installed, else a
  median method: a pixel standing well above the third highest of its neighbours, whose excess over
  its 5 × 5 median is nearly all its own (a star spreads its light over several pixels), is replaced
  by that median. It finds hits of one to three pixels; wide tracks (the guide's 10 × 4 px blobs) need
  L.A.Cosmic (``pip install ccdgui[cosmics]``).
"""

from __future__ import annotations

import numpy as np

BAND_ROWS = 128  # rows of a running median computed at once (bounded memory)


# --- running medians without scipy -------------------------------------------------------------------
def running_median(data: np.ndarray, size: int) -> np.ndarray:
    """Median over a size × size box around every pixel (edges mirrored as scipy's 'reflect' mode),
    computed in bands of rows so memory stays bounded."""
    if size % 2 != 1 or size < 1:
        raise ValueError(f"box size must be odd and positive, got {size}")
    half = size // 2
    padded = np.pad(np.asarray(data, dtype=np.float32), half, mode="symmetric")
    out = np.empty(data.shape, dtype=np.float32)
    for start in range(0, data.shape[0], BAND_ROWS):
        stop = min(start + BAND_ROWS, data.shape[0])
        window = np.lib.stride_tricks.sliding_window_view(padded[start:stop + 2 * half], (size, size))
        values = window.reshape(window.shape[0], window.shape[1], -1)  # a copy: size² values per pixel
        values.partition(size * size // 2, axis=-1)
        out[start:stop] = values[..., size * size // 2]
    return out


# --- bad-pixel masks -----------------------------------------------------------------------------------
HOT_PIXEL_LIMIT = 4.0   # e⁻/s: the least dark current called hot
HOT_PIXEL_SIGMAS = 10.0  # … and never within this many σ of the dark current's own noise


def hot_pixel_mask(master_dark: np.ndarray, exptime: float, threshold: float | None = None,
                   gain: float = 1.0) -> np.ndarray:
    """Pixels whose dark current (master dark × gain / exposure, e⁻/s) is above ``threshold``; by
    default 4 e⁻/s, or the typical current + 10 σ of its noise when that is higher (a master dark of
    a noisy camera measures current only to that precision)."""
    if not exptime or exptime <= 0:
        raise ValueError(f"the dark's exposure must be positive to measure dark current, got {exptime}")
    current = np.asarray(master_dark, dtype=np.float32) * np.float32(gain / exptime)
    if threshold is None:
        threshold = hot_pixel_threshold(current)
    with np.errstate(invalid="ignore"):
        return current > threshold


def hot_pixel_threshold(current: np.ndarray) -> float:
    """The automatic hot-pixel limit for a dark-current image (e⁻/s)."""
    from .display import quick_median, robust_sigma

    return max(HOT_PIXEL_LIMIT, quick_median(current) + HOT_PIXEL_SIGMAS * robust_sigma(current))


def flat_mask(flat: np.ndarray, ncmed: int = 7, nlmed: int = 7, ncsig: int = 15, nlsig: int = 15,
              lsigma: float = 9.0, hsigma: float = 9.0) -> np.ndarray:
    """Defects of a flat (or a ratio of two flats): ccdproc ``ccdmask(byblocks=True)`` semantics.
    Non-finite pixels are bad too."""
    if ncmed != nlmed:
        raise ValueError("the running median box must be square (ncmed == nlmed)")
    data = np.asarray(flat, dtype=np.float32)
    residual = data - running_median(data, ncmed)
    sigma = _block_sigmas(residual, nlsig, ncsig)
    return ~np.isfinite(data) | (residual < -lsigma * sigma) | (residual > hsigma * sigma)


def _block_sigmas(residual: np.ndarray, nlsig: int, ncsig: int) -> np.ndarray:
    """(69.1 − 30.9 percentile) / 2 of each nlsig × ncsig block, spread back over the block's pixels;
    whole blocks at once, the partial ones at the right and top edges one by one."""
    ny, nx = residual.shape
    full_y, full_x = ny // nlsig * nlsig, nx // ncsig * ncsig
    sigma = np.empty(residual.shape, dtype=np.float64)
    if full_y and full_x:
        blocks = residual[:full_y, :full_x].reshape(ny // nlsig, nlsig, nx // ncsig, ncsig)
        blocks = blocks.transpose(0, 2, 1, 3).reshape(ny // nlsig, nx // ncsig, -1)
        high, low = np.percentile(blocks, [69.1, 30.9], axis=-1)
        sigma[:full_y, :full_x] = np.repeat(np.repeat((high - low) / 2.0, nlsig, axis=0), ncsig, axis=1)
    for top in range(0, ny, nlsig):
        for left in range(0, nx, ncsig):
            if top + nlsig <= full_y and left + ncsig <= full_x:
                continue
            block = residual[top:top + nlsig, left:left + ncsig]
            high, low = np.percentile(block.ravel(), [69.1, 30.9])
            sigma[top:top + nlsig, left:left + ncsig] = (high - low) / 2.0
    return sigma


def combine_masks(*masks: np.ndarray | None) -> np.ndarray | None:
    """Logical OR of the masks given (None ones skipped); None when there is none."""
    present = [np.asarray(m, dtype=bool) for m in masks if m is not None]
    if not present:
        return None
    if len({m.shape for m in present}) != 1:
        raise ValueError("masks of different shapes: " + ", ".join(str(m.shape) for m in present))
    out = present[0].copy()
    for mask in present[1:]:
        out |= mask
    return out


def apply_mask(data: np.ndarray, mask: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """A copy of ``data`` with masked pixels set to ``fill`` (NaN: ignored by later stacking)."""
    if mask.shape != data.shape:
        raise ValueError(f"mask {mask.shape} and image {data.shape} differ in shape")
    out = np.array(data, dtype=np.float32, copy=True)
    out[mask] = fill
    return out


# --- cosmic rays ---------------------------------------------------------------------------------------
COSMIC_METHODS = ("auto", "lacosmic", "median")


def astroscrappy_available() -> bool:
    try:
        import astroscrappy  # noqa: F401
    except ImportError:
        return False
    return True


def clean_cosmic_rays(data: np.ndarray, method: str = "auto", sigma: float = 5.0, gain: float = 1.0,
                      read_noise: float = 10.0, mask: np.ndarray | None = None,
                      objlim: float = 5.0) -> tuple[np.ndarray, np.ndarray, str]:
    """(cleaned copy, mask of cleaned pixels, method used). ``read_noise`` in e⁻, ``gain`` in e⁻/ADU;
    pixels in ``mask`` are left alone. "auto" is L.A.Cosmic when astroscrappy is installed."""
    if method not in COSMIC_METHODS:
        raise ValueError(f"unknown cosmic-ray method {method!r} (use {', '.join(COSMIC_METHODS)})")
    if method == "auto":
        method = "lacosmic" if astroscrappy_available() else "median"
    image = np.asarray(data, dtype=np.float32)
    if method == "lacosmic":
        if not astroscrappy_available():
            raise ValueError("L.A.Cosmic needs the optional astroscrappy package (pip install astroscrappy)")
        import astroscrappy

        found, cleaned = astroscrappy.detect_cosmics(
            image, inmask=None if mask is None else np.asarray(mask, dtype=bool), sigclip=sigma,
            objlim=objlim, gain=gain, readnoise=read_noise, satlevel=np.inf, cleantype="medmask")
        return np.asarray(cleaned, dtype=np.float32), np.asarray(found, dtype=bool), "lacosmic"
    return (*_median_clean(image, sigma, gain, read_noise, mask, objlim), "median")


def _median_clean(image: np.ndarray, sigma: float, gain: float, read_noise: float,
                  mask: np.ndarray | None, objlim: float) -> tuple[np.ndarray, np.ndarray]:
    """A hit stands ``sigma`` × the expected noise above the third highest of its 8 neighbours (a track
    two or three pixels long still does; any pixel on a star's slope has at least three brighter
    neighbours, and a star's peak shares its light), and most of its excess over the 5 × 5 median is
    its own: it stands above its 3 × 3 median by more than (1 − 1/``objlim``) of it. Neighbours of a
    hit standing half as high that pass the second test join it; hits get the 5 × 5 median."""
    finite = np.where(np.isfinite(image), image, np.float32(np.nanmedian(image)))
    median5 = running_median(finite, 5)
    median3 = running_median(finite, 3)
    variance = np.maximum(median5, 0) * np.float32(gain) + np.float32(read_noise) ** 2
    noise = np.sqrt(variance) / np.float32(gain)
    excess = finite - median5
    own = ((finite - median3) > np.float32(1 - 1 / objlim) * excess) & np.isfinite(image)
    alone = finite - _third_highest_neighbour(finite) > np.float32(sigma) * noise
    found = alone & own & (excess > np.float32(sigma) * noise)
    found |= _grow(found) & (excess > np.float32(sigma / 2) * noise) & own
    if mask is not None:
        found &= ~np.asarray(mask, dtype=bool)
    cleaned = image.copy()
    cleaned[found] = median5[found]
    return cleaned, found


def _third_highest_neighbour(data: np.ndarray) -> np.ndarray:
    """Per pixel, the third highest of its 8 neighbours (edges repeated), in bands of rows."""
    padded = np.pad(data, 1, mode="edge")
    out = np.empty_like(data)
    offsets = [(dy, dx) for dy in (0, 1, 2) for dx in (0, 1, 2) if (dy, dx) != (1, 1)]
    ny, nx = data.shape
    for start in range(0, ny, BAND_ROWS):
        stop = min(start + BAND_ROWS, ny)
        stack = np.stack([padded[start + dy:stop + dy, dx:dx + nx] for dy, dx in offsets])
        out[start:stop] = np.partition(stack, 5, axis=0)[5]
    return out


def _grow(mask: np.ndarray) -> np.ndarray:
    """The mask and its 8 neighbours."""
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:-1, :] |= mask[1:, :]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    out[1:, 1:] |= mask[:-1, :-1]
    out[:-1, :-1] |= mask[1:, 1:]
    out[1:, :-1] |= mask[:-1, 1:]
    out[:-1, 1:] |= mask[1:, :-1]
    return out
