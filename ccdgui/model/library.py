"""Classify frames (bias / dark / flat / light), group them and decide which master serves which frame."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING

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


def exposure_key(seconds: float | None) -> float | None:
    """Exposure rounded to 1 ms so that 60 and 60.0000001 group together."""
    return None if seconds is None else round(float(seconds), 3)


def group_by(frames: Iterable[Frame], key: Callable[[Frame], Hashable]) -> dict[Hashable, list[Frame]]:
    """Frames grouped by ``key(frame)``, in first-seen order."""
    groups: dict[Hashable, list[Frame]] = defaultdict(list)
    for frame in frames:
        groups[key(frame)].append(frame)
    return dict(groups)


def shape_key(frame: Frame) -> tuple[int, int]:
    return frame.shape


def dark_key(frame: Frame) -> tuple:
    return frame.shape, exposure_key(frame.exptime)


def flat_key(frame: Frame) -> tuple:
    return frame.shape, frame.filter


def pick_dark(darks: dict[tuple, Frame], shape: tuple[int, int], exptime: float | None,
              allow_scaling: bool) -> Frame | None:
    """The master dark for a frame: same exposure if any, else (when scaling) the longest at that shape."""
    exact = darks.get((shape, exposure_key(exptime)))
    if exact is not None or not allow_scaling or exptime is None:
        return exact
    candidates = [d for (s, t), d in darks.items() if s == shape and t]
    return max(candidates, key=lambda d: d.exptime or 0.0, default=None)
