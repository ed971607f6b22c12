"""Display maths, no widgets: intervals, stretches, histograms, all from a subsample of the frame.

The widgets turn these numbers into pixels: levels (lo, hi) for the image item and a 256-entry ramp
(the stretch applied to 0…1) that indexes the colour map, so a change of stretch or level never touches
the frame's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy import visualization as vis
from psygnal import evented

INTERVALS = ("percentile", "zscale", "minmax")
STRETCHES = ("linear", "sqrt", "log", "asinh")
COLOUR_MAPS = ("grey", "viridis", "magma", "inferno")
SUBSAMPLE_PIXELS = 250_000
LUT_SIZE = 256  # ≤ 256 keeps pyqtgraph on its fast path


@evented
@dataclass
class DisplayState:
    """How frames are shown; one instance is shared by the image views and the toolbar."""

    interval: str = "percentile"     # percentile | zscale | minmax
    percentile_low: float = 0.5      # %, lower end of the percentile interval
    percentile_high: float = 99.9    # %, upper end (the guide's show_image uses 99.9)
    stretch: str = "linear"          # linear | sqrt | log | asinh
    colour_map: str = "grey"
    link_levels: bool = False        # raw and calibrated views share levels


def subsample(data: np.ndarray, max_pixels: int = SUBSAMPLE_PIXELS) -> np.ndarray:
    """Finite pixels from a regular grid over the whole frame, at most about ``max_pixels`` of them."""
    ny, nx = data.shape
    step = max(1, int(np.ceil(np.sqrt(ny * nx / max_pixels))))
    sample = np.asarray(data[step // 2::step, step // 2::step], dtype=np.float32).ravel()
    return sample[np.isfinite(sample)]


def interval_limits(data: np.ndarray, state: DisplayState) -> tuple[float, float]:
    """(lo, hi) display levels for a frame under the state's interval, from a subsample."""
    sample = subsample(data)
    if sample.size == 0:
        return 0.0, 1.0
    if state.interval == "minmax":
        interval = vis.MinMaxInterval()
    elif state.interval == "zscale":
        interval = vis.ZScaleInterval()
    elif state.interval == "percentile":
        interval = vis.AsymmetricPercentileInterval(state.percentile_low, state.percentile_high)
    else:
        raise ValueError(f"unknown interval {state.interval!r} (use {', '.join(INTERVALS)})")
    lo, hi = (float(v) for v in interval.get_limits(sample))
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def stretch_ramp(stretch: str, size: int = LUT_SIZE) -> np.ndarray:
    """The stretch applied to ``size`` evenly spaced values in 0…1: indexes a colour table."""
    stretches = {"linear": vis.LinearStretch(), "sqrt": vis.SqrtStretch(), "log": vis.LogStretch(),
                 "asinh": vis.AsinhStretch()}
    if stretch not in stretches:
        raise ValueError(f"unknown stretch {stretch!r} (use {', '.join(STRETCHES)})")
    ramp = stretches[stretch](np.linspace(0.0, 1.0, size), clip=True)
    return np.clip(ramp, 0.0, 1.0)


def lut_indices(stretch: str, size: int = LUT_SIZE) -> np.ndarray:
    """Indices into a ``size``-entry colour table realising the stretch (uint8 for size 256)."""
    return np.round(stretch_ramp(stretch, size) * (size - 1)).astype(np.intp)


@dataclass
class Histogram:
    edges: np.ndarray   # bin edges, float64
    counts: np.ndarray  # pixels per bin, scaled to the whole frame


def histogram(data: np.ndarray, lo: float | None = None, hi: float | None = None,
              max_bins: int = 400) -> Histogram:
    """Freedman–Diaconis histogram of a subsample, over [lo, hi] (default 0.1–99.9 percentiles),
    counts scaled to the whole frame's pixel count."""
    sample = subsample(data)
    if sample.size == 0:
        return Histogram(np.array([0.0, 1.0]), np.array([0.0]))
    if lo is None or hi is None:
        lo, hi = (float(v) for v in np.percentile(sample, [0.1, 99.9]))
    if not hi > lo:
        hi = lo + 1.0
    inside = sample[(sample >= lo) & (sample <= hi)]
    q25, q75 = np.percentile(inside, [25, 75]) if inside.size else (lo, hi)
    width = 2 * (q75 - q25) / max(inside.size, 1) ** (1 / 3)
    bins = int(np.clip(np.ceil((hi - lo) / width), 10, max_bins)) if width > 0 else 50
    counts, edges = np.histogram(inside, bins=bins, range=(lo, hi))
    scale = data.size / sample.size
    return Histogram(edges, counts * scale)


def common_range(frames: list[np.ndarray]) -> tuple[float, float]:
    """A value range covering the 0.1–99.9 percentiles of every frame: one axis for their histograms."""
    ranges = [np.percentile(sample, [0.1, 99.9]) for sample in (subsample(f, 50_000) for f in frames)
              if sample.size]
    if not ranges:
        return 0.0, 1.0
    return float(min(r[0] for r in ranges)), float(max(r[1] for r in ranges))


def quick_median(data: np.ndarray) -> float:
    """Median of a subsample: what the library shows for every frame, in a millisecond."""
    sample = subsample(data, 40_000)
    return float(np.median(sample)) if sample.size else float("nan")


def robust_sigma(data: np.ndarray) -> float:
    """MAD-based standard deviation of a subsample (what the status bar and tests quote)."""
    sample = subsample(data)
    if sample.size == 0:
        return float("nan")
    return float(1.482602218505602 * np.median(np.abs(sample - np.median(sample))))


def displayable(data: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A float32 array with no NaN/Inf (they slow rendering ~20×) and the mask of replaced pixels."""
    data = np.asarray(data, dtype=np.float32)
    bad = ~np.isfinite(data)
    if not bad.any():
        return data, None
    filled = data.copy()
    filled[bad] = np.float32(quick_median(data)) if np.isfinite(data).any() else 0.0
    return filled, bad
