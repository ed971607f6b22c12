"""One pixel's stack: what the combine did at a pixel of a master, recomputed from a run's recipe.json.

Given OUTDIR/recipe.json, a master's name and a pixel (1-based FITS x, y, as DS9 shows them), every
input frame of that master is prepared again exactly as the run prepared it (the recorded plan made again
from the inputs' headers, the run's own masters read from OUTDIR), its value at the pixel read with the
combine's reader, scaled by the recorded scale, and passed through the combine's rejection and statistic
(:func:`combine.explain_stack`): the values, the centre and clip bounds, which values were rejected and
why, and the combined value, which equals the master's pixel. A light's stacks are those of the masters
it used. Only this pixel's row of each input is read.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import fitsio, provenance
from .combine import REASONS, _read_band, explain_stack
from .execute import _Run, describe_combine
from .plan import Plan, make_plan
from .recipe import Recipe


class InspectError(Exception):
    """A stack that cannot be shown; ``str(error)`` is one line for the user."""


@dataclass
class PixelStack:
    """One pixel's stack of a master (x, y 1-based FITS pixel coordinates)."""

    master: str
    kind: str
    x: int
    y: int
    frames: list[str]                 # inputs as the recipe names them (relative paths)
    paths: list[str]                  # their files
    prepared: np.ndarray              # float32 (n,): each input's value after its calibration steps
    values: np.ndarray                # float32 (n,): as combined (times its scale)
    scales: list[float] | None
    weights: list[float] | None
    kept: np.ndarray                  # bool (n,)
    reasons: list[str]                # "kept" or why the value was rejected
    centre: float                     # sigma clipping's centre (NaN without sigma clipping)
    low: float                        # its lower and upper bounds
    high: float
    result: float                     # the combined value recomputed here
    count: int                        # values kept
    master_value: float               # the master's pixel as written
    method: str = ""                  # the combine, in words
    notes: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        """Whether the recomputed value equals the master's pixel (to float32 rounding)."""
        if math.isnan(self.result) or math.isnan(self.master_value):
            return math.isnan(self.result) and math.isnan(self.master_value)
        return abs(self.result - self.master_value) <= 2e-7 * max(1.0, abs(self.master_value))

    def to_dict(self) -> dict:
        def number(value):
            value = float(value)
            return value if math.isfinite(value) else None

        return {"master": self.master, "kind": self.kind, "x": self.x, "y": self.y, "method": self.method,
                "centre": number(self.centre), "low": number(self.low), "high": number(self.high),
                "result": number(self.result), "count": self.count, "master_value": number(self.master_value),
                "matches": self.matches, "notes": list(self.notes),
                "frames": [{"frame": name, "path": path, "prepared": number(p), "value": number(v),
                            "scale": None if self.scales is None else self.scales[i],
                            "weight": None if self.weights is None else self.weights[i],
                            "kept": bool(k), "reason": reason}
                           for i, (name, path, p, v, k, reason) in enumerate(zip(
                               self.frames, self.paths, self.prepared, self.values, self.kept, self.reasons,
                               strict=True))]}

    def format(self) -> str:
        """A table for a terminal."""
        lines = [f"{self.master} ({self.kind}) at x={self.x}, y={self.y}: {self.method}"]
        if math.isfinite(self.centre):
            lines.append(f"centre {self.centre:.6g}, kept between {self.low:.6g} and {self.high:.6g}")
        width = max([len(f) for f in self.frames] + [5])
        lines.append(f"{'frame':<{width}}  {'prepared':>12}  {'as combined':>12}  verdict")
        for name, p, v, reason in zip(self.frames, self.prepared, self.values, self.reasons, strict=True):
            lines.append(f"{name:<{width}}  {p:12.6g}  {v:12.6g}  {reason}")
        same = "equals" if self.matches else "DIFFERS from"
        lines.append(f"result {self.result:.7g} from {self.count} of {len(self.frames)} values; "
                     f"{same} the master's pixel {self.master_value:.7g}")
        return "\n".join(lines + self.notes)


class Inspector:
    """A finished run (its recipe.json) ready to explain pixels: the plan is made again once from the
    inputs' headers, masters are read from the output folder when first needed."""

    def __init__(self, record_path: str | os.PathLike) -> None:
        path = Path(record_path)
        if path.is_dir():
            path = path / provenance.RECORD_NAME
        try:
            self.record = provenance.load_record(path)
            inputs = provenance.recorded_inputs(self.record)
        except provenance.RecordError as exc:
            raise InspectError(str(exc)) from None
        self.outdir = path.parent
        try:
            self.recipe = Recipe.from_dict(self.record.get("recipe", {}))
        except (ValueError, TypeError, KeyError) as exc:
            raise InspectError(f"{path}: its recipe cannot be used: {exc}") from None
        frames, missing = [], []
        for file, hdu, _ in inputs:
            try:
                frames.append(fitsio.read_header_frame(file, hdu))
            except (fitsio.FrameError, OSError) as exc:
                missing.append(f"{file}: {exc}")
        if missing:
            raise InspectError(f"cannot read {len(missing)} input(s) of the run, e.g. {missing[0]}")
        self.plan: Plan = self._make_plan(frames)
        self._run = _Run.__new__(_Run)
        self._run.recipe, self._run.built, self._run.failed, self._run.norms = self.recipe, {}, {}, {}

    def _make_plan(self, frames) -> Plan:
        """The plan that ran: from the inputs' headers, with the library masters the run used (if any)."""
        root = self.record.get("input_root")
        recorded = getattr(provenance, "recorded_library_masters", None)
        if recorded is None or not self.record.get("library_masters"):
            return make_plan(frames, self.recipe, root=root)
        try:
            return make_plan(frames, self.recipe, root=root, masters=recorded(self.record))
        except provenance.RecordError as exc:
            raise InspectError(str(exc)) from None

    @property
    def masters(self) -> list[str]:
        return [m.name for m in self.plan.masters]

    def light_masters(self, light: str) -> list[str]:
        """The masters this run built that a light used (bias, dark, flat), by the light's recorded file
        name or its base name. A light whose masters all came from the master library raises
        InspectError saying so (their stacks belong to the runs that built them)."""
        used = self._used_by(light)
        built = [m.name for m in used if m.library is None]
        if used and not built:
            raise InspectError(f"{light} used only masters from the master library "
                               f"({', '.join(m.label for m in used)}): their stacks belong to the runs "
                               "that built them")
        return built

    def library_masters_of(self, light: str) -> list[str]:
        """The masters from the library a light used, as 'master_bias.fits (2018-10-18)'."""
        return [f"{m.library.name} ({m.library.night or 'undated'})" for m in self._used_by(light)
                if m.library is not None]

    def _used_by(self, light: str) -> list:
        for steps in self.plan.lights:
            if light in (steps.source, Path(steps.source).name, steps.output, Path(steps.output).name):
                return [m for m in (steps.bias, steps.dark or steps.raw_dark, steps.flat) if m is not None]
        raise InspectError(f"no light {light!r} in this run")

    def master_named(self, name: str) -> str | None:
        """The run's master called ``name`` (with or without its folder and .fits), else None."""
        try:
            return self._master_plan(name).name
        except InspectError:
            return None

    def _master_plan(self, name: str):
        wanted = Path(name).name
        for master in self.plan.masters:
            if wanted in (master.name, Path(master.name).stem):
                return master
        raise InspectError(f"no master {name!r} in this run (it has {', '.join(self.masters) or 'none'})")

    def _built(self, master) -> None:
        """Read (lazily) the run's masters the inputs of ``master`` need."""
        for steps in master.inputs:
            for used in (steps.bias, steps.dark, steps.raw_dark):
                if used is not None and id(used) not in self._run.built:
                    library = getattr(used, "library", None)
                    path = Path(library.path) if library is not None else self.outdir / used.output
                    if not path.is_file():
                        raise InspectError(f"{used.output} (used by {master.name}) is missing from "
                                           f"{self.outdir}")
                    self._run.built[id(used)] = fitsio.read_header_frame(path)

    def stack(self, master_name: str, x: int, y: int) -> PixelStack:
        """The stack of ``master_name`` at 1-based FITS pixel (x, y)."""
        master = self._master_plan(master_name)
        if getattr(master, "library", None) is not None or not master.inputs:
            raise InspectError(f"{master.name} came from the master library: its stack is not part of "
                               "this run (inspect the run that made it)")
        path = self.outdir / master.output
        if not path.is_file():
            raise InspectError(f"{master.output} is missing from {self.outdir}")
        ny, nx = master.inputs[0].frame.shape
        if not (1 <= x <= nx and 1 <= y <= ny):
            raise InspectError(f"pixel ({x}, {y}) is outside {master.name} (1…{nx} × 1…{ny})")
        self._built(master)
        row = y - 1
        prepared = np.empty(len(master.inputs), dtype=np.float32)
        for index, steps in enumerate(master.inputs):
            frame = self._run._apply(steps, with_flat=False)
            source = frame.stack_source()
            try:
                prepared[index] = _read_band([source], None, row, row + 1)[0][0, 0, x - 1]
            finally:
                if hasattr(source, "close"):
                    source.close()
        values = self.record.get("values", {}).get(master.name, {})
        scales, weights = values.get("scales"), values.get("weights")
        options = self.recipe.combine_options()
        explained = explain_stack(prepared[:, None], options, scales, weights)
        written = fitsio.read_header_frame(path)
        master_value = float(_read_band([written.stack_source()], None, row, row + 1)[0][0, 0, x - 1])
        notes = []
        if self.record.get("cluster"):
            notes.append("run on a cluster: the same engine functions, the same values")
        return PixelStack(
            master=master.name, kind=master.kind.value, x=x, y=y,
            frames=[s.source or s.frame.name for s in master.inputs],
            paths=[str(s.frame.path) if s.frame.path is not None else "" for s in master.inputs],
            prepared=prepared, values=explained.values[:, 0].copy(), scales=scales, weights=weights,
            kept=explained.keep[:, 0].copy(), reasons=[REASONS[c] for c in explained.reason[:, 0]],
            centre=float(explained.centre[0]), low=float(explained.low[0]), high=float(explained.high[0]),
            result=float(explained.result[0]), count=int(explained.count[0]), master_value=master_value,
            method=describe_combine(options), notes=notes)


def pixel_stack(record_path: str | os.PathLike, master: str, x: int, y: int) -> PixelStack:
    """The stack of ``master`` at 1-based FITS pixel (x, y) of the run recorded in ``record_path``."""
    return Inspector(record_path).stack(master, x, y)


def light_stacks(record_path: str | os.PathLike, light: str, x: int, y: int) -> list[PixelStack]:
    """The stacks, at (x, y), of the masters a light used."""
    inspector = Inspector(record_path)
    return [inspector.stack(name, x, y) for name in inspector.light_masters(light)]
