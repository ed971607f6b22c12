"""Classify frames (bias / dark / flat / light), group them and decide which master serves which frame."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits

from .frame import FrameKind

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
    """
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
    except (TypeError, ValueError):
        pass
    return FrameKind.UNKNOWN, True


TEMPERATURE_BAND = 2.5  # °C: frames whose set-point rounds to the same multiple share masters


def exposure_key(seconds: float | None) -> float | None:
    """Exposure rounded to 1 ms so that 60 and 60.0000001 group together."""
    return None if seconds is None else round(float(seconds), 3)


def temperature_band(celsius: float | None) -> float | None:
    """The temperature rounded to the nearest band (-9.8 and -10.2 both give -10.0)."""
    return None if celsius is None else round(celsius / TEMPERATURE_BAND) * TEMPERATURE_BAND + 0.0


def camera_key(frame: Frame) -> tuple:
    """What must agree between a frame and its masters: size, binning, temperature band."""
    return frame.shape, frame.binning, temperature_band(frame.temperature)


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


def describe_camera_key(key: tuple) -> str:
    """'1530x1020, bin 1x1, -10 °C' for messages and file names."""
    (ny, nx), (bx, by), band = key
    text = f"{nx}x{ny}, bin {bx}x{by}"
    return text if band is None else f"{text}, {band:g} °C"


def pick_bias(biases: dict[tuple, Any], key: tuple) -> tuple[Any, str | None]:
    """The master bias for a camera key; another temperature band of the same size and binning will do,
    with a note (bias levels barely depend on temperature)."""
    if key in biases:
        return biases[key], None
    near = [(k, b) for k, b in biases.items() if k[:2] == key[:2]]
    if not near:
        return None, None
    best_key, best = min(near, key=lambda item: _temperature_distance(item[0][2], key[2]))
    return best, f"master bias from another temperature ({_temp(best_key[2])} for a frame at {_temp(key[2])})"


def pick_dark(darks: dict[tuple, Any], key: tuple, exptime: float | None, allow_scaling: bool):
    """The master dark for a frame: same camera key and exposure if any; else, when scaling is allowed,
    the dark of that camera key combined from the most frames (the best-determined one), the nearest
    exposure at or above the frame's breaking ties. Never a dark of another temperature band.

    ``darks`` maps (camera key, exposure) to objects with ``exptime`` and ``ncombine``.
    """
    exact = darks.get((key, exposure_key(exptime)))
    if exact is not None or not allow_scaling or exptime is None:
        return exact
    candidates = [d for (k, t), d in darks.items() if k == key and t]

    def preference(dark) -> tuple:
        t = dark.exptime or 0.0
        return (-dark.ncombine, t < exptime, abs(t - exptime))

    return min(candidates, key=preference, default=None)


def pick_flat(flats: dict[tuple, Any], key: tuple, filter_name: str | None) -> tuple[Any, str | None]:
    """The master flat of the filter at the same size and binning; same temperature preferred."""
    if (key, filter_name) in flats:
        return flats[(key, filter_name)], None
    near = [(k, f) for (k, filt), f in flats.items() if k[:2] == key[:2] and filt == filter_name]
    if not near:
        return None, None
    best_key, best = min(near, key=lambda item: _temperature_distance(item[0][2], key[2]))
    return best, f"master flat from another temperature ({_temp(best_key[2])})"


def _temperature_distance(a: float | None, b: float | None) -> float:
    return 0.0 if a is None or b is None else abs(a - b)


def _temp(band: float | None) -> str:
    return "unknown temperature" if band is None else f"{band:g} °C"


# --- warnings read from a header --------------------------------------------------------------------
_CALIBRATION_MARKERS = ("SUBBIAS", "SUBDARK", "FLATCOR", "CALSTAT", "BIASCORR", "DARKCORR", "FLATCORR")


def calibration_markers(header: fits.Header) -> list[str]:
    """Keywords or HISTORY lines saying the frame was already (partly) calibrated."""
    found = [key for key in _CALIBRATION_MARKERS if key in header]
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
    if header.get("BITPIX", 0) < 0 and float(header.get("BZERO", 0) or 0) != 0:
        notes.append(f"floating-point data with BZERO={header['BZERO']} (applied, as the FITS standard says)")
    if "EXPTIME" not in header and "EXPOSURE" in header and "min" in header.comments["EXPOSURE"].lower():
        notes.append("exposure given in minutes (EXPOSURE); treated as unknown")
    if "BAYERPAT" in header:
        pattern = str(header["BAYERPAT"]).strip()
        notes.append(f"colour sensor, Bayer pattern {pattern}: calibrated as a raw mosaic")
    return notes
