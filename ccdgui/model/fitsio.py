"""Read FITS images into frames and write frames as FITS, safely.

Reading: the first HDU holding a 2-D image (primary, image extension or tile-compressed), scaled with
BZERO/BSCALE to native float32; keywords missing from an extension are inherited from the primary
header (EXPTIME of a multi-extension file often lives there). Anything unusable raises
:class:`FrameError` with a one-line reason, which :func:`scan_folder` turns into a quarantine entry.

Writing: float32, the frame's header kept, one HISTORY line, to a temporary file in the target folder
that is renamed over the final name only when complete; an existing file is never replaced unless asked,
and an input file never.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from .frame import Frame, add_history
from .library import classify, header_notes

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz", ".fz", ".gz")

# Cards describing the stored array; they are rewritten for float32 output and never inherited.
_STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "PCOUNT",
               "GCOUNT", "BZERO", "BSCALE", "BLANK", "BUNIT_ORIG", "CHECKSUM", "DATASUM", "EXTNAME",
               "EXTVER", "NEXTEND", "DATAMIN", "DATAMAX", "TFIELDS"}


class FrameError(Exception):
    """A file cannot be used as a frame; ``str(error)`` is a one-line reason for the user."""


@dataclass(frozen=True)
class Problem:
    """A quarantined file and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"


def is_fits_name(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(FITS_SUFFIXES) and not name.startswith(".")


def _image_hdu_index(hdul: fits.HDUList) -> int:
    """Index of the first HDU with a 2-D image, or a FrameError saying why there is none."""
    seen = []
    for index, hdu in enumerate(hdul):
        if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
            continue
        naxis = hdu.header.get("ZNAXIS", hdu.header.get("NAXIS", 0)) if isinstance(
            hdu, fits.CompImageHDU) else hdu.header.get("NAXIS", 0)
        seen.append(naxis)
        if naxis == 2:
            return index
    if any(n and n > 2 for n in seen):
        raise FrameError(f"{max(seen)}-D data cube, not a 2-D image")
    raise FrameError("no image data in any HDU")


def _merged_header(hdul: fits.HDUList, index: int) -> fits.Header:
    """The image HDU's header plus primary keywords it lacks (non-structural only)."""
    header = hdul[index].header.copy()
    if index > 0:
        for card in hdul[0].header.cards:
            key = card.keyword
            if key and key not in _STRUCTURAL and key not in ("COMMENT", "HISTORY", "") and key not in header:
                header.append(card, end=True)
    return header


def _scaled_float32(hdu, header: fits.Header) -> np.ndarray:
    """Physical values (stored × BSCALE + BZERO) as native float32, without astropy's scaling path."""
    raw = hdu.data
    if raw is None:
        raise FrameError("no image data")
    if isinstance(hdu, fits.CompImageHDU):
        # Compressed images are decompressed (and scaled) by astropy already.
        return np.asarray(raw, dtype=np.float32)
    bscale = float(header.get("BSCALE", 1.0) or 1.0)
    bzero = float(header.get("BZERO", 0.0) or 0.0)
    data = raw.astype(np.float32 if raw.dtype.itemsize <= 2 or raw.dtype.kind == "f" else np.float64)
    if "BLANK" in header and raw.dtype.kind in "iu":
        data[raw == header["BLANK"]] = np.nan
    if bscale != 1.0:
        data *= bscale
    if bzero != 0.0:
        data += bzero
    return np.ascontiguousarray(data, dtype=np.float32)


def read_frame(path: str | os.PathLike, hdu: int | None = None) -> Frame:
    """Read the first 2-D image of a FITS file (or HDU ``hdu``) into a Frame, read-only on disk."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FrameError(f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise FrameError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(path, mode="readonly", memmap=False, do_not_scale_image_data=True,
                           ignore_missing_simple=False) as hdul:
                index = _image_hdu_index(hdul) if hdu is None else hdu
                header = _merged_header(hdul, index)
                data = _scaled_float32(hdul[index], hdul[index].header)
    except FrameError:
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise FrameError(_one_line(exc)) from None
    if data.ndim != 2:
        raise FrameError(f"{data.ndim}-D data, not a 2-D image")
    if not np.isfinite(data).any():
        raise FrameError("no finite pixel (all NaN/Inf)")
    kind, guessed = classify(header, path.name, data)
    notes = header_notes(header, data)
    if guessed:
        notes.insert(0, _guess_note(header, kind))
    return Frame(data=data, header=header, kind=kind, path=path, name=path.name, guessed=guessed, notes=notes)


def _guess_note(header: fits.Header, kind) -> str:
    if kind.value == "unknown":
        if "EXPTIME" not in header and "EXPOSURE" not in header:
            return "no frame type and no exposure in the header: unclassified (set its type to use it)"
        return "no recognised frame type in the header: unclassified (set its type to use it)"
    return f"type guessed as {kind.value} from the file name or exposure"


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = text.lower()
    if "truncated" in lowered or "buffer is too small" in lowered or "cannot reshape" in lowered:
        return "truncated file: data shorter than the header says"
    if "no simple card" in lowered or "empty or corrupt" in lowered or "header missing end" in lowered:
        return "not a FITS file (no valid header)"
    return text[:200]


def iter_fits_paths(folder: str | os.PathLike) -> list[Path]:
    """FITS-like files below ``folder`` (recursive), sorted by path."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and is_fits_name(p))


def read_frames(paths: Iterable[str | os.PathLike]) -> tuple[list[Frame], list[Problem]]:
    """Read every path; unusable files become Problems instead of exceptions."""
    frames: list[Frame] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            frames.append(read_frame(path))
        except FrameError as exc:
            problems.append(Problem(Path(path), str(exc)))
    return frames, problems


def scan_folder(folder: str | os.PathLike) -> tuple[list[Frame], list[Problem]]:
    """Read every FITS file below ``folder``; returns the usable frames and the quarantined files."""
    return read_frames(iter_fits_paths(folder))


def _output_header(frame: Frame) -> fits.Header:
    header = fits.Header()
    for card in frame.header.cards:
        if card.keyword in _STRUCTURAL or card.keyword.startswith("Z") and card.keyword[1:] in (
                "IMAGE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "CMPTYPE", "TILE1", "TILE2"):
            continue
        header.append(card, end=True)
    return header


def write_frame(frame: Frame, path: str | os.PathLike, overwrite: bool = False,
                protect: Iterable[str | os.PathLike] = ()) -> Path:
    """Write ``frame`` as float32 FITS atomically; refuse to replace any path in ``protect``."""
    from .. import __version__

    path = Path(path)
    for other in protect:
        if path.exists() and Path(other).exists() and os.path.samefile(path, other):
            raise FileExistsError(f"refusing to overwrite input file {path}")
    if frame.path is not None and path.exists() and os.path.samefile(path, frame.path):
        raise FileExistsError(f"refusing to overwrite input file {path}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (choose another folder or allow overwriting)")
    header = _output_header(frame)
    add_history(header, f"Written by ccdgui {__version__}")
    hdu = fits.PrimaryHDU(data=np.ascontiguousarray(frame.data, dtype=np.float32), header=header)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                hdu.writeto(handle, output_verify="silentfix")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path
