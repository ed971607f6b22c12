"""A reduction decided from headers alone: which masters to build from which frames, which masters serve
each light, and where every output goes. Pure data: planning never reads a pixel, so the window can
re-plan at every edit and ``ccdgui reduce --dry-run`` can print it; :mod:`execute` carries it out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import calibrate, library, masterlib
from .frame import Frame, FrameKind
from .masterlib import LibraryMaster
from .recipe import Recipe

#: Header keyword ccdgui writes in its products (value: "master" or "calibrated"), so that an output of
#: one run is never taken as a raw input of another.
PRODUCT_KEY = "CCDGPROD"

_RAW_KINDS = (FrameKind.BIAS, FrameKind.DARK, FrameKind.FLAT, FrameKind.LIGHT)
_COMPRESSED = (".gz", ".fz", ".bz2")


@dataclass(eq=False)
class Input:
    """One input frame as the plan saw it: its path relative to the input root, image HDU and the size
    and modification time of its file when planned (a file changed later is caught)."""

    frame: Frame
    file: str                 # path relative to the root ('/'-separated), or the name of an in-memory frame
    hdu: int | None = None
    bytes: int | None = None  # None for a frame that is not in a file
    mtime_ns: int | None = None

    @property
    def path(self) -> Path | None:
        return self.frame.path

    def to_dict(self) -> dict:
        return {"file": self.file, "hdu": self.hdu, "bytes": self.bytes, "kind": self.frame.kind.value,
                "exptime": self.frame.exptime, "filter": self.frame.filter, "shape": list(self.frame.shape)}


@dataclass(eq=False)
class MasterPlan:
    """A master to build: its inputs (each with the steps that prepare it) and its file name."""

    kind: FrameKind
    key: tuple                  # camera key, (camera, exposure) or (camera, filter)
    inputs: list[FrameSteps]
    name: str = ""
    exptime: float | None = None
    filter: str | None = None
    library: LibraryMaster | None = None  # a master of the library: read from its file, not combined
    unusable: str | None = None           # a library master whose file is missing or changed: refused
    previous: tuple[str, dict] | None = None  # the library's newest like master: (what it is, its QA*)
    _facts: library.Facts | None = field(default=None, init=False, repr=False)

    @property
    def ncombine(self) -> int:
        return len(self.inputs) if self.library is None else self.library.ncombine

    @property
    def label(self) -> str:
        """'library master_dark_300s' for a library master, else its file name."""
        return self.name if self.library is None else f"library {self.library.stem}"

    def facts(self) -> library.Facts:
        """What matching needs to know of this master (worked out once)."""
        if self._facts is None:
            self._facts = self._work_out_facts()
        return self._facts

    def _work_out_facts(self) -> library.Facts:
        if self.library is not None:
            return self.library.facts()
        camera = self.key if isinstance(self.key, library.CameraKey) else self.key[0]
        frames = [step.frame for step in self.inputs]
        temperatures = [f.temperature for f in frames if f.temperature is not None]
        return library.Facts(self.kind.value.replace("master ", ""),
                             _first(library.instrument_of(f.header) for f in frames), camera.shape,
                             camera.binning, library.Settings(*camera.settings),
                             sum(temperatures) / len(temperatures) if temperatures else None,
                             self.exptime, self.filter, camera.night, self.bias_subtracted, self.ncombine)

    @property
    def output(self) -> str:
        """Where the master is written, relative to the output folder."""
        return f"masters/{self.name}"

    @property
    def bias_subtracted(self) -> bool:
        """Whether every input has a bias removed (false for darks of a night without biases)."""
        return all(step.bias is not None or step.raw_dark is not None for step in self.inputs)


@dataclass(eq=False)
class FrameSteps:
    """What will be done to one frame: which masters it gets, and why something is missing."""

    frame: Frame
    bias: MasterPlan | None = None
    dark: MasterPlan | None = None
    raw_dark: MasterPlan | None = None  # a dark that still holds the bias (no biases in the night)
    flat: MasterPlan | None = None
    notes: list[str] = field(default_factory=list)
    skip: bool = False                  # nothing can be done (reason in notes)
    source: str = ""                    # the input's file (Input.file)
    output: str = ""                    # a light's calibrated file, relative to the output folder
    choices: dict[str, Choice] = field(default_factory=dict)  # bias/dark/flat -> the master and why

    def dark_factor(self) -> float:
        """t_frame / t_dark of the dark this frame gets (1 when none or the same exposure)."""
        dark = self.dark or self.raw_dark
        return 1.0 if dark is None else _dark_factor(self.frame, dark)

    def describe(self) -> str:
        """'bias master_bias.fits, dark master_dark_60s.fits ×0.5, flat master_flat_r.fits'."""
        parts = []
        if self.bias is not None:
            parts.append(f"bias {self.bias.label}")
        for dark in (self.dark, self.raw_dark):
            if dark is not None:
                factor = _dark_factor(self.frame, dark)
                parts.append(f"dark {dark.label}" + ("" if factor == 1.0 else f" ×{factor:.4g}"))
        if self.flat is not None:
            parts.append(f"flat {self.flat.label}")
        if not parts and "OVERSCAN" in self.frame.header:
            return "overscan only"
        return ", ".join(parts) or "nothing"


@dataclass(eq=False)
class Choice:
    """The master chosen for one frame and one kind, and why: its verdict (exact, nearby) and the facts
    that decided it, e.g. '2018-10-18, 5 days newer, −10.0 °C vs −9.8 °C: nearby'."""

    kind: str                 # bias, dark or flat
    master: MasterPlan
    verdict: str
    reason: str
    by_user: bool = False

    def describe(self) -> str:
        """'dark: library master_dark_300s (2018-10-18, 5 days newer, …: nearby)'."""
        who = ", chosen by the user" if self.by_user else ""
        return f"{self.kind}: {self.master.label} ({self.reason}{who})"

    def to_dict(self) -> dict:
        return {"master": self.master.name, "library": self.master.library is not None,
                "verdict": self.verdict, "reason": self.reason, "by_user": self.by_user}


@dataclass(eq=False)
class Candidate:
    """A master that could serve a frame, ranked: its verdict and reason, the reference the recipe's
    ``master_overrides`` takes to choose it, and whether the plan chose it."""

    master: MasterPlan
    verdict: str
    reason: str
    reference: str
    chosen: bool = False
    by_user: bool = False    # chosen through the recipe's master_overrides

    @property
    def source(self) -> str:
        return "library" if self.master.library is not None else "tonight"


@dataclass
class Plan:
    """Everything a run will do, decided from headers alone: shown before the user presses Calibrate."""

    root: Path | None = None
    inputs: list[Input] = field(default_factory=list)
    masters: list[MasterPlan] = field(default_factory=list)
    lights: list[FrameSteps] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # global problems (bad sections, unused frames)
    library_masters: list[MasterPlan] = field(default_factory=list)  # library masters the plan uses
    offered: list[MasterPlan] = field(default_factory=list)          # every library master considered
    tolerances: library.Tolerances = field(default_factory=library.Tolerances)
    prefer_library: bool = False

    @property
    def total_frames(self) -> int:
        return sum(m.ncombine for m in self.masters) + len(self.lights)

    @property
    def outputs(self) -> list[str]:
        """Every file the plan writes (relative to the output folder), masters first."""
        return [m.output for m in self.masters] + [s.output for s in self.lights if not s.skip]

    def to_dict(self) -> dict:
        """The plan as JSON-ready data (what recipe.json records and the dry run prints)."""
        def name(master: MasterPlan | None) -> str | None:
            return None if master is None else master.name

        return {
            "root": None if self.root is None else str(self.root),
            "masters": [{"name": m.name, "kind": m.kind.value, "output": m.output, "exptime": m.exptime,
                         "filter": m.filter, "inputs": [s.source for s in m.inputs],
                         "bias": name(_first(s.bias for s in m.inputs)),
                         "dark": name(_first(s.dark or s.raw_dark for s in m.inputs)),
                         "choices": {s.source: {k: c.to_dict() for k, c in s.choices.items()}
                                     for s in m.inputs if s.choices}}
                        for m in self.masters],
            "lights": [{"file": s.source, "output": None if s.skip else s.output, "bias": name(s.bias),
                        "dark": name(s.dark or s.raw_dark), "dark_scale": s.dark_factor(),
                        "flat": name(s.flat), "notes": list(s.notes),
                        "choices": {k: c.to_dict() for k, c in s.choices.items()}} for s in self.lights],
            "library_masters": [m.library.to_dict() for m in self.library_masters],  # type: ignore[union-attr]
            "notes": list(self.notes),
        }


def _first(items):
    return next((item for item in items if item is not None), None)


def input_root(frames: Sequence[Frame]) -> Path | None:
    """The deepest folder holding every frame that has a file (None when none has)."""
    folders = [str(Path(f.path).resolve().parent) for f in frames if f.path is not None]
    return Path(os.path.commonpath(folders)) if folders else None


def make_plan(frames: Sequence[Frame], recipe: Recipe, root: str | os.PathLike | None = None,
              masters: Sequence[LibraryMaster] = ()) -> Plan:
    """Group frames and decide which master serves which frame, from headers alone (no pixel is read).

    ``root``: the folder input paths are given relative to, and whose layout the calibrated frames keep
    (default: the deepest folder holding every input). ``masters``: the master library's entries; a
    frame gets one when tonight's frames make no matching master (or the recipe prefers the library, or
    the user chose it), and each choice is recorded with its reason in ``FrameSteps.choices``.
    """
    plan = Plan(root=Path(root).resolve() if root is not None else input_root(frames),
                tolerances=recipe.tolerances(), prefer_library=recipe.prefer_library)
    plan.offered = [_library_master(entry) for entry in masters]
    plan.inputs = [_input(frame, plan.root) for frame in frames]
    source = {id(i.frame): i.file for i in plan.inputs}
    prepared = []
    for frame in frames:
        ready = _prepare(_reclassified(frame, recipe), recipe, plan.notes)
        source[id(ready)] = source[id(frame)]
        prepared.append(ready)
    by_kind = library.group_by(prepared, lambda f: f.kind)
    _note_left_aside(plan, by_kind)

    def steps_for(frame: Frame, *tonight) -> FrameSteps:
        steps = _steps_for(frame, recipe, *tonight, offered=plan.offered)
        steps.source = source[id(frame)]
        return steps

    biases = {key: MasterPlan(FrameKind.MASTER_BIAS, key, [steps_for(f) for f in group], exptime=0.0)
              for key, group in library.group_by(by_kind.get(FrameKind.BIAS, []), library.camera_key).items()}
    _name_masters(biases, "master_bias", lambda key: "")

    darks = {}
    for key, group in library.group_by(by_kind.get(FrameKind.DARK, []), library.dark_key).items():
        darks[key] = MasterPlan(FrameKind.MASTER_DARK, key, [steps_for(f, biases) for f in group],
                                exptime=key[1])
    _name_masters(darks, "master_dark", lambda key: f"_{_seconds(key[1])}")
    for master in darks.values():
        if not master.bias_subtracted:
            plan.notes.append(f"{master.name}: darks combined without bias subtraction (no master bias "
                              f"for {library.describe_camera_key(master.key[0])})")

    flats = {}
    for key, group in library.group_by(by_kind.get(FrameKind.FLAT, []), library.flat_key).items():
        flats[key] = MasterPlan(FrameKind.MASTER_FLAT, key, [steps_for(f, biases, darks) for f in group],
                                filter=key[1])
    _name_masters(flats, "master_flat", lambda key: f"_{_safe(key[1] or 'nofilter')}")
    for master in flats.values():
        for step in master.inputs:
            plan.notes.extend(f"flat {step.frame.name}: {note}" for note in step.notes)
        if not any(s.bias or s.dark or s.raw_dark or "OVERSCAN" in s.frame.header for s in master.inputs):
            plan.notes.append(f"{master.name}: flats combined without bias or dark subtraction (no master "
                              f"bias or dark for {library.describe_camera_key(master.key[0])}): their "
                              "offset stays in the flat and weakens its correction")

    plan.masters = [*biases.values(), *darks.values(), *flats.values()]
    plan.lights = [steps_for(f, biases, darks, flats) for f in by_kind.get(FrameKind.LIGHT, [])]
    _assign_outputs(plan.lights)
    used = {id(m) for steps in [*plan.lights, *(s for m in plan.masters for s in m.inputs)]
            for m in (steps.bias, steps.dark, steps.raw_dark, steps.flat) if m is not None}
    plan.library_masters = [m for m in plan.offered if id(m) in used]
    for master in plan.masters:
        master.previous = _previous_in_library(master, plan.offered, recipe.match_temperature)
        if master.ncombine == 1:
            plan.notes.append(f"{master.name}: {master.kind.value} from 1 frame: noise not reduced")
    if not plan.lights:
        plan.notes.append("no light frames: masters only")
    return plan


def _input(frame: Frame, root: Path | None) -> Input:
    """The frame as an input of the plan: its relative path and its file's size and time (a stat, no
    read)."""
    if frame.path is None:
        return Input(frame, frame.name, frame.hdu)
    path = Path(frame.path)
    try:
        stat = path.stat()
        size, mtime = stat.st_size, stat.st_mtime_ns
    except OSError:
        size = mtime = None
    resolved = path.resolve()
    rel = resolved.relative_to(root).as_posix() if root is not None and resolved.is_relative_to(root) \
        else path.name
    return Input(frame, rel, frame.hdu, size, mtime)


def _note_left_aside(plan: Plan, by_kind: dict) -> None:
    """Notes for frames the plan does not use: products of a ccdgui run, simulation truth, unknown."""
    unknown = by_kind.get(FrameKind.UNKNOWN, [])
    truth = [f for f in unknown if str(f.header.get("IMAGETYP", "")).strip().upper() == "TRUTH"]
    others = [f for f in unknown if f not in truth]
    products = [f for kind, group in by_kind.items() if kind not in _RAW_KINDS and kind is not
                FrameKind.UNKNOWN for f in group]
    for frames_left, what in (
            (products, "master or calibrated frame(s) (outputs of a reduction) not used as raw inputs"),
            (truth, "simulation truth file(s) (IMAGETYP = TRUTH) left aside"),
            (others, "frame(s) of unknown type not used")):
        if frames_left:
            plan.notes.append(f"{len(frames_left)} {what}: " + ", ".join(f.name for f in frames_left[:5])
                              + (" …" if len(frames_left) > 5 else ""))


def _assign_outputs(lights: list[FrameSteps]) -> None:
    """Each light's calibrated file: its path below the input root (sub-folders kept, compression
    suffix dropped), made unique when two inputs would give one name."""
    taken: set[str] = set()
    for steps in lights:
        rel = steps.source or steps.frame.name
        for suffix in _COMPRESSED:
            if rel.lower().endswith(suffix):
                rel = rel[: -len(suffix)]
        candidate, number = rel, 1
        while candidate.lower() in taken:
            number += 1
            stem, dot, ext = rel.rpartition(".")
            candidate = f"{stem}_{number}.{ext}" if dot else f"{rel}_{number}"
        taken.add(candidate.lower())
        steps.output = f"calibrated/{candidate}"


def _reclassified(frame: Frame, recipe: Recipe) -> Frame:
    """The frame itself, or a lazy twin (same pixels, read only when used) of the kind the user chose."""
    kind = recipe.kind_of(frame)
    if kind is frame.kind:
        return frame
    header = frame.header.copy()
    twin = Frame(header=header, kind=kind, path=frame.path, name=frame.name, notes=frame.notes,
                 loader=lambda: frame.data, shape=frame.shape, rows=frame.rows) if not frame.loaded else \
        Frame(data=frame.data, header=header, kind=kind, path=frame.path, name=frame.name, notes=frame.notes)
    twin.header.add_history(f"Type set to {kind.value} by the user")
    twin.hdu = frame.hdu
    return twin


def _prepare(frame: Frame, recipe: Recipe, notes: list[str]) -> Frame:
    """The frame after overscan subtraction and trimming (the same for every frame type), as a lazy twin
    whose pixels are prepared when read; sections are checked against the header's shape now."""
    overscan = _checked_section(frame, recipe.overscan, "BIASSEC", "overscan", notes)
    trim = _checked_section(frame, recipe.trim, "TRIMSEC", "trim", notes)
    if overscan is None and trim is None:
        return frame
    if overscan is not None and (recipe.overscan_method not in calibrate.OVERSCAN_METHODS
                                 or recipe.overscan_fit not in calibrate.OVERSCAN_FITS):
        notes.append(f"{frame.name}: overscan not applied: unknown method {recipe.overscan_method!r} "
                     f"or fit {recipe.overscan_fit!r}")
        overscan = None
        if trim is None:
            return frame
    header = frame.header.copy()
    shape = frame.shape
    if overscan is not None:
        calibrate.mark_overscan(header, overscan, recipe.overscan_method, shape, fit=recipe.overscan_fit,
                                order=recipe.overscan_order)
    if trim is not None:
        calibrate.mark_trim(header, trim, shape)  # shifts the WCS reference pixel with the origin
        rows, cols = calibrate.parse_section(trim, shape)
        shape = (rows.stop - rows.start, cols.stop - cols.start)

    def load():
        try:
            out = frame
            if overscan is not None:
                out = calibrate.subtract_overscan(out, overscan, recipe.overscan_method,
                                                  fit=recipe.overscan_fit, order=recipe.overscan_order)
            if trim is not None:
                out = calibrate.trim(out, trim)
            return out.data
        finally:
            frame.release()

    twin = Frame(header=header, kind=frame.kind, path=frame.path, name=frame.name, guessed=frame.guessed,
                 notes=frame.notes, loader=load, shape=shape)
    twin.hdu = frame.hdu
    return twin


def _checked_section(frame: Frame, setting: str, header_key: str, step: str, notes: list[str]) -> str | None:
    """The section a step uses for this frame (from the recipe or the header), or None; a section that
    cannot be read or lies outside the frame is noted and not used."""
    section = _section_for(frame, setting, header_key)
    if section is None:
        return None
    try:
        calibrate.parse_section(section, frame.shape)
    except ValueError as exc:
        notes.append(f"{frame.name}: {step} {str(section).strip()[:40]} not applied: {exc}")
        return None
    return section


def _section_for(frame: Frame, setting: str, header_key: str) -> str | None:
    setting = (setting or "off").strip()
    if setting.lower() == "off":
        return None
    if setting.lower() == "auto":
        value = frame.header.get(header_key)
        if value is None or frame.kind not in _RAW_KINDS or library.calibration_markers(frame.header):
            return None  # nothing to do, not a raw frame, or stale sections of a processed frame
        return str(value)
    return setting if frame.kind in _RAW_KINDS else None


def _steps_for(frame: Frame, recipe: Recipe, biases: dict | None = None, darks: dict | None = None,
               flats: dict | None = None, offered: Sequence[MasterPlan] = ()) -> FrameSteps:
    """Choose the bias, dark and flat for one frame, from tonight's masters and the library's
    (``offered``); each choice is recorded with its reason, notes say what is missing or odd."""
    steps = FrameSteps(frame)
    if biases is None:
        return steps
    markers = library.calibration_markers(frame.header)
    key = library.camera_key(frame)
    where = library.describe_camera_key(key)
    overscan = "OVERSCAN" in frame.header
    if markers:
        steps.notes.append(f"already calibrated ({', '.join(markers)}): bias and dark not subtracted again")
    else:
        mark = len(steps.notes)
        tonight, note = library.pick_bias(biases, key)
        steps.notes.extend([note] if note else [])
        steps.bias = _decide(steps, "bias", tonight, biases.values(), offered, recipe, mark)
        if darks is not None:
            mark = len(steps.notes)
            _choose_dark(steps, recipe, darks, key, where)
            tonight = steps.dark or steps.raw_dark
            chosen = _decide(steps, "dark", tonight, darks.values(), offered, recipe, mark)
            if chosen is not tonight:
                steps.dark = chosen if chosen is not None and chosen.bias_subtracted else None
                steps.raw_dark = chosen if chosen is not None and not chosen.bias_subtracted else None
        if steps.bias is None and steps.raw_dark is None:
            steps.notes.append(f"no master bias for {where}" + (": overscan subtracted only" if overscan
                                                               else ""))
    if flats is not None:
        if "FLATCOR" in frame.header:
            steps.notes.append("already flat-fielded (FLATCOR): flat not applied again")
        else:
            mark = len(steps.notes)
            tonight, note = library.pick_flat(flats, key, frame.filter)
            steps.notes.extend([note] if note else [])
            steps.flat = _decide(steps, "flat", tonight, flats.values(), offered, recipe, mark)
            if steps.flat is None:
                steps.notes.append(f"no master flat for filter {frame.filter or '(none)'} at {where}")
    if not (steps.bias or steps.dark or steps.raw_dark or steps.flat) and frame.kind is FrameKind.LIGHT:
        if overscan:
            steps.notes.append("calibrated with overscan only: no master matches it")
        else:
            steps.skip = True
            steps.notes.append("not calibrated: no master matches it")
    return steps


_MASTER_OF = {"bias": FrameKind.MASTER_BIAS, "dark": FrameKind.MASTER_DARK, "flat": FrameKind.MASTER_FLAT}


def _decide(steps: FrameSteps, kind: str, tonight: MasterPlan | None, pool, offered: Sequence[MasterPlan],
            recipe: Recipe, mark: int) -> MasterPlan | None:
    """The master of ``kind`` a frame gets: the user's choice (recipe.master_overrides) if it can serve;
    else tonight's pick unless there is none or the recipe prefers the library; else the best library
    master. Records the Choice; notes after ``mark`` (tonight's shortcomings) go when the library serves."""
    facts = library.frame_facts(steps.frame)
    tolerances = recipe.tolerances()
    override = recipe.master_override(steps.frame.name, kind)
    if override is not None:
        picked, note = _user_choice(steps, kind, override, [*pool, *offered], facts, tolerances)
        if picked is not False:
            del steps.notes[mark:]
            steps.notes.extend([note] if note else [])
            return picked  # type: ignore[return-value]
    chosen = tonight
    library_pick = _best_library_master(steps, kind, offered, facts, tolerances)
    if library_pick is not None and (tonight is None or recipe.prefer_library):
        del steps.notes[mark:]
        chosen, verdict, reason = library_pick
        steps.choices[kind] = Choice(kind, chosen, verdict, reason)
    elif tonight is not None:
        verdict, reason = library.judge(tonight.facts(), facts, tolerances)
        steps.choices[kind] = Choice(kind, tonight, verdict, reason)
    if override is not None:
        steps.notes.append(note)
    return chosen


def _user_choice(steps: FrameSteps, kind: str, reference: str, masters: Sequence[MasterPlan],
                 facts: library.Facts, tolerances: library.Tolerances) -> tuple:
    """(the master the user chose or None for 'none', a note or None); (False, why) when the choice is
    unknown or cannot serve the frame (the automatic choice then stands)."""
    if reference.strip().lower() == "none":
        return None, f"no {kind}: chosen by the user"
    found = next((m for m in masters if _reference(m) == reference or m.name == reference), None)
    if found is None:
        return False, f"{kind} {reference} chosen by the user is not available: chosen automatically"
    verdict, reason = _judge(found, facts, tolerances)
    if verdict == library.REFUSED:
        return False, f"{kind} {found.label} chosen by the user cannot serve ({reason}): chosen automatically"
    steps.choices[kind] = Choice(kind, found, verdict, reason, by_user=True)
    return found, None


def _reference(master: MasterPlan) -> str:
    """How ``master_overrides`` names a master: library:SHA256, or tonight's master's file name."""
    return master.name if master.library is None else f"library:{master.library.sha256}"


def _best_library_master(steps: FrameSteps, kind: str, offered: Sequence[MasterPlan], facts: library.Facts,
                         tolerances: library.Tolerances) -> tuple[MasterPlan, str, str] | None:
    """(master, verdict, reason) of the best library master of ``kind`` for a frame, or None."""
    usable = []
    for master in offered:
        if master.kind is not _MASTER_OF[kind]:
            continue
        if kind == "dark" and not master.bias_subtracted and steps.bias is not None:
            continue  # it still holds a bias that would then be subtracted twice
        verdict, reason = _judge(master, facts, tolerances)
        if verdict != library.REFUSED:
            usable.append((master, verdict, reason))
    if not usable:
        return None
    return min(usable, key=lambda item: _closeness(item[0].facts(), item[1], facts))


def _closeness(master: library.Facts, verdict: str, frame: library.Facts) -> tuple:
    """Sort key of a candidate master: exact before nearby, same exposure, nearest temperature, nearest
    date, more frames, then the nearest exposure at or above the frame's."""
    temperature = abs(master.temperature - frame.temperature) if None not in (master.temperature,
                                                                              frame.temperature) else 99.0
    days = library._days_between(master.night, frame.night)
    exposure = master.exptime or 0.0
    wanted = frame.exptime or 0.0
    other_exposure = library.exposure_key(master.exptime) != library.exposure_key(frame.exptime)
    return (library.verdict_rank(verdict), master.kind == "dark" and other_exposure,
            round(temperature, 1), 10**6 if days is None else abs(days), -master.ncombine,
            exposure < wanted, abs(exposure - wanted))


def candidates(plan: Plan, steps: FrameSteps, kind: str) -> list[Candidate]:
    """Every master of ``kind`` (tonight's and the library's) for one frame of the plan, ranked: the
    plan's choice first, then exact, nearby and refused ones, each with its reason; for the window's
    per-light choice (its ``reference`` goes into the recipe's ``master_overrides``)."""
    facts = library.frame_facts(steps.frame)
    chosen = steps.choices.get(kind)
    found = []
    for master in [*plan.masters, *plan.offered]:
        if master.kind is not _MASTER_OF[kind]:
            continue
        verdict, reason = _judge(master, facts, plan.tolerances)
        picked = chosen is not None and chosen.master is master
        found.append(Candidate(master, verdict, reason, _reference(master), picked,
                               picked and chosen.by_user))  # type: ignore[union-attr]
    def rank(candidate: Candidate) -> tuple:
        closeness = _closeness(candidate.master.facts(), candidate.verdict, facts)
        from_library = candidate.master.library is not None
        return (not candidate.chosen, closeness[0], from_library != plan.prefer_library, *closeness[1:])

    return sorted(found, key=rank)


def _previous_in_library(master: MasterPlan, offered: Sequence[MasterPlan], within: float,
                         ) -> tuple[str, dict] | None:
    """The newest library master like ``master`` (kind, camera, size, binning, settings; a dark's exposure
    and temperature within ``within`` °C; a flat's filter) that has QA figures, as (what it is, its QA*
    keywords): the QA of the master built tonight is compared with it."""
    if master.library is not None or not master.inputs:
        return None
    wanted = master.facts()
    alike = []
    for other in offered:
        facts = other.facts()
        same = (facts.kind, facts.instrument, facts.shape, facts.binning, facts.settings) == (
            wanted.kind, wanted.instrument, wanted.shape, wanted.binning, wanted.settings)
        if master.kind is FrameKind.MASTER_DARK:
            same = same and (facts.exptime, facts.bias_subtracted) == (wanted.exptime, wanted.bias_subtracted)
            if facts.temperature is not None and wanted.temperature is not None:
                same = same and abs(facts.temperature - wanted.temperature) <= within
        if master.kind is FrameKind.MASTER_FLAT:
            same = same and facts.filter == wanted.filter
        if same and other.library is not None and other.library.qa:
            alike.append(other)
    if not alike:
        return None
    newest = max(alike, key=lambda m: (m.library.night or "", m.library.added))  # type: ignore[union-attr]
    entry = newest.library
    return f"the library's {entry.stem} ({entry.night or 'undated'})", dict(entry.qa)  # type: ignore[union-attr]


def _library_master(entry: LibraryMaster) -> MasterPlan:
    """A library master as the plan uses it: not built, read from its file."""
    kind = _MASTER_OF[entry.kind]
    camera = library.CameraKey(tuple(entry.shape), tuple(entry.binning),  # type: ignore[arg-type]
                               library.temperature_band(entry.temperature), entry.night,
                               library.Settings(entry.gain, entry.offset, entry.readout))
    key = camera if entry.kind == "bias" else (camera, library.exposure_key(entry.exptime)) \
        if entry.kind == "dark" else (camera, entry.filter)
    exptime = 0.0 if entry.kind == "bias" else library.exposure_key(entry.exptime)
    master = MasterPlan(kind, key, [], name=entry.name, exptime=exptime, filter=entry.filter, library=entry)
    master.unusable = masterlib.file_problem(entry)  # a look at the file, no reading
    return master


def _judge(master: MasterPlan, facts: library.Facts, tolerances: library.Tolerances) -> tuple[str, str]:
    """(verdict, reason) of a master for a frame; a library master whose file is missing or changed is
    refused, so the next candidate serves."""
    if master.unusable is not None:
        return library.REFUSED, f"{master.unusable} (see ccdgui library check)"
    return library.judge(master.facts(), facts, tolerances)


def _choose_dark(steps: FrameSteps, recipe: Recipe, darks: dict, key, where: str) -> None:
    frame = steps.frame
    dark = library.pick_dark(darks, key, frame.exptime, recipe.scale_dark)
    same_exposure = dark is not None and dark.exptime == library.exposure_key(frame.exptime)
    if dark is not None and not dark.bias_subtracted:
        if same_exposure and steps.bias is None:
            steps.raw_dark = dark
        else:
            steps.notes.append(f"{dark.name} still holds the bias and has another exposure: not used")
    elif dark is not None and not same_exposure and frame.exptime is None:
        steps.notes.append(f"exposure unknown: {dark.name} cannot be scaled, dark not subtracted")
    else:
        steps.dark = dark
    if steps.dark is None and steps.raw_dark is None:
        steps.notes.append(f"no master dark for {where} at {_seconds(frame.exptime)}")


def _dark_factor(frame: Frame, dark: MasterPlan) -> float:
    if frame.exptime is None or not dark.exptime or library.exposure_key(frame.exptime) == dark.exptime:
        return 1.0
    return frame.exptime / dark.exptime


def _name_masters(masters: dict[tuple, MasterPlan], stem: str, suffix) -> None:
    """File names for masters: ``stem + suffix(key)``, plus size, binning, temperature and night where
    masters would otherwise share a name (only the parts in which they differ)."""
    def camera(key) -> library.CameraKey:
        return key if isinstance(key, library.CameraKey) else key[0]

    by_base = library.group_by(masters, lambda key: f"{stem}{suffix(key)}")
    for base, keys in by_base.items():
        varying = [len({camera(k)[i] for k in keys}) > 1 for i in range(4)]
        for key in keys:
            (ny, nx), (bx, by), band, night, settings = camera(key)
            twins = {camera(k)[4] for k in keys if camera(k)[:4] == camera(key)[:4]}  # told apart only by
            parts = [f"_{nx}x{ny}" if varying[0] else "", f"_bin{bx}x{by}" if varying[1] else "",  # settings
                     f"_{'unknownT' if band is None else f'{band:g}C'}" if varying[2] else "",
                     f"_{night or 'unknown-night'}" if varying[3] else "",
                     _settings_suffix(settings) if len(twins) > 1 else ""]
            masters[key].name = f"{base}{''.join(parts)}.fits"


def _settings_suffix(settings: tuple) -> str:
    """'_gain100_offset10_readoutFast' for the settings a header states."""
    names = ("gain", "offset", "readout")
    return "".join(f"_{name}{_safe(value)}" for name, value in zip(names, settings, strict=False)
                   if value is not None) or "_nosettings"


def format_plan(plan: Plan) -> str:
    """The plan as text: one line per master and per light, then the notes."""
    lines = []
    for master in plan.library_masters:
        entry = master.library
        lines.append(f"library: {entry.name} ({entry.kind}, {entry.night or 'undated'}, {entry.ncombine} "  # type: ignore[union-attr]
                     f"frame(s), sha256 {entry.sha256[:12]}…) from {entry.path}")  # type: ignore[union-attr]
    for master in plan.masters:
        inputs = ", ".join(step.source for step in master.inputs[:3])
        more = f" and {master.ncombine - 3} more" if master.ncombine > 3 else ""
        lines.append(f"{master.output}: {master.ncombine} frame(s) ({inputs}{more})")
        if master.kind is FrameKind.MASTER_FLAT:  # each flat's bias and flat-dark, with reasons
            for step in master.inputs:
                chosen = "; ".join(choice.describe() for choice in step.choices.values())
                lines.append(f"    {step.source}: {chosen or 'no bias or dark'}")
    for steps in plan.lights:
        status = "SKIP" if steps.skip else f"{steps.describe()} -> {steps.output}"
        lines.append(f"{steps.source}: {status}")
        lines.extend(f"    {choice.describe()}" for choice in steps.choices.values())
        lines.extend(f"    note: {note}" for note in steps.notes)
    lines.extend(f"note: {note}" for note in plan.notes)
    return "\n".join(lines)


def _seconds(exposure: float | None) -> str:
    return "unknown" if exposure is None else f"{exposure:g}s"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "x"
