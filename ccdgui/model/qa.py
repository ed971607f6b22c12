"""Quality figures of a master, measured while it is built (no second pass over its inputs).

While a stack is combined band by band, :class:`InputSample` keeps a few evenly spaced rows of every
prepared input (chosen by row number, so a cluster's bands keep the same rows as the local engine); when
the master is finished, :func:`measure` turns those rows and the master itself into figures:

- bias: read noise from pairs of biases, σ(b₁ − b₂)/√2, in ADU and in e⁻ with the header's gain;
- dark: dark current (median, e⁻/s/px) and the number of hot pixels above ccdgui's hot-pixel limit;
- flat: level, vignetting (smallest / largest of the large-scale illumination), dust spots, and the
  gain by photon transfer from pairs of flats, g = (F₁ + F₂) / (σ²(F₁ − F₂) − 2σ²_read), when the
  night's master bias measured the read noise;
- every master: the fraction of each frame's values the combine rejected, and frames that stand out
  (a light leak, a satellite in a flat) flagged by name with the reason.

Figures go into the master's header as ``QA…`` keywords (with comments) and into recipe.json; warnings
say when a figure is far from the header's value or from a previous master's.
"""

from __future__ import annotations

import math
import re
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .combine import CombineOptions, _read_band, explain_stack, median_of, robust_sigma

SAMPLE_PIXELS = 16384         # of each input, in whole rows, kept for input figures
SAMPLE_MIN_ROWS, SAMPLE_MAX_ROWS = 8, 128
WARN_TOLERANCE = 0.25         # a figure this far (relative) from the header's or previous value warns
MIN_PHOTON_SHARE = 0.2  # photon noise share of flat differences below which no gain is measured
OUTLIER_REJECTED = 0.005      # a frame with more of its values rejected than this …
OUTLIER_FACTOR = 5.0          # … and this many times the stack's typical fraction is flagged
OUTLIER_LEVEL_SIGMA = 1.0     # a frame whose level is off by this many pixel σ is flagged
HISTORY_PREFIX = "QA "


# --- the rows kept while combining -----------------------------------------------------------------
def sample_rows(ny: int, nx: int = 2048) -> np.ndarray:
    """Row numbers kept for quality figures: about 16 384 pixels in whole rows (8 to 128 rows), evenly
    spaced."""
    want = min(ny, max(SAMPLE_MIN_ROWS, min(SAMPLE_MAX_ROWS, round(SAMPLE_PIXELS / max(nx, 1)))))
    return np.unique(np.linspace(0, ny - 1, want).round().astype(int)) if ny else np.zeros(0, int)


class InputSample:
    """A combine observer (see ``combine.iter_combine``): keeps the sampled rows of every input as read
    for the combine (prepared, before scaling). Thread-safe; merges band samples from several workers."""

    def __init__(self, ny: int, nx: int = 2048) -> None:
        self.ny, self.nx = int(ny), int(nx)
        self.rows: dict[int, np.ndarray] = {}   # row number -> (n_frames, nx) float32
        self.read_noise_adu: float | None = None  # of the night's master bias, for photon transfer
        self.scales: list[float] | None = None     # the combine's per-frame scales, if any
        self._wanted = set(sample_rows(self.ny, self.nx).tolist())
        self._lock = threading.Lock()

    def __call__(self, arrays: Sequence, start: int, stop: int) -> None:
        for row in sorted(self._wanted.intersection(range(start, stop))):
            cube, _ = _read_band(arrays, None, row, row + 1)
            with self._lock:
                self.rows[row] = cube[:, 0, :]

    observe = __call__

    def __getstate__(self) -> dict:  # sent between cluster workers: everything but the lock
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @classmethod
    def merged(cls, samples: Iterable[InputSample | None], masters: Iterable = ()) -> InputSample | None:
        """One sample from the bands' samples (None if there are none), with the read noise of a master
        bias among ``masters`` (frames whose header has QARDNADU)."""
        samples = [s for s in samples if s is not None]
        if not samples:
            return None
        merged = cls(samples[0].ny, samples[0].nx)
        merged.scales = samples[0].scales
        for sample in samples:
            merged.rows.update(sample.rows)
        merged.read_noise_adu = bias_read_noise(masters)
        return merged

    def cube(self) -> np.ndarray:
        """The kept rows, in row order, as (n_frames, n_pixels) float32."""
        if not self.rows:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate([self.rows[r] for r in sorted(self.rows)], axis=1)


def bias_read_noise(masters: Iterable) -> float | None:
    """QARDNADU of the first master bias among frames (or headers) that has it."""
    for item in masters:
        header = getattr(item, "header", item)
        try:
            if str(header.get("IMAGETYP", "")).upper().strip() == "MASTER BIAS" and "QARDNADU" in header:
                return float(header["QARDNADU"])
        except (TypeError, ValueError, AttributeError):
            continue
    return None


# --- figures ------------------------------------------------------------------------------------------
@dataclass
class Figure:
    keyword: str          # FITS keyword (QA…)
    label: str            # for people
    value: float | int | str | None
    unit: str = ""
    comment: str = ""     # FITS comment

    def text(self) -> str:
        if self.value is None:
            return "—"
        if self.keyword in ("QAREJECT", "QAREJMAX") and isinstance(self.value, float):
            return f"{self.value:.3%}"
        if isinstance(self.value, float):
            return f"{self.value:.4g}" + (f" {self.unit}" if self.unit else "")
        return f"{self.value}" + (f" {self.unit}" if self.unit else "")


@dataclass
class FrameFigure:
    name: str
    rejected: float            # fraction of its sampled values the combine rejected
    level: float               # median of its sampled values as combined (scaled)
    flagged: str = ""          # why it stands out, or ""


@dataclass
class MasterQA:
    master: str
    kind: str                  # "master bias" …
    figures: list[Figure] = field(default_factory=list)
    frames: list[FrameFigure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def value(self, keyword: str):
        return next((f.value for f in self.figures if f.keyword == keyword), None)

    def flagged(self) -> list[FrameFigure]:
        return [f for f in self.frames if f.flagged]

    def to_dict(self) -> dict:
        """JSON-ready (NaN becomes None)."""
        return {"master": self.master, "kind": self.kind,
                "figures": {f.keyword: {"label": f.label, "value": _json(f.value), "unit": f.unit}
                            for f in self.figures},
                "frames": [{"name": f.name, "rejected": _json(f.rejected), "level": _json(f.level),
                            "flagged": f.flagged} for f in self.frames],
                "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, data: Mapping) -> MasterQA:
        figures = [Figure(k, v.get("label", k), v.get("value"), v.get("unit", ""))
                   for k, v in dict(data.get("figures", {})).items()]
        frames = [FrameFigure(f["name"], _nan(f.get("rejected")), _nan(f.get("level")), f.get("flagged", ""))
                  for f in data.get("frames", [])]
        return cls(str(data.get("master", "")), str(data.get("kind", "")), figures, frames,
                   list(data.get("warnings", [])))

    def write_header(self, header) -> None:
        """QA… keywords with comments; HISTORY lines: one per input frame (rejected fraction, level and
        why it was flagged, if it was) and one per warning."""
        for figure in self.figures:
            finite = not isinstance(figure.value, float) or math.isfinite(figure.value)
            if figure.value is not None and finite:
                header[figure.keyword] = (figure.value, ascii_text(figure.comment)[:46])
        for frame in self.frames:
            flagged = f"; flagged: {frame.flagged}" if frame.flagged else ""
            _history(header, f"{HISTORY_PREFIX}frame {frame.name}: rejected {frame.rejected:.4%}, "
                             f"level {frame.level:.6g}{flagged}")
        for warning in self.warnings:
            _history(header, f"{HISTORY_PREFIX}warning: {warning}")

    @classmethod
    def from_header(cls, header, name: str = "") -> MasterQA:
        """The figures a master's header holds (frames flagged and warnings from its HISTORY)."""
        figures = [Figure(key, LABELS.get(key, (key, ""))[0], header[key], LABELS.get(key, ("", ""))[1],
                          header.comments[key]) for key in header if key.startswith("QA") and key != "QA"]
        qa = cls(name, str(header.get("IMAGETYP", "")).lower(), figures)
        for line in _history_lines(header):
            found = _FRAME_LINE.match(line)
            if found:
                qa.frames.append(FrameFigure(found["name"], round(float(found["rejected"]) / 100, 10),
                                             float(found["level"]), found["flagged"] or ""))
            elif line.startswith(HISTORY_PREFIX + "warning: "):
                qa.warnings.append(line[len(HISTORY_PREFIX + "warning: "):])
        return qa


def _nan(value) -> float:
    return math.nan if value is None else float(value)


def _json(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


LABELS = {  # keyword -> (label, unit)
    "QARDNADU": ("read noise", "ADU"), "QARDNOIS": ("read noise", "e⁻"), "QAGAIN": ("gain used", "e⁻/ADU"),
    "QAGAINPT": ("gain (photon transfer)", "e⁻/ADU"), "QADARK": ("dark current (median)", "e⁻/s/px"),
    "QADARKA": ("dark current (median)", "ADU/s/px"), "QAHOTPIX": ("hot pixels", ""),
    "QAHOTLIM": ("hot-pixel limit", "e⁻/s"), "QAFLAT": ("flat level", "ADU"),
    "QAVIGNET": ("vignetting (min/max)", ""), "QADUST": ("dust spots", ""),
    "QAREJECT": ("values rejected", ""), "QAREJMAX": ("worst frame rejected", ""),
    "QANFLAG": ("frames flagged", ""), "QASAMPLE": ("rows sampled", ""), "QANOISE": ("pixel noise", "ADU"),
}


_FRAME_LINE = re.compile(r"^QA frame (?P<name>.+): rejected (?P<rejected>[-+0-9.eE]+|nan)%, "
                         r"level (?P<level>[-+0-9.eEnaif]+)(?:; flagged: (?P<flagged>.*))?$")


_ASCII = str.maketrans({"σ": "sigma", "⁻": "-", "−": "-", "×": "x", "…": "...", "√": "sqrt", "≥": ">=",
                        "≤": "<="})


def ascii_text(text: str) -> str:
    """Text a FITS card can hold: σ → sigma, e⁻ → e-, anything else not ASCII → ?."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text.translate(_ASCII))


def _history(header, text: str) -> None:
    from .frame import add_history

    add_history(header, ascii_text(text))


def _history_lines(header) -> list[str]:
    """QA HISTORY lines, with the pieces add_history split them into rejoined (it wraps greedily at 70
    characters: a piece continues the previous one when its first word would not have fitted there)."""
    lines: list[str] = []
    previous = ""
    for card in header.get("HISTORY", []) if "HISTORY" in header else []:
        text = str(card)
        first_word = text.split(" ", 1)[0]
        if lines and previous and len(previous) + 1 + len(first_word) > 70 \
                and not text.startswith(HISTORY_PREFIX):
            lines[-1] += " " + text
        else:
            lines.append(text)
        previous = text
    return [line for line in lines if line.startswith(HISTORY_PREFIX)]


def _figure(keyword: str, value, comment: str) -> Figure:
    label, unit = LABELS[keyword]
    if isinstance(value, float | np.floating):
        value = float(f"{float(value):.6g}") if math.isfinite(value) else None
    elif isinstance(value, np.integer):
        value = int(value)
    return Figure(keyword, label, value, unit, comment)


def header_gain(header) -> float | None:
    """GAIN (else EGAIN) of a header when a positive finite number, else None."""
    for key in ("GAIN", "EGAIN"):
        try:
            value = float(header.get(key))
        except (TypeError, ValueError):
            continue
        if math.isfinite(value) and value > 0:
            return value
    return None


def _header_number(header, key: str) -> float | None:
    try:
        value = float(header.get(key))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


# --- input figures from the sample ---------------------------------------------------------------------
def pair_difference_sigma(cube: np.ndarray) -> float:
    """Robust σ of (frame 2i − frame 2i+1) over all pairs, divided by √2: one frame's pixel noise with
    fixed patterns cancelled. NaN with fewer than two frames."""
    if cube.shape[0] < 2 or cube.shape[1] == 0:
        return math.nan
    differences = [cube[i] - cube[i + 1] for i in range(0, cube.shape[0] - 1, 2)]
    return robust_sigma(np.concatenate(differences)) / math.sqrt(2)


def photon_transfer_gain(cube: np.ndarray, read_noise_adu: float) -> tuple[float, float]:
    """Gain (e⁻/ADU) from pairs of flats: (F₁ + F₂) / (σ²(F₁ − r·F₂) − 2σ²_read) with r = F₁/F₂ so the
    levels agree, the median over pairs; and the photon share of the difference's variance (a gain is
    poorly determined when read noise dominates). NaN when it cannot be had."""
    gains, shares = [], []
    for i in range(0, cube.shape[0] - 1, 2):
        a, b = cube[i].astype(np.float64), cube[i + 1].astype(np.float64)
        level_a, level_b = np.nanmedian(a), np.nanmedian(b)
        if not (level_a > 0 and level_b > 0):
            continue
        variance = robust_sigma(a - (level_a / level_b) * b) ** 2
        photon = variance - 2 * read_noise_adu ** 2
        if photon > 0:
            gains.append((level_a + level_b) / photon)
            shares.append(photon / variance)
    if not gains:
        return math.nan, math.nan
    return float(np.median(gains)), float(np.median(shares))


def frame_figures(cube: np.ndarray, names: Sequence[str], options: CombineOptions,
                  scales: Sequence[float] | None = None) -> list[FrameFigure]:
    """Per frame: the fraction of its sampled values the combine rejects (as the combine would, see
    ``combine.explain_stack``) and its level; frames standing out are flagged with the reason."""
    n = cube.shape[0]
    if n == 0 or cube.shape[1] == 0:
        return []
    explained = explain_stack(cube, options, scales)
    present = np.isfinite(cube).sum(axis=1)
    rejected = ((explained.reason >= 2).sum(axis=1) / np.maximum(present, 1)).astype(float)
    levels = np.array([np.nanmedian(row) if np.isfinite(row).any() else np.nan for row in explained.values])
    pixel_sigma = float(np.nanmedian([robust_sigma(row) for row in explained.values]))
    typical_rejected = float(np.median(rejected))
    typical_level = float(np.nanmedian(levels))
    figures = []
    for index in range(n):
        why = []
        if n >= 3 and rejected[index] > max(OUTLIER_REJECTED, OUTLIER_FACTOR * typical_rejected):
            why.append(f"{rejected[index]:.1%} of its values rejected (typical {typical_rejected:.2%})")
        offset = levels[index] - typical_level
        if n >= 3 and pixel_sigma > 0 and abs(offset) > OUTLIER_LEVEL_SIGMA * pixel_sigma:
            why.append(f"level {offset:+.4g} from the stack's ({offset / pixel_sigma:+.1f} sigma per pixel)")
        figures.append(FrameFigure(str(names[index]) if index < len(names) else f"frame {index + 1}",
                                   float(rejected[index]), float(levels[index]), "; ".join(why)))
    return figures


# --- master figures ------------------------------------------------------------------------------------
def dark_figures(master: np.ndarray, exptime: float, gain: float | None) -> list[Figure]:
    """Median dark current (e⁻/s/px with a gain, else ADU/s/px) and hot pixels above ccdgui's limit."""
    from .masks import hot_pixel_threshold

    data = np.asarray(master, dtype=np.float32)
    finite = data[np.isfinite(data)]
    if finite.size == 0 or not exptime or exptime <= 0:
        return []
    rate_adu = float(median_of(finite)) / exptime
    current = data * np.float32((gain or 1.0) / exptime)
    limit = hot_pixel_threshold(current)
    with np.errstate(invalid="ignore"):
        hot = int(np.count_nonzero(current > np.float32(limit)))
    unit = "e-/s" if gain else "ADU/s (no gain)"
    figures = [_figure("QADARK", rate_adu * gain, "[e-/s/px] median dark current") if gain
               else _figure("QADARKA", rate_adu, "[ADU/s/px] median dark current (no gain)")]
    figures += [_figure("QAHOTPIX", hot, f"pixels above {limit:.3g} {unit}"),
                _figure("QAHOTLIM", limit, f"[{unit.split()[0]}] hot-pixel limit")]
    return figures


def _block_medians(data: np.ndarray, block: int) -> np.ndarray:
    ny, nx = (data.shape[0] // block) * block, (data.shape[1] // block) * block
    if ny == 0 or nx == 0:
        return np.full((1, 1), np.nanmedian(data))
    blocks = data[:ny, :nx].reshape(ny // block, block, nx // block, block).swapaxes(1, 2)
    return np.nanmedian(blocks.reshape(ny // block, nx // block, -1), axis=2)


def vignetting(flat: np.ndarray) -> float:
    """Smallest / largest of the flat's large-scale illumination (medians of blocks 1/16 of a side)."""
    data = np.asarray(flat, dtype=np.float32)
    step = max(1, min(data.shape) // 512)  # a 4k flat's illumination from every 8th pixel
    data = data[::step, ::step]
    illumination = _block_medians(data, max(1, min(data.shape) // 16))
    top = np.nanmax(illumination)
    return float(np.nanmin(illumination) / top) if top > 0 else math.nan


def dust_spots(flat: np.ndarray, depth: float = 0.003, min_area: int = 4) -> int:
    """Dark spots of a flat: 4 × 4-binned pixels below the local illumination (a 1/16-side running mean)
    by more than ``depth`` and 5 σ of the binned noise, in groups of at least ``min_area``."""
    data = np.asarray(flat, dtype=np.float32)
    if min(data.shape) >= 64:  # 4 × 4 block means of the flat, non-finite pixels as its median
        ny, nx = (data.shape[0] // 4) * 4, (data.shape[1] // 4) * 4
        data = data[:ny, :nx]
        data = np.where(np.isfinite(data), data, np.float32(np.nanmedian(data[::8, ::8])))
        binned = data.reshape(ny // 4, 4, nx // 4, 4).mean(axis=(1, 3), dtype=np.float64)
    else:
        binned = np.where(np.isfinite(data), data, np.nanmedian(data))
    size = max(5, min(binned.shape) // 16)
    local = box_mean(binned.astype(np.float64), size)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = binned / local
    sigma = robust_sigma(ratio)
    dark = ratio < 1 - max(depth, 5 * sigma if math.isfinite(sigma) else depth)
    return sum(1 for area in component_areas(dark) if area >= min_area)


def box_mean(image: np.ndarray, size: int) -> np.ndarray:
    """Mean over a size × size box around each pixel (edges repeated), by cumulative sums."""
    half = size // 2
    padded = np.pad(image, ((half, size - half - 1), (half, size - half - 1)), mode="edge")
    total = np.pad(padded.cumsum(axis=0).cumsum(axis=1), ((1, 0), (1, 0)))
    ny, nx = image.shape
    window = total[size:size + ny, size:size + nx] - total[:ny, size:size + nx] \
        - total[size:size + ny, :nx] + total[:ny, :nx]
    return window / (size * size)


def component_areas(mask: np.ndarray) -> list[int]:
    """Sizes of the 4-connected groups of True pixels."""
    todo = set(zip(*np.nonzero(mask), strict=True))
    areas = []
    while todo:
        stack = [todo.pop()]
        area = 0
        while stack:
            y, x = stack.pop()
            area += 1
            for neighbour in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if neighbour in todo:
                    todo.remove(neighbour)
                    stack.append(neighbour)
        areas.append(area)
    return areas


def flat_figures(master: np.ndarray, sample: np.ndarray) -> list[Figure]:
    levels = [np.nanmedian(row) for row in sample] if sample.size else []
    figures = [_figure("QAFLAT", float(np.median(levels)), "[ADU] median level of the flats")] if levels \
        else []
    return figures + [_figure("QAVIGNET", vignetting(master), "illumination min/max (1/16-side blocks)"),
                      _figure("QADUST", dust_spots(master), "dust spots found in the master flat")]


# --- everything ------------------------------------------------------------------------------------------
def measure(kind: str, name: str, master: np.ndarray, header, sample: InputSample | None,
            names: Sequence[str], options: CombineOptions, scales: Sequence[float] | None = None,
            exptime: float | None = None, bias_subtracted: bool = True) -> MasterQA:
    """Quality figures of one master: ``kind`` as FrameKind.value ("master bias" …), ``master`` its
    combined pixels, ``header`` the first input's (gain, read noise claimed), ``sample`` the input rows
    kept while combining (None: master figures only), ``names`` the inputs in stack order."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows and frames: figures left out
        return _measure(kind, name, master, header, sample, names, options, scales, exptime, bias_subtracted)


def _measure(kind, name, master, header, sample, names, options, scales, exptime,
             bias_subtracted) -> MasterQA:
    qa = MasterQA(name, kind)
    gain = header_gain(header)
    cube = sample.cube() if sample is not None else np.zeros((0, 0), dtype=np.float32)
    if cube.size:
        qa.frames = frame_figures(cube, names, options, scales if scales is not None else sample.scales)
        rejected = [f.rejected for f in qa.frames]
        qa.figures += [_figure("QAREJECT", float(np.mean(rejected)), "mean fraction of values rejected"),
                       _figure("QAREJMAX", float(np.max(rejected)), "largest fraction for one frame"),
                       _figure("QANFLAG", len(qa.flagged()), "frames flagged as outliers (HISTORY)"),
                       _figure("QASAMPLE", len(sample.rows), "rows of each input sampled for QA")]
    good = [i for i, f in enumerate(qa.frames) if not f.flagged] if qa.frames else list(range(cube.shape[0]))
    cube = cube[good] if cube.size else cube   # pairs of frames that stand out would mislead
    if kind == "master bias" and cube.shape[0] >= 2:
        noise = pair_difference_sigma(cube)
        qa.figures.append(_figure("QARDNADU", noise, "[ADU] read noise from pairs of biases"))
        if gain:
            qa.figures += [_figure("QARDNOIS", noise * gain, "[e-] read noise from pairs of biases"),
                           _figure("QAGAIN", gain, "[e-/ADU] gain used (header)")]
        _compare(qa, "read noise", noise * gain if gain else None, _header_number(header, "RDNOISE"), "e⁻",
                 "the header's RDNOISE")
    elif kind == "master dark" and exptime:
        if bias_subtracted:
            qa.figures += dark_figures(master, exptime, gain)
        if gain:
            qa.figures.append(_figure("QAGAIN", gain, "[e-/ADU] gain used (header)"))
    elif kind == "master flat":
        qa.figures += flat_figures(master, cube)
        if cube.shape[0] >= 2 and sample is not None and sample.read_noise_adu:
            measured, share = photon_transfer_gain(cube, sample.read_noise_adu)
            # Where read noise dominates the flats' differences the estimate is meaningless: not shown,
            # rather than shown with a warning the astronomer can do nothing about.
            if math.isfinite(measured) and share >= MIN_PHOTON_SHARE:
                qa.figures.append(_figure("QAGAINPT", measured, "[e-/ADU] gain by photon transfer"))
                _compare(qa, "gain", measured, gain, "e⁻/ADU", "the header's GAIN")
    if cube.shape[0] >= 2 and kind != "master bias":
        qa.figures.append(_figure("QANOISE", pair_difference_sigma(cube), "[ADU] pixel noise, input pairs"))
    for frame in qa.flagged():
        qa.warnings.append(f"outlier frame {frame.name}: {frame.flagged}")
    return qa


def _compare(qa: MasterQA, what: str, measured: float | None, reference: float | None, unit: str,
             source: str, tolerance: float = WARN_TOLERANCE) -> None:
    if measured is None or reference is None or not math.isfinite(measured) or reference <= 0:
        return
    change = measured / reference - 1
    if abs(change) > tolerance:
        qa.warnings.append(f"{what} {measured:.4g} {unit} is {change:+.0%} from {source} ({reference:.4g})")


def compare_to_previous(current: MasterQA, previous: MasterQA | Mapping,
                        tolerance: float = WARN_TOLERANCE, source: str = "the previous master") -> list[str]:
    """Warnings (also added to ``current``) for each figure of ``current`` more than ``tolerance``
    (relative) from the same figure of ``previous`` (a MasterQA or its ``to_dict()``), e.g. a read noise
    30 % above the library's master bias."""
    if isinstance(previous, Mapping):
        previous = MasterQA.from_dict(previous)
    compared = ("QARDNOIS", "QARDNADU", "QADARK", "QADARKA", "QAHOTPIX", "QAGAINPT", "QAFLAT")
    added = []
    for keyword in compared:
        now, before = current.value(keyword), previous.value(keyword)
        if isinstance(now, int | float) and isinstance(before, int | float) and before > 0:
            change = now / before - 1
            if abs(change) > tolerance:
                label, unit = LABELS[keyword]
                added.append(f"{label} {now:.4g} {unit} is {change:+.0%} from {source} ({before:.4g})")
    current.warnings.extend(added)
    return added


def from_header(header, name: str = "") -> MasterQA:
    """The QA of a master read back from its header."""
    return MasterQA.from_header(header, name)
