"""Files on disk before any FITS parsing: which names are FITS frames, and their checksums.

Imports nothing heavy (no astropy), so a command line run can start checksumming its inputs on a
background thread while the rest of the program is still being imported.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz", ".fz", ".gz")


def is_fits_name(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(FITS_SUFFIXES) and not name.startswith(".")


def iter_fits_paths(folder: str | os.PathLike) -> list[Path]:
    """FITS-like files below ``folder`` (recursive), sorted by path."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and is_fits_name(p))


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks into one reused buffer."""
    digest = hashlib.sha256()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while size := handle.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


class Checksums:
    """sha256 of files, computed in the background from the moment this is made (hashing releases the
    GIL, so it overlaps importing, reading and combining on another core). ``of(path)`` waits for one
    file's digest (a file not given at the start is hashed then); ``close()`` drops what has not started.
    """

    def __init__(self, paths: Iterable[str | os.PathLike], workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ccdgui-sha256")
        self._digests: dict[Path, Future] = {}
        for path in paths:
            self._digests.setdefault(Path(path).resolve(), self._pool.submit(sha256_of, path))

    def of(self, path: str | os.PathLike) -> str:
        future = self._digests.get(Path(path).resolve())
        return sha256_of(path) if future is None else future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Checksums:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
