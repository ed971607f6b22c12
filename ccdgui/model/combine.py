"""Stacking engine: average / median / sum with optional rejection and per-frame scaling.

Frames are scaled *before* rejection (ccdproc rejects on unscaled frames, which throws away whole frames
when flat levels differ). Work is done in row bands that fit in cache: each band is read once from each
input (which may be a memmap or a big-endian / integer array), converted to native float32, scaled,
rejected and reduced, on two threads. Memory beyond the output is a few bands, whatever the frame count.

NaN in an input is a missing pixel. A pixel left with no value gets NaN and count 0.
Sum follows ccdproc: the plain sum of the values kept (not rescaled for rejected ones).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

MAD_TO_SIGMA = 1.482602218505602  # 1 / Φ⁻¹(3/4), as astropy.stats.mad_std
BAND_BYTES = 8 * 1024 * 1024     # one band of the whole stack (float32); larger amortises numpy calls
METHODS = ("average", "median", "sum")
REJECTIONS = ("none", "sigma", "minmax")


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


@dataclass
class CombineResult:
    data: np.ndarray   # float32 (ny, nx)
    count: np.ndarray  # uint16 (ny, nx): frames used per pixel


# --- per-frame scale factors -----------------------------------------------------------------------------
def _finite_stat(array: np.ndarray, stat) -> float:
    data = np.asarray(array, dtype=np.float32)
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        raise ValueError("cannot scale a frame with no finite pixel")
    value = float(stat(finite))
    if value == 0 or not np.isfinite(value):
        raise ValueError(f"cannot scale by the inverse of {value}")
    return value


def inverse_median_scales(arrays: Sequence[np.ndarray]) -> list[float]:
    """1 / median of each frame (finite pixels), e.g. to bring flats to a common level."""
    return [1.0 / _finite_stat(a, np.median) for a in arrays]


def inverse_mean_scales(arrays: Sequence[np.ndarray]) -> list[float]:
    """1 / mean of each frame (finite pixels)."""
    return [1.0 / _finite_stat(a, lambda x: x.mean(dtype=np.float64)) for a in arrays]


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


def _reduce_band(cube: np.ndarray, options: CombineOptions) -> tuple[np.ndarray, np.ndarray]:
    if np.isfinite(cube).all() and (options.reject != "sigma" or options.sigma_iterations == 1):
        return _reduce_sorted_band(cube, options)
    return _reduce_masked_band(cube, options)


def _reduce_masked_band(cube: np.ndarray, options: CombineOptions) -> tuple[np.ndarray, np.ndarray]:
    """The general path: any NaN, any number of clipping passes."""
    valid = np.isfinite(cube)
    if options.reject == "sigma":
        valid = _sigma_clip(cube, valid, options)
    elif options.reject == "minmax":
        valid = _minmax(cube, valid, options)
    if options.method == "median":
        sorted_cube, count = _sorted_with_count(cube, valid)
        data = _median_of_sorted(sorted_cube, count)
    else:
        data, count = _masked_mean(cube, valid)
        if options.method == "sum":
            data = np.where(valid, cube, np.float32(0)).sum(axis=0, dtype=np.float32)
            data[count == 0] = np.nan
    return data.astype(np.float32, copy=False), count.astype(np.uint16)


# --- the fast path: one sorting network per band ---------------------------------------------------
@functools.lru_cache(maxsize=64)
def sorting_network(n: int) -> tuple[tuple[int, int], ...]:
    """Batcher's odd-even merge sort comparators for ``n`` inputs (pairs i < j: put min at i)."""
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple((i, j) for i, j in pairs if j < n)  # comparators with padding (+inf) never swap


def _sort_frames(cube: np.ndarray) -> np.ndarray:
    """The stack sorted along the frame axis (finite values only), by a sorting network of
    element-wise min/max over whole band rows: vectorised, and cache-friendly for a band."""
    n = cube.shape[0]
    if n > 64:
        return np.sort(cube, axis=0)
    rows = [cube[i].copy() for i in range(n)]
    spare = np.empty_like(rows[0])
    for i, j in sorting_network(n):
        np.minimum(rows[i], rows[j], out=spare)
        np.maximum(rows[i], rows[j], out=rows[j])
        rows[i], spare = spare, rows[i]
    return np.stack(rows)


def _run_statistic(sorted_cube: np.ndarray, start: np.ndarray, stop: np.ndarray, method: str,
                   ) -> np.ndarray:
    """Average, sum or median of sorted values start <= index < stop of every pixel (NaN if empty)."""
    count = stop - start
    empty = count <= 0
    if method == "median":
        safe = np.maximum(count, 1)
        low = np.take_along_axis(sorted_cube, (start + (safe - 1) // 2)[None], axis=0)[0]
        high = np.take_along_axis(sorted_cube, (start + safe // 2)[None], axis=0)[0]
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


def _reduce_sorted_band(cube: np.ndarray, options: CombineOptions) -> tuple[np.ndarray, np.ndarray]:
    """All values finite: sort once; a sigma-clip or min/max rejection keeps a contiguous run of the
    sorted values (bounds are one interval), so every statistic reads that run."""
    n = cube.shape[0]
    needs_sort = options.method == "median" or options.reject != "none"
    shape = cube.shape[1:]
    start = np.zeros(shape, dtype=np.intp)
    stop = np.full(shape, n, dtype=np.intp)
    if not needs_sort:
        data = cube.sum(axis=0, dtype=np.float32)
        return (data / np.float32(n) if options.method == "average" else data), stop.astype(np.uint16)
    ordered = _sort_frames(cube)
    if options.reject == "minmax":
        start[...] = min(options.minmax_low, n)
        stop[...] = max(n - options.minmax_high, 0)
    elif options.reject == "sigma":
        median = (ordered[(n - 1) // 2] + ordered[n // 2]) * np.float32(0.5)
        if options.sigma_center == "median":
            centre = median
        else:
            centre = ordered.sum(axis=0, dtype=np.float32) / np.float32(n)
        if options.sigma_spread == "mad_std":
            deviation = _sort_frames(np.abs(ordered - median))
            spread = (deviation[(n - 1) // 2] + deviation[n // 2]) * np.float32(0.5 * MAD_TO_SIGMA)
        else:
            mean = ordered.sum(axis=0, dtype=np.float32) / np.float32(n)
            spread = np.sqrt(((ordered - mean) ** 2).sum(axis=0, dtype=np.float32) / np.float32(n))
        low = centre - np.float32(options.sigma_low) * spread
        high = centre + np.float32(options.sigma_high) * spread
        start = (ordered < low).sum(axis=0)
        stop = n - (ordered > high).sum(axis=0)
    data = _run_statistic(ordered, start, stop, options.method)
    return data.astype(np.float32, copy=False), np.maximum(stop - start, 0).astype(np.uint16)


# --- what a combine will cost --------------------------------------------------------------------------
#: Seconds per frame-pixel on the 2-core reference machine (benchmarks/README.md): sorting-network
#: statistics and rejection; a plain average or sum; reading rows from a file.
SECONDS_PER_PIXEL = {"sorted": 6.5e-9, "plain": 1.5e-9, "read": 1.5e-9}


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
    seconds = pixels * SECONDS_PER_PIXEL["sorted" if sorted_work else "plain"]
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


def _read_band(arrays, scales, start: int, stop: int) -> np.ndarray:
    cube = np.empty((len(arrays), stop - start, np.shape(arrays[0])[1]), dtype=np.float32)
    for index, array in enumerate(arrays):
        cube[index] = array[start:stop]  # converts big-endian / integer / memmap rows to float32
        if scales is not None and scales[index] != 1:
            cube[index] *= np.float32(scales[index])
    return cube


def iter_combine(arrays: Sequence[np.ndarray], options: CombineOptions = CombineOptions(),
                 scales: Sequence[float] | None = None,
                 ) -> Generator[float, None, CombineResult]:
    """Combine band by band, yielding the fraction done after each band; returns the result.

    Closing the generator early stops the work after the bands already running.
    """
    options.validate()
    ny, nx = _check_inputs(arrays, scales)
    out = np.empty((ny, nx), dtype=np.float32)
    count = np.empty((ny, nx), dtype=np.uint16)
    rows = band_rows(len(arrays), nx)
    starts = list(range(0, ny, rows))

    def work(start: int) -> int:
        stop = min(start + rows, ny)
        out[start:stop], count[start:stop] = _reduce_band(_read_band(arrays, scales, start, stop), options)
        return stop

    workers = min(2, os.cpu_count() or 1, len(starts))
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
    return CombineResult(data=out, count=count)


def combine(arrays: Sequence[np.ndarray], options: CombineOptions = CombineOptions(),
            scales: Sequence[float] | None = None) -> CombineResult:
    """Combine ``arrays`` (equal 2-D shapes) into one float32 image plus per-pixel counts."""
    generator = iter_combine(arrays, options, scales)
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value
