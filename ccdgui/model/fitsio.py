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
import sys
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from .files import FITS_SUFFIXES, is_fits_name, iter_fits_paths  # noqa: F401  (part of this API)
from .frame import Frame, add_history
from .library import classify, header_notes

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


#: Stored dtypes the compiled combine kernel decodes itself (ccdgui/model/_stack.c), by dtype.str.
_KERNEL_KINDS = {"<f4": "f", ">f4": "F", ">f8": "D", ">i2": "h", ">i4": "i", "|u1": "B"}


class RawRows:
    """Rows of an uncompressed image in a file, read on demand with positioned reads and returned as
    native float32 physical values (× BSCALE + BZERO, BLANK → NaN).

    No memory map: resident memory is only the rows asked for, so a combine can stream a stack of any
    length band by band. Supports ``rows[start:stop]`` and ``read()``.
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, path: str | os.PathLike, offset: int, stored: np.dtype, shape: tuple[int, int],
                 bscale: float = 1.0, bzero: float = 0.0, blank: int | None = None) -> None:
        self.path = Path(path)
        self.offset = int(offset)
        self.stored = np.dtype(stored)
        self.shape = (int(shape[0]), int(shape[1]))
        self.bscale, self.bzero, self.blank = float(bscale), float(bzero), blank
        self._fd: int | None = None  # kept open between band reads; close() releases it
        self.decode = self._kernel_decode()  # asked for every band of a combine: worked out once

    @property
    def nbytes_stored(self) -> int:
        return self.shape[0] * self.shape[1] * self.stored.itemsize

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("RawRows supports contiguous row slices only")
        start, stop, _ = key.indices(self.shape[0])
        return self._read(start, max(start, stop))

    def read(self) -> np.ndarray:
        try:
            return self._read(0, self.shape[0])
        finally:
            self.close()

    def close(self) -> None:
        """Release the open file (the next read opens it again)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.close()

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, self.shape[1]), dtype=np.float32)
        self.read_into(start, stop, out)
        return out

    def _kernel_decode(self) -> tuple[str, float, float, int | None] | None:
        """How the compiled combine kernel decodes ``read_raw`` bytes: (kind, BSCALE, BZERO, BLANK), or
        None for a storage it does not know (numpy converts those)."""
        kind = _KERNEL_KINDS.get(self.stored.str) if sys.byteorder == "little" else None
        if kind is None:
            return None
        return kind, self.bscale, self.bzero, self.blank if self.stored.kind in "iu" else None

    def read_raw(self, start: int, stop: int) -> bytes:
        """Rows start…stop as stored in the file (one positioned read)."""
        row_bytes = self.shape[1] * self.stored.itemsize
        want = (stop - start) * row_bytes
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        buffer = os.pread(self._fd, want, self.offset + start * row_bytes)
        if len(buffer) != want:
            raise FrameError("truncated file: data shorter than the header says")
        return buffer

    def read_into(self, start: int, stop: int, out: np.ndarray) -> None:
        """Rows start…stop converted straight into ``out`` (float32, shape (stop − start, nx))."""
        buffer = self.read_raw(start, stop)
        raw = np.frombuffer(buffer, dtype=self.stored).reshape(stop - start, self.shape[1])
        np.copyto(out, raw, casting="unsafe")
        if self.blank is not None and raw.dtype.kind in "iu":
            out[raw == self.blank] = np.nan
        if self.bscale != 1.0:
            out *= np.float32(self.bscale)
        if self.bzero != 0.0:
            out += np.float32(self.bzero)


def _raw_rows(path: Path, hdul: fits.HDUList, index: int) -> RawRows | None:
    """A row reader for an uncompressed, un-gzipped image HDU, else None."""
    hdu = hdul[index]
    if isinstance(hdu, fits.CompImageHDU) or path.name.lower().endswith((".gz", ".fz", ".bz2", ".zip")):
        return None
    header = hdu.header
    bitpix = int(header["BITPIX"])
    stored = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}.get(bitpix)
    if stored is None:
        return None
    offset = hdul.fileinfo(index)["datLoc"]
    blank = header.get("BLANK") if bitpix > 0 else None
    return RawRows(path, offset, np.dtype(stored), (int(header["NAXIS2"]), int(header["NAXIS1"])),
                   float(header.get("BSCALE", 1.0) or 1.0), float(header.get("BZERO", 0.0) or 0.0), blank)


def _open_image(path: Path, hdu: int | None, work):
    """``(work(hdul, index), file size)`` for the image HDU of a file opened read-only (the first 2-D
    image unless ``hdu`` is given), with astropy's scaling off; every failure becomes a FrameError."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FrameError(f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise FrameError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(path, mode="readonly", memmap=False, do_not_scale_image_data=True) as hdul:
                return work(hdul, _image_hdu_index(hdul) if hdu is None else hdu), size
    except FrameError:
        raise
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise FrameError(_one_line(exc)) from None


def image_hdus(path: str | os.PathLike) -> list[tuple[int, str]]:
    """The 2-D images in a file: (HDU index, "index: EXTNAME,EXTVER  NX×NY") each, for choosing one."""
    def listing(hdul: fits.HDUList, _index: int):
        found = []
        for index, hdu in enumerate(hdul):
            if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
                continue
            try:
                ny, nx = _image_shape(hdu)
            except (KeyError, ValueError):
                continue
            if hdu.header.get("ZNAXIS", hdu.header.get("NAXIS", 0)) == 2 and nx and ny:
                name = ",".join(str(hdu.header[k]) for k in ("EXTNAME", "EXTVER") if k in hdu.header)
                found.append((index, f"{index}: {name or 'primary' if index == 0 else name}  {nx}×{ny}"))
        return found

    return _open_image(Path(path), None, listing)[0]


def read_header_frame(path: str | os.PathLike, hdu: int | None = None) -> Frame:
    """A lazy Frame from the headers alone (classified, with notes); pixels are read on first use, and
    an uncompressed image can be streamed by rows. A folder of hundreds of frames lists in about a
    second. Problems found only in the pixels (all NaN) raise FrameError when they are read."""
    path = Path(path)

    def inspect(hdul: fits.HDUList, index: int):
        return index, _merged_header(hdul, index), _raw_rows(path, hdul, index), _image_shape(hdul[index])

    (index, header, rows, shape), size = _open_image(path, hdu, inspect)
    if rows is not None and rows.offset + rows.nbytes_stored > size:
        raise FrameError("truncated file: data shorter than the header says")
    kind, guessed = classify(header, path.name)
    notes = header_notes(header)
    if guessed:
        notes.insert(0, _guess_note(header, kind))
    frame = Frame(header=header, kind=kind, path=path, name=path.name, guessed=guessed, notes=notes,
                  loader=lambda: _pixels(path, index, rows), shape=shape, rows=rows)
    frame.hdu = index
    return frame


def _image_shape(hdu) -> tuple[int, int]:
    header = hdu.header
    if isinstance(hdu, fits.CompImageHDU) and "ZNAXIS1" in header:  # astropy shows the table's header
        return int(header["ZNAXIS2"]), int(header["ZNAXIS1"])
    return int(header["NAXIS2"]), int(header["NAXIS1"])  # astropy 8: the image's own header


def _pixels(path: Path, index: int, rows: RawRows | None) -> np.ndarray:
    """A lazy frame's pixels: straight from the file's rows when it is uncompressed (no second header
    parse), else through astropy; all-NaN data is refused as at intake."""
    if rows is None:
        return read_frame(path, hdu=index).data
    data = rows.read()
    with np.errstate(over="ignore", invalid="ignore"):
        surely_finite = bool(np.isfinite(data.sum()))  # one cheap pass settles the usual case
    if not surely_finite and not np.isfinite(data).any():
        raise FrameError("no finite pixel (all NaN/Inf)")
    return data


def read_frame(path: str | os.PathLike, hdu: int | None = None) -> Frame:
    """Read the first 2-D image of a FITS file (or HDU ``hdu``) into a Frame, read-only on disk."""
    path = Path(path)

    def load(hdul: fits.HDUList, index: int):
        return index, _merged_header(hdul, index), _scaled_float32(hdul[index], hdul[index].header)

    (index, header, data), _ = _open_image(path, hdu, load)
    if data.ndim != 2:
        raise FrameError(f"{data.ndim}-D data, not a 2-D image")
    if not np.isfinite(data).any():
        raise FrameError("no finite pixel (all NaN/Inf)")
    kind, guessed = classify(header, path.name, data)
    notes = header_notes(header, data)
    if guessed:
        notes.insert(0, _guess_note(header, kind))
    frame = Frame(data=data, header=header, kind=kind, path=path, name=path.name, guessed=guessed,
                  notes=notes)
    frame.hdu = index
    return frame


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


def read_frames(paths: Iterable[str | os.PathLike], lazy: bool = False, hdus: dict[str, int] | None = None,
                ) -> tuple[list[Frame], list[Problem]]:
    """Read every path (headers only when ``lazy``; the HDU ``hdus`` names for a file name, else its
    first 2-D image); unusable files become Problems, not exceptions."""
    frames: list[Frame] = []
    problems: list[Problem] = []
    reader = read_header_frame if lazy else read_frame
    for path in paths:
        try:
            chosen = (hdus or {}).get(Path(path).name)
            frames.append(reader(path) if chosen is None else reader(path, hdu=chosen))
        except FrameError as exc:
            problems.append(Problem(Path(path), str(exc)))
    return frames, problems


def scan_folder(folder: str | os.PathLike, lazy: bool = False) -> tuple[list[Frame], list[Problem]]:
    """Read every FITS file below ``folder``; returns the usable frames and the quarantined files."""
    return read_frames(iter_fits_paths(folder), lazy=lazy)


def check_pixels(frames: Iterable[Frame]) -> tuple[list[Frame], list[Problem]]:
    """Read each lazy frame's pixels once (one at a time, released after) and quarantine the ones that
    cannot be used (all NaN, truncated); frames already in memory pass."""
    good: list[Frame] = []
    problems: list[Problem] = []
    for frame in frames:
        if frame.loaded or _cannot_hold_nan(frame):
            good.append(frame)
            continue
        try:
            frame.data  # noqa: B018 - reading is the check
            good.append(frame)
        except (FrameError, ValueError) as exc:  # ValueError: pixels not of the header's shape
            problems.append(Problem(frame.path or Path(frame.name), str(exc)))
        finally:
            frame.release()
    return good, problems


def sample_pixels(frame: Frame, rows: int = 64) -> np.ndarray:
    """Pixels of a frame on a sparse grid of rows, read from the file when the frame is not in memory
    (enough for a median or display levels without loading a big frame)."""
    source = frame.rows
    if frame.loaded or not isinstance(source, RawRows):
        return frame.data
    ny = frame.shape[0]
    picks = np.unique(np.linspace(0, ny - 1, min(rows, ny)).astype(int))
    try:
        return np.concatenate([source[y:y + 1] for y in picks])
    finally:
        source.close()


def _cannot_hold_nan(frame: Frame) -> bool:
    """Whether a frame on disk surely has a finite pixel without reading it all: integer pixels with no
    BLANK value always do; otherwise a finite value among a few sampled rows proves it."""
    rows = frame.rows
    if not isinstance(rows, RawRows):
        return False
    if rows.stored.kind in "iu" and rows.blank is None:
        return True
    try:
        for start in np.linspace(0, rows.shape[0] - 1, 8).astype(int):
            if np.isfinite(rows[start:start + 1]).any():
                return True
        return False
    except FrameError:
        return False
    finally:
        rows.close()


def spill(frame: Frame, folder: str | os.PathLike) -> Frame:
    """Write a frame's pixels to a scratch file in ``folder`` and return a lazy twin that reads them back
    (whole or by rows): keeps memory flat while a long stack of processed frames waits to be combined."""
    data = np.ascontiguousarray(frame.data, dtype=np.float32)
    fd, name = tempfile.mkstemp(prefix="stack-", suffix=".f32", dir=folder)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data.tobytes())
    rows = RawRows(name, 0, np.dtype(np.float32), data.shape)
    return Frame(header=frame.header, kind=frame.kind, path=None, name=frame.name, guessed=frame.guessed,
                 notes=frame.notes, loader=rows.read, shape=data.shape, rows=rows)


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
    # a big-endian copy: astropy would otherwise byteswap the frame's own pixels in place while writing
    hdu = fits.PrimaryHDU(data=frame.data.astype(">f4"), header=header)
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
