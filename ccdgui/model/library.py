"""Classify frames (bias / dark / flat / light), group them and decide which master serves which frame."""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from astropy.io import fits

from .frame import FrameKind, _float_or_none, header_value_notes, shown_value

if TYPE_CHECKING:
    from .frame import Frame

TYPE_KEYWORDS = ("IMAGETYP", "FRAMETYP", "OBSTYPE", "FRAME")

# Header words (lower case, blanks folded) for each kind.
_SYNONYMS: dict[str, FrameKind] = {}
for _kind, _words in {
    FrameKind.BIAS: ("bias", "bias frame", "zero", "zero frame", "offset"),
    FrameKind.DARK: ("dark", "dark frame", "dark current"),
    FrameKind.FLAT: ("flat", "flat field", "flat frame", "flatfield", "dome flat", "sky flat",
                     "twilight flat", "domeflat", "skyflat"),
    FrameKind.MASTER_BIAS: ("master bias",),
    FrameKind.MASTER_DARK: ("master dark",),
    FrameKind.MASTER_FLAT: ("master flat",),
    FrameKind.LIGHT: ("light", "light frame", "object", "science", "sci", "target"),
}.items():
    for _word in _words:
        _SYNONYMS[_word] = _kind

_NAME_HINTS = ((re.compile(r"(^|[^a-z])(bias|zero)"), FrameKind.BIAS),
               (re.compile(r"(^|[^a-z])dark"), FrameKind.DARK),
               (re.compile(r"(^|[^a-z])(flat|ff)([^a-z]|$)|flat"), FrameKind.FLAT),
               (re.compile(r"(^|[^a-z])(light|sci|object)"), FrameKind.LIGHT))


def kind_from_word(word: str) -> FrameKind | None:
    """The kind named by a header value such as 'Bias Frame', ' zero ' or 'Light'; None if unknown."""
    folded = " ".join(str(word).strip().lower().replace("_", " ").split())
    return _SYNONYMS.get(folded)


def kind_from_filename(name: str) -> FrameKind | None:
    lowered = name.lower()
    for pattern, kind in _NAME_HINTS:
        if pattern.search(lowered):
            return kind
    return None


def classify(header: fits.Header, filename: str = "", data: np.ndarray | None = None,
             ) -> tuple[FrameKind, bool]:
    """Frame kind from the header, else from the file name and exposure; second item True if guessed.

    A header 'light' whose file name says flat is taken as a flat (CCDSoft labels flats 'Light Frame').
    A calibrated frame written by ccdgui (CCDGPROD = 'calibrated') is calibrated, whatever IMAGETYP says.
    """
    if str(header.get("CCDGPROD", "")).strip().lower() == "calibrated":
        return FrameKind.CALIBRATED, False
    header_kind = None
    for key in TYPE_KEYWORDS:
        if key in header:
            header_kind = kind_from_word(header[key])
            if header_kind is not None:
                break
    name_kind = kind_from_filename(filename)
    has_exposure = "EXPTIME" in header or "EXPOSURE" in header
    if header_kind is None and not has_exposure:
        return FrameKind.UNKNOWN, True  # no metadata at all: never guess a role for it
    if header_kind is not None:
        if header_kind is FrameKind.LIGHT and name_kind is FrameKind.FLAT:
            return FrameKind.FLAT, True
        return header_kind, False
    if name_kind is not None:
        return name_kind, True
    exptime = header.get("EXPTIME", header.get("EXPOSURE"))
    try:
        if exptime is not None and float(exptime) == 0.0:
            return FrameKind.BIAS, True
    except (TypeError, ValueError, OverflowError):
        pass
    return FrameKind.UNKNOWN, True


TEMPERATURE_BAND = 2.5  # °C: frames whose set-point rounds to the same multiple share masters


def exposure_key(seconds: float | None) -> float | None:
    """Exposure rounded to 1 ms so that 60 and 60.0000001 group together."""
    return None if seconds is None else round(float(seconds), 3)


def temperature_band(celsius: float | None) -> float | None:
    """The temperature rounded to the nearest band (-9.8 and -10.2 both give -10.0)."""
    return None if celsius is None else round(celsius / TEMPERATURE_BAND) * TEMPERATURE_BAND + 0.0


class CameraKey(NamedTuple):
    """What a frame and its masters should share. Size and binning must agree; temperature band and
    night are preferred to agree (a bias or flat of another temperature or night will do, with a note;
    a dark must have the temperature band). Sensor settings (gain, offset, readout mode) must agree."""

    shape: tuple[int, int]
    binning: tuple[int, int]
    temperature: float | None   # band, °C
    night: str | None           # the evening's date, YYYY-MM-DD
    settings: tuple = ()        # Settings(gain, offset, readout) as read from the header

    @property
    def hardware(self) -> tuple:
        return self.shape, self.binning, tuple(self.settings)


def night_of(frame: Frame) -> str | None:
    """The date of the evening a frame belongs to: DATE-OBS minus 12 h (so a 04:00 UT frame and a 20:00
    UT frame of the same night agree); None without a readable DATE-OBS (or one at the calendar's ends)."""
    text = str(frame.header.get("DATE-OBS", "")).strip()
    try:
        when = datetime.datetime.fromisoformat(text[:19] if "T" in text else text[:10])
        if "T" in text:
            when -= datetime.timedelta(hours=12)
    except (ValueError, OverflowError):
        return None
    return when.date().isoformat()


def camera_key(frame: Frame) -> CameraKey:
    return CameraKey(frame.shape, frame.binning, temperature_band(frame.temperature), night_of(frame),
                     sensor_settings(frame.header))


def dark_key(frame: Frame) -> tuple:
    return camera_key(frame), exposure_key(frame.exptime)


def flat_key(frame: Frame) -> tuple:
    return camera_key(frame), frame.filter


def group_by(frames: Iterable[Frame], key: Callable[[Frame], Hashable]) -> dict[Hashable, list[Frame]]:
    """Frames grouped by ``key(frame)``, in first-seen order."""
    groups: dict[Hashable, list[Frame]] = defaultdict(list)
    for frame in frames:
        groups[key(frame)].append(frame)
    return dict(groups)


def describe_camera_key(key: CameraKey) -> str:
    """'1530x1020, bin 1x1, -10 °C, night of 2018-10-18' for messages."""
    (ny, nx), (bx, by) = key.shape, key.binning
    text = f"{nx}x{ny}, bin {bx}x{by}"
    if key.temperature is not None:
        text += f", {key.temperature:g} °C"
    if key.night is not None:
        text += f", night of {key.night}"
    settings = Settings(*key.settings).describe() if key.settings else ""
    return text + (f", {settings}" if settings else "")


def _distance(candidate: CameraKey, wanted: CameraKey) -> tuple:
    """How far a master's key is from a frame's: other night first, then temperature difference."""
    temperature = (0.0 if candidate.temperature is None or wanted.temperature is None
                   else abs(candidate.temperature - wanted.temperature))
    return candidate.night != wanted.night, temperature


def _substitute_note(kind: str, used: CameraKey, wanted: CameraKey) -> str | None:
    differences = []
    if used.temperature != wanted.temperature:
        differences.append(f"{_temp(used.temperature)} for a frame at {_temp(wanted.temperature)}")
    if used.night != wanted.night:
        differences.append(f"night of {used.night or 'unknown date'} for a frame of "
                           f"{wanted.night or 'unknown date'}")
    return f"master {kind} from another " + "; ".join(differences) if differences else None


def pick_bias(biases: dict[CameraKey, Any], key: CameraKey) -> tuple[Any, str | None]:
    """The master bias for a camera key: the same key, else the nearest of the same size and binning
    (bias levels barely change with temperature or from night to night), with a note."""
    if key in biases:
        return biases[key], None
    near = [k for k in biases if k.hardware == key.hardware]
    if not near:
        return None, None
    best = min(near, key=lambda k: _distance(k, key))
    return biases[best], _substitute_note("bias", best, key)


def pick_dark(darks: dict[tuple, Any], key: CameraKey, exptime: float | None, allow_scaling: bool):
    """The master dark for a frame, never of another temperature band, size or binning. Preferred, in
    order: the same night; the same exposure (else, when scaling is allowed, one to scale); combined from
    more frames (better determined); the nearest exposure at or above the frame's.

    ``darks`` maps (camera key, exposure) to objects with ``exptime`` and ``ncombine``.
    """
    wanted = exposure_key(exptime)
    candidates = [(k, t) for (k, t) in darks
                  if k.hardware == key.hardware and k.temperature == key.temperature]
    if exptime is None or not allow_scaling:
        candidates = [(k, t) for (k, t) in candidates if t == wanted]
    else:
        candidates = [(k, t) for (k, t) in candidates if t]

    def preference(item) -> tuple:
        k, t = item
        return (k.night != key.night, t != wanted, -darks[item].ncombine, t < (exptime or 0.0),
                abs(t - (exptime or 0.0)))

    return darks[min(candidates, key=preference)] if candidates else None


def pick_flat(flats: dict[tuple, Any], key: CameraKey, filter_name: str | None) -> tuple[Any, str | None]:
    """The master flat of the filter at the same size and binning; same night and temperature preferred."""
    if (key, filter_name) in flats:
        return flats[(key, filter_name)], None
    near = [k for (k, filt) in flats if k.hardware == key.hardware and filt == filter_name]
    if not near:
        return None, None
    best = min(near, key=lambda k: _distance(k, key))
    return flats[(best, filter_name)], _substitute_note("flat", best, key)


def _temp(band: float | None) -> str:
    return "unknown temperature" if band is None else f"{band:g} °C"


# --- warnings read from a header --------------------------------------------------------------------
_CALIBRATION_MARKERS = ("SUBBIAS", "SUBDARK", "FLATCOR", "CALSTAT", "BIASCORR", "DARKCORR", "FLATCORR")


_STEP_NOT_DONE = ("PERFORM", "OMIT", "SKIPPED", "SKIP", "F", "FALSE", "NO", "N", "")


def _step_still_to_do(value) -> bool:
    """Whether a calibration-switch keyword's value says the step was not done (HST's PERFORM/OMIT)."""
    if isinstance(value, bool):
        return not value
    return str(value).strip().upper() in _STEP_NOT_DONE


def calibration_markers(header: fits.Header) -> list[str]:
    """Keywords or HISTORY lines saying the frame was already (partly) calibrated. HST's BIASCORR,
    DARKCORR, FLATCORR… hold a to-do list (PERFORM, OMIT) in raw files and COMPLETE after the pipeline:
    only COMPLETE (or a value that is not one of those words) marks a step done."""
    found = [key for key in _CALIBRATION_MARKERS if key in header and not _step_still_to_do(header[key])]
    history = " ".join(str(h) for h in header.get("HISTORY", [])).lower()
    if "auto dark subtraction" in history or "auto-dark subtraction" in history:
        found.append("camera auto-dark subtraction")
    return found


def header_notes(header: fits.Header, data: np.ndarray | None = None) -> list[str]:
    """One-line warnings about a frame's header, shown in the library and reported by reduce."""
    notes = []
    markers = calibration_markers(header)
    if markers:
        notes.append("already calibrated (" + ", ".join(markers) + "): bias/dark will not be applied again")
    if header.get("BITPIX", 0) < 0 and (_float_or_none(header.get("BZERO", 0)) or 0) != 0:
        notes.append(f"floating-point data with BZERO={header['BZERO']} (applied, as the FITS standard says)")
    notes.extend(header_value_notes(header))
    for key, default in (("GAIN", "1 e-/ADU"), ("RDNOISE", "10 e-")):
        value = _float_or_none(header.get(key, 1))
        if value is None or value <= 0:
            notes.append(f"{key} = {shown_value(header[key])} is not usable: {default} assumed where it is "
                         "needed")
    if "BAYERPAT" in header:
        pattern = str(header["BAYERPAT"]).strip()
        notes.append(f"colour sensor, Bayer pattern {pattern}: calibrated as a raw mosaic")
    return notes


# --- the session's frames, for the library panel -----------------------------------------------------
GROUP_ORDER = ("Light", "Flat", "Dark", "Bias", "Unknown", "Masters", "Calibrated")
_GROUP_OF_KIND = {FrameKind.LIGHT: "Light", FrameKind.FLAT: "Flat", FrameKind.DARK: "Dark",
                  FrameKind.BIAS: "Bias", FrameKind.UNKNOWN: "Unknown", FrameKind.MASTER_BIAS: "Masters",
                  FrameKind.MASTER_DARK: "Masters", FrameKind.MASTER_FLAT: "Masters",
                  FrameKind.CALIBRATED: "Calibrated"}


def group_label(frame: Frame, kind: FrameKind | None = None) -> tuple[str, str]:
    """(type group, subgroup) under which the library lists a frame: darks by exposure, flats by filter,
    lights by filter and exposure."""
    kind = frame.kind if kind is None else kind
    top = _GROUP_OF_KIND[kind]
    exposure = "exposure unknown" if frame.exptime is None else f"{frame.exptime:g} s"
    filter_name = frame.filter or "no filter"
    if kind in (FrameKind.DARK, FrameKind.MASTER_DARK):
        sub = exposure
    elif kind in (FrameKind.FLAT, FrameKind.MASTER_FLAT):
        sub = filter_name
    elif kind in (FrameKind.LIGHT, FrameKind.CALIBRATED):
        sub = f"{filter_name}, {exposure}"
    else:
        sub = f"{frame.shape[1]}x{frame.shape[0]}"
    return top, sub


# --- sensor settings and matching masters with reasons ---------------------------------------------
#: Header keywords (first found wins) of the sensor settings that must agree between a frame and its
#: masters: a CMOS camera's gain setting, offset (black level) and readout mode.
GAIN_KEYS = ("GAIN", "CAMGAIN", "CCD-GAIN", "ISOSPEED")
OFFSET_KEYS = ("OFFSET", "CAMOFFS", "BLKLEVEL", "BLACKLVL")
READOUT_KEYS = ("READOUTM", "READMODE", "READOUT", "RDMODE")
#: Keywords holding the conversion factor in e⁻/ADU (SBIG and MaxIm write EGAIN, CCDSoft also E-GAIN).
ELECTRONS_PER_ADU_KEYS = ("EGAIN", "E-GAIN")


def _setting(header: fits.Header, keys: tuple[str, ...]) -> str | None:
    """A sensor setting as text (numbers as %g so 100 and 100.0 agree); None when absent or blank."""
    for key in keys:
        if key in header:
            value = header[key]
            number = _float_or_none(value) if not isinstance(value, str) else None
            text = f"{number:g}" if number is not None else str(value).strip()
            if text:
                return text
    return None


class Settings(NamedTuple):
    """Sensor settings that must be the same for a frame and its masters (None: not in the header)."""

    gain: str | None = None
    offset: str | None = None
    readout: str | None = None

    def describe(self) -> str:
        parts = [f"{name} {value}" for name, value in zip(("gain", "offset", "readout"), self, strict=True)
                 if value is not None]
        return ", ".join(parts)


def sensor_settings(header: fits.Header) -> Settings:
    """GAIN (or a synonym), OFFSET (or a synonym) and READOUTM (or a synonym) as read from a header."""
    return Settings(_setting(header, GAIN_KEYS), _setting(header, OFFSET_KEYS),
                    _setting(header, READOUT_KEYS))


def electrons_per_adu(header: fits.Header) -> float | None:
    """The conversion factor in e⁻/ADU: EGAIN (or E-GAIN), else GAIN when no EGAIN is given; None when
    neither is a positive number."""
    for key in (*ELECTRONS_PER_ADU_KEYS, "GAIN"):
        value = _float_or_none(header.get(key))
        if value is not None and value > 0:
            return value
    return None


def instrument_of(header: fits.Header) -> str | None:
    """INSTRUME stripped; None when absent or blank."""
    text = str(header.get("INSTRUME", "")).strip()
    return text or None


class Facts(NamedTuple):
    """What matching needs to know of a frame or a master (tonight's or the library's)."""

    kind: str                          # bias, dark, flat or light
    instrument: str | None
    shape: tuple[int, int]
    binning: tuple[int, int]
    settings: Settings
    temperature: float | None          # °C, set-point if known else measured
    exptime: float | None
    filter: str | None
    night: str | None                  # YYYY-MM-DD
    bias_subtracted: bool = True       # a dark that had its bias removed
    ncombine: int = 1


def frame_facts(frame: Frame) -> Facts:
    """The facts of a frame (a light, a flat needing a dark, or a raw calibration frame)."""
    kind = frame.kind.value.replace("master ", "")
    return Facts(kind, instrument_of(frame.header), frame.shape, frame.binning,
                 sensor_settings(frame.header), frame.temperature, frame.exptime, frame.filter,
                 night_of(frame))


@dataclass(frozen=True)
class Tolerances:
    """How close a master must be to a frame: temperatures in °C, age in days."""

    temperature: float = 1.0           # exact within this
    temperature_nearby: float = 3.0    # a dark further than this is refused
    age_days: float = 1.0              # a master taken further from the frame is 'nearby' (another night)
    scale_dark: bool = True


EXACT, NEARBY, REFUSED = "exact", "nearby", "refused"
_VERDICT_ORDER = {EXACT: 0, NEARBY: 1, REFUSED: 2}


def _days_between(master_night: str | None, frame_night: str | None) -> int | None:
    if master_night is None or frame_night is None:
        return None
    try:
        return (datetime.date.fromisoformat(frame_night[:10])
                - datetime.date.fromisoformat(master_night[:10])).days
    except ValueError:
        return None


def _age_text(days: int | None, night: str | None) -> str:
    if days is None:
        return "date unknown"
    if days == 0:
        return f"{night}, same night"
    word = "day" if abs(days) == 1 else "days"
    return f"{night}, {days} {word} old" if days > 0 else f"{night}, {-days} {word} newer"


def celsius(value: float | None) -> str:
    """'−10.0 °C' (a true minus sign), or 'unknown °C'."""
    return "unknown °C" if value is None else f"{value:.1f} °C".replace("-", "−")


def refusal(master: Facts, frame: Facts, tolerances: Tolerances) -> str | None:
    """Why a master can never serve a frame (another camera, size, binning, gain, offset, readout mode,
    filter, or a dark too far in temperature or exposure); None when it can."""
    if master.instrument and frame.instrument and master.instrument != frame.instrument:
        return f"another camera ({master.instrument} vs {frame.instrument})"
    if master.shape != frame.shape:
        return f"size {master.shape[1]}x{master.shape[0]} vs {frame.shape[1]}x{frame.shape[0]}"
    if master.binning != frame.binning:
        return f"binning {master.binning[0]}x{master.binning[1]} vs {frame.binning[0]}x{frame.binning[1]}"
    for name, ours, theirs in zip(("gain", "offset", "readout mode"), master.settings, frame.settings,
                                  strict=True):
        if ours != theirs:
            return f"{name} {ours if ours is not None else 'not stated'} vs " \
                   f"{theirs if theirs is not None else 'not stated'}"
    if master.kind == "flat" and master.filter != frame.filter:
        return f"filter {master.filter or 'none'} vs {frame.filter or 'none'}"
    if master.kind == "dark":
        if master.temperature is not None and frame.temperature is not None and \
                abs(master.temperature - frame.temperature) > tolerances.temperature_nearby:
            return (f"{celsius(master.temperature)} vs {celsius(frame.temperature)}: more than "
                    f"±{tolerances.temperature_nearby:g} °C apart")
        same = exposure_key(master.exptime) == exposure_key(frame.exptime)
        if not same and (not tolerances.scale_dark or not master.exptime or frame.exptime is None):
            return f"exposure {_seconds_text(master.exptime)} vs {_seconds_text(frame.exptime)}, cannot scale"
        if not same and not master.bias_subtracted:
            return "still holds the bias and has another exposure"
    return None


def _seconds_text(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds:g} s"


def judge(master: Facts, frame: Facts, tolerances: Tolerances) -> tuple[str, str]:
    """(verdict, reason): exact, nearby or refused, and the facts that decided it, e.g.
    '2018-10-18, 5 days newer, −10.0 °C vs −9.8 °C: nearby'."""
    refused = refusal(master, frame, tolerances)
    days = _days_between(master.night, frame.night)
    parts = [_age_text(days, master.night)]
    if master.kind in ("dark", "bias") or master.temperature is not None:
        parts.append(f"{celsius(master.temperature)} vs {celsius(frame.temperature)}")
    if refused is not None:
        return REFUSED, f"{refused}: refused"
    nearby = days is None or abs(days) > tolerances.age_days
    if master.temperature is None or frame.temperature is None or \
            abs(master.temperature - frame.temperature) > tolerances.temperature:
        nearby = True
    if master.kind == "dark" and exposure_key(master.exptime) != exposure_key(frame.exptime):
        parts.append(f"scaled ×{(frame.exptime or 0) / master.exptime:.4g}")  # type: ignore[operator]
        nearby = True
    if master.ncombine == 1:
        parts.append("1 frame")
    verdict = NEARBY if nearby else EXACT
    return verdict, ", ".join(parts) + f": {verdict}"


def verdict_rank(verdict: str) -> int:
    """0 exact, 1 nearby, 2 refused (for sorting)."""
    return _VERDICT_ORDER[verdict]
