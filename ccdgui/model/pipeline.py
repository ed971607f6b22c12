"""Recipe -> masters -> calibrated frames, as a generator that reports progress and can be cancelled."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, field, fields

from psygnal import evented

from . import calibrate, library
from .combine import CombineOptions, inverse_mean_scales, inverse_median_scales, iter_combine
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


def run(frames: Sequence[Frame], recipe: Recipe, cancel: CancelToken | None = None,
        ) -> Generator[Progress, None, Result]:
    """Build masters and calibrate every light it can; yield Progress, return Result.

    Master bias per frame size; master dark per size and exposure from bias-subtracted darks; master
    flat per size and filter from bias- and dark-subtracted flats, each scaled (by default by its
    inverse median) before combining; then each light gets bias, dark (same exposure, else scaled) and
    flat (same filter). Missing pieces are reported in ``Result.problems``, never raised.
    """
    cancel = cancel or CancelToken()
    result = Result()
    frames = [_prepare(frame, recipe, result) for frame in frames]
    by_kind = library.group_by(frames, lambda f: f.kind)
    biases = by_kind.get(FrameKind.BIAS, [])
    darks = by_kind.get(FrameKind.DARK, [])
    flats = by_kind.get(FrameKind.FLAT, [])
    lights = by_kind.get(FrameKind.LIGHT, [])
    meter = _Meter(total=len(biases) + len(darks) + len(flats) + len(lights))
    options = recipe.combine_options()

    master_biases: dict[tuple, Frame] = {}
    for key, group in library.group_by(biases, library.camera_key).items():
        master = yield from _combine_group(group, options, None, meter, cancel, "bias")
        master_biases[key] = _finish_master(master, FrameKind.MASTER_BIAS, group, options)
    _name_masters(master_biases, "master_bias", lambda key: "", result)

    master_darks: dict[tuple, Frame] = {}
    for key, group in library.group_by(darks, library.dark_key).items():
        camera, exposure = key
        inputs, notes = [], set()
        for dark in group:
            reduced, dark_notes = _remove_bias_and_dark(dark, master_biases, {}, recipe)
            inputs.append(reduced)
            notes.update(dark_notes)
        bias_subtracted = all("SUBBIAS" in f.header for f in inputs)
        if not bias_subtracted:
            result.problems.append(f"darks ({library.describe_camera_key(camera)}, {_seconds(exposure)}) "
                                   "combined without bias subtraction: no master bias for them")
        master = yield from _combine_group(inputs, options, None, meter, cancel, f"dark {_seconds(exposure)}")
        master = _finish_master(master, FrameKind.MASTER_DARK, group, options)
        master.header["EXPTIME"] = (exposure, "[s] exposure of the combined darks")
        master.header["BIASSUB"] = (bias_subtracted, "bias subtracted before combining")
        master_darks[key] = master
    _name_masters(master_darks, "master_dark", lambda key: f"_{_seconds(key[1])}", result)

    master_flats: dict[tuple, Frame] = {}
    for key, group in library.group_by(flats, library.flat_key).items():
        _camera, filter_name = key
        inputs = []
        for flat in group:
            cancel.check()
            reduced, notes = _remove_bias_and_dark(flat, master_biases, master_darks, recipe)
            inputs.append(reduced)
            result.problems.extend(f"flat {flat.name}: {note}" for note in notes)
        scales = _flat_scales(inputs, recipe.flat_scaling)
        master = yield from _combine_group(inputs, options, scales, meter, cancel,
                                           f"flat {filter_name or '(no filter)'}")
        master = _finish_master(master, FrameKind.MASTER_FLAT, group, options)
        if filter_name:
            master.header["FILTER"] = filter_name
        master.header["FLATSCAL"] = (recipe.flat_scaling, "per-flat scaling before combining")
        master_flats[key] = master

    _name_masters(master_flats, "master_flat", lambda key: f"_{_safe(key[1] or 'nofilter')}", result)

    for light in lights:
        cancel.check()
        yield meter.step(1, f"Calibrating {light.name}")
        calibrated = _calibrate_light(light, master_biases, master_darks, master_flats, recipe, result)
        if calibrated is not None:
            result.calibrated.append(calibrated)
    if not lights:
        result.problems.append("no light frames: masters only")
    yield Progress(1.0, "Done")
    return result


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
                   cancel: CancelToken, label: str) -> Generator[Progress, None, Frame]:
    """Combine frames band by band, reporting progress and honouring cancel between bands."""
    combining = iter_combine([f.data for f in frames], options, scales)
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
    master = frames[0].derive(combined.data, name="")
    master.header["NCOMBINE"] = (len(frames), "frames combined")
    return master


def _finish_master(master: Frame, kind: FrameKind, inputs: Sequence[Frame], options: CombineOptions) -> Frame:
    master.kind = kind
    master.header["IMAGETYP"] = kind.imagetyp
    for key in ("SUBBIAS", "SUBDARK", "FLATCOR"):
        master.header.remove(key, ignore_missing=True)
    add_history(master.header, f"{kind.value} = {describe_combine(options)} of {len(inputs)} frames")
    add_history(master.header, "inputs: " + ", ".join(f.name for f in inputs))
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


def _name_masters(masters: dict[tuple, Frame], stem: str, suffix, result: Result) -> None:
    """File names for masters; size, binning and temperature are added only where masters differ in them."""
    cameras = [key if _is_camera(key) else key[0] for key in masters]
    varying = [len({camera[i] for camera in cameras}) > 1 for i in range(3)]
    for key, master in masters.items():
        (ny, nx), (bx, by), band = key if _is_camera(key) else key[0]
        parts = [f"_{nx}x{ny}" if varying[0] else "", f"_bin{bx}x{by}" if varying[1] else "",
                 f"_{'unknownT' if band is None else f'{band:g}C'}" if varying[2] else ""]
        master.name = f"{stem}{suffix(key)}{''.join(parts)}.fits"
        result.masters.append(master)


def _is_camera(key: tuple) -> bool:
    return len(key) == 3 and isinstance(key[1], tuple)


def _prepare(frame: Frame, recipe: Recipe, result: Result) -> Frame:
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
            result.problems.append(f"{frame.name}: {step} {section.strip()} not applied: {exc}")
    return out


_RAW_KINDS = (FrameKind.BIAS, FrameKind.DARK, FrameKind.FLAT, FrameKind.LIGHT)


def _section_for(frame: Frame, setting: str, header_key: str) -> str | None:
    setting = (setting or "off").strip()
    if setting.lower() == "off":
        return None
    if setting.lower() == "auto":
        value = frame.header.get(header_key)
        if value is None or frame.kind not in _RAW_KINDS or library.calibration_markers(frame.header):
            return None  # nothing to do, not a raw frame, or stale sections of a processed frame
        return str(value)
    return setting


def _remove_bias_and_dark(frame: Frame, biases: dict, darks: dict, recipe: Recipe) -> tuple[Frame, list[str]]:
    """Subtract the matching master bias and dark from ``frame``; notes say what was missing or odd.

    A master dark made without a bias (no bias frames at all) still contains the bias: it is used only
    for frames of its own exposure, and then stands for bias and dark together.
    """
    markers = library.calibration_markers(frame.header)
    if markers:
        return frame, [f"already calibrated ({', '.join(markers)}): bias and dark not subtracted again"]
    key = library.camera_key(frame)
    where = library.describe_camera_key(key)
    bias, note = library.pick_bias(biases, key)
    notes = [note] if note else []
    dark = library.pick_dark(darks, key, frame.exptime, recipe.scale_dark)
    if dark is not None and not dark.header.get("BIASSUB", True):
        if library.exposure_key(dark.exptime) == library.exposure_key(frame.exptime):
            return calibrate.subtract_dark(frame, dark, scale=False), notes
        notes.append(f"the master dark for {where} holds the bias and has another exposure: not used")
        dark = None
    out = frame
    if bias is None:
        notes.append(f"no master bias for {where}")
    else:
        out = calibrate.subtract_bias(out, bias)
    if dark is not None:
        out = calibrate.subtract_dark(out, dark, scale=recipe.scale_dark)
    elif frame.kind is not FrameKind.DARK:
        notes.append(f"no master dark for {where} at {_seconds(frame.exptime)}")
    return out, notes


def _calibrate_light(light: Frame, biases: dict, darks: dict, flats: dict, recipe: Recipe,
                     result: Result) -> Frame | None:
    try:
        out, notes = _remove_bias_and_dark(light, biases, darks, recipe)
        flat, flat_note = library.pick_flat(flats, library.camera_key(light), light.filter)
        if flat_note:
            notes.append(flat_note)
        if flat is None:
            notes.append(f"no master flat for filter {light.filter or '(none)'} at "
                         f"{library.describe_camera_key(library.camera_key(light))}")
        elif "FLATCOR" in light.header:
            notes.append("already flat-fielded (FLATCOR): flat not applied again")
        else:
            out = calibrate.flat_correct(out, flat, recipe.flat_normalise)
    except calibrate.CalibrationError as exc:
        result.problems.append(f"light {light.name}: not calibrated: {exc}")
        return None
    if out is light:
        result.problems.append(f"light {light.name}: not calibrated: no master matches it")
        return None
    result.problems.extend(f"light {light.name}: {note}" for note in notes)
    out.kind = FrameKind.CALIBRATED
    out.name = light.name
    return out


def _flat_scales(frames: Sequence[Frame], scaling: str) -> list[float] | None:
    arrays = [f.data for f in frames]
    if scaling == "inverse_median":
        return inverse_median_scales(arrays)
    if scaling == "inverse_mean":
        return inverse_mean_scales(arrays)
    if scaling == "none":
        return None
    raise ValueError(f"unknown flat scaling {scaling!r} (use none, inverse_median or inverse_mean)")


def _seconds(exposure: float | None) -> str:
    return "unknown" if exposure is None else f"{exposure:g}s"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "x"


def sha256_of(path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def software_versions() -> dict[str, str]:
    import platform

    import astropy
    import numpy

    from .. import __version__

    return {"ccdgui": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "astropy": astropy.__version__}


def provenance(recipe: Recipe, frames: Sequence[Frame], quarantined: Sequence, result: Result) -> dict:
    """What went into a reduction and what came out: options, inputs with checksums, versions."""
    import datetime

    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "software": software_versions(),
        "recipe": recipe.to_dict(),
        "inputs": [{"file": str(f.path), "sha256": sha256_of(f.path), "kind": f.kind.value,
                    "exptime": f.exptime, "filter": f.filter, "shape": list(f.shape)}
                   for f in frames if f.path is not None],
        "quarantined": [{"file": str(p.path), "reason": p.reason} for p in quarantined],
        "masters": [m.name for m in result.masters],
        "calibrated": [c.name for c in result.calibrated],
        "problems": list(result.problems),
    }
