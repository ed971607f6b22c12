"""Reading a set of files and folders for a session: headers first, pixels only where a file could be
unusable, and a sampled median per frame for the listing. Errors are values: unusable files come back
as quarantine entries with a one-line reason."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import fitsio
from .frame import Frame
from .progress import CancelToken, Progress


@dataclass
class Intake:
    """What reading a set of files gave: usable (lazy) frames, quarantined files, and each frame's median
    from a sample of rows (by id of frame), for listing."""

    frames: list[Frame] = field(default_factory=list)
    problems: list = field(default_factory=list)
    medians: dict[int, float] = field(default_factory=dict)


def list_files(paths: Sequence) -> list[Path]:
    """The FITS files named, and those below the folders named (recursively, sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        files.extend(fitsio.iter_fits_paths(path) if path.is_dir() else [path])
    return files


def intake(paths: Sequence, cancel: CancelToken | None = None, medians: bool = True,
           hdus: dict[str, int] | None = None) -> Generator[Progress, None, Intake]:
    """Read files and folders (recursively) from their headers; vet pixels only where a file could be
    unusable; measure medians from sampled rows (for a listing) unless told not to; yield Progress per
    file. ``hdus`` maps a file name to the image HDU to use. Frames stay on disk until needed."""
    from .display import quick_median

    cancel = cancel or CancelToken()
    files = list_files(paths)
    found = Intake()
    for index, path in enumerate(files, start=1):
        cancel.check()
        frames, problems = fitsio.read_frames([path], lazy=True, hdus=hdus)
        frames, unusable = fitsio.check_pixels(frames)
        for frame in frames if medians else ():
            found.medians[id(frame)] = quick_median(fitsio.sample_pixels(frame))
        found.frames.extend(frames)
        found.problems.extend(problems + unusable)
        yield Progress(index / max(len(files), 1), f"Read {path.name}")
    return found
