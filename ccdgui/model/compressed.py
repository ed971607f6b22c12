"""Refuse a gzip-compressed FITS file that would inflate to more than it declares or than memory holds.

astropy inflates a ``.fits.gz`` (any file starting with the gzip magic) as it reads, and reads an image's
data whole: a few megabytes of compressed zeros can declare, or hold, gigabytes. Before astropy opens
such a file, :func:`check_gzip` stream-inflates just the FITS headers (a block at a time) to learn the
declared size of every HDU, and compares it with the gzip trailer's ISIZE (the inflated size mod 2**32)
and with :func:`inflate_limit`. Only when the two disagree is the rest inflated, in pieces and
discarded, to measure it.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Mapping
from typing import BinaryIO

from .rows import FrameError

BLOCK = 2880
MAX_HEADER_BLOCKS = 1000        # 36 000 cards; real headers have a few hundred
TRAILING_SLACK = 1024 * 1024    # inflated bytes past the last HDU tolerated (padding some writers add)
_PIECE = 1024 * 1024
_STRUCTURAL = {"BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "GROUPS"} | {f"NAXIS{i}" for i in range(1, 1000)}


def inflate_limit() -> int:
    """Largest inflated size accepted: half the physical memory (8 GB where it cannot be read)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, ValueError, OSError):
        return 8 * 1024 ** 3


def check_declared(header: Mapping, limit: int | None = None) -> None:
    """Raise FrameError if the HDU of ``header`` in a compressed file declares more data than ``limit``
    (default :func:`inflate_limit`): astropy would inflate it whole into memory."""
    limit = inflate_limit() if limit is None else limit
    data = declared_data_bytes(header)
    if data is not None and data > limit:
        raise FrameError(f"compressed file inflates to more than {size_text(limit)} "
                         f"(header says {size_text(data)}): more than half this computer's memory")


def size_text(nbytes: int) -> str:
    """'1.5 GB' style, for one-line reasons."""
    value = float(nbytes)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} TB"  # pragma: no cover - loop always returns


def declared_data_bytes(header: Mapping) -> int | None:
    """Bytes of data an HDU's header declares (before padding): |BITPIX|/8 × GCOUNT × (PCOUNT + ΠNAXISn),
    NAXIS1 left out for random groups; None when the structural keywords cannot be read."""
    try:
        bitpix, naxis = int(header["BITPIX"]), int(header.get("NAXIS", 0))
        axes = [int(header[f"NAXIS{i}"]) for i in range(1, naxis + 1)]
        pcount, gcount = int(header.get("PCOUNT", 0)), int(header.get("GCOUNT", 1))
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    if bitpix not in (8, 16, 32, 64, -32, -64) or naxis < 0 or min(axes + [pcount, gcount, 0]) < 0:
        return None
    if not axes:
        return 0
    if axes[0] == 0 and header.get("GROUPS") is True:
        axes = axes[1:]
    return abs(bitpix) // 8 * gcount * (pcount + math.prod(axes))


def padded(nbytes: int) -> int:
    return -(-nbytes // BLOCK) * BLOCK


def _card_value(text: str):
    """The value of a header card's text after '= ' (numbers and logicals only; anything else as text)."""
    text = text.split("/", 1)[0].strip()
    if text in ("T", "F"):
        return text == "T"
    try:
        return int(text)
    except ValueError:
        return text


def _read_header(stream: BinaryIO, first: bool) -> tuple[dict, int] | None:
    """The structural cards of the next HDU's header and its length in bytes; None at the end of the
    stream or where the next block is not a header (astropy then decides what to make of it)."""
    cards: dict = {}
    for count in range(1, MAX_HEADER_BLOCKS + 1):
        block = stream.read(BLOCK)
        if len(block) < BLOCK:
            return None
        text = block.decode("ascii", "replace")
        if count == 1 and not text.startswith("SIMPLE  =" if first else "XTENSION="):
            return None
        for start in range(0, BLOCK, 80):
            keyword = text[start:start + 8].rstrip()
            if keyword == "END":
                return cards, count * BLOCK
            if text[start + 8:start + 10] == "= " and keyword in _STRUCTURAL:
                cards[keyword] = _card_value(text[start + 10:start + 80])
    raise FrameError(f"compressed file's FITS header runs past {size_text(MAX_HEADER_BLOCKS * BLOCK)} "
                     "without END")



def _skip(stream: BinaryIO, nbytes: int) -> int:
    """Inflate and discard up to ``nbytes``; the number of bytes there were."""
    done = 0
    while done < nbytes:
        piece = stream.read(min(_PIECE, nbytes - done))
        if not piece:
            break
        done += len(piece)
    return done


def check_gzip(path: str | os.PathLike, limit: int | None = None) -> bool:
    """Whether ``path`` is gzip-compressed; raises FrameError (one line) if so and it declares more data
    than ``limit`` (default :func:`inflate_limit`) or inflates to more than its headers declare."""
    limit = inflate_limit() if limit is None else limit
    try:
        with open(path, "rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                return False
            if handle.seek(0, os.SEEK_END) < 18:  # a gzip header and trailer take 18 bytes
                raise FrameError("damaged compressed file: too short for gzip")
            handle.seek(-4, os.SEEK_END)
            isize = int.from_bytes(handle.read(4), "little")
    except OSError as exc:
        raise FrameError(f"cannot read: {exc.strerror or exc}") from None
    try:
        with open(path, "rb") as handle, gzip.GzipFile(fileobj=handle, mode="rb") as stream:
            _walk(stream, isize, limit)
    except (OSError, EOFError, zlib.error) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FrameError(f"damaged compressed file: {text[:150]}") from None
    return True


def _walk(stream: BinaryIO, isize: int, limit: int) -> None:
    declared = 0  # bytes the headers read so far account for, padding included
    first = True
    while True:
        found = _read_header(stream, first)
        if found is None:
            break
        cards, header_bytes = found
        data = declared_data_bytes(cards)
        if data is None:
            return  # astropy will refuse the header itself
        declared += header_bytes + padded(data)
        if declared > limit:
            raise FrameError(f"compressed file inflates to more than {size_text(limit)} "
                             f"(header says {size_text(declared)}): more than half this computer's memory")
        if first and declared % 2 ** 32 == isize:
            return  # the trailer agrees with the primary HDU: nothing after it
        first = False
        got = _skip(stream, padded(data))
        if got < padded(data):
            return  # truncated: astropy reports it
    extra = _skip(stream, TRAILING_SLACK + 1)
    if extra > TRAILING_SLACK:
        inflated = declared + extra
        raise FrameError(f"compressed file inflates to more than {size_text(inflated)} "
                         f"(header says {size_text(declared)})")
