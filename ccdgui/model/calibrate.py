"""Pure calibration verbs: each takes frames and returns a new frame, recording what it did.

Inputs are never modified. Each verb appends one HISTORY line and sets the ccdproc-style keyword
(SUBBIAS, SUBDARK, FLATCOR) so that tools can tell the frame is already calibrated.
"""

from __future__ import annotations

import re

import numpy as np

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


def apply_step(data: np.ndarray, operation: str, image: np.ndarray, factor: float = 1.0,
               out: np.ndarray | None = None) -> np.ndarray:
    """One calibration step in float32: data − factor × image ("subtract") or data / image ("divide";
    a zero gives inf/NaN quietly). Into ``out`` (which may be ``data``) or a new array."""
    if operation == "divide":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.divide(data, image, out=out)
    if factor == 1.0:
        return np.subtract(data, image, out=out)
    return np.subtract(data, np.float32(factor) * image, out=out)


class ProcessedRows:
    """File rows (fitsio.RawRows) with calibration steps applied band by band, in place, as they are
    read — the same float32 operations as the verbs on a whole frame. A frame that only had masters
    applied stays on disk and can be combined from its file; the compiled combine kernel decodes
    ``read_raw`` bytes and subtracts ``offset_rows`` itself when the only step is one subtraction."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, rows, steps: tuple = ()) -> None:
        self.rows = rows
        self.steps = steps  # ((operation, image, factor), ...) for apply_step
        self.shape = rows.shape
        single_subtraction = len(steps) == 1 and steps[0][0] == "subtract" and steps[0][2] == 1
        self.decode = rows.decode if single_subtraction else None  # the kernel's, as RawRows.decode

    def then(self, operation: str, image: np.ndarray, factor: float = 1.0) -> ProcessedRows:
        """These rows with one more step (a new object; this one is unchanged)."""
        if operation not in ("subtract", "divide") or tuple(image.shape) != self.shape:
            raise ValueError(f"cannot {operation} an image of shape {image.shape} from rows {self.shape}")
        image = np.ascontiguousarray(image, dtype=np.float32)
        return ProcessedRows(self.rows, self.steps + ((operation, image, float(factor)),))

    def read_raw(self, start: int, stop: int) -> bytes:
        return self.rows.read_raw(start, stop)

    def offset_rows(self, start: int, stop: int) -> np.ndarray:
        return self.steps[0][1][start:stop]

    def _apply(self, band: np.ndarray, start: int, stop: int) -> np.ndarray:
        for operation, image, factor in self.steps:
            apply_step(band, operation, image[start:stop], factor, out=band)
        return band

    def read_into(self, start: int, stop: int, out: np.ndarray) -> None:
        self.rows.read_into(start, stop, out)
        self._apply(out, start, stop)

    def __getitem__(self, key) -> np.ndarray:
        start, stop, _ = key.indices(self.shape[0])
        return self._apply(self.rows[key], start, max(start, stop))

    def read(self) -> np.ndarray:
        return self._apply(self.rows.read(), 0, self.shape[0])

    def close(self) -> None:
        self.rows.close()


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
    out = _step(frame, note, "divide", flat)
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
