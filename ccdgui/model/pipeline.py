"""Recipe -> masters -> calibrated frames, as a generator that reports progress and can be cancelled."""

from __future__ import annotations

import itertools
import json
import re
import tempfile
import threading
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, field, fields

from psygnal import evented

from . import calibrate, fitsio, library, masks
from .combine import (
    CombineOptions,
    CombineResult,
    Estimate,
    drain,
    estimate,
    inverse_mean_scales,
    inverse_median_scales,
    iter_combine,
)
from .files import Checksums
from .frame import Frame, FrameKind, add_history


@evented
@dataclass
class Recipe:
    """Every calibration option; JSON round-trips. Defaults follow the guide."""

    combine: str = "average"          # average | median | sum
    reject: str = "sigma"             # none | sigma | minmax
    sigma_low: float = 5.0
    sigma_high: float = 5.0
    sigma_center: str = "median"      # median | mean
    sigma_spread: str = "mad_std"     # mad_std | std
    sigma_iterations: int = 1
    minmax_low: int = 1
    minmax_high: int = 1
    flat_scaling: str = "inverse_median"  # none | inverse_median | inverse_mean (per flat, before combine)
    flat_normalise: str = "mean"          # mean | median (divisor of the master flat)
    scale_dark: bool = True               # scale a dark of another exposure by t_light / t_dark
    overscan: str = "auto"                # auto (header BIASSEC) | off | a section such as [4:13,1:520]
    overscan_method: str = "median"       # median | mean, per row (or column) of the overscan strip
    trim: str = "auto"                    # auto (header TRIMSEC) | off | a section such as [17:528,1:520]
    stack_memory_mb: int = 1024           # above this, processed frames wait in scratch files
    hot_pixels: bool = False              # mask hot pixels of the light's master dark (set to NaN)
    flat_defects: bool = False            # mask defects of the light's master flat (ccdmask-like)
    cosmic_rays: str = "off"              # off | auto | lacosmic | median: clean the calibrated lights
    kind_overrides: dict[str, str] = field(default_factory=dict)  # file name -> kind the user chose
    hdu_overrides: dict[str, int] = field(default_factory=dict)   # file name -> image HDU the user chose

    def kind_of(self, frame: Frame) -> FrameKind:
        """The frame's kind, as the user re-classified it or as read from its header."""
        override = self.kind_overrides.get(frame.name)
        return FrameKind(override) if override else frame.kind

    def combine_options(self) -> CombineOptions:
        return CombineOptions(
            method=self.combine, reject=self.reject, sigma_low=self.sigma_low, sigma_high=self.sigma_high,
            sigma_center=self.sigma_center, sigma_spread=self.sigma_spread,
            sigma_iterations=self.sigma_iterations, minmax_low=self.minmax_low,
            minmax_high=self.minmax_high)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown recipe option(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


class Cancelled(Exception):
    """Raised inside a pipeline when its cancel token is set."""


class CancelToken:
    """A thread-safe flag the GUI or CLI sets to stop a running job at the next check."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass
class Progress:
    fraction: float   # 0..1 of the whole job
    message: str


@dataclass
class Result:
    masters: list[Frame] = field(default_factory=list)
    calibrated: list[Frame] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # one line each: what could not be done and why


@dataclass(eq=False)
class MasterPlan:
    """A master to build: its inputs (each with the steps that prepare it) and its file name."""

    kind: FrameKind
    key: tuple                  # camera key, (camera, exposure) or (camera, filter)
    inputs: list[FrameSteps]
    name: str = ""
    exptime: float | None = None
    filter: str | None = None

    @property
    def ncombine(self) -> int:
        return len(self.inputs)

    @property
    def bias_subtracted(self) -> bool:
        """Whether every input has a bias removed (false for darks of a night without biases)."""
        return all(step.bias is not None or step.raw_dark is not None for step in self.inputs)


@dataclass(eq=False)
class FrameSteps:
    """What will be done to one frame: which masters it gets, and why something is missing."""

    frame: Frame
    bias: MasterPlan | None = None
    dark: MasterPlan | None = None
    raw_dark: MasterPlan | None = None  # a dark that still holds the bias (no biases in the night)
    flat: MasterPlan | None = None
    notes: list[str] = field(default_factory=list)
    skip: bool = False                  # nothing can be done (reason in notes)

    def describe(self) -> str:
        """'bias master_bias.fits, dark master_dark_60s.fits ×0.5, flat master_flat_r.fits'."""
        parts = []
        if self.bias is not None:
            parts.append(f"bias {self.bias.name}")
        for dark in (self.dark, self.raw_dark):
            if dark is not None:
                factor = _dark_factor(self.frame, dark)
                parts.append(f"dark {dark.name}" + ("" if factor == 1.0 else f" ×{factor:.4g}"))
        if self.flat is not None:
            parts.append(f"flat {self.flat.name}")
        return ", ".join(parts) or "nothing"


@dataclass
class Plan:
    """Everything a run will do, decided from headers alone: shown before the user presses Calibrate."""

    masters: list[MasterPlan] = field(default_factory=list)
    lights: list[FrameSteps] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # global problems (bad sections, unused frames)

    @property
    def total_frames(self) -> int:
        return sum(m.ncombine for m in self.masters) + len(self.lights)


def make_plan(frames: Sequence[Frame], recipe: Recipe) -> Plan:
    """Group frames and decide which master serves which frame, from headers (and overscan/trim)."""
    plan = Plan()
    frames = [_reclassified(frame, recipe) for frame in frames]
    prepared = [_prepare(frame, recipe, plan.notes) for frame in frames]
    by_kind = library.group_by(prepared, lambda f: f.kind)
    unknown = by_kind.get(FrameKind.UNKNOWN, [])
    truth = [f for f in unknown if str(f.header.get("IMAGETYP", "")).strip().upper() == "TRUTH"]
    others = [f for f in unknown if f not in truth]
    for frames_left, what in ((truth, "simulation truth file(s) (IMAGETYP = TRUTH) left aside"),
                              (others, "frame(s) of unknown type not used")):
        if frames_left:
            plan.notes.append(f"{len(frames_left)} {what}: " + ", ".join(f.name for f in frames_left[:5])
                              + (" …" if len(frames_left) > 5 else ""))

    biases = {key: MasterPlan(FrameKind.MASTER_BIAS, key, [FrameSteps(f) for f in group], exptime=0.0)
              for key, group in library.group_by(by_kind.get(FrameKind.BIAS, []), library.camera_key).items()}
    _name_masters(biases, "master_bias", lambda key: "")

    darks = {}
    for key, group in library.group_by(by_kind.get(FrameKind.DARK, []), library.dark_key).items():
        steps = [_steps_for(f, recipe, biases) for f in group]
        darks[key] = MasterPlan(FrameKind.MASTER_DARK, key, steps, exptime=key[1])
    _name_masters(darks, "master_dark", lambda key: f"_{_seconds(key[1])}")
    for master in darks.values():
        if not master.bias_subtracted:
            plan.notes.append(f"{master.name}: darks combined without bias subtraction (no master bias "
                              f"for {library.describe_camera_key(master.key[0])})")

    flats = {}
    for key, group in library.group_by(by_kind.get(FrameKind.FLAT, []), library.flat_key).items():
        steps = [_steps_for(f, recipe, biases, darks) for f in group]
        flats[key] = MasterPlan(FrameKind.MASTER_FLAT, key, steps, filter=key[1])
    _name_masters(flats, "master_flat", lambda key: f"_{_safe(key[1] or 'nofilter')}")
    for master in flats.values():
        for step in master.inputs:
            plan.notes.extend(f"flat {step.frame.name}: {note}" for note in step.notes)

    plan.masters = [*biases.values(), *darks.values(), *flats.values()]
    plan.lights = [_steps_for(f, recipe, biases, darks, flats) for f in by_kind.get(FrameKind.LIGHT, [])]
    if not plan.lights:
        plan.notes.append("no light frames: masters only")
    return plan


def _reclassified(frame: Frame, recipe: Recipe) -> Frame:
    """The frame itself, or a copy (same pixels) carrying the kind the user chose for it."""
    kind = recipe.kind_of(frame)
    if kind is frame.kind:
        return frame
    copy = frame.derive(frame.data, history=f"Type set to {kind.value} by the user", kind=kind)
    copy.path = frame.path
    return copy


def _steps_for(frame: Frame, recipe: Recipe, biases: dict, darks: dict | None = None,
               flats: dict | None = None) -> FrameSteps:
    """Choose the bias, dark and flat for one frame; notes say what is missing or odd."""
    steps = FrameSteps(frame)
    markers = library.calibration_markers(frame.header)
    key = library.camera_key(frame)
    where = library.describe_camera_key(key)
    if markers:
        steps.notes.append(f"already calibrated ({', '.join(markers)}): bias and dark not subtracted again")
    else:
        steps.bias, note = library.pick_bias(biases, key)
        steps.notes.extend([note] if note else [])
        if darks is not None:
            dark = library.pick_dark(darks, key, frame.exptime, recipe.scale_dark)
            same_exposure = dark is not None and dark.exptime == library.exposure_key(frame.exptime)
            if dark is not None and not dark.bias_subtracted:
                if same_exposure and steps.bias is None:
                    steps.raw_dark = dark
                else:
                    steps.notes.append(f"{dark.name} still holds the bias and has another exposure: not used")
            elif dark is not None and not same_exposure and frame.exptime is None:
                steps.notes.append(f"exposure unknown: {dark.name} cannot be scaled, dark not subtracted")
            else:
                steps.dark = dark
            if steps.dark is None and steps.raw_dark is None:
                steps.notes.append(f"no master dark for {where} at {_seconds(frame.exptime)}")
        if steps.bias is None and steps.raw_dark is None:
            steps.notes.append(f"no master bias for {where}")
    if flats is not None:
        if "FLATCOR" in frame.header:
            steps.notes.append("already flat-fielded (FLATCOR): flat not applied again")
        else:
            steps.flat, note = library.pick_flat(flats, key, frame.filter)
            steps.notes.extend([note] if note else [])
            if steps.flat is None:
                steps.notes.append(f"no master flat for filter {frame.filter or '(none)'} at {where}")
    if not (steps.bias or steps.dark or steps.raw_dark or steps.flat):
        steps.skip = True
        steps.notes.append("not calibrated: no master matches it")
    return steps


def run(frames: Sequence[Frame], recipe: Recipe, cancel: CancelToken | None = None,
        ) -> Generator[Progress, None, Result]:
    """Plan, build masters and calibrate every light it can; yield Progress, return Result.

    Master bias per camera (size, binning, temperature band); master dark per camera and exposure from
    bias-subtracted darks; master flat per camera and filter from bias- and dark-subtracted flats, each
    scaled (by default by its inverse median) before combining; each light gets bias, dark (same exposure,
    else scaled) and flat (same filter). Missing pieces are reported in ``Result.problems``, never raised.
    """
    return (yield from execute(make_plan(frames, recipe), recipe, cancel))


@dataclass
class Intake:
    """What reading a set of files gave: usable (lazy) frames, quarantined files, and each frame's median
    from a sample of rows (by id of frame), for listing."""

    frames: list[Frame] = field(default_factory=list)
    problems: list = field(default_factory=list)
    medians: dict[int, float] = field(default_factory=dict)


def intake(paths: Sequence, cancel: CancelToken | None = None, medians: bool = True,
           hdus: dict[str, int] | None = None) -> Generator[Progress, None, Intake]:
    """Read files and folders (recursively) from their headers; vet pixels only where a file could be
    unusable; measure medians from sampled rows (for a listing) unless told not to; yield Progress per
    file. ``hdus`` maps a file name to the image HDU to use. Frames stay on disk until needed."""
    from pathlib import Path

    from .display import quick_median

    cancel = cancel or CancelToken()
    files = []
    for path in map(Path, paths):
        files.extend(fitsio.iter_fits_paths(path) if path.is_dir() else [path])
    found = Intake()
    for index, path in enumerate(files, start=1):
        cancel.check()
        frames, problems = fitsio.read_frames([path], lazy=True, hdus=hdus)
        frames, unusable = fitsio.check_pixels(frames)
        for frame in frames if medians else ():
            found.medians[id(frame)] = quick_median(fitsio.sample_pixels(frame))
        found.frames.extend(frames)
        found.problems.extend(problems + unusable)
        yield Progress(index / max(len(files), 1), f"Read {path.name}")
    return found


def run_to_end(frames: Sequence[Frame], recipe: Recipe, cancel: CancelToken | None = None) -> Result:
    """:func:`run` without progress reports: the Result."""
    return drain(run(frames, recipe, cancel))


def execute(plan: Plan, recipe: Recipe, cancel: CancelToken | None = None,
            ) -> Generator[Progress, None, Result]:
    """Carry out a plan: yields Progress, returns Result; raises Cancelled when ``cancel`` is set.

    Memory stays bounded: raw frames read from disk are combined straight from their files, band by
    band; processed frames of a stack larger than ``recipe.stack_memory_mb`` wait in scratch files."""
    cancel = cancel or CancelToken()
    result = Result(problems=list(plan.notes))
    meter = _Meter(total=plan.total_frames)
    options = recipe.combine_options()
    built: dict[int, Frame] = {}
    bad_pixels: dict[int, tuple] = {}  # master id -> (mask, description), made once per master
    with tempfile.TemporaryDirectory(prefix="ccdgui-stack-") as scratch:
        for master in plan.masters:
            spill = _stack_bytes(master) > recipe.stack_memory_mb * 2**20

            scaled = master.kind is FrameKind.MASTER_FLAT and recipe.flat_scaling != "none"

            def prepare(steps: FrameSteps, spill=spill, scaled=scaled) -> Frame:
                prepared = _apply(steps, built, recipe, with_flat=False)
                if prepared is not steps.frame:
                    steps.frame.release()
                    if scaled and not spill:  # read whole once for its scale, then kept for the stack
                        prepared = prepared.materialised()
                    elif spill and prepared.rows is None:  # else it is still read from its file
                        prepared = fitsio.spill(prepared, scratch)
                return prepared

            inputs = list(_two_at_a_time(prepare, master.inputs, cancel))
            scales = (_flat_scales(inputs, recipe.flat_scaling) if master.kind is FrameKind.MASTER_FLAT
                      else None)
            label = f"{master.kind.value.split()[-1]} ({master.name})"
            combined = yield from _combine_group(inputs, options, scales, meter, cancel, label)
            built[id(master)] = _finish_master(combined, master, inputs, options, recipe)
            result.masters.append(built[id(master)])
            for frame in inputs:
                frame.release()
    norms = _flat_norms(plan, built, recipe)
    for steps in plan.lights:  # masks are found once per master, before the lights share them
        for master in (steps.dark, steps.flat):
            if master is not None and not steps.skip:
                _bad_pixels(master, built, recipe, bad_pixels)

    def calibrated_light(steps: FrameSteps) -> Frame | str | None:
        """The calibrated frame, or why it could not be made, or None for a light to skip."""
        if steps.skip:
            return None
        try:
            calibrated = _apply(steps, built, recipe, with_flat=True, norms=norms).materialised()
        except calibrate.CalibrationError as exc:
            return f"light {steps.frame.name}: not calibrated: {exc}"
        finally:
            steps.frame.release()
        calibrated = _clean_and_mask(calibrated, steps, built, recipe, bad_pixels)
        calibrated.kind = FrameKind.CALIBRATED
        return calibrated

    done = _two_at_a_time(calibrated_light, plan.lights, cancel)
    for steps, calibrated in zip(plan.lights, done, strict=True):
        yield meter.step(1, f"Calibrated {steps.frame.name}")
        result.problems.extend(f"light {steps.frame.name}: {note}" for note in steps.notes)
        if isinstance(calibrated, str):
            result.problems.append(calibrated)
        elif calibrated is not None:
            result.calibrated.append(calibrated)
    yield Progress(1.0, "Done")
    return result


def _clean_and_mask(frame: Frame, steps: FrameSteps, built: dict[int, Frame], recipe: Recipe,
                    cache: dict[int, tuple]) -> Frame:
    """Cosmic rays cleaned (if asked), then bad pixels of the light's masters set to NaN (if asked)."""
    found_in = [_bad_pixels(master, built, recipe, cache) for master in (steps.dark, steps.flat)
                if master is not None]
    found_in = [(mask, source) for mask, source in found_in if mask is not None]
    mask = masks.combine_masks(*(mask for mask, _ in found_in))
    if recipe.cosmic_rays != "off":
        gain = float(frame.header.get("GAIN", 1.0) or 1.0)
        read_noise = float(frame.header.get("RDNOISE", 10.0) or 10.0)
        cleaned, found, used = masks.clean_cosmic_rays(frame.data, recipe.cosmic_rays, gain=gain,
                                                       read_noise=read_noise, mask=mask)
        frame = frame.derive(cleaned, history=f"Cleaned {int(found.sum())} cosmic-ray pixels ({used})")
        frame.header["NCOSMIC"] = (int(found.sum()), f"cosmic-ray pixels cleaned ({used})")
    if mask is not None:
        sources = "; ".join(source for _, source in found_in)
        frame = frame.derive(masks.apply_mask(frame.data, mask),
                             history=f"Set {int(mask.sum())} bad pixels to NaN ({sources})")
        frame.header["NBADPIX"] = (int(mask.sum()), "bad pixels set to NaN")
    return frame


def _bad_pixels(master: MasterPlan, built: dict[int, Frame], recipe: Recipe,
                cache: dict[int, tuple]) -> tuple:
    """(mask or None, description) of one master's bad pixels under the recipe, computed once."""
    if id(master) not in cache:
        frame = built[id(master)]
        if master.kind is FrameKind.MASTER_DARK and recipe.hot_pixels and master.exptime:
            gain = float(frame.header.get("GAIN", 1.0) or 1.0)
            found = masks.hot_pixel_mask(frame.data, master.exptime, gain=gain)
            cache[id(master)] = (found, f"{int(found.sum())} hot pixels of {master.name}")
        elif master.kind is FrameKind.MASTER_FLAT and recipe.flat_defects:
            found = masks.flat_mask(frame.data)
            cache[id(master)] = (found, f"{int(found.sum())} flat defects of {master.name}")
        else:
            cache[id(master)] = (None, "")
    return cache[id(master)]


def _stack_bytes(master: MasterPlan) -> int:
    ny, nx = master.inputs[0].frame.shape
    return len(master.inputs) * ny * nx * 4


def estimate_run(plan: Plan, recipe: Recipe) -> Estimate:
    """Rough time and peak memory of carrying out ``plan`` (shown before a run starts)."""
    options = recipe.combine_options()
    seconds, peak = 0.0, 0
    for master in plan.masters:
        ny, nx = master.inputs[0].frame.shape
        from_disk = all(not s.frame.loaded for s in master.inputs) or (
            _stack_bytes(master) > recipe.stack_memory_mb * 2**20)
        one = estimate(len(master.inputs), ny, nx, options, from_disk=from_disk)
        seconds += one.seconds
        peak = max(peak, one.peak_bytes)
    cleaning = 0.0
    if recipe.cosmic_rays != "off":
        method = recipe.cosmic_rays
        if method == "auto":
            method = "lacosmic" if masks.astroscrappy_available() else "median"
        cleaning = masks.COSMIC_SECONDS_PER_PIXEL[method]
    for steps in plan.lights:
        ny, nx = steps.frame.shape
        seconds += ny * nx * (4e-9 + cleaning)
    masters_bytes = sum(m.inputs[0].frame.shape[0] * m.inputs[0].frame.shape[1] * 4 for m in plan.masters)
    return Estimate(seconds, peak + masters_bytes)


def _two_at_a_time(function, items: Sequence, cancel: CancelToken) -> Generator:
    """``function(item)`` for each item, two running at a time on threads (numpy and file reads release
    the GIL); the results in order. Cancel is checked between items; at most two are then finished."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        waiting = iter(items)
        pending = deque(pool.submit(function, item) for item in itertools.islice(waiting, 2))
        try:
            while pending:
                cancel.check()
                done = pending.popleft().result()
                for item in itertools.islice(waiting, 1):
                    pending.append(pool.submit(function, item))
                yield done
        finally:
            for future in pending:
                future.cancel()


def _flat_norms(plan: Plan, built: dict[int, Frame], recipe: Recipe) -> dict[int, float | Exception]:
    """Each master flat's normalisation value, computed once (or the error a light will report)."""
    norms: dict[int, float | Exception] = {}
    for master in plan.masters:
        if master.kind is FrameKind.MASTER_FLAT and id(master) in built:
            try:
                norms[id(master)] = calibrate.flat_norm_value(built[id(master)], recipe.flat_normalise)
            except calibrate.CalibrationError as exc:
                norms[id(master)] = exc
    return norms


def _apply(steps: FrameSteps, built: dict[int, Frame], recipe: Recipe, with_flat: bool,
           norms: dict[int, float | Exception] | None = None) -> Frame:
    """Apply the planned bias, dark (and flat) to one frame; returns a new frame."""
    out = steps.frame
    if steps.raw_dark is not None:
        out = calibrate.subtract_dark(out, built[id(steps.raw_dark)], scale=False)
    if steps.bias is not None:
        out = calibrate.subtract_bias(out, built[id(steps.bias)])
    if steps.dark is not None:
        out = calibrate.subtract_dark(out, built[id(steps.dark)], scale=recipe.scale_dark)
    if with_flat and steps.flat is not None:
        norm = (norms or {}).get(id(steps.flat))
        if isinstance(norm, Exception):
            raise norm
        out = calibrate.flat_correct(out, built[id(steps.flat)], recipe.flat_normalise, norm)
    return out


def _dark_factor(frame: Frame, dark: MasterPlan) -> float:
    if frame.exptime is None or not dark.exptime or library.exposure_key(frame.exptime) == dark.exptime:
        return 1.0
    return frame.exptime / dark.exptime


class _Meter:
    """Turns units of work (frames read, combined or calibrated) into an overall fraction."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.done = 0.0

    def step(self, units: float, message: str) -> Progress:
        self.done = min(self.total, self.done + units)
        return Progress(self.done / self.total, message)

    def at(self, partial: float, message: str) -> Progress:
        return Progress(min(1.0, (self.done + partial) / self.total), message)


def _combine_group(frames: Sequence[Frame], options: CombineOptions, scales, meter: _Meter,
                   cancel: CancelToken, label: str) -> Generator[Progress, None, CombineResult]:
    """Combine frames band by band, reporting progress and honouring cancel between bands."""
    combining = iter_combine([f.stack_source() for f in frames], options, scales)
    message = f"Combining {len(frames)} {label} frame(s)"
    try:
        while True:
            cancel.check()
            fraction = next(combining)
            yield meter.at(fraction * len(frames), message)
    except StopIteration as stop:
        combined = stop.value
    finally:
        combining.close()
    meter.step(len(frames), message)
    return combined


def _finish_master(combined: CombineResult, plan: MasterPlan, inputs: Sequence[Frame],
                   options: CombineOptions, recipe: Recipe) -> Frame:
    """The master frame: the first input's header, marked as a master, with provenance."""
    master = inputs[0].derive(combined.data, kind=plan.kind, name=plan.name)
    header = master.header
    for key in ("SUBBIAS", "SUBDARK", "FLATCOR", "DATE-OBS", "OBJECT"):
        header.remove(key, ignore_missing=True)
    header["IMAGETYP"] = plan.kind.imagetyp
    header["NCOMBINE"] = (len(inputs), "frames combined")
    if plan.kind is FrameKind.MASTER_DARK:
        header["EXPTIME"] = (plan.exptime, "[s] exposure of the combined darks")
        header["BIASSUB"] = (plan.bias_subtracted, "bias subtracted before combining")
    if plan.kind is FrameKind.MASTER_FLAT:
        if plan.filter:
            header["FILTER"] = plan.filter
        header["FLATSCAL"] = (recipe.flat_scaling, "per-flat scaling before combining")
    add_history(header, f"{plan.kind.value} = {describe_combine(options)} of {len(inputs)} frames")
    add_history(header, "inputs: " + ", ".join(step.frame.name for step in plan.inputs))
    return master


def describe_combine(options: CombineOptions) -> str:
    """A one-line human description of combine options, for HISTORY and the GUI."""
    text = options.method
    if options.reject == "sigma":
        text += (f" with {options.sigma_low:g}/{options.sigma_high:g} sigma clipping "
                 f"({options.sigma_center}, {options.sigma_spread}, {options.sigma_iterations} pass(es))")
    elif options.reject == "minmax":
        text += f" with min/max rejection ({options.minmax_low} low, {options.minmax_high} high)"
    return text


def _name_masters(masters: dict[tuple, MasterPlan], stem: str, suffix) -> None:
    """File names for masters: ``stem + suffix(key)``, plus size, binning, temperature and night where
    masters would otherwise share a name (only the parts in which they differ)."""
    def camera(key) -> library.CameraKey:
        return key if isinstance(key, library.CameraKey) else key[0]

    by_base = library.group_by(masters, lambda key: f"{stem}{suffix(key)}")
    for base, keys in by_base.items():
        varying = [len({camera(k)[i] for k in keys}) > 1 for i in range(4)]
        for key in keys:
            (ny, nx), (bx, by), band, night = camera(key)
            parts = [f"_{nx}x{ny}" if varying[0] else "", f"_bin{bx}x{by}" if varying[1] else "",
                     f"_{'unknownT' if band is None else f'{band:g}C'}" if varying[2] else "",
                     f"_{night or 'unknown-night'}" if varying[3] else ""]
            masters[key].name = f"{base}{''.join(parts)}.fits"


_RAW_KINDS = (FrameKind.BIAS, FrameKind.DARK, FrameKind.FLAT, FrameKind.LIGHT)


def _prepare(frame: Frame, recipe: Recipe, notes: list[str]) -> Frame:
    """Overscan subtraction and trimming, the same for every frame type; bad sections are reported."""
    out = frame
    steps = (("overscan", recipe.overscan, "BIASSEC"), ("trim", recipe.trim, "TRIMSEC"))
    for step, setting, header_key in steps:
        section = _section_for(out, setting, header_key)
        if section is None:
            continue
        try:
            if step == "overscan":
                out = calibrate.subtract_overscan(out, section, recipe.overscan_method)
            else:
                out = calibrate.trim(out, section)
        except ValueError as exc:
            notes.append(f"{frame.name}: {step} {section.strip()} not applied: {exc}")
    return out


def _section_for(frame: Frame, setting: str, header_key: str) -> str | None:
    setting = (setting or "off").strip()
    if setting.lower() == "off":
        return None
    if setting.lower() == "auto":
        value = frame.header.get(header_key)
        if value is None or frame.kind not in _RAW_KINDS or library.calibration_markers(frame.header):
            return None  # nothing to do, not a raw frame, or stale sections of a processed frame
        return str(value)
    return setting if frame.kind in _RAW_KINDS else None


def _flat_scales(frames: Sequence[Frame], scaling: str) -> list[float] | None:
    """Per-flat scale factors, two frames at a time (frames that can read again are released after)."""
    functions = {"inverse_median": inverse_median_scales, "inverse_mean": inverse_mean_scales}
    if scaling == "none":
        return None
    if scaling not in functions:
        raise ValueError(f"unknown flat scaling {scaling!r} (use none, inverse_median or inverse_mean)")
    def scale_of(frame: Frame) -> float:
        try:
            return functions[scaling]([frame.data])[0]
        finally:
            frame.release()

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:  # numpy's partition releases the GIL
        return list(pool.map(scale_of, frames))


def _seconds(exposure: float | None) -> str:
    return "unknown" if exposure is None else f"{exposure:g}s"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "x"


def software_versions() -> dict[str, str]:
    import platform

    import astropy
    import numpy

    from .. import __version__

    return {"ccdgui": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "astropy": astropy.__version__}


def provenance(recipe: Recipe, frames: Sequence[Frame], quarantined: Sequence, result: Result,
               digests: Sequence[str]) -> dict:
    """What went into a reduction and what came out: options, inputs with their checksums (``digests``:
    the sha256 of each frame that has a file, in order), versions."""
    import datetime

    with_path = [f for f in frames if f.path is not None]

    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "software": software_versions(),
        "recipe": recipe.to_dict(),
        "inputs": [{"file": str(f.path), "sha256": digest, "kind": f.kind.value,
                    "exptime": f.exptime, "filter": f.filter, "shape": list(f.shape)}
                   for f, digest in zip(with_path, digests, strict=True)],
        "quarantined": [{"file": str(p.path), "reason": p.reason} for p in quarantined],
        "masters": [m.name for m in result.masters],
        "calibrated": [c.name for c in result.calibrated],
        "problems": list(result.problems),
    }


def save_results(result: Result, recipe: Recipe, frames: Sequence[Frame], quarantined: Sequence,
                 outdir, cancel: CancelToken | None = None, checksums: Checksums | None = None,
                 ) -> Generator[Progress, None, list]:
    """Write masters to ``outdir/masters/``, calibrated frames to ``outdir/calibrated/`` (original file
    names) and ``outdir/recipe.json``; each file atomically, never over an input. Yields Progress,
    returns the paths written. Files written before a cancel are complete and stay. The inputs'
    checksums come from ``checksums`` if it was started earlier, else are computed during the writes."""
    import os
    from pathlib import Path

    outdir = Path(outdir)
    cancel = cancel or CancelToken()
    inputs = [f.path for f in frames if f.path is not None]
    jobs = [("masters", f) for f in result.masters] + [("calibrated", f) for f in result.calibrated]
    written = []
    from concurrent.futures import ThreadPoolExecutor

    def write(job: tuple[str, Frame]) -> Path:
        folder, frame = job
        return fitsio.write_frame(frame, outdir / folder / frame.name, overwrite=True, protect=inputs)

    own_checksums = checksums is None
    checksums = checksums or Checksums(inputs)  # on a third thread while the outputs are written
    with ThreadPoolExecutor(max_workers=4) as pool:  # two encode while two wait on fsync
        pending = [pool.submit(write, job) for job in jobs]
        try:
            for index, (future, (folder, frame)) in enumerate(zip(pending, jobs, strict=True), start=1):
                written.append(future.result())
                yield Progress(index / (len(jobs) + 1), f"Wrote {folder}/{frame.name}")
                cancel.check()
            digests = [checksums.of(path) for path in inputs]
        finally:
            for future in pending:
                future.cancel()  # files not yet started are not written; started ones complete
            if own_checksums:
                checksums.close()
    record = json.dumps(provenance(recipe, frames, quarantined, result, digests), indent=2) + "\n"
    recipe_path = outdir / "recipe.json"
    outdir.mkdir(parents=True, exist_ok=True)
    partial = recipe_path.with_name(".recipe.json.part")
    partial.write_text(record)
    os.replace(partial, recipe_path)
    written.append(recipe_path)
    yield Progress(1.0, f"Saved {len(written)} files in {outdir}")
    return written
