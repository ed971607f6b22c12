"""Row sources: the pixels of a frame read band by band as native float32 physical values.

:class:`RawRows` reads an uncompressed FITS image from its file; :class:`ProcessedRows` applies
calibration steps to such rows as they are read. Both offer ``shape``, ``read_into(start, stop, out)``,
``rows[a:b]``, ``read()``, ``read_raw(start, stop)`` (the stored bytes), ``decode`` (how the compiled
combine kernel decodes those bytes, or None) and ``close()``.

Stored values become physical values one way only (:class:`Decoding`, mirrored by ``decode_values`` in
_stack.c): float32(float64(stored) × BSCALE + BZERO), multiplied then added in double precision, BLANK →
NaN for integers; uint64 (BITPIX 64, BZERO 2**63) exactly.

Reads are thread-safe: positioned reads on descriptors of a small process-wide pool
(:class:`DescriptorPool`), bounded whatever the number of frames; a descriptor is counted while it is
read and never closed under a reader, so ``close()`` is safe from any thread at any time.

No Qt, no astropy.
"""

from __future__ import annotations

import errno
import itertools
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np


class FrameError(Exception):
    """A file cannot be used as a frame; ``str(error)`` is a one-line reason for the user."""


#: BZERO of unsigned 64-bit integers stored as signed ones (FITS convention).
UINT64_BZERO = 2.0 ** 63
#: Values per float64 working block of :meth:`Decoding.into` (keeps the temporary small and in cache).
_BLOCK = 1 << 15
#: Kernel kinds (_stack.c) by stored dtype.str; "L" is >i8 holding uint64 − 2**63.
_KERNEL_KINDS = {"<f4": "f", ">f4": "F", ">f8": "D", ">i2": "h", ">i4": "i", ">i8": "l", "|u1": "B"}


class Decoding:
    """How stored values become physical float32 values: float32(float64(stored) × bscale + bzero),
    BLANK → NaN for integers. Fast paths only where the result is provably the same: floats with
    bscale 1 and bzero 0 are converted directly; integers of at most 16 bits with bscale 1 and an integer
    bzero (|bzero| ≤ 2**24 − 2**16), and 32-bit integers with bscale 1 and bzero 0, in float32, where every
    intermediate is exact or rounded once as in double. uint64 (int64 with bzero 2**63, bscale 1) is
    reinterpreted as unsigned (stored XOR 2**63), then rounded to float64 and float32 as any int64."""

    __slots__ = ("stored", "bscale", "bzero", "blank", "mode")

    def __init__(self, stored: np.dtype | str, bscale: float = 1.0, bzero: float = 0.0,
                 blank: int | None = None) -> None:
        self.stored = np.dtype(stored)
        self.bscale, self.bzero = float(bscale), float(bzero)
        integer = self.stored.kind in "iu"
        if not integer or blank is None or not (np.iinfo(self.stored).min <= int(blank) <= np.iinfo(
                self.stored).max):
            blank = None  # floats have no BLANK; an out-of-range one never matches
        self.blank = None if blank is None else int(blank)
        unit = self.bscale == 1.0
        if not integer:
            self.mode = "convert" if unit and self.bzero == 0.0 else "double"
        elif unit and self.stored.kind == "i" and self.stored.itemsize == 8 and self.bzero == UINT64_BZERO:
            self.mode = "uint64"
        elif unit and ((self.stored.itemsize <= 2 and self.bzero.is_integer()
                        and abs(self.bzero) <= 2 ** 24 - 2 ** 16)
                       or (self.stored.itemsize <= 4 and self.bzero == 0.0)):
            self.mode = "single"
        else:
            self.mode = "double"

    @classmethod
    def from_header(cls, stored: np.dtype | str, header: Mapping) -> Decoding:
        """The decoding a FITS header gives stored values (a BSCALE of 0 counts as absent, as before)."""
        blank = header.get("BLANK")
        blank = blank if isinstance(blank, (int, np.integer)) and not isinstance(blank, bool) else None
        return cls(stored, float(header.get("BSCALE", 1.0) or 1.0), float(header.get("BZERO", 0.0) or 0.0),
                   blank)

    @property
    def kernel(self) -> tuple[str, float, float, int | None] | None:
        """(kind, bscale, bzero, blank) for the compiled kernel, or None where it cannot decode."""
        kind = _KERNEL_KINDS.get(self.stored.str) if sys.byteorder == "little" else None
        if kind is None:
            return None
        if self.mode == "uint64":
            return "L", 1.0, 0.0, self.blank
        return kind, self.bscale, self.bzero, self.blank

    def to_float32(self, raw: np.ndarray) -> np.ndarray:
        """Physical values of ``raw`` (stored values) as a new native float32 array."""
        out = np.empty(raw.shape, dtype=np.float32)
        self.into(raw, out)
        return out

    def into(self, raw: np.ndarray, out: np.ndarray) -> None:
        """Physical values of ``raw`` (stored values of this dtype) into ``out`` (float32, same shape)."""
        if raw.shape != out.shape:
            raise ValueError(f"stored values {raw.shape} do not fit an output of {out.shape}")
        if self.mode == "convert" or self.mode == "single":
            np.copyto(out, raw, casting="unsafe")
            if self.mode == "single" and self.bzero != 0.0:
                out += np.float32(self.bzero)
        elif raw.ndim == 0 or raw.shape[0] == 0:
            self._double(raw, out)
        else:
            step = max(1, _BLOCK // max(1, raw[0].size))  # leading-axis slices: any memory layout
            for start in range(0, raw.shape[0], step):
                self._double(raw[start:start + step], out[start:start + step])
        if self.blank is not None:
            out[raw == self.blank] = np.nan

    def _double(self, raw: np.ndarray, out: np.ndarray) -> None:
        if self.mode == "uint64":  # stored + 2**63 is stored with its top bit flipped, as unsigned
            flipped = raw.astype(np.int64) ^ np.int64(-2 ** 63)
            np.copyto(out, flipped.view(np.uint64).astype(np.float64), casting="same_kind")
        elif self.bscale == 1.0:  # x × 1 is x exactly: one pass, added in double, rounded once into out
            np.add(raw, self.bzero, out=out, dtype=np.float64, casting="unsafe")
        else:  # multiply, then add: what _stack.c does (no fused multiply-add)
            work = np.multiply(raw, self.bscale, dtype=np.float64)
            np.add(work, self.bzero, out=out, casting="same_kind")


def read_at(fd: int, size: int, offset: int) -> bytes:
    """``size`` bytes from ``offset`` of an open file with positioned reads (fewer only at its end)."""
    pieces = []
    while size > 0:
        piece = os.pread(fd, size, offset)
        if not piece:
            break
        pieces.append(piece)
        size -= len(piece)
        offset += len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _Descriptor:
    __slots__ = ("fd", "users", "retired")

    def __init__(self, fd: int) -> None:
        self.fd, self.users, self.retired = fd, 0, False


class DescriptorPool:
    """Read-only descriptors shared by row sources, one per source (``key``), at most ``limit`` kept open
    when idle (default: a quarter of the process's limit on open files, read at each open, 4 to 256), the
    least recently used closed first: a stack of any number of frames needs at most ``limit`` plus one
    per reading thread; when the system refuses an open, idle descriptors are closed and it is tried
    once more. A descriptor is counted while it is read; one retired by
    :meth:`close` or eviction is closed by its last reader, so it is never closed (and its number
    reused by another file) under a read. Opening costs about 3 µs on Linux, a band read tens to
    hundreds: kept descriptors save most of that for stacks up to ``limit`` frames."""

    def __init__(self, limit: int | None = None) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._open: OrderedDict[int, _Descriptor] = OrderedDict()  # least recently used first

    def read(self, key: int, path: str | os.PathLike, size: int, offset: int) -> bytes:
        """``size`` bytes from ``offset`` of the file ``path`` (opened for ``key`` unless it is open)."""
        entry = self._acquire(key, path)
        try:
            return read_at(entry.fd, size, offset)
        finally:
            self._release(entry)

    def close(self, key: int) -> None:
        """Close ``key``'s descriptor now, or when its last reader is done."""
        with self._lock:
            entry = self._open.pop(key, None)
            if entry is not None:
                entry.retired = True
                if entry.users == 0:
                    os.close(entry.fd)

    @property
    def limit(self) -> int:
        return max(1, self._limit) if self._limit is not None else _files_limit()

    @property
    def open_count(self) -> int:
        """Descriptors held (idle or in use)."""
        with self._lock:
            return len(self._open)

    def _acquire(self, key: int, path: str | os.PathLike) -> _Descriptor:
        with self._lock:
            entry = self._open.get(key)
            if entry is not None:
                entry.users += 1
                self._open.move_to_end(key)
                return entry
        try:  # unlocked: a slow disk stalls no one
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):
                raise
            with self._lock:
                self._evict(0)
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        limit = self.limit
        with self._lock:
            entry = self._open.get(key)
            if entry is None:  # else another thread opened it meanwhile: use that one
                entry, fd = _Descriptor(fd), -1
                self._open[key] = entry
                self._evict(limit)
            entry.users += 1
            self._open.move_to_end(key)
        if fd >= 0:
            os.close(fd)
        return entry

    def _release(self, entry: _Descriptor) -> None:
        with self._lock:
            entry.users -= 1
            if entry.retired and entry.users == 0:
                os.close(entry.fd)

    def _evict(self, limit: int) -> None:
        """Close idle descriptors, least recently used first, down to ``limit`` (lock held)."""
        excess = len(self._open) - limit
        if excess <= 0:
            return
        idle = [key for key, entry in self._open.items() if entry.users == 0][:excess]
        for key in idle:
            entry = self._open.pop(key)
            entry.retired = True
            os.close(entry.fd)


try:
    import resource
except ImportError:  # pragma: no cover - not POSIX
    resource = None


def _files_limit() -> int:
    """A quarter of the soft limit on open files now (4 to 256): room left for everything else."""
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (AttributeError, OSError, ValueError):
        return 64
    return 256 if soft == resource.RLIM_INFINITY else max(4, min(256, soft // 4))


#: The descriptors of every RawRows of this process.
POOL = DescriptorPool()
_KEYS = itertools.count()


class RawRows:
    """Rows of an uncompressed image in a file, read on demand with positioned reads and returned as
    native float32 physical values (:class:`Decoding`).

    No memory map: resident memory is only the rows asked for, so a combine can stream a stack of any
    length band by band, from any number of threads; descriptors come from :data:`POOL` (the file opened
    first is read until ``close()``).
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, path: str | os.PathLike, offset: int, stored: np.dtype | str, shape: tuple[int, int],
                 bscale: float = 1.0, bzero: float = 0.0, blank: int | None = None) -> None:
        self.path = Path(path)
        self.offset = int(offset)
        self.shape = (int(shape[0]), int(shape[1]))
        self.decoding = Decoding(stored, bscale, bzero, blank)
        self.decode = self.decoding.kernel  # asked for every band of a combine: worked out once
        self._key = next(_KEYS)

    @property
    def stored(self) -> np.dtype:
        return self.decoding.stored

    @property
    def blank(self) -> int | None:
        return self.decoding.blank

    @property
    def nbytes_stored(self) -> int:
        return self.shape[0] * self.shape[1] * self.stored.itemsize

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("RawRows supports contiguous row slices only")
        start, stop, _ = key.indices(self.shape[0])
        return self._read(start, max(start, stop))

    def read(self) -> np.ndarray:
        """The whole image (its descriptor closed after)."""
        try:
            return self._read(0, self.shape[0])
        finally:
            self.close()

    def close(self) -> None:
        """Release the descriptor (the next read opens the file again); safe from any thread, any time."""
        POOL.close(self._key)

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, self.shape[1]), dtype=np.float32)
        self.read_into(start, stop, out)
        return out

    def read_raw(self, start: int, stop: int) -> bytes:
        """Rows start…stop as stored in the file (one positioned read)."""
        row_bytes = self.shape[1] * self.stored.itemsize
        want = (stop - start) * row_bytes
        buffer = POOL.read(self._key, self.path, want, self.offset + start * row_bytes)
        if len(buffer) != want:
            raise FrameError("truncated file: data shorter than the header says")
        return buffer

    def read_into(self, start: int, stop: int, out: np.ndarray) -> None:
        """Rows start…stop decoded straight into ``out`` (float32, shape (stop − start, nx))."""
        raw = np.frombuffer(self.read_raw(start, stop), dtype=self.stored)
        self.decoding.into(raw.reshape(stop - start, self.shape[1]), out)


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
    """File rows (:class:`RawRows`) with calibration steps applied band by band, in place, as they are
    read — the same float32 operations as the verbs on a whole frame. A frame that only had masters
    applied stays on disk and can be combined from its file; the compiled combine kernel decodes
    ``read_raw`` bytes and subtracts ``offset_rows`` itself when the only step is one subtraction."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, rows: RawRows, steps: tuple = ()) -> None:
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
        """The band of the one image subtracted (with ``decode``: what the kernel subtracts itself)."""
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
