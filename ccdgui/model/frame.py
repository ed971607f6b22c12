"""The frame: a 2-D float32 image with its FITS header, where it came from and what kind it is."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from astropy.io import fits


class FrameKind(str, enum.Enum):
    """What a frame is. Masters and calibrated frames are kinds of their own."""

    BIAS = "bias"
    DARK = "dark"
    FLAT = "flat"
    LIGHT = "light"
    UNKNOWN = "unknown"
    MASTER_BIAS = "master bias"
    MASTER_DARK = "master dark"
    MASTER_FLAT = "master flat"
    CALIBRATED = "calibrated"

    @property
    def imagetyp(self) -> str:
        """The IMAGETYP header value written for this kind."""
        return self.value.upper()


MAX_EXPOSURE = 1e7  # s: longer "exposures" (115 days) are header garbage
MAX_BINNING = 64


def _float_or_none(value) -> float | None:
    """``value`` as a finite float; None when absent, not a number, NaN, ±inf or beyond a float."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


_EXPOSURE_KEYS = ("EXPTIME", "EXPOSURE")
_UNIT_KEYS = ("EXPUNIT", "TIMEUNIT")  # TIMEUNIT: the FITS standard's unit of time-related keywords
_SECONDS_PER = {"ms": 1e-3, "msec": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
                "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
                "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
                "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0}
_UNIT_NAMES = {1e-3: "milliseconds", 60.0: "minutes", 3600.0: "hours"}
_UNIT_WORD = re.compile(r"(?<![a-z])(milliseconds?|msec|ms|seconds?|secs?|minutes?|mins?|hours?|hr"
                        r"|(?<=[(\[])[sh](?=[)\]]))(?![a-z])")  # a lone s or h only as "(s)" or "[h]"


def _comment_unit(comment: str) -> str | None:
    """The time unit an exposure card's comment states ('[s] ...', 'Exposure time in seconds',
    'Observation: Exposure Minutes'): a '[unit]' prefix, else the first unit word; None if none."""
    text = comment.strip().lower()
    if text.startswith("["):
        unit = text[1:text.find("]")].strip() if "]" in text else ""
        return unit if unit in _SECONDS_PER else None
    match = _UNIT_WORD.search(text)
    return match.group(1) if match else None


def _exposure_card(header: fits.Header) -> tuple[str, object, float] | None:
    """(keyword, value, seconds per unit) the exposure is read from: EXPTIME, else EXPOSURE. The unit
    is the one the card's comment states, else EXPUNIT / TIMEUNIT, else seconds; None when absent or
    the unit is not a time unit (an exposure in unknown units must not scale a dark)."""
    for key in _EXPOSURE_KEYS:
        if key in header:
            unit = _comment_unit(str(header.comments[key]))
            if unit is None:
                for unit_key in _UNIT_KEYS:
                    if unit_key in header:
                        unit = str(header[unit_key]).strip().lower()
                        break
            per = _SECONDS_PER.get(unit or "s")
            return None if per is None else (key, header[key], per)
    return None


def header_exptime(header: fits.Header) -> float | None:
    """The exposure in seconds (converted from minutes or hours where the header says so), None when
    absent or not a valid exposure (text, NaN, ±inf, negative, over :data:`MAX_EXPOSURE`, unknown unit):
    a wrong exposure would scale a dark by it."""
    card = _exposure_card(header)
    value = None if card is None else _float_or_none(card[1])
    if value is None:
        return None
    seconds = value * card[2]  # type: ignore[index]
    return seconds if 0.0 <= seconds <= MAX_EXPOSURE else None


def _binning_factor(value) -> int | None:
    """A binning factor: a whole number 1..MAX_BINNING, else None."""
    number = _float_or_none(value)
    if number is None or not number.is_integer() or not 1 <= number <= MAX_BINNING:
        return None
    return int(number)


def header_value_notes(header: fits.Header) -> list[str]:
    """One line for each exposure or binning value the header states but that cannot be true."""
    notes = []
    card = _exposure_card(header)
    seconds = header_exptime(header)
    if card is not None and seconds is None:
        notes.append(f"{card[0]} = {shown_value(card[1])} is not a valid exposure: treated as unknown")
    elif card is not None and card[2] != 1.0:
        notes.append(f"exposure given in {_UNIT_NAMES[card[2]]} ({card[0]} = {shown_value(card[1])}): "
                     f"{seconds:g} s used")
    elif card is None and any(key in header for key in _EXPOSURE_KEYS):
        key = next(key for key in _EXPOSURE_KEYS if key in header)
        unit = next(str(header[k]) for k in _UNIT_KEYS if k in header)
        notes.append(f"{key} = {shown_value(header[key])} in unknown unit {shown_value(unit)}: "
                     "treated as unknown")
    for key in ("XBINNING", "YBINNING"):
        if key in header and _binning_factor(header[key]) is None:
            notes.append(f"{key} = {shown_value(header[key])} is not a valid binning: taken as 1")
    return notes


def shown_value(value) -> str:
    """A header value for a one-line reason or note (numbers as %g, text quoted and cut short)."""
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return text if len(text) <= 20 else f"{text[:6]}… ({len(text)} digits)"
    return repr(text[:30])


class Frame:
    """An image and its metadata. Treat as immutable: verbs return new frames.

    ``data`` is a 2-D native-endian float32 array; ``header`` an astropy Header (the frame owns it).
    A frame read from disk may be *lazy*: it knows its header and shape, and reads its pixels on first
    use of ``data`` (``release()`` forgets them again, so a long list of frames costs little memory).
    """

    def __init__(self, data: np.ndarray | None = None, header: fits.Header | None = None,
                 kind: FrameKind = FrameKind.UNKNOWN, path: Path | None = None, name: str = "",
                 guessed: bool = False, notes: list[str] | None = None, *,
                 loader: Callable[[], np.ndarray] | None = None,
                 shape: tuple[int, int] | None = None, rows=None) -> None:
        if data is None and (loader is None or shape is None):
            raise ValueError("a frame needs data, or a loader and a shape")
        if data is not None and data.ndim != 2:
            raise ValueError(f"a frame holds a 2-D image, got {data.ndim}-D data")
        self._data = data
        self._loader = loader
        self._rows = rows  # reads row bands from disk (rows.RawRows) without loading the frame
        self._shape = tuple(data.shape) if data is not None else tuple(shape)  # type: ignore[arg-type]
        self.header = fits.Header() if header is None else header
        self.kind = kind
        self.path = None if path is None else Path(path)
        self.name = name or (self.path.name if self.path is not None else "")
        self.guessed = guessed            # kind guessed from file name / exposure
        self.hdu: int | None = None       # which HDU of its file the image came from
        self.notes = list(notes or [])    # warnings about this frame, one line each

    def __repr__(self) -> str:
        return f"Frame({self.name!r}, {self.kind.value}, {self._shape[1]}x{self._shape[0]})"

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            data = self._loader()  # type: ignore[misc]
            if tuple(data.shape) != self._shape:
                raise ValueError(f"{self.name}: image is {data.shape}, header said {self._shape}")
            self._data = data
        return self._data

    @property
    def loaded(self) -> bool:
        return self._data is not None

    @property
    def rows(self):
        """The file's row reader (rows.RawRows) of a frame read from an uncompressed file, else None."""
        return self._rows

    def stack_source(self):
        """What a combine reads bands from: the pixels if in memory, else the file's rows (so a stack of
        frames on disk is combined without loading any of them whole)."""
        if self._data is None and self._rows is not None:
            return self._rows
        return self.data

    def materialised(self) -> Frame:
        """This frame with its pixels in memory for good (read now if on disk): independent of files."""
        if self._loader is None:
            return self
        out = Frame(data=self.data, header=self.header, kind=self.kind, path=self.path, name=self.name,
                    guessed=self.guessed, notes=self.notes)
        out.hdu = self.hdu
        return out

    def release(self) -> None:
        """Forget the pixels of a frame that can read them again."""
        if self._loader is not None:
            self._data = None

    # --- header conveniences -------------------------------------------------------------
    @property
    def exptime(self) -> float | None:
        """Exposure in seconds from EXPTIME (else EXPOSURE), converted where the card's comment or
        EXPUNIT / TIMEUNIT says minutes or hours; None when absent or not a valid exposure (see
        :func:`header_exptime`)."""
        return header_exptime(self.header)

    @property
    def binning(self) -> tuple[int, int]:
        """(x, y) binning from XBINNING/YBINNING; 1 when absent or not a whole number 1..MAX_BINNING."""
        return (_binning_factor(self.header.get("XBINNING", 1)) or 1,
                _binning_factor(self.header.get("YBINNING", 1)) or 1)

    @property
    def temperature(self) -> float | None:
        """Sensor temperature in °C: SET-TEMP if present, else CCD-TEMP; None when absent or implausible
        (some cameras write a housing temperature in other units there, e.g. 180.2)."""
        for key in ("SET-TEMP", "CCD-TEMP"):
            value = _float_or_none(self.header.get(key))
            if value is not None and -150.0 <= value <= 60.0:
                return value
        return None

    @property
    def filter(self) -> str | None:
        """FILTER value stripped of padding; None when absent, blank or 'None'."""
        value = self.header.get("FILTER")
        if value is None:
            return None
        text = str(value).strip()
        return text if text and text.lower() != "none" else None

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape  # type: ignore[return-value]

    # --- making new frames ------------------------------------------------------------------
    def derive(self, data: np.ndarray | None, history: str | None = None, kind: FrameKind | None = None,
               name: str | None = None, rows=None) -> Frame:
        """A new frame with ``data``, a copy of this header plus one HISTORY line; self is untouched.
        With ``rows`` instead of data (a row reader of the same shape), the new frame is lazy."""
        header = self.header.copy()
        if history:
            add_history(header, history)
        common = dict(header=header, kind=self.kind if kind is None else kind, path=None,
                      name=self.name if name is None else name, guessed=self.guessed, notes=list(self.notes))
        if data is None:
            return Frame(loader=rows.read, shape=rows.shape, rows=rows, **common)
        return Frame(data=np.asarray(data, dtype=np.float32), **common)


def add_history(header: fits.Header, text: str) -> None:
    """Append ``text`` to HISTORY, split between words into FITS-sized pieces (FITS drops a card's
    trailing blanks, so a split inside a space would run two words together)."""
    import textwrap

    for piece in textwrap.wrap(text, 70, break_on_hyphens=False) or [""]:
        header.add_history(piece)
