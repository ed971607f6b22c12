"""The master library: masters built once and used on other nights, indexed in an SQLite database.

The database (standard library :mod:`sqlite3`) lives in the user's data folder unless ``CCDGUI_LIBRARY``
or ``--library PATH`` names another file; the master files it indexes are copied into the folder
``masters/`` beside it, so a reduction's output folder can be deleted without breaking the library.
Each entry records what matching needs (kind, camera, size, binning, gain, offset, readout mode,
temperatures, exposure, filter, date, frames combined), QA figures found in the header (``QA*``
keywords), the file's sha256 and where it came from. Only headers are read; files are copied, never
modified.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import fitsio, library
from .files import iter_fits_paths, sha256_of
from .frame import Frame, FrameKind, _float_or_none

ENV_VAR = "CCDGUI_LIBRARY"
DB_NAME = "library.sqlite"
KINDS = ("bias", "dark", "flat")
SCHEMA_VERSION = 1
_MASTER_KIND = {FrameKind.MASTER_BIAS: "bias", FrameKind.MASTER_DARK: "dark", FrameKind.MASTER_FLAT: "flat",
                FrameKind.BIAS: "bias", FrameKind.DARK: "dark", FrameKind.FLAT: "flat"}


class LibraryError(Exception):
    """A library or a file that cannot be used; ``str(error)`` is one line for the user."""


def default_path() -> Path:
    """The library database: ``$CCDGUI_LIBRARY``, else ccdgui's folder in the user's data folder
    (``$XDG_DATA_HOME`` or ~/.local/share on Linux, ~/Library/Application Support on macOS, %APPDATA%
    on Windows)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "ccdgui" / DB_NAME


@dataclass
class LibraryMaster:
    """One master of the library, as indexed (JSON round-trips: recipe.json records it)."""

    kind: str                               # bias, dark or flat
    path: str                               # the file in the library folder (absolute)
    name: str                               # its file name
    sha256: str
    origin: str = ""                        # the file it was copied from
    instrument: str | None = None
    shape: tuple[int, int] = (0, 0)         # rows, columns
    binning: tuple[int, int] = (1, 1)
    gain: str | None = None
    offset: str | None = None
    readout: str | None = None
    egain: float | None = None              # e-/ADU
    set_temp: float | None = None
    ccd_temp: float | None = None
    exptime: float | None = None
    filter: str | None = None
    date: str | None = None                 # DATE-OBS of the master (or of its first frame)
    night: str | None = None                # the evening it belongs to, YYYY-MM-DD
    ncombine: int = 1
    bias_subtracted: bool = True
    qa: dict = field(default_factory=dict)  # QA* header keywords
    bytes: int = 0
    added: str = ""
    id: int | None = None

    @property
    def temperature(self) -> float | None:
        """Set-point if known, else the measured temperature (as Frame.temperature)."""
        return self.set_temp if self.set_temp is not None else self.ccd_temp

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    @property
    def camera(self) -> str:
        return self.instrument or "unknown camera"

    def facts(self) -> library.Facts:
        return library.Facts(self.kind, self.instrument, tuple(self.shape), tuple(self.binning),
                             library.Settings(self.gain, self.offset, self.readout), self.temperature,
                             self.exptime, self.filter, self.night, self.bias_subtracted, self.ncombine)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["shape"], data["binning"] = list(self.shape), list(self.binning)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> LibraryMaster:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["shape"] = tuple(values.get("shape", (0, 0)))
        values["binning"] = tuple(values.get("binning", (1, 1)))
        return cls(**values)


# --- reading what a master is from its header ------------------------------------------------------
def kind_of_master(frame: Frame, given: str | None = None) -> str:
    """bias, dark or flat: as given, else from the header (IMAGETYP 'MASTER DARK', or a calibration
    IMAGETYP with NCOMBINE or STACKCNT > 1 or CCDGPROD = master, as ccdproc and Siril masters have),
    else from a file name saying master. LibraryError (one line) when it cannot be told or is not a
    master."""
    if given is not None:
        if given not in KINDS:
            raise LibraryError(f"kind {given!r}: one of {', '.join(KINDS)} is needed")
        return given
    product = str(frame.header.get("CCDGPROD", "")).strip().lower()
    if product == "calibrated" or frame.kind in (FrameKind.LIGHT, FrameKind.CALIBRATED):
        raise LibraryError(f"{frame.name} is a light or calibrated frame, not a master")
    if frame.kind in (FrameKind.MASTER_BIAS, FrameKind.MASTER_DARK, FrameKind.MASTER_FLAT):
        return _MASTER_KIND[frame.kind]
    ncombine = frames_combined(frame.header) or 0
    named_master = "master" in frame.name.lower()
    if frame.kind in _MASTER_KIND and (product == "master" or ncombine > 1 or named_master):
        return _MASTER_KIND[frame.kind]
    hint = library.kind_from_filename(frame.name)
    if named_master and hint in _MASTER_KIND:
        return _MASTER_KIND[hint]
    raise LibraryError(f"{frame.name}: the header does not say it is a master bias, dark or flat "
                       "(give its kind: --kind bias|dark|flat)")


def observation_date(header) -> str | None:
    """When the frames of a master were taken: DATE-OBS (or DATE-BEG, DATE-AVG), else JD or MJD-OBS
    (ccdgui's masters keep JD of their first frame), as ISO text; None when the header says nothing."""
    for key in ("DATE-OBS", "DATE-BEG", "DATE-AVG"):
        text = str(header.get(key, "")).strip()
        if text:
            return text
    for key, offset in (("MJD-OBS", 0.0), ("MJD", 0.0), ("JD", -2400000.5)):
        days = _float_or_none(header.get(key))
        if days is not None and 0 < days + offset < 200000:
            when = datetime.datetime(1858, 11, 17) + datetime.timedelta(days=days + offset)
            return when.isoformat(timespec="seconds")
    return None


def night_of_date(text: str | None) -> str | None:
    """The evening a date belongs to (a time 12 h earlier, as library.night_of), YYYY-MM-DD."""
    if not text:
        return None
    try:
        when = datetime.datetime.fromisoformat(text[:19] if "T" in text else text[:10])
    except ValueError:
        return None
    if "T" in text:
        when -= datetime.timedelta(hours=12)
    return when.date().isoformat()


def describe_file(path: str | os.PathLike, kind: str | None = None, night: str | None = None,
                  ) -> LibraryMaster:
    """The index entry of a master file, from its header (not yet in a library); ``night`` when the
    caller knows it better than the header. LibraryError when the file cannot be read or is not a
    master."""
    path = Path(path)
    try:
        frame = fitsio.read_header_frame(path)
    except (fitsio.FrameError, OSError) as exc:
        raise LibraryError(f"{path.name}: {exc}") from None
    header = frame.header
    master_kind = kind_of_master(frame, kind)
    settings = library.sensor_settings(header)
    set_temp = _plausible_temperature(header.get("SET-TEMP"))
    ccd_temp = _plausible_temperature(header.get("CCD-TEMP"))
    date = observation_date(header)
    biassub = header.get("BIASSUB", True)
    return LibraryMaster(
        kind=master_kind, path=str(path.resolve()), name=path.name, sha256=sha256_of(path),
        origin=str(path.resolve()), instrument=library.instrument_of(header), shape=tuple(frame.shape),
        binning=frame.binning, gain=settings.gain, offset=settings.offset, readout=settings.readout,
        egain=library.electrons_per_adu(header), set_temp=set_temp, ccd_temp=ccd_temp,
        exptime=0.0 if master_kind == "bias" else frame.exptime,
        filter=frame.filter if master_kind == "flat" else None, date=date,
        night=night or night_of_date(date),
        ncombine=frames_combined(header) or 1,
        bias_subtracted=bool(biassub) if isinstance(biassub, bool) else True,
        qa=qa_figures(header), bytes=path.stat().st_size)


def frames_combined(header) -> int | None:
    """NCOMBINE (ccdgui, ccdproc, IRAF), else STACKCNT (Siril): frames combined into a master."""
    for key in ("NCOMBINE", "STACKCNT"):
        number = _float_or_none(header.get(key))
        if number is not None and number >= 1:
            return int(number)
    return None


def qa_figures(header) -> dict:
    """The QA* keywords of a header (figures another step measured while building the master)."""
    found = {}
    for key in header:
        if key.startswith("QA") and key not in found:
            value = header[key]
            found[key] = value if isinstance(value, (bool, int, float)) else str(value).strip()
    return found


def _plausible_temperature(value) -> float | None:
    number = _float_or_none(value)
    return number if number is not None and -150.0 <= number <= 60.0 else None


# --- the database -------------------------------------------------------------------------------------
_COLUMNS = ("kind", "path", "name", "sha256", "origin", "instrument", "shape", "binning", "gain", "offset",
            "readout", "egain", "set_temp", "ccd_temp", "exptime", "filter", "date", "night", "ncombine",
            "bias_subtracted", "qa", "bytes", "added")
_JSON_COLUMNS = ("shape", "binning", "qa")
_SQL_TYPES = {"ncombine": "INTEGER", "bytes": "INTEGER", "egain": "REAL", "set_temp": "REAL",
              "ccd_temp": "REAL", "exptime": "REAL"}


@dataclass
class AddResult:
    """What ``add`` did: the entries added, and one line per file not added (and why)."""

    added: list[LibraryMaster] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class Library:
    """A master library: an SQLite index plus the folder of master files beside it.

    ``Library(path)`` opens (creating if needed) the database at ``path``; use as a context manager or
    call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_path()
        if self.path.exists() and self.path.is_dir():
            self.path = self.path / DB_NAME
        self.folder = self.path.parent / "masters"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._create()
        except (OSError, sqlite3.Error) as exc:
            raise LibraryError(f"cannot open the master library {self.path}: {exc}") from None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _create(self) -> None:
        columns = ", ".join(f"{c} {_SQL_TYPES.get(c, 'TEXT')}" for c in _COLUMNS)
        with self._db:
            self._db.execute(f"CREATE TABLE IF NOT EXISTS masters (id INTEGER PRIMARY KEY, {columns})")
            self._db.execute("CREATE UNIQUE INDEX IF NOT EXISTS masters_sha ON masters (sha256)")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))

    # reading -----------------------------------------------------------------------------------
    def entries(self, kind: str | None = None, camera: str | None = None) -> list[LibraryMaster]:
        """Every master (of one kind, of one camera), ordered by kind, camera and date."""
        rows = self._db.execute(f"SELECT id, {', '.join(_COLUMNS)} FROM masters").fetchall()
        found = [self._entry(row) for row in rows]
        found = [e for e in found
                 if (kind is None or e.kind == kind) and (camera is None or e.camera == camera)]
        return sorted(found, key=lambda e: (KINDS.index(e.kind), e.camera, e.night or "", e.name))

    @staticmethod
    def _entry(row) -> LibraryMaster:
        values = dict(zip(("id", *_COLUMNS), row, strict=True))
        for column in _JSON_COLUMNS:
            values[column] = json.loads(values[column]) if values[column] else None
        for column in ("egain", "set_temp", "ccd_temp", "exptime"):
            values[column] = None if values[column] is None else float(values[column])
        values["bias_subtracted"] = values["bias_subtracted"] == "1"
        values["qa"] = values["qa"] or {}
        return LibraryMaster.from_dict(values)

    def find(self, reference: str) -> LibraryMaster | None:
        """The master named by an id, a file name, or a sha256 (or a unique prefix of 8+ characters)."""
        for entry in self.entries():
            if reference == str(entry.id) or reference == entry.name or reference == entry.stem or \
                    (len(reference) >= 8 and entry.sha256.startswith(reference.lower())):
                return entry
        return None

    # changing ----------------------------------------------------------------------------------
    def add(self, paths: Iterable[str | os.PathLike], kind: str | None = None,
            nights: dict | None = None) -> AddResult:
        """Copy master files (or every FITS file below a folder) into the library and index them. A file
        already there (same sha256), unreadable or not a master is skipped with a reason. ``nights``:
        the night of some files (by path) when the caller knows it (a reduction's plan does)."""
        result = AddResult()
        nights = {str(Path(k).resolve()): v for k, v in (nights or {}).items()}
        for path in _expand(paths):
            try:
                entry = describe_file(path, kind, nights.get(str(Path(path).resolve())))
            except LibraryError as exc:
                result.skipped.append(str(exc))
                continue
            known = self._db.execute("SELECT name FROM masters WHERE sha256 = ?", (entry.sha256,)).fetchone()
            if known:
                result.skipped.append(f"{Path(path).name}: already in the library as {known[0]}")
                continue
            try:
                result.added.append(self._store(Path(path), entry))
            except (OSError, sqlite3.Error) as exc:
                result.skipped.append(f"{Path(path).name}: cannot be added: {exc}")
        return result

    def add_run(self, plan, outdir: str | os.PathLike) -> AddResult:
        """Add the masters a reduction of ``plan`` wrote into ``outdir`` (each with the night of its
        frames, which a master's header no longer states)."""
        nights, paths = {}, []
        for master in plan.masters:
            path = Path(outdir) / master.output
            if path.is_file():
                paths.append(path)
                nights[str(path)] = (master.key if isinstance(master.key, library.CameraKey)
                                     else master.key[0]).night
        return self.add(paths, nights=nights)

    def _store(self, source: Path, entry: LibraryMaster) -> LibraryMaster:
        target = self._free_name(self.folder / (entry.night or "undated") / entry.kind / source.name,
                                 entry.night)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        try:
            shutil.copyfile(source, partial)
            if sha256_of(partial) != entry.sha256:
                raise OSError(f"{source.name} changed while it was copied")
            os.chmod(partial, 0o444)  # a library master is never edited in place (check finds it if it is)
            os.replace(partial, target)
        except BaseException:  # a full disk, a changed source, Ctrl-C: no partial copy is left behind
            partial.unlink(missing_ok=True)
            raise
        entry.path, entry.name = str(target.resolve()), target.name
        entry.added = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        data = entry.to_dict()
        values = [json.dumps(data[c]) if c in _JSON_COLUMNS else
                  ("1" if data[c] else "0") if c == "bias_subtracted" else data[c] for c in _COLUMNS]
        try:
            with self._db:
                cursor = self._db.execute(f"INSERT INTO masters ({', '.join(_COLUMNS)}) VALUES "
                                          f"({', '.join('?' * len(_COLUMNS))})", values)
        except sqlite3.Error:
            target.unlink()
            raise
        entry.id = cursor.lastrowid
        return entry

    def _free_name(self, target: Path, night: str | None = None) -> Path:
        """``target``; when a file or an entry already has that name, name_NIGHT.fits, then name_2.fits,
        name_3.fits…"""
        names = {e.name for e in self.entries()}

        def taken(path: Path) -> bool:
            return path.exists() or path.name in names

        if taken(target) and night and night not in target.stem:
            target = target.with_name(f"{target.stem}_{night}{target.suffix}")
        candidate, number = target, 1
        while taken(candidate):
            number += 1
            candidate = target.with_name(f"{target.stem}_{number}{target.suffix}")
        return candidate

    def remove(self, references: Sequence[str], delete_file: bool = True,
               ) -> tuple[list[LibraryMaster], list[str]]:
        """Remove masters (by id, name or sha256 prefix) from the index, and their file from the library
        folder; (removed entries, one line per reference not found)."""
        removed, unknown = [], []
        for reference in references:
            entry = self.find(reference)
            if entry is None:
                unknown.append(f"{reference}: no such master in the library")
                continue
            with self._db:
                self._db.execute("DELETE FROM masters WHERE id = ?", (entry.id,))
            path = Path(entry.path)
            if delete_file and path.is_file() and path.resolve().is_relative_to(self.folder.resolve()):
                path.unlink()
            removed.append(entry)
        return removed, unknown

    def check(self) -> list[str]:
        """One line per master whose file is missing or whose sha256 differs from the index."""
        return [line for entry in self.entries() if (line := entry_problem(entry)) is not None]


def file_problem(entry: LibraryMaster) -> str | None:
    """What a look at the file alone (no reading) says is wrong with a library master: missing, or not
    the size it had when it was added; else None. :func:`entry_problem` checks its sha256."""
    path = Path(entry.path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"its file is missing ({exc.strerror or 'cannot be read'}: {path})"
    if entry.bytes and size != entry.bytes:
        return f"its file changed since it was added ({size} bytes instead of {entry.bytes})"
    return None


def entry_problem(entry: LibraryMaster) -> str | None:
    """Why a library master cannot be trusted (missing, or changed since it was added), else None."""
    path = Path(entry.path)
    try:
        actual = sha256_of(path)
    except OSError as exc:
        return f"{entry.name}: missing ({exc.strerror or 'cannot be read'}: {path})"
    if actual != entry.sha256:
        return f"{entry.name}: changed on disk since it was added (sha256 {actual[:12]}… instead of " \
               f"{entry.sha256[:12]}…)"
    return None


def _expand(paths: Iterable[str | os.PathLike]) -> list[Path]:
    found: list[Path] = []
    for path in map(Path, paths):
        found.extend(iter_fits_paths(path) if path.is_dir() else [path])
    return found


def open_entries(path: str | os.PathLike | None) -> list[LibraryMaster]:
    """The entries of the library at ``path`` (default: :func:`default_path`), or [] when there is no
    library file there (a missing default library is not an error)."""
    target = Path(path).expanduser() if path is not None else default_path()
    if target.is_dir():
        target = target / DB_NAME
    if not target.exists():
        if path is not None:
            raise LibraryError(f"no master library at {target}")
        return []
    with Library(target) as lib:
        return lib.entries()
