"""Run a plan on a Dask cluster (``ccdgui reduce --scheduler ADDRESS`` or ``--scheduler local:N``).

The plan is the same; only where its work runs changes. Each task rebuilds what it reads from file paths
(inputs by path and HDU, masters by the paths they were written to in the output folder), so nothing
large passes through the scheduler: a master is combined in row-band tasks whose bands go worker to
worker to one task that assembles, finishes and writes the master; each flat's scale is a task; each
light is one task that calibrates and writes it. Every task calls the functions the local engine calls
(the plan's overscan/trim twins, ``_Run._apply``, the same combine kernel over the same sub-bands,
``_finish_master``, ``_Run._clean_and_mask``), so the outputs are the same bytes. Workers need the inputs
and the output folder under the same paths as the client (a shared filesystem).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import calibrate, combine, fitsio, qa
from .execute import OutputError, _finish_master, _Run, os_error_reason, write_product
from .frame import Frame, FrameKind
from .plan import FrameSteps, MasterPlan, Plan, _prepare, _reclassified
from .progress import CancelToken, Progress
from .recipe import Recipe

INSTALL_HINT = "--scheduler needs the optional package distributed: pip install 'ccdgui[distributed]'"
CONNECT_TIMEOUT = 5.0   # seconds to reach a scheduler before giving up
CHECKED_VERSIONS = ("ccdgui", "numpy", "astropy")


class ClusterError(OutputError):
    """The cluster cannot be used (unreachable, mismatched, inputs missing); ``str`` is one line."""


def require_distributed():
    try:
        import distributed
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    return distributed


def worker_versions() -> dict[str, str]:
    """The versions a process runs (what the client and the workers must agree on, and more)."""
    from .provenance import software_versions

    versions = software_versions()
    try:
        import distributed

        versions["distributed"] = distributed.__version__
    except ImportError:  # pragma: no cover - a worker always has it
        pass
    return versions


def _missing(paths: Sequence[str], folder: str) -> list[str]:
    """The paths a worker cannot read, and the output folder if it cannot write there."""
    gone = [p for p in paths if not os.access(p, os.R_OK)]
    if not os.access(folder, os.W_OK):
        gone.append(f"{folder} (output folder, not writable)")
    return gone


class ClusterEngine:
    """A connection to a Dask scheduler (or a LocalCluster it started) that runs plans."""

    def __init__(self, address: str, task_rows: int | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        """``address``: tcp://host:port, or local:N for a LocalCluster of N one-thread worker processes.
        ``task_rows``: rows per combine task (default: bands enough for two tasks per worker)."""
        distributed = require_distributed()
        self.address, self.task_rows, self.cluster = address, task_rows, None
        if address.startswith("local:"):
            try:
                workers = int(address.split(":", 1)[1])
                if workers < 1:
                    raise ValueError
            except ValueError:
                raise ClusterError(f"--scheduler {address}: use local:N with N ≥ 1 workers") from None
            import logging

            self.cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                    dashboard_address=":0", silence_logs=logging.ERROR)
            target = self.cluster
        else:
            target = address
        try:
            self.client = distributed.Client(target, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            self._close_cluster()
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {reason}") from None
        try:
            self.check_versions()
        except BaseException:
            self.close()
            raise

    # --- the cluster -----------------------------------------------------------------------------
    @property
    def workers(self) -> int:
        return max(len(self.client.scheduler_info(n_workers=-1).get("workers", {})), 1)

    def versions(self) -> dict[str, dict[str, str]]:
        """Each worker's versions, by worker address."""
        return self.client.run(worker_versions)

    def check_versions(self) -> None:
        """Refuse workers whose ccdgui, numpy or astropy differ from the client's."""
        here = worker_versions()
        for address, there in self.versions().items():
            differ = [f"{name} {there.get(name)} on {address} but {here[name]} here"
                      for name in CHECKED_VERSIONS if there.get(name) != here[name]]
            if differ:
                raise ClusterError("the cluster's versions differ from this client's: " + "; ".join(differ))

    def describe(self) -> dict:
        """What recipe.json records about where the run ran."""
        found = self.versions()
        distinct = [dict(t) for t in {tuple(sorted(v.items())) for v in found.values()}]
        return {"scheduler": self.client.scheduler.address if self.cluster is not None else self.address,
                "requested": self.address, "workers": len(found), "worker_versions": distinct}

    def check_paths(self, paths: Sequence[str], folder: str) -> None:
        """Every worker must read the inputs and write the output folder under the same paths."""
        for address, gone in self.client.run(_missing, list(paths), folder).items():
            if gone:
                more = f" and {len(gone) - 5} more" if len(gone) > 5 else ""
                raise ClusterError(f"worker {address} cannot read {', '.join(gone[:5])}{more} (the workers "
                                   "need the inputs and the output folder under the same paths)")

    def make_run(self, plan: Plan, recipe: Recipe, folder, cancel: CancelToken, inputs: list[Path]) -> _Run:
        """The execution state :func:`execute.execute` drives, with its work on the cluster."""
        return _ClusterRun(self, plan, recipe, folder, cancel, inputs)

    def close(self) -> None:
        self.client.close()
        self._close_cluster()

    def _close_cluster(self) -> None:
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def __enter__(self) -> ClusterEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- what a task is given: paths and planned steps, never pixels -----------------------------------
@dataclass(frozen=True)
class MasterRef:
    """A master written to the output folder, as a calibration step uses it."""

    kind: FrameKind
    name: str
    exptime: float | None
    path: str
    norm: float | None = None  # a flat's normalisation, measured once when it was made


@dataclass(frozen=True)
class InputJob:
    """One input frame and the masters that prepare it."""

    path: str
    hdu: int | None
    source: str
    bias: MasterRef | None = None
    dark: MasterRef | None = None
    raw_dark: MasterRef | None = None
    flat: MasterRef | None = None
    output: str = ""


@dataclass(frozen=True)
class MasterJob:
    kind: FrameKind
    name: str
    output: str
    exptime: float | None
    filter: str | None
    inputs: tuple[InputJob, ...] = field(default_factory=tuple)
    previous: tuple[str, dict] | None = None  # MasterPlan.previous: QA compared with the library's


_CACHE: dict[tuple, tuple[MasterPlan, Frame]] = {}   # per worker process: masters read once
_BAD_PIXELS: dict[int, tuple] = {}                   # by id of the cached MasterPlan stub


def _master(ref: MasterRef) -> tuple[MasterPlan, Frame]:
    """A stand-in MasterPlan and the master's frame, read from its file (cached while it is unchanged)."""
    stat = os.stat(ref.path)
    key = (ref.path, stat.st_mtime_ns, stat.st_size, ref.kind, ref.exptime)
    if key not in _CACHE:
        if len(_CACHE) >= 8:
            old = next(iter(_CACHE))
            _BAD_PIXELS.pop(id(_CACHE.pop(old)[0]), None)
        stub = MasterPlan(ref.kind, (), [], name=ref.name, exptime=ref.exptime)
        _CACHE[key] = (stub, fitsio.read_header_frame(ref.path).materialised())
    return _CACHE[key]


def _worker_run(recipe: Recipe, job: InputJob) -> tuple[_Run, FrameSteps]:
    """A _Run holding just the masters ``job`` uses, and the job's steps, to call its methods."""
    for path in (job.path,):
        if not os.path.exists(path):
            raise FileNotFoundError(f"input {path} not found on this worker")
    frame = _prepare(_reclassified(fitsio.read_header_frame(job.path, job.hdu), recipe), recipe, [])
    run = _Run.__new__(_Run)
    run.recipe, run.cancel, run.built, run.failed, run.norms = recipe, CancelToken(), {}, {}, {}
    run.bad_pixels = _BAD_PIXELS
    stubs = {}
    for role in ("bias", "dark", "raw_dark", "flat"):
        ref = getattr(job, role)
        if ref is not None:
            stub, master = _master(ref)
            run.built[id(stub)] = master
            if ref.norm is not None:
                run.norms[id(stub)] = ref.norm
            stubs[role] = stub
    return run, FrameSteps(frame, source=job.source, output=job.output, **stubs)


def _prepared(recipe: Recipe, job: InputJob) -> Frame:
    """An input of a master as the local engine prepares it: still in its file when it can be (its
    steps then run band by band, the same float32 operations as on a whole frame)."""
    run, steps = _worker_run(recipe, job)
    return run._apply(steps, with_flat=False)


def _scale_task(recipe: Recipe, job: InputJob) -> float:
    """One flat's scale factor."""
    functions = {"inverse_median": combine.inverse_median_scales, "inverse_mean": combine.inverse_mean_scales}
    return functions[recipe.flat_scaling]([_prepared(recipe, job).data])[0]


def _weights_task(recipe: Recipe, master: MasterJob, scales) -> list[float]:
    """Inverse-variance weights of a master's inputs."""
    frames = [_prepared(recipe, job) for job in master.inputs]
    return combine.inverse_variance_weights([f.stack_source() for f in frames], scales,
                                            [job.source for job in master.inputs])


def _band_task(recipe: Recipe, master: MasterJob, scales, weights, start: int, stop: int,
               ) -> tuple[int, np.ndarray, np.ndarray]:
    """Rows start..stop-1 of a master, combined in the local engine's sub-bands by its kernel."""
    frames = [_prepared(recipe, job) for job in master.inputs]
    arrays = [f.stack_source() for f in frames]
    options = recipe.combine_options()
    options.validate()
    ny, nx = combine._check_inputs(arrays, scales)
    weights = combine._frame_weights(weights, len(arrays), options.method)
    clip = combine._clip_limits(options)
    if scales is not None:
        scales = np.asarray(scales, dtype=np.float32)
    rows = combine.band_rows(len(arrays), nx)
    out = np.empty((stop - start, nx), dtype=np.float32)
    count = np.empty((stop - start, nx), dtype=np.uint16)
    sample = qa.InputSample(ny, nx)  # the rows the local engine keeps for quality figures
    sample.scales = None if scales is None else [float(s) for s in scales]
    try:
        for first in range(start, stop, rows):
            last = min(first + rows, stop)
            out[first - start:last - start], count[first - start:last - start] = combine._reduce_rows(
                arrays, scales, first, last, options, weights, clip)
            sample(arrays, first, last)
    finally:
        for array in arrays:
            if hasattr(array, "close"):
                array.close()
    return start, out, count, sample


def _master_task(recipe: Recipe, master: MasterJob, outdir: str, protect: list[str], *bands,
                 ) -> tuple[dict, float | str | None]:
    """Assemble the bands, finish and write the master; returns its record and, for a flat, its norm
    (or why it has none)."""
    ordered = sorted(bands, key=lambda band: band[0])
    result = combine.CombineResult(data=np.concatenate([b[1] for b in ordered]),
                                   count=np.concatenate([b[2] for b in ordered]))
    steps = [_worker_run(recipe, job)[1] for job in master.inputs]
    plan = MasterPlan(master.kind, (), steps, name=master.name, exptime=master.exptime, filter=master.filter,
                      previous=master.previous)
    first_run, first_steps = _worker_run(recipe, master.inputs[0])
    result.qa = qa.InputSample.merged([b[3] for b in ordered], first_run.built.values())
    inputs = [first_run._apply(first_steps, with_flat=False)] + [s.frame for s in steps[1:]]
    frame = _finish_master(result, plan, inputs, recipe.combine_options(), recipe)
    _, record = write_product(frame, Path(outdir), master.output, "master", master.name, protect)
    norm: float | str | None = None
    if master.kind is FrameKind.MASTER_FLAT:
        try:
            norm = calibrate.flat_norm_value(frame, recipe.flat_normalise)
        except calibrate.CalibrationError as exc:
            norm = str(exc)
    return record, norm


def _light_task(recipe: Recipe, job: InputJob, outdir: str, protect: list[str]) -> dict | str:
    """Calibrate one light and write it; its record, or why it could not be made."""
    run, steps = _worker_run(recipe, job)
    try:
        calibrated = run._apply(steps, with_flat=True).materialised()
    except (calibrate.CalibrationError, fitsio.FrameError) as exc:
        return f"light {steps.source}: not calibrated: {exc}"
    calibrated = run._clean_and_mask(calibrated, steps)
    calibrated.kind = FrameKind.CALIBRATED
    return write_product(calibrated, Path(outdir), job.output, "calibrated", job.source, protect)[1]


# --- the client side -------------------------------------------------------------------------------
class _ClusterRun(_Run):
    """The local engine's state and records, with masters and lights made by cluster tasks."""

    def __init__(self, engine: ClusterEngine, plan: Plan, recipe: Recipe, folder, cancel: CancelToken,
                 inputs: list[Path]) -> None:
        super().__init__(plan, recipe, folder, cancel, inputs)
        self.engine, self.client = engine, engine.client
        self.refs: dict[int, MasterRef] = {}          # master id -> where it was written
        self.files = {id(i.frame): i for i in plan.inputs}
        self.protect = [str(Path(p).resolve()) for p in inputs]
        self.outdir = str(folder.path.resolve())

    def _job(self, steps: FrameSteps) -> InputJob:
        frame = steps.frame
        if frame.path is None:
            raise ClusterError(f"{frame.name} is not in a file: a cluster reads its inputs from files")
        roles = ("bias", "dark", "raw_dark", "flat")
        refs = {role: self.refs.get(id(getattr(steps, role))) for role in roles}
        return InputJob(str(Path(frame.path).resolve()), frame.hdu, steps.source, output=steps.output, **refs)

    def _wait(self, futures: list, on_done) -> Generator[Progress, None, None]:
        """Yield what ``on_done(future)`` yields as each future completes; cancel or an error (also
        KeyboardInterrupt) cancels the futures still running."""
        if not futures:
            return
        distributed = require_distributed()
        waiting = distributed.as_completed(futures, loop=self.client.loop)
        try:
            while not waiting.is_empty():
                self.cancel.check()
                batch = waiting.next_batch(block=False)
                if not batch:
                    time.sleep(0.02)
                    continue
                for future in batch:
                    yield from on_done(future)
        except BaseException:
            self.client.cancel(futures)
            raise

    def _result(self, future):
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as exc:
            raise ClusterError(f"a task killed its workers repeatedly and was given up: {exc}") from None
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise ClusterError(str(exc)) from None
            raise OutputError(f"cannot write into {self.outdir}: {os_error_reason(exc)}") from None

    # masters -------------------------------------------------------------------------------------
    def masters(self, scratch: str) -> Generator[Progress, None, None]:
        library = [str(Path(m.library.path).resolve()) for m in self.plan.library_masters]  # type: ignore[union-attr]
        self.engine.check_paths([*(str(Path(p).resolve()) for p in self.inputs), *library], self.outdir)
        self._library_masters()
        for master in self.plan.masters:
            self.cancel.check()
            if any(self._failed_master(steps) for steps in master.inputs):
                why = next(w for w in map(self._failed_master, master.inputs) if w)
                self._fail(master, f"{master.name} could not be made: {why}")
                continue
            try:
                record, norm = yield from self._build(master)
            except (calibrate.CalibrationError, fitsio.FrameError, ValueError) as exc:
                self._fail(master, f"{master.name} could not be made: {exc}")
                continue
            path = self.folder.path / master.output
            self.folder.journal(master.output)
            self.result.outputs.append(record)
            self.result.masters.append(fitsio.read_header_frame(path))
            if isinstance(norm, str):
                self.norms[id(master)] = calibrate.CalibrationError(norm)
            elif norm is not None:
                self.norms[id(master)] = norm
            self.refs[id(master)] = MasterRef(master.kind, master.name, master.exptime,
                                              str(path.resolve()), norm if isinstance(norm, float) else None)
        for master in [*self.plan.masters, *self.plan.library_masters]:  # in the local engine's order
            if master.kind is FrameKind.MASTER_FLAT and isinstance(self.norms.get(id(master)), float):
                self.values.setdefault(master.name, {})["norm"] = self.norms[id(master)]

    def _library_masters(self) -> None:
        """Masters from the library are read by the tasks straight from the library's folder (which the
        workers must see under the same path); each is checked against its sha256 here first, as the
        local engine does, and a flat's normalisation is measured once."""
        from . import masterlib

        for master in self.plan.library_masters:
            entry = master.library
            problem = masterlib.entry_problem(entry)
            if problem is not None:
                self.failed[id(master)] = f"library master {problem}: refused"
                self.result.problems.append(self.failed[id(master)])
                continue
            norm = None
            if master.kind is FrameKind.MASTER_FLAT:
                try:
                    flat = fitsio.read_frame(entry.path)
                    norm = calibrate.flat_norm_value(flat, self.recipe.flat_normalise)
                    self.norms[id(master)] = norm
                except calibrate.CalibrationError as exc:
                    self.norms[id(master)] = exc
            self.refs[id(master)] = MasterRef(master.kind, master.name, master.exptime,
                                              str(Path(entry.path).resolve()), norm)

    def _failed_master(self, steps: FrameSteps) -> str | None:
        for master in (steps.raw_dark, steps.bias, steps.dark):
            if master is not None and id(master) in self.failed:
                return self.failed[id(master)]
        return None

    def _fail(self, master: MasterPlan, why: str) -> None:
        self.failed[id(master)] = why
        self.result.problems.append(why)

    def _build(self, master: MasterPlan) -> Generator[Progress, None, tuple[dict, float | str | None]]:
        client, recipe = self.client, self.recipe
        job = MasterJob(master.kind, master.name, master.output, master.exptime, master.filter,
                        tuple(self._job(steps) for steps in master.inputs), master.previous)
        scales = None
        if master.kind is FrameKind.MASTER_FLAT and recipe.flat_scaling != "none":
            if recipe.flat_scaling not in ("inverse_median", "inverse_mean"):
                raise ValueError(f"unknown flat scaling {recipe.flat_scaling!r} (use none, inverse_median "
                                 "or inverse_mean)")
            futures = [client.submit(_scale_task, recipe, j, pure=False) for j in job.inputs]
            names = {f.key: j.source for f, j in zip(futures, job.inputs, strict=True)}
            yield from self._wait(futures, lambda f: iter([self.meter.at(0, f"Scaled flat {names[f.key]}")]))
            scales = [float(self._result(f)) for f in futures]
            self.values[master.name] = {"scales": scales}
        weights = self._remote_weights(master, job, scales)
        ny, nx = master.inputs[0].frame.shape
        unit = combine.band_rows(len(job.inputs), nx)
        # two tasks per worker; one where every task reads its inputs whole (overscan: no row reader)
        per_worker = 1 if any(steps.frame.rows is None for steps in master.inputs) else 2
        tasks = per_worker * self.engine.workers
        rows = self.engine.task_rows or unit * max(1, math.ceil(ny / unit / tasks))
        bands = [client.submit(_band_task, recipe, job, scales, weights, start, min(start + rows, ny),
                               pure=False) for start in range(0, ny, rows)]
        label = f"{master.kind.value.split()[-1]} ({master.name})"
        message = f"Combining {len(job.inputs)} {label} frame(s)"
        done = [0]

        def band_done(future):
            self._result(future)  # raises the task's error
            done[0] += 1
            yield self.meter.at(done[0] / len(bands) * len(job.inputs), message)

        yield from self._wait(bands, band_done)
        self.meter.step(len(job.inputs), message)
        made = client.submit(_master_task, recipe, job, self.outdir, self.protect, *bands, pure=False)
        yield from self._wait([made], lambda f: iter([self.meter.at(0, f"Wrote {master.name}")]))
        return self._result(made)  # the bands are released with their futures

    def _remote_weights(self, master: MasterPlan, job: MasterJob, scales) -> list[float] | None:
        if self.recipe.weights != "inverse_variance":
            return self._weights(master, [], scales)
        weights = self._result(self.client.submit(_weights_task, self.recipe, job, scales, pure=False))
        self.values.setdefault(master.name, {})["weights"] = [float(w) for w in weights]
        return weights

    # lights --------------------------------------------------------------------------------------
    def lights(self) -> Generator[Progress, None, None]:
        outcomes: dict[int, object] = {}
        futures, owner = [], {}
        for steps in self.plan.lights:
            if steps.skip:
                outcomes[id(steps)] = None
                continue
            why = self._why_not(steps)
            if why is not None:
                outcomes[id(steps)] = f"light {steps.source}: not calibrated: {why}"
                continue
            future = self.client.submit(_light_task, self.recipe, self._job(steps), self.outdir,
                                        self.protect, pure=False)
            futures.append(future)
            owner[future.key] = steps

        def light_done(future):
            steps = owner[future.key]
            outcome = self._result(future)
            if isinstance(outcome, dict):
                self.folder.journal(outcome["file"])
            outcomes[id(steps)] = outcome
            yield self.meter.step(1, f"Calibrated {steps.frame.name}")

        yield from self._wait(futures, light_done)
        self._remove_partial_files()
        for steps in self.plan.lights:  # in the plan's order, as locally
            if steps.skip:
                yield self.meter.step(1, f"Calibrated {steps.frame.name}")
            self.result.problems.extend(f"light {steps.source}: {note}" for note in steps.notes)
            outcome = outcomes[id(steps)]
            if isinstance(outcome, str):
                self.result.problems.append(outcome)
            elif outcome is not None:
                self.result.outputs.append(outcome)
                self.result.calibrated.append(fitsio.read_header_frame(self.folder.path / outcome["file"]))

    def _remove_partial_files(self) -> None:
        """Temporary files a worker killed while writing left (never under a final name)."""
        for rel in self.plan.outputs:
            path = self.folder.path / rel
            for part in path.parent.glob(f".{path.name}.*.part"):
                part.unlink(missing_ok=True)

    def _why_not(self, steps: FrameSteps) -> str | None:
        """Why a light cannot be calibrated before any pixel is read (a master it needs failed)."""
        for master in (steps.raw_dark, steps.bias, steps.dark, steps.flat):
            if master is not None and id(master) in self.failed:
                return self.failed[id(master)]
        norm = self.norms.get(id(steps.flat)) if steps.flat is not None else None
        return str(norm) if isinstance(norm, Exception) else None
