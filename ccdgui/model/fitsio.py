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

import math
import os
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from .compressed import check_declared, check_gzip
from .files import FITS_SUFFIXES, is_fits_name, iter_fits_paths  # noqa: F401  (part of this API)
from .frame import Frame, add_history, shown_value
from .library import classify, header_notes
from .rows import Decoding, FrameError, RawRows

# Cards describing the stored array; they are rewritten for float32 output and never inherited.
_STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "PCOUNT",
               "GCOUNT", "BZERO", "BSCALE", "BLANK", "BUNIT_ORIG", "CHECKSUM", "DATASUM", "EXTNAME",
               "EXTVER", "NEXTEND", "DATAMIN", "DATAMAX", "TFIELDS"}


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
    if 1 in seen:
        raise FrameError("1-D spectrum/profile, not a 2-D image")
    raise FrameError("no image data in any HDU")


#: Keywords whose values ccdgui reads (model and window); the cards of these are made readable.
_READ_KEYS = ("IMAGETYP", "FRAMETYP", "OBSTYPE", "FRAME", "EXPTIME", "EXPOSURE", "XBINNING", "YBINNING",
              "SET-TEMP", "CCD-TEMP", "FILTER", "DATE-OBS", "GAIN", "RDNOISE", "BSCALE", "BZERO", "BLANK",
              "BIASSEC", "TRIMSEC", "DATASEC", "BAYERPAT", "XBAYROFF", "YBAYROFF", "CCDGPROD", "OBJECT",
              "INSTRUME", "EXTNAME", "EXTVER")


def _readable(header: fits.Header) -> None:
    """Make the values ccdgui reads readable: a card astropy cannot parse (an unquoted NAN or INF) raises
    VerifyError wherever it is read, so it is fixed here to the text it holds (which no check accepts).
    Only :data:`_READ_KEYS` are parsed (parsing all cards costs a third of a header read); the others
    are fixed by astropy when an output is written (``output_verify="silentfix"``)."""
    for key in _READ_KEYS:
        if key not in header:
            continue
        card = header.cards[key]
        try:
            card.value  # noqa: B018 - parsing is the check
        except fits.VerifyError:
            try:
                card.verify("fix")  # 'NAN' as a string
                card.value  # noqa: B018
            except (fits.VerifyError, ValueError):
                header[key] = ""


def _check_scaling(header: fits.Header) -> None:
    """FrameError unless BSCALE and BZERO, where present, are finite numbers and BSCALE is not 0 (NaN or
    infinite scaling would give a frame of NaN, a BSCALE of 0 one of constants)."""
    for key in ("BSCALE", "BZERO"):
        if key not in header:
            continue
        try:
            number = float(header[key])
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if not math.isfinite(number) or (key == "BSCALE" and number == 0.0):
            raise FrameError(f"{key} = {shown_value(header[key])} is not a usable pixel scaling")


def _merged_header(hdul: fits.HDUList, index: int) -> fits.Header:
    """The image HDU's header plus primary keywords it lacks (non-structural only)."""
    header = hdul[index].header.copy()
    if index > 0:
        for card in hdul[0].header.cards:
            key = card.keyword
            if key and key not in _STRUCTURAL and key not in ("COMMENT", "HISTORY", "") and key not in header:
                header.append(card, end=True)
    return header


def _set_unit(header: fits.Header) -> None:
    """Give ``header`` a BUNIT that astropy reads (``CCDData.read(path)`` needs one): the frame's own when
    astropy can read it, else 'adu', ccdgui never applying a gain (an unreadable one goes to HISTORY)."""
    import astropy.units as u

    if "BUNIT" in header:
        text = str(header["BUNIT"]).strip()
        try:
            u.Unit("adu" if text.lower() == "adu" else text)
            return
        except (ValueError, TypeError):
            add_history(header, f"BUNIT {shown_value(header['BUNIT'])} is not a unit astropy reads: "
                        "written as adu")
    header["BUNIT"] = ("adu", "pixel values in ADU (no gain applied)")


def _scaled_float32(hdu, header: fits.Header) -> np.ndarray:
    """Physical values as native float32, decoded as file rows are (rows.Decoding), not by astropy."""
    raw = hdu.data
    if raw is None:
        raise FrameError("no image data")
    if isinstance(hdu, fits.CompImageHDU):
        # Compressed images are decompressed (and scaled) by astropy already.
        return np.asarray(raw, dtype=np.float32)
    return Decoding.from_header(raw.dtype, header).to_float32(raw)


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
    decoding = Decoding.from_header(stored, header)
    return RawRows(path, offset, decoding.stored, (int(header["NAXIS2"]), int(header["NAXIS1"])),
                   decoding.bscale, decoding.bzero, decoding.blank)


def _open_image(path: Path, hdu: int | None, work):
    """``(work(hdul, index), file size)`` for the image HDU of a file opened read-only (the first 2-D
    image unless ``hdu`` is given), with astropy's scaling off; every failure becomes a FrameError."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FrameError(f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise FrameError("empty file (0 bytes)")
    gzipped = check_gzip(path)  # a gzip bomb is refused before astropy inflates it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(path, mode="readonly", memmap=False, do_not_scale_image_data=True) as hdul:
                index = _image_hdu_index(hdul) if hdu is None else hdu
                for header in {id(h): h for h in (hdul[0].header, hdul[index].header)}.values():
                    _readable(header)
                if gzipped or isinstance(hdul[index], fits.CompImageHDU):
                    check_declared(hdul[index].header)  # astropy would inflate the image whole
                return work(hdul, index), size
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
        _check_scaling(hdul[index].header)
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
        _check_scaling(hdul[index].header)
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
    _set_unit(header)
    return header


def _read_umask() -> int:
    """The process's umask (read by setting it and restoring it: once, at import, not per thread)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _write_hdu(hdu: fits.PrimaryHDU, handle) -> None:
    """The HDU's header, data and padding, written by plain writes (astropy's own writer hides a full
    disk's ENOSPC behind an AttributeError, so an OSError here is the real one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        hdu.verify("silentfix")
        text = hdu.header.tostring()
    handle.write(text.encode("ascii"))
    data = np.ascontiguousarray(hdu.data)
    handle.write(memoryview(data).cast("B"))
    handle.write(b"\0" * (-data.nbytes % 2880))


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
            _write_hdu(hdu, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs follow the umask
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path
