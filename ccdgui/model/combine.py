"""Stacking engine: average / median / sum with optional rejection and per-frame scaling.

Frames are scaled *before* rejection (ccdproc rejects on unscaled frames, which throws away whole frames
when flat levels differ). Work is done in row bands that fit in cache: each band is read once from each
input (which may be a memmap or a big-endian / integer array), converted to native float32, scaled,
rejected and reduced, on two threads. Memory beyond the output is a few bands, whatever the frame count.

NaN in an input is a missing pixel. A pixel left with no value gets NaN and count 0.
Sum follows ccdproc: the plain sum of the values kept (not rescaled for rejected ones).

Absolute thresholds (``clip_min`` / ``clip_max``, ccdproc's ``minmax_clipping``) compare the values as
given, before scaling, as ccdproc does (a saturation level is in the frame's own units). A value beyond
them is missing from then on, as IRAF imcombine's thresholds: sigma clipping and min/max rejection work
on the values left. ccdproc differs there: its ``clip_extrema`` runs first on all values and its sigma
clipping computes centre and spread with the thresholded values still in.

Per-frame weights (ccdproc's ``Combiner.weights``) make an average the weighted mean Σw·x / Σw and a
sum the weighted sum Σw·x of the values kept, added in frame order; a median ignores them (as ccdproc's
``median_combine``), as does sigma clipping's centre and spread. ccdproc divides by the weights of all
frames even where values were rejected or missing; here only the kept values' weights count.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .networks import median_network, selection_network, sorting_network  # noqa: F401  (API)
from .progress import drive

try:  # the compiled band reduction (built with the package when a C compiler is present)
    from ccdgui.model import _stack
except ImportError:  # pragma: no cover - exercised where no compiler was available
    _stack = None

MAD_TO_SIGMA = 1.482602218505602  # 1 / Φ⁻¹(3/4), as astropy.stats.mad_std
BAND_BYTES = 2 * 1024 * 1024     # one band of the whole stack: its working rows stay in a 1 MB L2 cache
METHODS = ("average", "median", "sum")
REJECTIONS = ("none", "sigma", "minmax")


def robust_sigma(values: np.ndarray) -> float:
    """1.4826 × median |x − median| of the finite values (astropy's mad_std); NaN when there are none."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan
    return float(MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


@dataclass(frozen=True)
class CombineOptions:
    """How to combine a stack. ``reject`` is one of none / sigma / minmax."""

    method: str = "average"        # average | median | sum
    reject: str = "sigma"          # none | sigma | minmax
    sigma_low: float = 5.0
    sigma_high: float = 5.0
    sigma_center: str = "median"   # median | mean
    sigma_spread: str = "mad_std"  # mad_std | std
    sigma_iterations: int = 1
    minmax_low: int = 1            # lowest values dropped per pixel
    minmax_high: int = 1           # highest values dropped per pixel
    clip_min: float | None = None  # values below are rejected first (compared before scaling)
    clip_max: float | None = None  # values above are rejected first (e.g. saturated)

    def validate(self) -> None:
        """Raise ValueError with a one-line message for an impossible option."""
        checks = ((self.method in METHODS,
                   f"unknown combine method {self.method!r} (use {', '.join(METHODS)})"),
                  (self.reject in REJECTIONS,
                   f"unknown rejection {self.reject!r} (use {', '.join(REJECTIONS)})"),
                  (self.sigma_center in ("median", "mean"),
                   f"unknown sigma-clip centre {self.sigma_center!r} (use median or mean)"),
                  (self.sigma_spread in ("mad_std", "std"),
                   f"unknown sigma-clip spread {self.sigma_spread!r} (use mad_std or std)"),
                  (self.sigma_low > 0 and self.sigma_high > 0, "sigma thresholds must be positive"),
                  (self.sigma_iterations >= 1, "sigma clipping needs at least one iteration"),
                  (self.minmax_low >= 0 and self.minmax_high >= 0, "min/max counts must be ≥ 0"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        for name in ("clip_min", "clip_max"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                      or not math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number, not {value!r}")
        if self.clip_min is not None and self.clip_max is not None and not self.clip_min < self.clip_max:
            raise ValueError(f"clip_min ({self.clip_min}) must be below clip_max ({self.clip_max})")

    @property
    def clipping(self) -> bool:
        return self.clip_min is not None or self.clip_max is not None


@dataclass
class CombineResult:
    data: np.ndarray   # float32 (ny, nx)
    count: np.ndarray  # uint16 (ny, nx): frames used per pixel
    qa: object = None  # what an observer collected while combining (e.g. qa.InputSample), if any


# --- per-frame scale factors -----------------------------------------------------------------------------
def _finite_stat(array: np.ndarray, stat) -> float:
    data = np.asarray(array, dtype=np.float32).reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        all_finite = bool(np.isfinite(data.sum()))  # an overflow only costs the filtering below
    finite = data if all_finite else data[np.isfinite(data)]
    if finite.size == 0:
        raise ValueError("cannot scale a frame with no finite pixel")
    value = float(stat(finite))
    if value == 0 or not np.isfinite(value):
        raise ValueError(f"cannot scale by the inverse of {value}")
    return value


def median_of(values: np.ndarray) -> np.float32:
    """np.median of a 1-D float32 array, the same value, about 4× faster: one partition at the middle
    (numpy partitions at both middle positions) and the largest value below it for an even count."""
    n = values.size
    middle = n // 2
    part = np.partition(values, middle)
    high = part[middle]
    if n % 2:
        return high
    low = part[:middle].max()
    return (low + high) / np.float32(2)  # np.median's mean of the two, in float32


def inverse_median_scales(arrays: Sequence[np.ndarray]) -> list[float]:
    """1 / median of each frame (finite pixels), e.g. to bring flats to a common level."""
    return [1.0 / _finite_stat(a, median_of) for a in arrays]


def inverse_mean_scales(arrays: Sequence[np.ndarray]) -> list[float]:
    """1 / mean of each frame (finite pixels)."""
    return [1.0 / _finite_stat(a, lambda x: x.mean(dtype=np.float64)) for a in arrays]


# --- per-frame weights -----------------------------------------------------------------------------
SAMPLE_ROWS = 128  # rows, evenly spaced, whose pixels give a frame's noise for inverse-variance weights


def _frame_label(index: int, names: Sequence[str] | None) -> str:
    return str(names[index]) if names is not None else f"frame {index + 1}"


def _weight_value(value, index: int, names: Sequence[str] | None, what: str) -> float:
    label = _frame_label(index, names)
    if value is None:
        raise ValueError(f"{label}: no {what}")
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{label}: {what} {value!r} cannot be a weight (need a finite number ≥ 0)")
    return number


def _mean_one(values: Sequence[float], what: str) -> list[float]:
    """The values scaled to mean 1 (a weighted sum then stays in the units of a plain sum)."""
    if len(values) == 0:
        raise ValueError("no frames to weight")
    total = math.fsum(values)
    if total == 0:
        raise ValueError(f"every frame's {what} is 0: nothing to weight by")
    return [v * len(values) / total for v in values]


def exposure_weights(exptimes: Sequence, names: Sequence[str] | None = None) -> list[float]:
    """Weights proportional to exposure time, mean 1. A missing, negative or non-finite time is a
    ValueError naming the frame (``names[i]``, else "frame i+1")."""
    return _mean_one([_weight_value(t, i, names, "exposure time") for i, t in enumerate(exptimes)],
                     "exposure time")


def keyword_weights(headers: Sequence, keyword: str, names: Sequence[str] | None = None) -> list[float]:
    """Weights from a header keyword (one header per frame), mean 1; a missing, negative or non-finite
    value is a ValueError naming the frame and the keyword."""
    values = []
    for index, header in enumerate(headers):
        value = header.get(keyword)
        if value is None:
            raise ValueError(f"{_frame_label(index, names)}: no {keyword} in its header")
        values.append(_weight_value(value, index, names, keyword))
    return _mean_one(values, keyword)


def _row_sample(array) -> np.ndarray:
    """The finite pixels of SAMPLE_ROWS evenly spaced rows (row slices: arrays and row sources alike)."""
    ny = np.shape(array)[0]
    rows = np.unique(np.linspace(0, ny - 1, min(ny, SAMPLE_ROWS)).round().astype(int))
    try:
        sample = np.concatenate([np.asarray(array[r:r + 1], dtype=np.float32).reshape(-1) for r in rows])
    finally:
        if hasattr(array, "close"):  # a file row source: its descriptor is not kept for this
            array.close()
    return sample[np.isfinite(sample)]


def inverse_variance_weights(arrays: Sequence, scales: Sequence[float] | None = None,
                             names: Sequence[str] | None = None) -> list[float]:
    """Weights 1/σ², mean 1, with σ each frame's noise as combined (times its scale, if any): the MAD
    standard deviation (1.4826 × median |x − median|) of the finite pixels of SAMPLE_ROWS evenly spaced
    rows, robust to stars and hot pixels. A frame with no spread is a ValueError naming it."""
    inverse = []
    for index, array in enumerate(arrays):
        sample = _row_sample(array)
        sigma = math.nan
        if sample.size:
            sigma = MAD_TO_SIGMA * float(median_of(np.abs(sample - median_of(sample))))
            sigma *= abs(float(scales[index])) if scales is not None else 1.0
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"{_frame_label(index, names)}: no noise to weight by (MAD σ = {sigma:g})")
        inverse.append(1.0 / (sigma * sigma))
    return _mean_one(inverse, "inverse variance")


def _frame_weights(weights, n: int, method: str) -> np.ndarray | None:
    """Weights checked and as float32 (what the engine multiplies by), or None where they change nothing:
    a median, or an average with equal weights."""
    if weights is None:
        return None
    try:
        values = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("weights must be numbers") from None
    if values.shape != (n,):
        raise ValueError(f"{values.size} weights for {n} frames")
    with np.errstate(over="ignore"):
        single = values.astype(np.float32)
    if not np.isfinite(single).all() or (values < 0).any():
        raise ValueError("weights must be finite numbers ≥ 0 (within float32 range)")
    if not (single > 0).any():
        raise ValueError("weights are all zero")
    if method == "median" or (method == "average" and (single == single[0]).all()):
        return None
    return single


# --- band reductions -------------------------------------------------------------------------------
def _sorted_with_count(cube: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stack sorted along frames with invalid values last (as NaN), and the valid count per pixel."""
    work = np.where(valid, cube, np.float32(np.nan))
    work.sort(axis=0)  # NaN sorts last
    return work, valid.sum(axis=0)


def _median_of_sorted(sorted_cube: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median of the first ``count`` values of each pixel of an already sorted stack (NaN where 0)."""
    safe = np.maximum(count, 1)
    lower = ((safe - 1) // 2)[None]
    upper = (safe // 2)[None]
    low = np.take_along_axis(sorted_cube, lower, axis=0)[0]
    high = np.take_along_axis(sorted_cube, upper, axis=0)[0]
    median = (low + high) * np.float32(0.5)
    median[count == 0] = np.nan
    return median


def _masked_median(cube: np.ndarray, valid: np.ndarray) -> np.ndarray:
    sorted_cube, count = _sorted_with_count(cube, valid)
    return _median_of_sorted(sorted_cube, count)


def _masked_mean(cube: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    count = valid.sum(axis=0)
    total = np.where(valid, cube, np.float32(0)).sum(axis=0, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count, count


def _sigma_clip(cube: np.ndarray, valid: np.ndarray, options: CombineOptions) -> np.ndarray:
    """astropy.stats.sigma_clip semantics (as ccdproc uses it): bounds from centre and spread of the kept
    values; values strictly beyond centre − low·spread or centre + high·spread are rejected."""
    for _ in range(options.sigma_iterations):
        median = _masked_median(cube, valid)
        centre = median if options.sigma_center == "median" else _masked_mean(cube, valid)[0]
        if options.sigma_spread == "mad_std":
            spread = _masked_median(np.abs(cube - median), valid) * np.float32(MAD_TO_SIGMA)
        else:
            mean, count = _masked_mean(cube, valid)
            deviation = np.where(valid, cube - mean, np.float32(0))
            with np.errstate(invalid="ignore", divide="ignore"):
                spread = np.sqrt((deviation * deviation).sum(axis=0) / count)
        with np.errstate(invalid="ignore"):
            keep = valid & ~(cube < centre - np.float32(options.sigma_low) * spread) \
                & ~(cube > centre + np.float32(options.sigma_high) * spread)
        if np.array_equal(keep, valid):
            break
        valid = keep
    return valid


def _minmax(cube: np.ndarray, valid: np.ndarray, options: CombineOptions) -> np.ndarray:
    """Drop the ``minmax_low`` lowest and ``minmax_high`` highest values of each pixel (ccdproc's
    clip_extrema on the values present)."""
    work = np.where(valid, cube, np.float32(np.nan))
    order = np.argsort(work, axis=0, kind="stable")  # NaN last
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(cube.shape[0])[:, None, None], axis=0)
    count = valid.sum(axis=0)
    return valid & (rank >= options.minmax_low) & (rank < count - options.minmax_high)


def _weighted(cube: np.ndarray, keep: np.ndarray, weights: np.ndarray, method: str,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Σw·x (sum) or Σw·x / Σw (average) of the kept values, added in frame order in float32 (as the
    compiled kernel adds them); NaN where nothing is kept."""
    total = np.zeros(cube.shape[1:], dtype=np.float32)
    weight = np.zeros_like(total)
    zero = np.float32(0)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for index in range(cube.shape[0]):
            total += np.where(keep[index], weights[index] * cube[index], zero)
            weight += np.where(keep[index], weights[index], zero)
        data = total / weight if method == "average" else total
    count = keep.sum(axis=0)
    data[count == 0] = np.nan
    return data, count


def _clip_limits(options: CombineOptions) -> tuple[np.float32, np.float32] | None:
    """The thresholds as float32 limits giving the same answers as comparing in double: a float32 x is
    below clip_min exactly when it is below the smallest float32 ≥ clip_min (and likewise above)."""
    if not options.clipping:
        return None
    with np.errstate(over="ignore"):
        low = np.float32(-np.inf if options.clip_min is None else options.clip_min)
        high = np.float32(np.inf if options.clip_max is None else options.clip_max)
    if options.clip_min is not None and float(low) < options.clip_min:
        low = np.nextafter(low, np.float32(np.inf))
    if options.clip_max is not None and float(high) > options.clip_max:
        high = np.nextafter(high, np.float32(-np.inf))
    return low, high


def _reduce_band(cube: np.ndarray, options: CombineOptions, clipped: np.ndarray | None = None,
                 weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a private band buffer (it may be overwritten); ``clipped`` marks values beyond the
    thresholds. A sum over frames is finite only when every value is (an overflow to inf merely sends
    the band down the general path)."""
    with np.errstate(over="ignore", invalid="ignore"):
        finite = bool(np.isfinite(cube.sum(axis=0)).all())
    if finite and (options.reject != "sigma" or options.sigma_iterations == 1):
        return _reduce_sorted_band(cube, options, True, clipped, weights)
    return _reduce_masked_band(cube, options, clipped, weights)


def _compiled_applies(n: int, options: CombineOptions) -> bool:
    """The compiled kernel does the sorted path (one clipping pass at most) for up to MAX_FRAMES frames."""
    return (_stack is not None and n <= _stack.MAX_FRAMES and options.sigma_iterations == 1
            and (options.method == "median" or options.reject != "none"))


_METHOD_CODES = {"average": 0, "median": 1, "sum": 2}
_REJECT_CODES = {"none": 0, "sigma": 1, "minmax": 2}


@functools.lru_cache(maxsize=64)
def _network_array(n: int, plain_median: bool) -> np.ndarray:
    pairs = median_network(n) if plain_median else sorting_network(n)  # as _networks.h unrolls
    return np.asarray(pairs, dtype=np.int32).reshape(-1, 2)


def _reduce_compiled(rows: Sequence, scales: np.ndarray | None, options: CombineOptions,
                     decode: Sequence[tuple] | None = None, shape: tuple[int, ...] | None = None,
                     weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The sorted path in compiled code, the same float32 operations as ``_reduce_sorted_band``: one
    contiguous band per frame, native float32 or stored as ``decode`` says (kind, BSCALE, BZERO, BLANK;
    see ``rows.RawRows.decode``), thresholds compared as it is read, then scaled; ``weights`` float32.
    None if a value is not finite."""
    n = len(rows)
    shape = shape or rows[0].shape
    data = np.empty(shape, dtype=np.float32)
    count = np.empty(shape, dtype=np.uint16)
    plain_median = options.method == "median" and options.reject == "none" and not options.clipping
    finite = _stack.reduce_band(
        rows, scales, decode, _network_array(n, plain_median), data, count, _METHOD_CODES[options.method],
        _REJECT_CODES[options.reject], options.sigma_center == "mean", options.sigma_spread == "std",
        options.sigma_low, options.sigma_high, options.minmax_low, options.minmax_high, MAD_TO_SIGMA,
        weights, options.clip_min, options.clip_max)
    return (data, count) if finite else None


_NATIVE_FLOAT32 = ("f", 1.0, 0.0, None)


def _compiled_sources(arrays, start: int, stop: int) -> tuple[list, list[tuple] | None] | None:
    """Rows start..stop-1 of every input as the compiled kernel can take them without numpy converting
    them first: slices of native float32 arrays, or the stored bytes of file rows with how to decode
    them. None if an input is neither (the band is then converted by numpy)."""
    rows, decode = [], []
    for array in arrays:
        if (isinstance(array, np.ndarray) and array.dtype == np.float32 and array.dtype.isnative
                and array.flags.c_contiguous):
            rows.append(array[start:stop])
            decode.append(_NATIVE_FLOAT32)
        elif getattr(array, "decode", None) is not None:
            rows.append(array.read_raw(start, stop))
            offset = getattr(array, "offset_rows", None)  # e.g. a master bias to subtract
            decode.append(array.decode + ((offset(start, stop),) if offset is not None else ()))
        else:
            return None
    return rows, (None if all(d is _NATIVE_FLOAT32 for d in decode) else decode)


def _reduce_rows(arrays, scales, start: int, stop: int, options: CombineOptions,
                 weights: np.ndarray | None = None, clip: tuple | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Combine rows start..stop-1 of every input: compiled straight from native float32 inputs or file
    rows when it can, else from a band numpy converted (unscaled: the kernel compares the thresholds,
    then scales); a band with a value that is not finite takes the general path."""
    if _compiled_applies(len(arrays), options):
        shape = (stop - start, np.shape(arrays[0])[1])
        sources = _compiled_sources(arrays, start, stop)
        if sources is not None:
            result = _reduce_compiled(sources[0], scales, options, sources[1], shape, weights)
        else:
            result = _reduce_compiled(_read_band(arrays, None, start, stop)[0], scales, options,
                                      weights=weights)
        if result is not None:
            return result
        cube, clipped = _read_band(arrays, scales, start, stop, clip)
        return _reduce_masked_band(cube, options, clipped, weights)
    cube, clipped = _read_band(arrays, scales, start, stop, clip)
    return _reduce_band(cube, options, clipped, weights)


def _reduce_masked_band(cube: np.ndarray, options: CombineOptions, clipped: np.ndarray | None = None,
                        weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The general path: any NaN, any number of clipping passes."""
    valid = np.isfinite(cube)
    if clipped is not None:
        valid &= ~clipped
    if options.reject == "sigma":
        valid = _sigma_clip(cube, valid, options)
    elif options.reject == "minmax":
        valid = _minmax(cube, valid, options)
    if options.method == "median":
        sorted_cube, count = _sorted_with_count(cube, valid)
        data = _median_of_sorted(sorted_cube, count)
    elif weights is not None:
        data, count = _weighted(cube, valid, weights, options.method)
    else:
        data, count = _masked_mean(cube, valid)
        if options.method == "sum":
            data = np.where(valid, cube, np.float32(0)).sum(axis=0, dtype=np.float32)
            data[count == 0] = np.nan
    return data.astype(np.float32, copy=False), count.astype(np.uint16)


# --- the fast path: one sorting network per band ---------------------------------------------------
def _select_frames(cube: np.ndarray, outputs: tuple[int, ...], overwrite: bool = False,
                   ) -> dict[int, np.ndarray]:
    """The values that would sit at sorted positions ``outputs`` (e.g. the median's), per pixel.
    With ``overwrite`` the cube (a private band buffer) is used as working space."""
    rows = _working_rows(cube, overwrite)
    spare = np.empty_like(rows[0])
    for i, j, low, high in selection_network(cube.shape[0], outputs):
        if low and high:
            np.minimum(rows[i], rows[j], out=spare)
            np.maximum(rows[i], rows[j], out=rows[j])
            rows[i], spare = spare, rows[i]
        elif low:
            np.minimum(rows[i], rows[j], out=rows[i])
        else:
            np.maximum(rows[i], rows[j], out=rows[j])
    return {k: rows[k] for k in outputs}


def _working_rows(cube: np.ndarray, overwrite: bool) -> list[np.ndarray]:
    return [cube[i] if overwrite else cube[i].copy() for i in range(cube.shape[0])]


def _sorted_rows(cube: np.ndarray, overwrite: bool = False) -> list[np.ndarray]:
    """The stack sorted along the frame axis (finite values only) as one array per rank, by a sorting
    network of element-wise min/max over whole band rows: vectorised and cache-friendly for a band, and
    no copy back into one array (the ranks stay where the network left them)."""
    n = cube.shape[0]
    if n > 64:
        return list(np.sort(cube, axis=0))
    rows = _working_rows(cube, overwrite)
    spare = np.empty_like(rows[0])
    for i, j in sorting_network(n):
        np.minimum(rows[i], rows[j], out=spare)
        np.maximum(rows[i], rows[j], out=rows[j])
        rows[i], spare = spare, rows[i]
    return rows


def _sum_rows(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Sum of the rows, added in order (as a reduction over the frame axis does)."""
    total = rows[0].astype(np.float32, copy=True)
    for row in rows[1:]:
        total += row
    return total


def _kth_of_two_sorted(a: list[np.ndarray], b: list[np.ndarray], k: int) -> np.ndarray:
    """Per pixel, the k-th smallest (1-based) of the union of two increasing sequences of arrays: the
    smallest over the ways to take i values from ``a`` and k − i from ``b`` of the larger last value."""
    best = None
    spare = np.empty_like(a[0] if a else b[0])
    for i in range(max(0, k - len(b)), min(len(a), k) + 1):
        if i == 0:
            candidate = b[k - 1]
        elif i == k:
            candidate = a[k - 1]
        else:
            candidate = np.maximum(a[i - 1], b[k - i - 1], out=spare)
        if best is None:
            best = candidate.copy()
        else:
            np.minimum(best, candidate, out=best)
    return best


def _median_deviation(ordered: np.ndarray, median: np.ndarray) -> np.ndarray:
    """Median of |x − median| per pixel from the sorted stack, without sorting the deviations: below
    the median they increase downwards, above it upwards, so the median is a selection from two sorted
    sequences (about n/2 min/max passes instead of a second sort)."""
    n = len(ordered)
    half = n // 2
    below = [median - ordered[j] for j in range(half - 1, -1, -1)]
    above = [ordered[j] - median for j in range(half, n)]
    if n % 2:
        return _kth_of_two_sorted(below, above, half + 1)
    low = _kth_of_two_sorted(below, above, half)
    low += _kth_of_two_sorted(below, above, half + 1)
    return low * np.float32(0.5)


def _run_statistic(ordered: Sequence[np.ndarray], start: np.ndarray, stop: np.ndarray, method: str,
                   ) -> np.ndarray:
    """Average, sum or median of sorted values start <= index < stop of every pixel (NaN if empty).

    Most pixels keep every value: their statistic is taken over the whole stack at once, and only the
    clipped pixels go through the per-pixel run (the same additions in the same order either way)."""
    n = len(ordered)
    if method == "median":
        result = (ordered[(n - 1) // 2] + ordered[n // 2]) * np.float32(0.5)
    else:
        result = _sum_rows(ordered)
        if method == "average":
            result /= np.float32(n)
    clipped = np.flatnonzero((start != 0) | (stop != n))
    if clipped.size:
        subset = np.stack([row.reshape(-1)[clipped] for row in ordered])
        flat = result.reshape(-1)
        flat[clipped] = _run_statistic_each(subset, start.reshape(-1)[clipped], stop.reshape(-1)[clipped],
                                            method)
    return result


def _run_statistic_each(sorted_cube: np.ndarray, start: np.ndarray, stop: np.ndarray, method: str,
                        ) -> np.ndarray:
    """The statistic of each pixel's own run of sorted values (any start/stop)."""
    count = stop - start
    empty = count <= 0
    if method == "median":
        safe = np.maximum(count, 1)
        top = sorted_cube.shape[0] - 1  # an empty run (set to NaN below) may start past the end
        low = np.take_along_axis(sorted_cube, np.minimum(start + (safe - 1) // 2, top)[None], axis=0)[0]
        high = np.take_along_axis(sorted_cube, np.minimum(start + safe // 2, top)[None], axis=0)[0]
        result = (low + high) * np.float32(0.5)
    else:
        index = np.arange(sorted_cube.shape[0]).reshape((-1,) + (1,) * (sorted_cube.ndim - 1))
        inside = (index >= start) & (index < stop)
        result = np.where(inside, sorted_cube, np.float32(0)).sum(axis=0, dtype=np.float32)
        if method == "average":
            with np.errstate(invalid="ignore", divide="ignore"):
                result = result / count
    result[empty] = np.nan
    return result


def _count_beyond(ordered: Sequence[np.ndarray], low: np.ndarray, high: np.ndarray,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, how many sorted values lie below ``low`` (the run's start) and how many do not lie
    above ``high`` (its stop). The lowest and highest values tell which pixels lose any value at all;
    only those (usually a few per cent) are counted value by value."""
    n = len(ordered)
    start = np.zeros(low.shape, dtype=np.intp)
    stop = np.full(low.shape, n, dtype=np.intp)
    clipped = np.flatnonzero((ordered[0] < low) | (ordered[-1] > high))
    if clipped.size:
        subset = np.stack([row.reshape(-1)[clipped] for row in ordered])
        start.reshape(-1)[clipped] = (subset < low.reshape(-1)[clipped]).sum(axis=0)
        stop.reshape(-1)[clipped] = (subset <= high.reshape(-1)[clipped]).sum(axis=0)
    return start, stop


def _short_bounds(ordered: np.ndarray, m: np.ndarray, options: CombineOptions,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Sigma-clip runs of pixels left with m < n values by the thresholds: the first m of each sorted
    column (the rest +inf), with a full pixel's float32 operations over m values (zeros added past m)."""
    n = ordered.shape[0]
    inside = np.arange(n)[:, None] < m
    safe = np.maximum(m, 1)
    count = m.astype(np.float32)

    def middle(values: np.ndarray) -> np.ndarray:
        low = np.take_along_axis(values, ((safe - 1) // 2)[None], axis=0)[0]
        return (low + np.take_along_axis(values, (safe // 2)[None], axis=0)[0]) * np.float32(0.5)

    median = middle(ordered)
    mean = np.where(inside, ordered, np.float32(0)).sum(axis=0, dtype=np.float32) / count
    if options.sigma_spread == "mad_std":
        deviation = np.where(inside, np.abs(ordered - median), np.float32(np.inf))
        deviation.sort(axis=0)
        spread = middle(deviation) * np.float32(MAD_TO_SIGMA)
    else:
        deviation = np.where(inside, ordered - mean, np.float32(0))
        spread = np.sqrt((deviation * deviation).sum(axis=0, dtype=np.float32) / count)
    centre = median if options.sigma_center == "median" else mean
    low = centre - np.float32(options.sigma_low) * spread
    high = centre + np.float32(options.sigma_high) * spread
    return ((ordered < low) & inside).sum(axis=0), ((ordered <= high) & inside).sum(axis=0)


def _kept_by_rank(cube: np.ndarray, clipped: np.ndarray | None, start: np.ndarray, stop: np.ndarray,
                  ) -> np.ndarray:
    """Which values of the unsorted cube fall in their pixel's run start..stop-1 of the sorted order
    (thresholded values last, ties ranked by frame: the compiled kernel's rule)."""
    n = cube.shape[0]
    keep = np.ones(cube.shape, dtype=bool)
    partial = np.flatnonzero((start != 0) | (stop != n))
    if partial.size:
        values = cube.reshape(n, -1)[:, partial]
        if clipped is not None:
            values = np.where(clipped.reshape(n, -1)[:, partial], np.float32(np.inf), values)
        order = np.argsort(values, axis=0, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(n)[:, None], axis=0)
        keep.reshape(n, -1)[:, partial] = ((rank >= start.reshape(-1)[partial])
                                           & (rank < stop.reshape(-1)[partial]))
    return keep


def _reduce_sorted_band(cube: np.ndarray, options: CombineOptions, overwrite: bool = False,
                        clipped: np.ndarray | None = None, weights: np.ndarray | None = None,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """All values finite: sort once; a sigma-clip or min/max rejection keeps a contiguous run of the
    sorted values (bounds are one interval), so every statistic reads that run. Values beyond the
    thresholds (``clipped``) sort last as +inf and a pixel's run lies within its m values left. With
    ``overwrite`` the cube (a private band buffer) is sorted in place."""
    n = cube.shape[0]
    needs_sort = options.method == "median" or options.reject != "none"
    shape = cube.shape[1:]
    if not needs_sort:
        if clipped is not None or weights is not None:
            return _reduce_masked_band(cube, options, clipped, weights)
        data = cube.sum(axis=0, dtype=np.float32)
        return (data / np.float32(n) if options.method == "average" else data), np.full(shape, n, np.uint16)
    if options.reject == "none" and n <= 64 and clipped is None and weights is None:
        # a plain median: only the middle of the order matters
        middle = _select_frames(cube, tuple(sorted({(n - 1) // 2, n // 2})), overwrite)
        data = (middle[(n - 1) // 2] + middle[n // 2]) * np.float32(0.5)
        return data, np.full(shape, n, np.uint16)
    if clipped is None:
        m = np.full(shape, n, dtype=np.intp)
        ordered = _sorted_rows(cube, overwrite and weights is None)
    else:
        m = n - clipped.sum(axis=0)
        ordered = _sorted_rows(np.where(clipped, np.float32(np.inf), cube), overwrite=True)
    start = np.zeros(shape, dtype=np.intp)
    stop = m.copy()
    if options.reject == "minmax":
        start = np.minimum(options.minmax_low, m)
        stop = np.maximum(m - options.minmax_high, 0)
    elif options.reject == "sigma":
        with np.errstate(invalid="ignore", over="ignore"):  # +inf of thresholded values: redone below
            median = (ordered[(n - 1) // 2] + ordered[n // 2]) * np.float32(0.5)
            centre = median if options.sigma_center == "median" else _sum_rows(ordered) / np.float32(n)
            if options.sigma_spread == "mad_std":
                spread = _median_deviation(ordered, median) * np.float32(MAD_TO_SIGMA)
            else:
                mean = _sum_rows(ordered) / np.float32(n)
                spread = np.sqrt(_sum_rows([(row - mean) ** 2 for row in ordered]) / np.float32(n))
            low = centre - np.float32(options.sigma_low) * spread
            high = centre + np.float32(options.sigma_high) * spread
            start, stop = _count_beyond(ordered, low, high)
            short = np.flatnonzero(m < n)
            if short.size:
                subset = np.stack([row.reshape(-1)[short] for row in ordered])
                start.reshape(-1)[short], stop.reshape(-1)[short] = _short_bounds(
                    subset, m.reshape(-1)[short], options)
    if weights is None:
        with np.errstate(invalid="ignore", over="ignore"):
            data = _run_statistic(ordered, start, stop, options.method)
    else:
        data, _ = _weighted(cube, _kept_by_rank(cube, clipped, start, stop), weights, options.method)
    return data.astype(np.float32, copy=False), np.maximum(stop - start, 0).astype(np.uint16)


# --- what a combine will cost --------------------------------------------------------------------------
#: Seconds per frame-pixel on the 2-core reference machine (benchmarks/README.md): sorting-network
#: statistics and rejection (compiled kernel, numpy); a plain average or sum; reading rows from a file.
SECONDS_PER_PIXEL = {"compiled": 1.8e-9, "sorted": 6.5e-9, "plain": 1.5e-9, "read": 1.5e-9}


@dataclass
class Estimate:
    seconds: float
    peak_bytes: int

    def __str__(self) -> str:
        return f"about {self.seconds:.1f} s, peak memory about {self.peak_bytes / 2**20:.0f} MB"


def estimate(n_frames: int, ny: int, nx: int, options: CombineOptions = CombineOptions(),
             from_disk: bool = False) -> Estimate:
    """Rough time and peak memory of one combine: stack in memory unless it streams from disk, the
    bands in flight (two threads, two bands queued each, a few working copies), the result and counts."""
    pixels = n_frames * ny * nx
    sorted_work = options.method == "median" or options.reject != "none"
    kind = ("compiled" if _compiled_applies(n_frames, options) else "sorted") if sorted_work else "plain"
    seconds = pixels * SECONDS_PER_PIXEL[kind]
    if from_disk:
        seconds += pixels * SECONDS_PER_PIXEL["read"]
    stack = 0 if from_disk else pixels * 4
    bands = 4 * 4 * band_rows(n_frames, nx) * n_frames * nx * 4
    return Estimate(seconds, stack + bands + ny * nx * (4 + 2))


# --- driving the bands -----------------------------------------------------------------------------
def _check_inputs(arrays: Sequence[np.ndarray], scales) -> tuple[int, int]:
    if len(arrays) == 0:
        raise ValueError("nothing to combine: no frames")
    shapes = {tuple(np.shape(a)) for a in arrays}
    if len(shapes) != 1:
        raise ValueError("frames of different sizes cannot be combined: "
                         + ", ".join(f"{s[1]}x{s[0]}" if len(s) == 2 else str(s) for s in sorted(shapes)))
    shape = shapes.pop()
    if len(shape) != 2:
        raise ValueError(f"frames must be 2-D images, got shape {shape}")
    if scales is not None and len(scales) != len(arrays):
        raise ValueError(f"{len(scales)} scale factors for {len(arrays)} frames")
    return shape  # type: ignore[return-value]


def band_rows(n_frames: int, nx: int) -> int:
    """Rows per band so that one band of the whole stack is about BAND_BYTES."""
    return max(1, BAND_BYTES // max(1, n_frames * nx * 4))


def _read_band(arrays, scales, start: int, stop: int, clip: tuple | None = None,
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows start..stop-1 of every input as one float32 band, scaled; with ``clip`` (float32 limits,
    see ``_clip_limits``) also the mask of values beyond them, compared before scaling."""
    cube = np.empty((len(arrays), stop - start, np.shape(arrays[0])[1]), dtype=np.float32)
    clipped = None if clip is None else np.empty(cube.shape, dtype=bool)
    for index, array in enumerate(arrays):
        if hasattr(array, "read_into"):  # rows of a file, converted straight into the band
            array.read_into(start, stop, cube[index])
        else:
            cube[index] = array[start:stop]  # converts big-endian / integer / memmap rows to float32
        if clipped is not None:
            np.less(cube[index], clip[0], out=clipped[index])
            clipped[index] |= cube[index] > clip[1]
        if scales is not None and scales[index] != 1:
            cube[index] *= np.float32(scales[index])
    return cube, clipped


def iter_combine(arrays: Sequence[np.ndarray], options: CombineOptions = CombineOptions(),
                 scales: Sequence[float] | None = None, weights: Sequence[float] | None = None,
                 observer=None) -> Generator[float, None, CombineResult]:
    """Combine band by band, yielding the fraction done after each band; returns the result.

    ``weights``: one finite number ≥ 0 per frame, not all 0 (see the module notes; a median ignores them).
    ``observer``: called as ``observer(arrays, start, stop)`` from the band's thread after each band is
    combined (e.g. :class:`ccdgui.model.qa.InputSample` keeping a few rows for quality figures); it is
    returned as the result's ``qa``. Closing the generator early stops the work after the bands already
    running.
    """
    options.validate()
    ny, nx = _check_inputs(arrays, scales)
    weights = _frame_weights(weights, len(arrays), options.method)
    clip = _clip_limits(options)
    if scales is not None:  # float32 once: what numpy multiplies by, and the kernel's buffer
        scales = np.asarray(scales, dtype=np.float32)
    out = np.empty((ny, nx), dtype=np.float32)
    count = np.empty((ny, nx), dtype=np.uint16)
    rows = band_rows(len(arrays), nx)
    starts = list(range(0, ny, rows))

    def work(start: int) -> int:
        stop = min(start + rows, ny)
        out[start:stop], count[start:stop] = _reduce_rows(arrays, scales, start, stop, options, weights,
                                                          clip)
        if observer is not None:
            observer(arrays, start, stop)
        return stop

    workers = min(2, os.cpu_count() or 1, len(starts))
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = [pool.submit(work, s) for s in starts[:workers * 2]]
            next_index = len(pending)
            try:
                while pending:
                    stop = pending.pop(0).result()
                    if next_index < len(starts):
                        pending.append(pool.submit(work, starts[next_index]))
                        next_index += 1
                    yield stop / ny
            finally:
                for future in pending:
                    future.cancel()
    finally:  # after the pool has finished its running bands: nothing reads the files any more
        for array in arrays:
            if hasattr(array, "close"):  # files kept open while their bands were read
                array.close()
    return CombineResult(data=out, count=count, qa=observer)


def combine(arrays: Sequence[np.ndarray], options: CombineOptions = CombineOptions(),
            scales: Sequence[float] | None = None, weights: Sequence[float] | None = None) -> CombineResult:
    """Combine ``arrays`` (equal 2-D shapes) into one float32 image plus per-pixel counts."""
    return drive(iter_combine(arrays, options, scales, weights))


# --- explaining one pixel's stack (inspector, quality figures) -------------------------------------
#: Why a value of a stack was left out (codes of :attr:`StackExplanation.reason`).
REASONS = ("kept", "missing (NaN)", "below clip_min", "above clip_max", "sigma low", "sigma high",
           "min/max low", "min/max high")


@dataclass
class StackExplanation:
    """What the combine did with stacks of values: ``values`` (n, m) as combined (scaled), which were
    kept, why each other was rejected (codes into :data:`REASONS`), the sigma-clipping centre and bounds
    of the last pass (NaN without sigma clipping) and the combined value and count of each of m stacks."""

    values: np.ndarray   # float32 (n, m), after scaling
    keep: np.ndarray     # bool (n, m)
    reason: np.ndarray   # uint8 (n, m)
    centre: np.ndarray   # float32 (m,)
    low: np.ndarray      # float32 (m,)
    high: np.ndarray     # float32 (m,)
    result: np.ndarray   # float32 (m,)
    count: np.ndarray    # int (m,)


def explain_stack(values: np.ndarray, options: CombineOptions = CombineOptions(),
                  scales: Sequence[float] | None = None, weights: Sequence[float] | None = None,
                  ) -> StackExplanation:
    """Rejection and result of stacks given as they come from the inputs (``values`` (n, m), n frames,
    before scaling), with the combine's float32 operations: thresholds compared before scaling, then
    scaling, then sigma clipping (astropy semantics) or min/max, then the statistic (sums of the kept
    values in increasing order, as the sorted path adds them; weighted sums in frame order)."""
    options.validate()
    raw = np.array(values, dtype=np.float32, ndmin=2, copy=True)
    n, m = raw.shape
    reason = np.zeros((n, m), dtype=np.uint8)
    reason[~np.isfinite(raw)] = 1
    clip = _clip_limits(options)
    if clip is not None:
        with np.errstate(invalid="ignore"):
            reason[(reason == 0) & (raw < clip[0])] = 2
            reason[(reason == 0) & (raw > clip[1])] = 3
    cube = raw
    if scales is not None:
        factors = np.asarray(scales, dtype=np.float32)
        for index in range(n):
            if factors[index] != 1:
                cube[index] *= factors[index]
    nan = np.full(m, np.nan, dtype=np.float32)
    centre, low, high = nan.copy(), nan.copy(), nan.copy()
    if options.reject == "sigma":
        centre, low, high = _explain_sigma(cube, reason, options)
    elif options.reject == "minmax":
        _explain_minmax(cube, reason, options)
    keep = reason == 0
    general = (options.reject == "sigma" and options.sigma_iterations > 1) or bool((reason == 1).any())
    result, count = _explain_result(cube, keep, options, _frame_weights(weights, n, options.method), general)
    return StackExplanation(cube, keep, reason, centre, low, high, result, count)


def _explain_sigma(cube: np.ndarray, reason: np.ndarray, options: CombineOptions,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sigma clipping as ``_sigma_clip``, marking each rejected value low (4) or high (5); the centre and
    bounds of the last pass."""
    valid = reason == 0
    block = cube[:, None, :]
    for _ in range(options.sigma_iterations):
        median = _masked_median(block, valid[:, None, :])[0]
        centre = median if options.sigma_center == "median" else _masked_mean(block, valid[:, None, :])[0][0]
        if options.sigma_spread == "mad_std":
            spread = _masked_median(np.abs(block - median), valid[:, None, :])[0] * np.float32(MAD_TO_SIGMA)
        else:
            mean, count = _masked_mean(block, valid[:, None, :])
            deviation = np.where(valid, cube - mean[0], np.float32(0))
            with np.errstate(invalid="ignore", divide="ignore"):
                spread = np.sqrt((deviation * deviation).sum(axis=0) / count[0])
        low = centre - np.float32(options.sigma_low) * spread
        high = centre + np.float32(options.sigma_high) * spread
        with np.errstate(invalid="ignore"):
            below, above = valid & (cube < low), valid & (cube > high)
        if not (below.any() or above.any()):
            break
        reason[below], reason[above] = 4, 5
        valid = reason == 0
    return centre.astype(np.float32), low.astype(np.float32), high.astype(np.float32)


def _explain_minmax(cube: np.ndarray, reason: np.ndarray, options: CombineOptions) -> None:
    """Min/max rejection as ``_minmax`` (ties ranked by frame), marking the dropped values low (6) or
    high (7)."""
    valid = reason == 0
    order = np.argsort(np.where(valid, cube, np.float32(np.nan)), axis=0, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(cube.shape[0])[:, None], axis=0)
    count = valid.sum(axis=0)
    reason[valid & (rank < options.minmax_low)] = 6
    reason[valid & (rank >= options.minmax_low) & (rank >= count - options.minmax_high)] = 7


def _explain_result(cube: np.ndarray, keep: np.ndarray, options: CombineOptions,
                    weights: np.ndarray | None, general: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The statistic of the kept values of each stack, with the engine's order of float32 operations
    (``general``: the masked path's, which adds in frame order; a band holding a NaN elsewhere also
    takes that path, so an average may then differ from the master in its last bit)."""
    count = keep.sum(axis=0)
    if general and options.method != "median" and weights is None:
        data, _ = _masked_mean(cube[:, None, :], keep[:, None, :])
        if options.method == "sum":
            data = np.where(keep, cube, np.float32(0)).sum(axis=0, dtype=np.float32)[None]
        data = np.asarray(data[0], dtype=np.float32)
        data[count == 0] = np.nan
        return data, count
    if options.method == "median":
        ordered, _ = _sorted_with_count(cube, keep)
        return _median_of_sorted(ordered, count), count
    if weights is not None:
        data, _ = _weighted(cube, keep, weights, options.method)
        return data.astype(np.float32), count
    ordered = np.sort(np.where(keep, cube, np.float32(np.inf)), axis=0)
    total = np.zeros(cube.shape[1], dtype=np.float32)
    for row in ordered:
        total += np.where(np.isfinite(row), row, np.float32(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        data = (total / count).astype(np.float32) if options.method == "average" else total
    data = np.asarray(data, dtype=np.float32)
    data[count == 0] = np.nan
    return data, count
