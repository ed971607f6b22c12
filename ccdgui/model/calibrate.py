"""Pure calibration verbs: each takes frames and returns a new frame, recording what it did.

Inputs are never modified. Each verb appends one HISTORY line and sets the ccdproc-style keyword
(SUBBIAS, SUBDARK, FLATCOR) so that tools can tell the frame is already calibrated.
"""

from __future__ import annotations

import re

import numpy as np

from .frame import Frame, add_history
from .rows import ProcessedRows, apply_step


class CalibrationError(ValueError):
    """Frames that cannot be combined in the requested way (shape or exposure mismatch)."""


def _check_shapes(frame: Frame, master: Frame, what: str) -> None:
    if frame.shape != master.shape:
        raise CalibrationError(
            f"{what} {master.name or '(unnamed)'} is {master.shape[1]}x{master.shape[0]} but "
            f"{frame.name or 'the frame'} is {frame.shape[1]}x{frame.shape[0]}")


def _mark(frame: Frame, keyword: str, value: str) -> None:
    frame.header[keyword] = (value[:68], "ccdgui calibration step")


def _step(frame: Frame, note: str, operation: str, image: np.ndarray, factor: float = 1.0) -> Frame:
    """A new frame: ``frame`` after one step, recorded in HISTORY. A frame whose pixels are still on
    disk stays there (its steps run band by band when pixels are read, so a stack of such frames is
    combined straight from the files and a whole frame is made once); else the step runs now."""
    if frame.loaded or frame.rows is None:
        return frame.derive(apply_step(frame.data, operation, image, factor), history=note)
    rows = frame.rows if isinstance(frame.rows, ProcessedRows) else ProcessedRows(frame.rows)
    return frame.derive(None, history=note, rows=rows.then(operation, image, factor))


def subtract_bias(frame: Frame, master_bias: Frame) -> Frame:
    """frame − master bias."""
    _check_shapes(frame, master_bias, "master bias")
    out = _step(frame, f"Subtracted master bias {master_bias.name}", "subtract", master_bias.data)
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
    out = _step(frame, note, "subtract", master_dark.data, factor)
    _mark(out, "SUBDARK", master_dark.name or "master dark")
    return out


def _checked_norm(master_flat: Frame, value: float, what: str) -> float:
    """``value`` as a float when it is a usable flat normalisation (finite, > 0); else CalibrationError."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"master flat {master_flat.name}: {what} {value!r} is not a number") from exc
    if not (np.isfinite(number) and number > 0):
        kind = "non-finite" if not np.isfinite(number) else "non-positive"
        raise CalibrationError(f"master flat {master_flat.name} has a {kind} {what} ({number:g}): "
                               "cannot normalise by it")
    return number


def flat_norm_value(master_flat: Frame, normalise: str = "mean") -> float:
    """The value the master flat is divided by before flat-fielding (mean or median of finite pixels);
    CalibrationError when it is zero, negative or not finite."""
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
    return _checked_norm(master_flat, value, normalise)


def flat_correct(frame: Frame, master_flat: Frame, normalise: str = "mean", norm: float | None = None,
                 min_value: float | None = None) -> Frame:
    """frame / (master flat / its mean): the result keeps the frame's overall level. ``norm``, when
    given, is the flat's ``flat_norm_value`` computed once for many frames (refused unless finite and
    positive). ``min_value``: pixels of the normalised flat below it are raised to it first (so dead
    or vignetted pixels are not divided by ~0); as ccdproc.flat_correct(min_value=min_value × norm,
    norm_value=norm), the norm being that of the unclipped flat."""
    _check_shapes(frame, master_flat, "master flat")
    norm = flat_norm_value(master_flat, normalise) if norm is None else _checked_norm(master_flat, norm,
                                                                                      "norm")
    flat = master_flat.data / np.float32(norm)
    note = f"Divided by master flat {master_flat.name} normalised by its {normalise} {norm:.6g}"
    if min_value is not None:
        if not np.isfinite(min_value):
            raise CalibrationError(f"flat minimum {min_value} is not finite")
        low = np.float32(min_value)
        flat = np.where(flat < low, low, flat)
        note += f", values below {min_value:g} raised to it"
    out = _step(frame, note, "divide", flat)
    _mark(out, "FLATCOR", master_flat.name or "master flat")
    return out


# --- overscan and trim -------------------------------------------------------------------------------
MAX_SECTION_LENGTH = 100  # '[   4:  13,   1: 520]' is 21; a longer "section" is not one
_RANGE = re.compile(r"([0-9]{1,9})[ \t]*:[ \t]*([0-9]{1,9})")  # unambiguous: matched in linear time


def _axis_slice(text: str, length: int, axis: str) -> slice:
    text = text.strip(" \t")
    if text in ("*", ":", ""):
        return slice(0, length)
    match = _RANGE.fullmatch(text)
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

    Each axis is 'a:b' (flipped b:a allowed), '*' or ':' (all). Raises ValueError (one line) when it
    cannot be read, is longer than :data:`MAX_SECTION_LENGTH`, or lies outside an image of ``shape``.
    """
    text = str(section)
    if len(text) > MAX_SECTION_LENGTH:
        raise ValueError(f"not a section of the form [x1:x2,y1:y2]: {len(text)} characters long")
    body = text.strip(" \t")
    axes = body[1:-1].split(",") if body[:1] == "[" and body[-1:] == "]" else []
    if len(axes) != 2:
        raise ValueError(f"not a section of the form [x1:x2,y1:y2]: {text!r}")
    cols = _axis_slice(axes[0], shape[1], "column")
    rows = _axis_slice(axes[1], shape[0], "row")
    return rows, cols


OVERSCAN_METHODS = ("median", "mean")
OVERSCAN_FITS = ("none", "polynomial", "legendre")
MAX_OVERSCAN_ORDER = 20


def _overscan_per_row(rows: slice, cols: slice) -> bool:
    """A strip taller than wide (columns beside the image) gives one level per row, else per column."""
    return rows.stop - rows.start >= cols.stop - cols.start


def _check_overscan_options(method: str, fit: str, order: int) -> None:
    if method not in OVERSCAN_METHODS:
        raise ValueError(f"unknown overscan method {method!r} (use median or mean)")
    if fit not in OVERSCAN_FITS:
        raise ValueError(f"unknown overscan fit {fit!r} (use {', '.join(OVERSCAN_FITS)})")
    if fit != "none" and (isinstance(order, bool) or not isinstance(order, (int, np.integer))
                          or not 0 <= order <= MAX_OVERSCAN_ORDER):
        raise ValueError(f"overscan fit order must be a whole number 0..{MAX_OVERSCAN_ORDER}, got {order!r}")


def mark_overscan(header, section: str, method: str, shape: tuple[int, int], fit: str = "none",
                  order: int = 1) -> None:
    """Record in ``header`` (HISTORY, OVERSCAN) an overscan subtraction of ``section`` by ``method``,
    its levels smoothed by a ``fit`` of ``order`` unless ``fit`` is "none"."""
    _check_overscan_options(method, fit, order)
    rows, cols = parse_section(section, shape)
    along = "row" if _overscan_per_row(rows, cols) else "column"
    how = f"{method} per {along}" + ("" if fit == "none" else f", {fit} fit of order {order}")
    add_history(header, f"Subtracted overscan {section.strip()} ({how})")
    header["OVERSCAN"] = (section.strip()[:60], "ccdgui: overscan region subtracted")


def _fitted_levels(level: np.ndarray, fit: str, order: int) -> np.ndarray:
    """``level`` (one value per line) replaced by its least-squares polynomial or Legendre series of
    ``order`` along the lines (the same fit as ccdproc's Polynomial1D / Legendre1D model with
    LinearLSQFitter; non-finite levels are left out of the fit)."""
    x = np.arange(level.size, dtype=np.float64)
    good = np.isfinite(level)
    if good.sum() <= order:
        raise CalibrationError(f"an overscan fit of order {order} needs more than {order} lines with a "
                               f"finite level, got {int(good.sum())}")
    kind = np.polynomial.Polynomial if fit == "polynomial" else np.polynomial.Legendre
    domain = [0.0, max(level.size - 1.0, 1.0)]  # mapped to [-1, 1]: well conditioned at any order
    series = kind.fit(x[good], level[good].astype(np.float64), order, domain=domain)
    return series(x)


def subtract_overscan(frame: Frame, section: str, method: str = "median", fit: str = "none",
                      order: int = 1) -> Frame:
    """Subtract the overscan level read from ``section`` (1-based FITS section) line by line.

    A strip taller than wide (columns beside the image) gives one value per row; a wider strip (rows
    below or above the image) one per column. ``method`` is median or mean of the strip's pixels along the
    short axis (like ccdproc.subtract_overscan with median=True / False). With ``fit`` "polynomial" or
    "legendre" the per-line levels are replaced by their least-squares fit of ``order`` along the strip
    (ccdproc's model=Polynomial1D(order) / Legendre1D(order); both span the same functions, so they give
    the same levels). Lines the strip does not reach get the median level.
    """
    _check_overscan_options(method, fit, order)
    rows, cols = parse_section(section, frame.shape)
    strip = frame.data[rows, cols]
    per_row = _overscan_per_row(rows, cols)
    axis = 1 if per_row else 0
    level = np.median(strip, axis=axis) if method == "median" else np.mean(strip, axis=axis, dtype=np.float64)
    if fit != "none":
        level = _fitted_levels(np.asarray(level, np.float64), fit, order)
    level = level.astype(np.float32)
    lines, n_lines = (rows, frame.shape[0]) if per_row else (cols, frame.shape[1])
    full = level
    if level.size < n_lines:
        full = np.full(n_lines, np.nanmedian(level), np.float32)
        full[lines] = level
    data = frame.data - (full[:, None] if per_row else full[None, :])
    out = frame.derive(data)
    mark_overscan(out.header, section, method, frame.shape, fit, order)
    return out


_CRPIX = re.compile(r"CRPIX([12])([A-Z]?)")


def shift_wcs(header, row0: int, col0: int) -> None:
    """Shift the pixel-coordinate keywords of ``header`` for a cut whose first pixel was (``row0``,
    ``col0``) (0-based) of the old image: CRPIX1/2 of the primary and alternate (A–Z) WCS and IRAF's
    LTV1/2, where present, so that each pixel keeps its sky and physical coordinates."""
    offsets = {"1": col0, "2": row0}
    for keyword in list(header.keys()):
        match = _CRPIX.fullmatch(keyword)
        if match or keyword in ("LTV1", "LTV2"):
            axis = match.group(1) if match else keyword[-1]
            try:
                value = float(header[keyword])
            except (TypeError, ValueError):
                continue  # not a number: nothing to shift (and nothing a reader could use)
            if offsets[axis]:
                header[keyword] = value - offsets[axis]


def mark_trim(header, section: str, shape: tuple[int, int] | None = None) -> None:
    """Record in ``header`` a trim to ``section``; the sections of the untrimmed frame go. With the
    untrimmed ``shape`` the WCS reference pixels (and LTV) are shifted too (:func:`shift_wcs`), so the
    trimmed frame's coordinates stay true; without it they are left as they are."""
    if shape is not None:
        rows, cols = parse_section(section, shape)
        shift_wcs(header, rows.start, cols.start)
    add_history(header, f"Trimmed to {section.strip()}")
    for key in ("BIASSEC", "TRIMSEC", "DATASEC"):
        header.remove(key, ignore_missing=True)
    header["TRIMIM"] = (section.strip()[:60], "ccdgui: trimmed to this section")


def trim(frame: Frame, section: str) -> Frame:
    """Keep only ``section`` (1-based FITS section) of the frame; its WCS and LTV follow (see mark_trim)."""
    rows, cols = parse_section(section, frame.shape)
    out = frame.derive(np.ascontiguousarray(frame.data[rows, cols]))
    mark_trim(out.header, section, frame.shape)
    return out
