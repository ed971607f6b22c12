"""Pure calibration verbs: each takes frames and returns a new frame, recording what it did.

Inputs are never modified. Each verb appends one HISTORY line and sets the ccdproc-style keyword
(SUBBIAS, SUBDARK, FLATCOR) so that tools can tell the frame is already calibrated.
"""

from __future__ import annotations

import re

import numpy as np

from . import fitsio
from .frame import Frame


class CalibrationError(ValueError):
    """Frames that cannot be combined in the requested way (shape or exposure mismatch)."""


def _check_shapes(frame: Frame, master: Frame, what: str) -> None:
    if frame.shape != master.shape:
        raise CalibrationError(
            f"{what} {master.name or '(unnamed)'} is {master.shape[1]}x{master.shape[0]} but "
            f"{frame.name or 'the frame'} is {frame.shape[1]}x{frame.shape[0]}")


def _mark(frame: Frame, keyword: str, value: str) -> None:
    frame.header[keyword] = (value[:68], "ccdgui calibration step")


def _on_disk(frame: Frame) -> fitsio.ProcessedRows | None:
    """The rows of a frame whose pixels are still on disk, as a chain of steps (else None). The verbs
    below then return frames that stay on disk too: their steps run band by band when pixels are read
    (so a stack of them is combined straight from the files, and a whole frame is made once)."""
    if frame.loaded or frame.rows is None:
        return None
    rows = frame.rows
    return rows if isinstance(rows, fitsio.ProcessedRows) else fitsio.ProcessedRows(rows)


def subtract_bias(frame: Frame, master_bias: Frame) -> Frame:
    """frame − master bias."""
    _check_shapes(frame, master_bias, "master bias")
    history = f"Subtracted master bias {master_bias.name}"
    rows = _on_disk(frame)
    if rows is not None:
        out = frame.derive(None, history=history, rows=rows.then("subtract", master_bias.data))
    else:
        out = frame.derive(frame.data - master_bias.data, history=history)
    _mark(out, "SUBBIAS", master_bias.name or "master bias")
    return out


def dark_scale_factor(frame: Frame, master_dark: Frame, scale: bool = True) -> float:
    """t_frame / t_dark, or 1 when the exposures agree; raises when they differ and scaling is off."""
    t_frame, t_dark = frame.exptime, master_dark.exptime
    if t_frame is not None and t_dark is not None and np.isclose(t_frame, t_dark, rtol=0, atol=1e-3):
        return 1.0
    if not scale:
        raise CalibrationError(
            f"dark exposure {t_dark} s differs from frame exposure {t_frame} s and dark scaling is off")
    if t_frame is None or t_dark is None or t_dark <= 0:
        raise CalibrationError(
            f"cannot scale the dark: exposure unknown (frame {t_frame}, dark {t_dark})")
    return float(t_frame) / float(t_dark)


def subtract_dark(frame: Frame, master_dark: Frame, scale: bool = True) -> Frame:
    """frame − master dark × (t_frame / t_dark). The master dark must be bias-subtracted."""
    _check_shapes(frame, master_dark, "master dark")
    factor = dark_scale_factor(frame, master_dark, scale)
    note = f"Subtracted master dark {master_dark.name}"
    if factor != 1.0:
        note += f" scaled by {factor:.6g}"
    rows = _on_disk(frame)
    if rows is not None:
        out = frame.derive(None, history=note, rows=rows.then("subtract", master_dark.data, factor))
    elif factor == 1.0:
        out = frame.derive(frame.data - master_dark.data, history=note)
    else:
        out = frame.derive(frame.data - np.float32(factor) * master_dark.data, history=note)
    _mark(out, "SUBDARK", master_dark.name or "master dark")
    return out


def flat_norm_value(master_flat: Frame, normalise: str = "mean") -> float:
    """The value the master flat is divided by before flat-fielding (mean or median of finite pixels)."""
    data = master_flat.data
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        raise CalibrationError(f"master flat {master_flat.name} has no finite pixel")
    if normalise == "mean":
        value = float(finite.mean(dtype=np.float64))
    elif normalise == "median":
        value = float(np.median(finite))
    else:
        raise ValueError(f"unknown flat normalisation {normalise!r} (use mean or median)")
    if not value > 0:
        raise CalibrationError(f"master flat {master_flat.name} has a non-positive {normalise} ({value})")
    return value


def flat_correct(frame: Frame, master_flat: Frame, normalise: str = "mean", norm: float | None = None,
                 ) -> Frame:
    """frame / (master flat / its mean): the result keeps the frame's overall level. ``norm``, when
    given, is the flat's ``flat_norm_value`` computed once for many frames."""
    _check_shapes(frame, master_flat, "master flat")
    if norm is None:
        norm = flat_norm_value(master_flat, normalise)
    flat = master_flat.data / np.float32(norm)
    note = f"Divided by master flat {master_flat.name} normalised by its {normalise} {norm:.6g}"
    rows = _on_disk(frame)
    if rows is not None:
        out = frame.derive(None, history=note, rows=rows.then("divide", flat))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = frame.derive(frame.data / flat, history=note)
    _mark(out, "FLATCOR", master_flat.name or "master flat")
    return out


# --- overscan and trim -------------------------------------------------------------------------------
_SECTION = re.compile(r"^\s*\[\s*([^,\]]*)\s*,\s*([^,\]]*)\s*\]\s*$")


def _axis_slice(text: str, length: int, axis: str) -> slice:
    text = text.strip()
    if text in ("*", ":", ""):
        return slice(0, length)
    match = re.fullmatch(r"(\d+)\s*:\s*(\d+)", text)
    if not match:
        raise ValueError(f"cannot read the {axis} range {text!r}")
    first, last = int(match.group(1)), int(match.group(2))
    if first > last:
        first, last = last, first  # IRAF allows flipped ranges; we keep the orientation
    if first < 1 or last > length:
        raise ValueError(f"{axis} range {first}:{last} lies outside 1:{length}")
    return slice(first - 1, last)


def parse_section(section: str, shape: tuple[int, int]) -> tuple[slice, slice]:
    """A FITS/IRAF section '[x1:x2, y1:y2]' (1-based, inclusive, x = column) as numpy (rows, cols) slices.

    Raises ValueError (one line) when it cannot be read or lies outside an image of ``shape``.
    """
    match = _SECTION.match(str(section))
    if not match:
        raise ValueError(f"not a section of the form [x1:x2,y1:y2]: {section!r}")
    cols = _axis_slice(match.group(1), shape[1], "column")
    rows = _axis_slice(match.group(2), shape[0], "row")
    return rows, cols


def subtract_overscan(frame: Frame, section: str, method: str = "median") -> Frame:
    """Subtract the overscan level read from ``section`` (1-based FITS section) line by line.

    A strip taller than wide (columns beside the image) gives one value per row; a wider strip (rows
    below or above the image) one per column. ``method`` is median or mean of the strip's pixels along the
    short axis (like ccdproc.subtract_overscan with median=True / False).
    """
    rows, cols = parse_section(section, frame.shape)
    strip = frame.data[rows, cols]
    per_row = strip.shape[0] >= strip.shape[1]
    axis = 1 if per_row else 0
    if method == "median":
        level = np.median(strip, axis=axis)
    elif method == "mean":
        level = np.mean(strip, axis=axis, dtype=np.float64)
    else:
        raise ValueError(f"unknown overscan method {method!r} (use median or mean)")
    level = level.astype(np.float32)
    if per_row:
        full = np.full(frame.shape[0], np.nan, np.float32) if strip.shape[0] < frame.shape[0] else level
        if strip.shape[0] < frame.shape[0]:
            full[rows] = level
            full = np.where(np.isnan(full), np.nanmedian(level), full).astype(np.float32)
        data = frame.data - full[:, None]
    else:
        full = np.full(frame.shape[1], np.nanmedian(level), np.float32)
        full[cols] = level
        data = frame.data - full[None, :]
    out = frame.derive(data, history=f"Subtracted overscan {section.strip()} ({method} per "
                                     f"{'row' if per_row else 'column'})")
    out.header["OVERSCAN"] = (section.strip()[:60], "ccdgui: overscan region subtracted")
    return out


def trim(frame: Frame, section: str) -> Frame:
    """Keep only ``section`` (1-based FITS section) of the frame."""
    rows, cols = parse_section(section, frame.shape)
    out = frame.derive(np.ascontiguousarray(frame.data[rows, cols]), history=f"Trimmed to {section.strip()}")
    for key in ("BIASSEC", "TRIMSEC", "DATASEC"):
        out.header.remove(key, ignore_missing=True)
    out.header["TRIMIM"] = (section.strip()[:60], "ccdgui: trimmed to this section")
    return out
