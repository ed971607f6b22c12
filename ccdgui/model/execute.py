"""Carry out a plan: the only place that reads pixels and writes files.

Each master and each calibrated light is written (temporary name, then renamed) as soon as it is made
and dropped from memory, so memory does not grow with the number of lights: one stack band per combine
thread, the masters, and two lights being calibrated. recipe.json is written last, from the plan that
ran: the options, every input with the sha256 of its bytes, every output with its sha256, the values
computed on the way (flat scales and norms), notes and software versions.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import tempfile
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import calibrate, fitsio, masks, provenance, qa
from .combine import (
    CombineOptions,
    CombineResult,
    exposure_weights,
    inverse_mean_scales,
    inverse_median_scales,
    inverse_variance_weights,
    iter_combine,
    keyword_weights,
)
from .estimate import stack_bytes
from .files import Checksums, sha256_of
from .frame import Frame, FrameKind, add_history
from .plan import PRODUCT_KEY, FrameSteps, MasterPlan, Plan, make_plan
from .progress import CancelToken, Progress, drive
from .recipe import Recipe

LOCK_NAME = ".ccdgui.lock"
JOURNAL_NAME = ".ccdgui-journal"   # outputs written so far by an unfinished run (one relative path a line)
SCRATCH_PREFIX = ".ccdgui-scratch-"


class OutputError(Exception):
    """The output folder cannot be used or written; ``str(error)`` is one line for the user."""


@dataclass
class Result:
    """What a run made: lazy frames read back from the files written, and the record of the run."""

    outdir: Path | None = None
    masters: list[Frame] = field(default_factory=list)
    calibrated: list[Frame] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # one line each: what could not be done and why
    outputs: list[dict] = field(default_factory=list)   # {"file", "sha256", "kind", "from"}
    changed_inputs: list[str] = field(default_factory=list)
    record: dict = field(default_factory=dict)          # what recipe.json says
    plan: Plan | None = None                            # the plan that ran


# --- the output folder -------------------------------------------------------------------------------
class OutputFolder:
    """An output folder held by one run: checked, locked against a second run, cleared of what a killed
    run left (partial files, scratch folders), and of a previous run's outputs when overwriting."""

    def __init__(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self._locked = False

    def open(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"output folder {self.path} exists and is not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder {self.path}: {os_error_reason(exc)}") from None
        self._lock()
        try:
            self._remove_leftovers()
            self._clear_previous_run()
        except BaseException:
            self.close(finished=False)
            raise

    def _lock(self) -> None:
        lock = self.path / LOCK_NAME
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = _lock_holder(lock)
                if holder is not None:
                    raise OutputError(f"another ccdgui run (process {holder}) is writing into "
                                  f"{self.path}; wait for it or choose another folder") from None
                _unlink(lock)  # left by a run that was killed
                continue
            except OSError as exc:
                raise OutputError(f"cannot write into output folder {self.path}: "
                                  f"{os_error_reason(exc)}") from None
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            self._locked = True
            return
        raise OutputError(f"cannot lock output folder {self.path}")

    def _remove_leftovers(self) -> None:
        """Partial files and scratch folders of a run that was killed."""
        import shutil

        for entry in self.path.glob(f"{SCRATCH_PREFIX}*"):
            shutil.rmtree(entry, ignore_errors=True)
        for folder in (self.path, self.path / "masters", self.path / "calibrated"):
            if folder.is_dir():
                for part in folder.rglob(".*.part"):
                    _unlink(part)

    def previous_outputs(self) -> list[Path]:
        """Files a previous run wrote here: those its recipe.json lists, or its journal if it stopped."""
        listed: list[str] = []
        record = self.path / provenance.RECORD_NAME
        if record.is_file():
            with contextlib.suppress(provenance.RecordError, KeyError, TypeError):
                listed += [o["file"] for o in provenance.load_record(record).get("outputs", [])]
        journal = self.path / JOURNAL_NAME
        if journal.is_file():
            listed += [line for line in journal.read_text(errors="replace").splitlines() if line]
        inside = [self.path / rel for rel in listed
                  if not Path(rel).is_absolute() and ".." not in Path(rel).parts]
        return [p for p in dict.fromkeys(inside) if p.is_file()]

    def _clear_previous_run(self) -> None:
        ours = {LOCK_NAME}
        entries = [e for e in self.path.iterdir() if e.name not in ours]
        if not entries:
            return
        if not self.overwrite:
            what = "the outputs of a previous run" if (self.path / provenance.RECORD_NAME).exists() or \
                (self.path / JOURNAL_NAME).exists() else f"{len(entries)} other file(s) or folder(s)"
            raise OutputError(f"output folder {self.path} is not empty (it holds {what}); choose an empty "
                              "folder or overwrite the previous run's outputs (--overwrite)")
        for path in self.previous_outputs():
            _unlink(path)
        for name in (provenance.RECORD_NAME, JOURNAL_NAME):
            _unlink(self.path / name)

    def journal(self, rel: str) -> None:
        """Note an output as written (a killed run's outputs can then be replaced as a whole)."""
        with open(self.path / JOURNAL_NAME, "a") as handle:
            handle.write(rel + "\n")

    def close(self, finished: bool) -> None:
        """Release the folder; a finished run's journal goes (its recipe.json lists the outputs)."""
        if finished:
            _unlink(self.path / JOURNAL_NAME)
        if self._locked:
            _unlink(self.path / LOCK_NAME)
            self._locked = False


def _lock_holder(lock: Path) -> int | None:
    """The process id holding a lock file if that process still runs, else None."""
    try:
        pid = int(lock.read_text().strip() or "0")
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def os_error_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device (ENOSPC)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied (read-only folder?)"
    return exc.strerror or str(exc)


# --- running a plan ----------------------------------------------------------------------------------
def run(frames: Sequence[Frame], recipe: Recipe, cancel: CancelToken | None = None,
        outdir: str | os.PathLike | None = None, root: str | os.PathLike | None = None,
        ) -> Generator[Progress, None, Result]:
    """Plan and execute: masters and calibrated lights written to ``outdir`` (a new temporary folder
    when None); yields Progress, returns the Result."""
    if outdir is None:
        outdir = tempfile.mkdtemp(prefix="ccdgui-run-")
    return (yield from execute(make_plan(frames, recipe, root), recipe, outdir, cancel))


def run_to_end(frames: Sequence[Frame], recipe: Recipe, cancel: CancelToken | None = None,
               outdir: str | os.PathLike | None = None) -> Result:
    """:func:`run` without progress reports: the Result."""
    return drive(run(frames, recipe, cancel, outdir))


def execute(plan: Plan, recipe: Recipe, outdir: str | os.PathLike, cancel: CancelToken | None = None,
            overwrite: bool = False, checksums: Checksums | None = None, quarantined: Sequence = (),
            engine=None) -> Generator[Progress, None, Result]:
    """Carry out ``plan`` into ``outdir``: yields Progress, returns Result; raises Cancelled when
    ``cancel`` is set (outputs finished by then stay, complete) and OutputError (one line) when the
    folder cannot be used or written. ``checksums`` may have started hashing the inputs already.
    ``engine`` (a :class:`cluster.ClusterEngine`) runs the work on a Dask cluster; None runs it here."""
    recipe = recipe.copy()  # the options of this run, whatever the window's dock does meanwhile
    recipe.check_together()
    cancel = cancel or CancelToken()
    folder = OutputFolder(outdir, overwrite)
    folder.open()
    paths = [i.path for i in plan.inputs if i.path is not None]
    own_checksums = checksums is None
    checksums = checksums or Checksums(paths)  # on another core while the masters are combined
    run_state = _Run(plan, recipe, folder, cancel, paths) if engine is None else \
        engine.make_run(plan, recipe, folder, cancel, paths)
    finished = False
    try:
        with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=folder.path) as scratch:
            yield from run_state.masters(scratch)
        for name, figures in quality_values(run_state.result.masters).items():
            run_state.values.setdefault(name, {})["qa"] = figures
        yield from run_state.lights()
        result = run_state.result
        digests = [checksums.of(i.path) if i.path is not None else _memory_digest(i.frame)
                   for i in plan.inputs]
        result.changed_inputs = _changed_inputs(plan)
        result.problems.extend(f"input {name} changed during the run: its outputs are not trustworthy"
                               for name in result.changed_inputs)
        result.record = provenance.make_record(plan, recipe, result.outputs, digests, result.problems,
                                               run_state.values, quarantined, result.changed_inputs)
        if engine is not None:
            result.record["cluster"] = engine.describe()
        try:
            provenance.write_record(result.record, folder.path)
        except OSError as exc:
            raise OutputError(f"cannot write {provenance.RECORD_NAME}: {os_error_reason(exc)}") from None
        finished = True
        yield Progress(1.0, "Done")
        return result
    finally:
        folder.close(finished)
        if own_checksums:
            checksums.close()


def _memory_digest(frame: Frame) -> str:
    """sha256 of an in-memory frame's pixels (a simulated frame has no file)."""
    import hashlib

    return "pixels:" + hashlib.sha256(np.ascontiguousarray(frame.data, dtype="<f4").tobytes()).hexdigest()


def _changed_inputs(plan: Plan) -> list[str]:
    """Inputs whose file's size or modification time differ from when the plan was made."""
    changed = []
    for item in plan.inputs:
        if item.path is None or item.bytes is None:
            continue
        try:
            stat = Path(item.path).stat()
            same = (stat.st_size, stat.st_mtime_ns) == (item.bytes, item.mtime_ns)
        except OSError:
            same = False
        if not same:
            changed.append(item.file)
    return changed


def write_product(frame: Frame, folder: Path, rel: str, product: str, source: str,
                  protect: Sequence) -> tuple[Path, dict]:
    """Write one product atomically (marked as a product) under ``folder``; its path and record."""
    path = folder / rel
    frame.header[PRODUCT_KEY] = (product, "written by ccdgui: not a raw frame")
    fitsio.write_frame(frame, path, overwrite=True, protect=protect)
    return path, {"file": rel, "sha256": sha256_of(path), "kind": product, "from": source}


class _Run:
    """The state of one execution: masters built so far (kept in memory for the frames that use them),
    values measured on the way, outputs written."""

    def __init__(self, plan: Plan, recipe: Recipe, folder: OutputFolder, cancel: CancelToken,
                 inputs: list[Path]) -> None:
        self.plan, self.recipe, self.folder, self.cancel = plan, recipe, folder, cancel
        self.inputs = inputs
        self.options = recipe.combine_options()
        self.built: dict[int, Frame] = {}
        self.failed: dict[int, str] = {}         # master id -> why it could not be made
        self.norms: dict[int, float | Exception] = {}
        self.bad_pixels: dict[int, tuple] = {}   # master id -> (mask, description), made once per master
        self.values: dict[str, dict] = {}        # master name -> values measured while building it
        self.meter = _Meter(total=plan.total_frames)
        self.result = Result(outdir=folder.path, problems=list(plan.notes), plan=plan)

    def write(self, frame: Frame, rel: str, product: str, source: str) -> tuple[Path, dict]:
        """Write one product atomically; returns its path and its record (with its sha256). OSError
        becomes OutputError."""
        try:
            path, record = write_product(frame, self.folder.path, rel, product, source, self.inputs)
        except OSError as exc:
            kept = "; outputs finished so far are kept" if self.result.outputs else ""
            raise OutputError(f"cannot write {rel}: {os_error_reason(exc)}{kept}") from None
        self.folder.journal(rel)
        return path, record

    # masters -------------------------------------------------------------------------------------
    def masters(self, scratch: str) -> Generator[Progress, None, None]:
        from . import masterlib

        for master in self.plan.library_masters:  # from the master library: read, not combined
            problem = masterlib.entry_problem(master.library)
            if problem is None:
                self.built[id(master)] = fitsio.read_frame(master.library.path)
            else:
                self.failed[id(master)] = f"library master {problem}: refused"
                self.result.problems.append(self.failed[id(master)])
        for master in self.plan.masters:
            self.cancel.check()
            try:
                frame = yield from self._build_master(master, scratch)
            except (calibrate.CalibrationError, fitsio.FrameError, ValueError) as exc:  # a flat of median 0
                self.failed[id(master)] = f"{master.name} could not be made: {exc}"
                self.result.problems.append(self.failed[id(master)])
                continue
            self.built[id(master)] = frame
            path, record = self.write(frame, master.output, "master", master.name)
            self.result.outputs.append(record)
            self.result.masters.append(fitsio.read_header_frame(path))
        for master in [*self.plan.masters, *self.plan.library_masters]:
            if master.kind is FrameKind.MASTER_FLAT and id(master) in self.built:
                self._flat_norm(master)

    def _build_master(self, master: MasterPlan, scratch: str) -> Generator[Progress, None, Frame]:
        spill = stack_bytes(master) > self.recipe.stack_memory_mb * 2**20
        scaled = master.kind is FrameKind.MASTER_FLAT and self.recipe.flat_scaling != "none"

        def prepare(steps: FrameSteps) -> Frame:
            prepared = self._apply(steps, with_flat=False)
            if prepared is not steps.frame:
                steps.frame.release()
            if scaled and not spill:  # read whole once for its scale, then kept for the stack
                return prepared.materialised()
            if spill and prepared.rows is None:  # else it is still read from its file, band by band
                return fitsio.spill(prepared, scratch)
            return prepared

        inputs = list(_two_at_a_time(prepare, master.inputs, self.cancel))
        scales = None
        if master.kind is FrameKind.MASTER_FLAT:
            scales = _flat_scales(inputs, self.recipe.flat_scaling)
            if scales is not None:
                self.values[master.name] = {"scales": [float(s) for s in scales]}
        label = f"{master.kind.value.split()[-1]} ({master.name})"
        sample = qa.InputSample(*(inputs[0].shape if inputs else (0, 0)))  # rows kept for quality figures
        sample.scales = None if scales is None else [float(s) for s in scales]
        sample.read_noise_adu = qa.bias_read_noise(self.built[id(step.bias)] for step in master.inputs
                                                   if step.bias is not None and id(step.bias) in self.built)
        try:
            weights = self._weights(master, inputs, scales)
            combined = yield from _combine_group(inputs, self.options, scales, weights, self.meter,
                                                 self.cancel, label, sample)
        finally:
            for frame in inputs:
                frame.release()
        return _finish_master(combined, master, inputs, self.options, self.recipe)

    def _weights(self, master: MasterPlan, inputs: list[Frame], scales) -> list[float] | None:
        """The recipe's per-frame weights for one master (recorded), or None; ValueError names a frame
        whose weight cannot be had."""
        how, names = self.recipe.weights, [step.source for step in master.inputs]
        if how == "exposure":
            times = [step.frame.exptime for step in master.inputs]
            weights = None if len(set(times)) == 1 else exposure_weights(times, names)
        elif how == "inverse_variance":
            weights = inverse_variance_weights([f.stack_source() for f in inputs], scales, names)
        elif how == "keyword":
            weights = keyword_weights([step.frame.header for step in master.inputs],
                                      self.recipe.weights_keyword, names)
        else:
            weights = None
        if weights is not None:
            self.values.setdefault(master.name, {})["weights"] = [float(w) for w in weights]
        return weights

    def _flat_norm(self, master: MasterPlan) -> None:
        try:
            norm = calibrate.flat_norm_value(self.built[id(master)], self.recipe.flat_normalise)
            self.values.setdefault(master.name, {})["norm"] = norm
            self.norms[id(master)] = norm
        except calibrate.CalibrationError as exc:
            self.norms[id(master)] = exc

    # lights --------------------------------------------------------------------------------------
    def lights(self) -> Generator[Progress, None, None]:
        for steps in self.plan.lights:  # masks are found once per master, before the lights share them
            for master in (steps.dark, steps.flat):
                if master is not None and not steps.skip and id(master) in self.built:
                    self._bad_pixels(master)
        done = _two_at_a_time(self._calibrate_and_write, self.plan.lights, self.cancel)
        for steps, outcome in zip(self.plan.lights, done, strict=True):
            yield self.meter.step(1, f"Calibrated {steps.frame.name}")
            self.result.problems.extend(f"light {steps.source}: {note}" for note in steps.notes)
            if isinstance(outcome, str):
                self.result.problems.append(outcome)
            elif outcome is not None:
                path, record = outcome
                self.result.outputs.append(record)  # in the plan's order, whichever thread finished first
                self.result.calibrated.append(fitsio.read_header_frame(path))

    def _calibrate_and_write(self, steps: FrameSteps) -> tuple[Path, dict] | str | None:
        """The calibrated light's file and record, or why it could not be made, or None for a light to
        skip."""
        if steps.skip:
            return None
        try:
            calibrated = self._apply(steps, with_flat=True).materialised()
        except (calibrate.CalibrationError, fitsio.FrameError) as exc:
            return f"light {steps.source}: not calibrated: {exc}"
        finally:
            steps.frame.release()
        calibrated = self._clean_and_mask(calibrated, steps)
        calibrated.kind = FrameKind.CALIBRATED
        return self.write(calibrated, steps.output, "calibrated", steps.source)

    def _apply(self, steps: FrameSteps, with_flat: bool) -> Frame:
        """Apply the planned bias, dark (and flat) to one frame; returns a new frame."""
        out, built = steps.frame, self.built
        for master in (steps.raw_dark, steps.bias, steps.dark, steps.flat if with_flat else None):
            if master is not None and id(master) in self.failed:
                raise calibrate.CalibrationError(self.failed[id(master)])
        if steps.raw_dark is not None:
            out = calibrate.subtract_dark(out, built[id(steps.raw_dark)], scale=False)
        if steps.bias is not None:
            out = calibrate.subtract_bias(out, built[id(steps.bias)])
        if steps.dark is not None:
            out = calibrate.subtract_dark(out, built[id(steps.dark)], scale=self.recipe.scale_dark)
        if with_flat and steps.flat is not None:
            norm = self.norms.get(id(steps.flat))
            if isinstance(norm, Exception):
                raise norm
            out = calibrate.flat_correct(out, built[id(steps.flat)], self.recipe.flat_normalise, norm,
                                         min_value=self.recipe.flat_min_value)
        return out

    def _clean_and_mask(self, frame: Frame, steps: FrameSteps) -> Frame:
        """Cosmic rays cleaned (if asked), then bad pixels of the light's masters set to NaN (if asked)."""
        found_in = [self._bad_pixels(master) for master in (steps.dark, steps.flat)
                    if master is not None and id(master) in self.built]
        found_in = [(mask, source) for mask, source in found_in if mask is not None]
        mask = masks.combine_masks(*(mask for mask, _ in found_in))
        if self.recipe.cosmic_rays != "off":
            gain = _positive(frame.header.get("GAIN"), 1.0)
            read_noise = _positive(frame.header.get("RDNOISE"), 10.0)
            cleaned, found, used = masks.clean_cosmic_rays(frame.data, self.recipe.cosmic_rays, gain=gain,
                                                           read_noise=read_noise, mask=mask,
                                                           cancel=self.cancel)
            frame = frame.derive(cleaned, history=f"Cleaned {int(found.sum())} cosmic-ray pixels ({used})")
            frame.header["NCOSMIC"] = (int(found.sum()), f"cosmic-ray pixels cleaned ({used})")
        if mask is not None:
            sources = "; ".join(source for _, source in found_in)
            frame = frame.derive(masks.apply_mask(frame.data, mask),
                                 history=f"Set {int(mask.sum())} bad pixels to NaN ({sources})")
            frame.header["NBADPIX"] = (int(mask.sum()), "bad pixels set to NaN")
        return frame

    def _bad_pixels(self, master: MasterPlan) -> tuple:
        """(mask or None, description) of one master's bad pixels under the recipe, computed once."""
        cache, recipe = self.bad_pixels, self.recipe
        if id(master) not in cache:
            frame = self.built[id(master)]
            if master.kind is FrameKind.MASTER_DARK and recipe.hot_pixels and master.exptime:
                gain = _positive(frame.header.get("GAIN"), 1.0)
                found = masks.hot_pixel_mask(frame.data, master.exptime, gain=gain)
                cache[id(master)] = (found, f"{int(found.sum())} hot pixels of {master.name}")
            elif master.kind is FrameKind.MASTER_FLAT and recipe.flat_defects:
                found = masks.flat_mask(frame.data, findbadcolumns=recipe.flat_bad_columns,
                                        cancel=self.cancel)
                cache[id(master)] = (found, f"{int(found.sum())} flat defects of {master.name}")
            else:
                cache[id(master)] = (None, "")
        return cache[id(master)]


def _positive(value, default: float) -> float:
    """A header's positive finite number, else ``default``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if np.isfinite(number) and number > 0 else default


def _two_at_a_time(function, items: Sequence, cancel: CancelToken) -> Generator:
    """``function(item)`` for each item, two running at a time on threads (numpy and file reads release
    the GIL); the results in order. Cancel is checked between items; at most two are then finished."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        waiting = iter(items)
        pending = deque(pool.submit(function, item) for item in itertools.islice(waiting, 2))
        try:
            while pending:
                cancel.check()
                done = pending.popleft().result()
                for item in itertools.islice(waiting, 1):
                    pending.append(pool.submit(function, item))
                yield done
        finally:
            for future in pending:
                future.cancel()


class _Meter:
    """Turns units of work (frames read, combined or calibrated) into an overall fraction."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.done = 0.0

    def step(self, units: float, message: str) -> Progress:
        self.done = min(self.total, self.done + units)
        return Progress(self.done / self.total, message)

    def at(self, partial: float, message: str) -> Progress:
        return Progress(min(1.0, (self.done + partial) / self.total), message)


def _combine_group(frames: Sequence[Frame], options: CombineOptions, scales, weights, meter: _Meter,
                   cancel: CancelToken, label: str, observer=None,
                   ) -> Generator[Progress, None, CombineResult]:
    """Combine frames band by band, reporting progress and honouring cancel between bands (``observer``:
    see ``combine.iter_combine``)."""
    combining = iter_combine([f.stack_source() for f in frames], options, scales, weights, observer)
    message = f"Combining {len(frames)} {label} frame(s)"
    try:
        while True:
            cancel.check()
            fraction = next(combining)
            yield meter.at(fraction * len(frames), message)
    except StopIteration as stop:
        combined = stop.value
    finally:
        combining.close()
    meter.step(len(frames), message)
    return combined


def _finish_master(combined: CombineResult, plan: MasterPlan, inputs: Sequence[Frame],
                   options: CombineOptions, recipe: Recipe) -> Frame:
    """The master frame: the first input's header, marked as a master, with provenance."""
    master = inputs[0].derive(combined.data, kind=plan.kind, name=plan.name)
    header = master.header
    for key in ("SUBBIAS", "SUBDARK", "FLATCOR", "DATE-OBS", "OBJECT"):
        header.remove(key, ignore_missing=True)
    header["IMAGETYP"] = plan.kind.imagetyp
    header["NCOMBINE"] = (len(inputs), "frames combined")
    if plan.kind is FrameKind.MASTER_DARK:
        header["EXPTIME"] = (plan.exptime, "[s] exposure of the combined darks")
        header["BIASSUB"] = (plan.bias_subtracted, "bias subtracted before combining")
    if plan.kind is FrameKind.MASTER_FLAT:
        if plan.filter:
            header["FILTER"] = plan.filter
        header["FLATSCAL"] = (recipe.flat_scaling, "per-flat scaling before combining")
    add_history(header, f"{plan.kind.value} = {describe_combine(options)} of {len(inputs)} frames")
    if recipe.weights != "none":
        keyword = f" {recipe.weights_keyword}" if recipe.weights == "keyword" else ""
        add_history(header, f"weighted by {recipe.weights}{keyword} (mean-one weights; median ignores them)")
    add_history(header, "inputs: " + ", ".join(step.frame.name for step in plan.inputs))
    _add_quality(header, combined, plan, inputs, options)
    return master


def _add_quality(header, combined: CombineResult, plan: MasterPlan, inputs: Sequence[Frame],
                 options: CombineOptions) -> None:
    """QA… keywords and HISTORY (see :mod:`qa`) from the master and the input rows kept while combining
    (``combined.qa``); a figure that cannot be had is left out, never stopping the run."""
    sample = combined.qa if isinstance(combined.qa, qa.InputSample) else None
    names = [step.source or step.frame.name for step in plan.inputs]
    try:
        report = qa.measure(plan.kind.value, plan.name, combined.data, inputs[0].header, sample, names,
                            options, exptime=plan.exptime, bias_subtracted=plan.bias_subtracted)
    except (ValueError, ArithmeticError, IndexError, MemoryError) as exc:
        add_history(header, f"QA not measured: {exc}")
        return
    if plan.previous is not None:  # the camera's previous master of this kind, from the library
        source, figures = plan.previous
        qa.compare_to_previous(report, {"figures": {key: {"value": value} for key, value in figures.items()}},
                               source=source)
    report.write_header(header)


def quality_values(masters: Sequence[Frame]) -> dict[str, dict]:
    """recipe.json's QA values of written masters, read back from their headers (so a cluster's run
    records exactly what the local engine records)."""
    return {frame.name: qa.from_header(frame.header, frame.name).to_dict() for frame in masters}


def describe_combine(options: CombineOptions) -> str:
    """A one-line human description of combine options, for HISTORY and the GUI."""
    text = options.method
    if options.reject == "sigma":
        text += (f" with {options.sigma_low:g}/{options.sigma_high:g} sigma clipping "
                 f"({options.sigma_center}, {options.sigma_spread}, {options.sigma_iterations} pass(es))")
    elif options.reject == "minmax":
        text += f" with min/max rejection ({options.minmax_low} low, {options.minmax_high} high)"
    if options.clip_min is not None or options.clip_max is not None:
        low = "" if options.clip_min is None else f"{options.clip_min:g}"
        high = "" if options.clip_max is None else f"{options.clip_max:g}"
        text += f", values outside [{low or '-inf'}, {high or 'inf'}] rejected first"
    return text


def _flat_scales(frames: Sequence[Frame], scaling: str) -> list[float] | None:
    """Per-flat scale factors, two frames at a time (frames that can read again are released after)."""
    functions = {"inverse_median": inverse_median_scales, "inverse_mean": inverse_mean_scales}
    if scaling == "none":
        return None
    if scaling not in functions:
        raise ValueError(f"unknown flat scaling {scaling!r} (use none, inverse_median or inverse_mean)")

    def scale_of(frame: Frame) -> float:
        try:
            return functions[scaling]([frame.data])[0]
        finally:
            frame.release()

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:  # numpy's partition releases the GIL
        return list(pool.map(scale_of, frames))
