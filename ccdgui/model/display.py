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
SUBSAMPLE_PIXELS = 100_000
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
    debayer: bool = True             # show one-shot-colour frames (BAYERPAT) in colour


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
    if inside.size and is_integer_valued(inside):
        edges = integer_edges(lo, hi, width, max_bins)
        counts, edges = np.histogram(inside, bins=edges)
        return Histogram(edges, counts * (data.size / sample.size))
    bins = int(np.clip(np.ceil((hi - lo) / width), 10, max_bins)) if width > 0 else 50
    counts, edges = np.histogram(inside, bins=bins, range=(lo, hi))
    scale = data.size / sample.size
    return Histogram(edges, counts * scale)


def is_integer_valued(sample: np.ndarray) -> bool:
    """Whether every value is a whole number (raw ADU, also when read as float through BZERO)."""
    return bool(np.all(sample == np.round(sample)))


def integer_edges(lo: float, hi: float, width: float, max_bins: int = 400) -> np.ndarray:
    """Bin edges at half-integers covering [lo, hi], each bin a whole number of values wide (at least
    one, at least ``width``, few enough for ``max_bins``): integer data gives no comb of empty bins."""
    first, last = np.floor(lo), np.ceil(hi)
    span = last - first + 1
    step = max(1.0, np.ceil(width) if np.isfinite(width) else 1.0, np.ceil(span / max_bins))
    count = int(np.ceil(span / step))
    return first - 0.5 + step * np.arange(count + 1)


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


# --- what to draw: a pyramid of binned copies and the window of it that the screen shows -------------
#: The view never draws more pixels than this many times the screen's (a margin for panning).
WINDOW_MARGIN = 0.25


def bin2(data: np.ndarray) -> np.ndarray:
    """Mean of 2 × 2 blocks (a trailing odd row/column is dropped), float32, as strided adds."""
    ny, nx = (data.shape[0] // 2) * 2, (data.shape[1] // 2) * 2
    out = data[0:ny:2, 0:nx:2].astype(np.float32, copy=True)
    out += data[1:ny:2, 0:nx:2]
    out += data[0:ny:2, 1:nx:2]
    out += data[1:ny:2, 1:nx:2]
    out *= np.float32(0.25)
    return out


class Pyramid:
    """A frame and its 2×, 4×, … block means, made on first use. Level ``k`` has pixels ``2**k`` frame
    pixels wide; drawing the level whose pixels are about one screen pixel keeps the cost of a redraw
    set by the screen, not by the frame (DS9's *block*, chosen automatically)."""

    def __init__(self, data: np.ndarray, smallest: int = 256) -> None:
        self.levels: list[np.ndarray] = [data]
        self.smallest = smallest

    def level(self, k: int) -> np.ndarray:
        while len(self.levels) <= k and min(self.levels[-1].shape[:2]) >= 2 * self.smallest:
            self.levels.append(bin2(self.levels[-1]))
        return self.levels[min(k, len(self.levels) - 1)]

    def level_for(self, frame_pixels_per_screen_pixel: float) -> int:
        """The coarsest level whose pixels are no bigger than a screen pixel."""
        if not np.isfinite(frame_pixels_per_screen_pixel) or frame_pixels_per_screen_pixel < 2:
            return 0
        wanted = int(np.floor(np.log2(frame_pixels_per_screen_pixel)))
        self.level(wanted)
        return min(wanted, len(self.levels) - 1)


def visible_window(shape: tuple[int, int], factor: int, x0: float, x1: float, y0: float, y1: float,
                   margin: float = WINDOW_MARGIN) -> tuple[slice, slice]:
    """Rows and columns of a level (pixels ``factor`` frame pixels wide) that cover the frame-pixel
    rectangle x0..x1, y0..y1 plus ``margin`` of its size on each side, clipped to the level."""
    ny, nx = shape
    pad_x, pad_y = (x1 - x0) * margin, (y1 - y0) * margin
    cols = (max(0, int(np.floor((x0 - pad_x) / factor))), min(nx, int(np.ceil((x1 + pad_x) / factor))))
    rows = (max(0, int(np.floor((y0 - pad_y) / factor))), min(ny, int(np.ceil((y1 + pad_y) / factor))))
    if cols[0] >= cols[1] or rows[0] >= rows[1]:
        return slice(0, 0), slice(0, 0)
    return slice(*rows), slice(*cols)


# --- one-shot-colour frames -----------------------------------------------------------------------------
BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")


def bayer_pattern(header) -> str | None:
    """The 2 × 2 colour pattern of a one-shot-colour frame, shifted by XBAYROFF/YBAYROFF, or None.
    The pattern starts at the first pixel stored (array row 0, column 0)."""
    pattern = str(header.get("BAYERPAT", "")).strip().upper()
    if pattern not in BAYER_PATTERNS:
        return None
    cells = [pattern[0:2], pattern[2:4]]
    dx, dy = int(header.get("XBAYROFF", 0) or 0) % 2, int(header.get("YBAYROFF", 0) or 0) % 2
    if dy:
        cells = cells[::-1]
    if dx:
        cells = [row[::-1] for row in cells]
    return "".join(cells)


def debayer(data: np.ndarray, pattern: str) -> np.ndarray:
    """Colour by superpixel: each 2 × 2 cell becomes one RGB pixel (R, mean of the two G, B), so the
    result is (ny // 2, nx // 2, 3) float32 with no interpolated values: for looking, not measuring."""
    if pattern not in BAYER_PATTERNS:
        raise ValueError(f"unknown Bayer pattern {pattern!r} (use {', '.join(BAYER_PATTERNS)})")
    ny, nx = (data.shape[0] // 2) * 2, (data.shape[1] // 2) * 2
    planes = {"R": [], "G": [], "B": []}
    for index, colour in enumerate(pattern):
        dy, dx = divmod(index, 2)
        planes[colour].append(data[dy:ny:2, dx:nx:2])
    green = (planes["G"][0] + planes["G"][1]) * np.float32(0.5)
    return np.stack([planes["R"][0], green, planes["B"][0]], axis=-1).astype(np.float32, copy=False)


def balanced(rgb: np.ndarray) -> np.ndarray:
    """A display-only colour balance: each channel's background (median) and noise (MAD) brought to the
    green channel's, so an unbalanced sensor's sky looks grey and one set of levels fits all three."""
    out = np.empty_like(rgb, dtype=np.float32)
    stats = []
    for channel in range(3):
        sample = subsample(rgb[..., channel])
        median = float(np.median(sample)) if sample.size else 0.0
        spread = float(np.median(np.abs(sample - median))) if sample.size else 1.0
        stats.append((median, spread if spread > 0 else 1.0))
    ref_median, ref_spread = stats[1]
    for channel, (median, spread) in enumerate(stats):
        gain = np.float32(ref_spread / spread)
        out[..., channel] = (rgb[..., channel] - np.float32(median)) * gain + np.float32(ref_median)
    return out


def symmetric_limits(data: np.ndarray, state: DisplayState) -> tuple[float, float]:
    """Levels for a difference: symmetric about zero, out to the larger end of the interval's limits."""
    low, high = interval_limits(data, state)
    reach = max(abs(low), abs(high)) or 1.0
    return -reach, reach
