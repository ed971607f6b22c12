"""The main window: library panel, parameter dock, raw and calibrated views with linked pan/zoom, a
histogram of both, and the jobs (simulate, open, calibrate) that run off the GUI thread."""

from __future__ import annotations

import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QSettings, Qt, QTimer
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QWidget,
)

from .. import __version__
from ..model import display, execute, fitsio, provenance
from ..model.display import DisplayState
from ..model.estimate import estimate_run
from ..model.frame import Frame, FrameKind
from ..model.intake import intake
from ..model.plan import Plan, make_plan
from ..model.progress import Progress
from ..model.recipe import Recipe
from ..model.simulate import SimParams, iter_night
from . import bindings
from .histogram_view import HistogramView
from .image_view import ImageView, lookup_table
from .library_panel import LibraryPanel
from .param_dock import ParamDock
from .workers import JobRunner

MAX_RECENT = 8
CLOSE_WAIT_MS = 700  # the longest a closing window waits for its cancelled job's worker to stop


# --- jobs: model generators wrapped for the runner (no science here) -----------------------------------
def simulate_job(params: SimParams):
    def work(token):
        total = params.n_bias + params.n_dark + len(params.filters) * (params.n_flat + params.n_light)
        frames = []
        for frame in iter_night(params):
            token.check()
            frames.append(frame)
            yield Progress(len(frames) / max(total, 1), f"Simulated {frame.name}")
        return frames
    return work


def load_job(paths: list[Path]):
    def work(token):
        return (yield from intake(paths, token))
    return work


def calibrate_job(plan: Plan, recipe: Recipe, outdir: Path, quarantined: list):
    def work(token):
        return (yield from execute.execute(plan, recipe, outdir, token, quarantined=quarantined))
    return work


def save_job(run_folder: Path, folder: Path, overwrite: bool):
    def work(token):
        return (yield from provenance.copy_results(run_folder, folder, overwrite, token))
    return work


SESSION_PREFIX = "ccdgui-session-"


def remove_abandoned_sessions() -> None:
    """Delete session folders left by windows whose process has ended (killed, crashed)."""
    import shutil
    import tempfile

    for folder in Path(tempfile.gettempdir()).glob(f"{SESSION_PREFIX}*"):
        if folder.is_dir() and execute._lock_holder(folder / execute.LOCK_NAME) is None:
            shutil.rmtree(folder, ignore_errors=True)


class MainWindow(QMainWindow):
    def __init__(self, sim: SimParams | None = None, recipe: Recipe | None = None,
                 display_state: DisplayState | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("ccdgui")
        self.sim = sim or SimParams()
        self.recipe = recipe or Recipe()
        self.display = display_state or DisplayState()
        self.settings = settings or QSettings("ccdgui", "ccdgui")
        self.raw: list[Frame] = []
        self.quarantined: list = []
        self.masters: list[Frame] = []
        self.calibrated: list[Frame] = []
        self.plan: Plan | None = None
        self.current: Frame | None = None
        self.blinked = False
        self.last_result: execute.Result | None = None
        self.saved = False                  # the last results were saved somewhere
        self.ask_before_discarding = True   # tests turn the question off
        self._session: Path | None = None   # this window's folder of runs (results live there until saved)
        self._runs = 0
        self.timings: dict[str, float] = {}
        self._job_started = 0.0
        self._job_kind = ""
        self._cancelled_text = ""
        self._limits_cache: dict[tuple, tuple[float, float]] = {}

        self.raw_view = ImageView("Raw")
        self.calibrated_view = ImageView("Calibrated")
        self.calibrated_view.plot.setXLink(self.raw_view.plot)
        self.calibrated_view.plot.setYLink(self.raw_view.plot)
        self.histogram = HistogramView()
        views = QSplitter(Qt.Orientation.Horizontal)
        views.addWidget(self.raw_view)
        views.addWidget(self.calibrated_view)
        central = QSplitter(Qt.Orientation.Vertical)
        central.addWidget(views)
        central.addWidget(self.histogram)
        central.setStretchFactor(0, 4)
        central.setStretchFactor(1, 1)
        self.setCentralWidget(central)

        self.library = LibraryPanel()
        self.params = ParamDock(self.sim, self.recipe)
        area = Qt.DockWidgetArea
        self.library_dock = self._dock("Frame library", "library", self.library, area.LeftDockWidgetArea)
        self.params_dock = self._dock("Parameters", "parameters", self.params, area.RightDockWidgetArea)
        self.resizeDocks([self.library_dock, self.params_dock], [460, 330], Qt.Orientation.Horizontal)

        self.runner = JobRunner(self)
        self._histogram_timer = QTimer(self)
        self._histogram_timer.setSingleShot(True)
        self._histogram_timer.setInterval(0)
        self._histogram_timer.timeout.connect(self._refresh_histogram)
        self._build_status_bar()
        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._connect()
        self.raw_view.placeholder("No frame yet")
        self.calibrated_view.placeholder("Press Calibrate to see\nthe calibrated frame")
        self._restore_layout()

    # --- construction -------------------------------------------------------------------------------
    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.estimate_label = QLabel("")
        self.estimate_label.setToolTip("What Calibrate will cost, estimated from the frames' sizes before "
                                       "it starts (stacks larger than the recipe's memory limit stream "
                                       "from disk)")
        bar.addPermanentWidget(self.estimate_label)
        self.pixel_label = QLabel("")
        self.pixel_label.setMinimumWidth(360)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job; nothing half-made is kept (Esc).")
        self.cancel_button.setVisible(False)
        bar.addPermanentWidget(self.pixel_label)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        action.setToolTip(tip or text)
        action.setStatusTip(tip or text)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        key = QKeySequence.StandardKey
        self.open_folder_action = self._action("Open folder…", self.choose_folder, "Ctrl+O",
                                               "Open every FITS file in a folder and its subfolders")
        self.open_files_action = self._action("Open files…", self.choose_files, "Ctrl+Shift+O")
        self.export_action = self._action("Export view as PNG…", self.choose_export, "Ctrl+E")
        self.save_action = self._action("Save results…", self.choose_output, "Ctrl+S",
                                        "Write the masters, calibrated frames and recipe.json to a folder "
                                        "(inputs are never modified)")
        self.save_action.setEnabled(False)
        self.quit_action = self._action("Quit", self.close, QKeySequence(key.Quit))
        self.simulate_action = self._action("Simulate night", self.simulate, "Ctrl+N",
                                            "Make a new simulated night with the parameters in the dock")
        self.calibrate_action = self._action("Calibrate", self.calibrate, "Ctrl+R",
                                             "Build masters and calibrate every light")
        self.zoom_in_action = self._action("Zoom in", lambda: self._zoom(1.25), [QKeySequence("+"),
                                           QKeySequence("="), QKeySequence(key.ZoomIn)])
        self.zoom_out_action = self._action("Zoom out", lambda: self._zoom(0.8), [QKeySequence("-"),
                                            QKeySequence(key.ZoomOut)])
        self.fit_action = self._action("Fit", self.raw_view.fit, "F", "Fit the frame in the view")
        self.next_action = self._action("Next frame", lambda: self.library.step(1),
                                        [QKeySequence("N"), QKeySequence("PgDown")])
        self.previous_action = self._action("Previous frame", lambda: self.library.step(-1),
                                            [QKeySequence("P"), QKeySequence("PgUp")])
        self.blink_action = self._action("Blink raw/calibrated", self.blink, "B",
                                         "Swap the left view between the raw and the calibrated frame")
        self.cancel_action = self._action("Cancel job", self.runner.cancel, "Esc")
        self.about_action = self._action("About ccdgui", self.about)

    def _build_toolbar(self) -> None:
        bar = self.addToolBar("Main")
        bar.setObjectName("main-toolbar")
        for action in (self.open_folder_action, self.simulate_action, self.calibrate_action,
                       self.save_action):
            bar.addAction(action)
        bar.addSeparator()
        self.interval_combo = self._combo(bar, "Interval", display.INTERVALS, "interval",
                                          "How display levels are chosen: percentile (0.5–99.9 %), "
                                          "z-scale (IRAF) or the full range")
        self.stretch_combo = self._combo(bar, "Stretch", display.STRETCHES, "stretch", "Display stretch")
        self.cmap_combo = self._combo(bar, "Colours", display.COLOUR_MAPS, "colour_map", "Colour map")
        self.link_check = self._check(bar, "Link levels", "link_levels",
                                      "Both views use the same levels (compare frames on one scale); "
                                      "unlinked, each view has its own and the histogram region drives "
                                      "the calibrated one")
        self.colour_check = self._check(bar, "Colour", "debayer",
                                        "Show one-shot-colour frames (BAYERPAT in the header) in colour, "
                                        "one RGB pixel per 2 × 2 Bayer cell; calibration always works on "
                                        "the raw mosaic")
        bar.addSeparator()
        for action in (self.zoom_in_action, self.zoom_out_action, self.fit_action, self.blink_action):
            bar.addAction(action)

    def _check(self, bar, text: str, field: str, tip: str) -> QCheckBox:
        check = QCheckBox(text)
        check.setToolTip(tip)
        bindings.bind_check(self.display, field, check)
        bar.addWidget(check)
        return check

    def _combo(self, bar, label: str, values, field: str, tip: str) -> QComboBox:
        bar.addWidget(QLabel(f" {label} "))
        combo = QComboBox()
        for value in values:
            combo.addItem(value, value)
        combo.setToolTip(tip)
        bindings.bind_combo(self.display, field, combo)
        bar.addWidget(combo)
        return combo

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction(self.open_folder_action)
        file_menu.addAction(self.open_files_action)
        self.recent_menu = file_menu.addMenu("Recent")
        self._fill_recent()
        file_menu.addSeparator()
        file_menu.addAction(self.save_action)
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        run_menu = menu.addMenu("&Run")
        run_menu.addAction(self.simulate_action)
        run_menu.addAction(self.calibrate_action)
        run_menu.addAction(self.cancel_action)
        view_menu = menu.addMenu("&View")
        view_menu.addAction(self.library_dock.toggleViewAction())
        view_menu.addAction(self.params_dock.toggleViewAction())
        view_menu.addSeparator()
        for action in (self.zoom_in_action, self.zoom_out_action, self.fit_action, self.next_action,
                       self.previous_action, self.blink_action):
            view_menu.addAction(action)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self.about_action)

    def _connect(self) -> None:
        self.params.simulate_requested.connect(self.simulate)
        self.params.calibrate_requested.connect(self.calibrate)
        self.library.frame_selected.connect(self.show_frame)
        self.library.kind_requested.connect(self.set_kind)
        self.library.hdu_requested.connect(self.set_hdu)
        self.cancel_button.clicked.connect(self.runner.cancel)
        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.busy_changed.connect(self._on_busy)
        self.runner.cancelling_changed.connect(self._on_cancelling)
        self.raw_view.hovered.connect(self._on_hover)
        self.calibrated_view.hovered.connect(self._on_hover)
        self.histogram.levels_dragging.connect(self._on_levels_dragged)
        for name in ("interval", "percentile_low", "percentile_high", "link_levels"):
            getattr(self.display.events, name).connect(lambda *_: self.refresh_levels())
        for name in ("stretch", "colour_map"):
            getattr(self.display.events, name).connect(lambda *_: self._apply_lut())
        self.display.events.debayer.connect(lambda *_: self.current is not None
                                            and self.show_frame(self.current))
        self.recipe.events.connect(lambda *_: self.refresh_library())

    # --- jobs -----------------------------------------------------------------------------------------
    def _start(self, kind: str, work) -> None:
        self.runner.cancel()  # while _job_kind still names the job being cancelled
        self._job_kind = kind
        self._job_started = time.perf_counter()
        self.runner.start(work)

    def simulate(self) -> None:
        """Replace the session with a new simulated night (in a worker)."""
        if not self.discard_ok("Simulate a new night"):
            return
        self.statusBar().showMessage("Simulating a night…")
        self._start("simulate", simulate_job(SimParams(**{f: getattr(self.sim, f) for f in
                                                          self.sim.__dataclass_fields__})))

    def open_paths(self, paths: list[str | Path]) -> None:
        """Replace the session with the FITS frames in ``paths`` (files or folders), in a worker."""
        if not self.discard_ok("Open other frames"):
            return
        paths = [Path(p) for p in paths]
        if paths:
            self._remember(paths[0] if paths[0].is_dir() else paths[0].parent)
        self.statusBar().showMessage(f"Reading {', '.join(p.name for p in paths)}…")
        self._start("load", load_job(paths))

    def calibrate(self) -> None:
        """Build masters and calibrate the session's lights (in a worker)."""
        if not self.raw:
            self.statusBar().showMessage("Nothing to calibrate: simulate a night or open a folder", 5000)
            return
        recipe = self.recipe.copy()  # the worker gets its own copy
        try:
            recipe.check_together()
        except ValueError as exc:
            self.statusBar().showMessage(f"Cannot calibrate: {exc}", 10000)
            return
        self.statusBar().showMessage("Calibrating…")
        self._runs += 1
        outdir = self.session_folder() / f"run-{self._runs}"
        plan = make_plan(self.raw, recipe)
        self._start("calibrate", calibrate_job(plan, recipe, outdir, list(self.quarantined)))

    def session_folder(self) -> Path:
        """This window's folder of runs, made on first use and held (a lock file) while the window lives."""
        import tempfile

        if self._session is None:
            self._session = Path(tempfile.mkdtemp(prefix=SESSION_PREFIX))
            (self._session / execute.LOCK_NAME).write_text(str(os.getpid()))
        return self._session

    @property
    def unsaved(self) -> bool:
        return self.last_result is not None and not self.saved

    def discard_ok(self, action: str) -> bool:
        """Whether unsaved results may be discarded: asks the user (Save / Discard / Cancel) if any."""
        if not self.unsaved or not self.ask_before_discarding:
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self, "ccdgui", f"The calibrated results are not saved.\n{action} and discard them?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        if answer == buttons.Save:
            self.choose_output()
            return False
        return answer == buttons.Discard

    def save_results(self, folder: str | Path, overwrite: bool = False) -> None:
        """Copy the last run's masters, calibrated frames and recipe.json to ``folder`` (in a worker);
        ``overwrite`` replaces the outputs of a run saved there before."""
        if self.last_result is None or self.last_result.outdir is None:
            self.statusBar().showMessage("Nothing to save yet: press Calibrate first", 5000)
            return
        folder = Path(folder)
        self.settings.setValue("last_output", str(folder))
        self.statusBar().showMessage(f"Saving to {folder}…")
        self._start("save", save_job(self.last_result.outdir, folder, overwrite))

    def choose_output(self) -> None:
        start = str(self.settings.value("last_output", self._last_folder()))
        folder = QFileDialog.getExistingDirectory(self, "Save results in a folder", start)
        if not folder:
            return
        overwrite = False
        if any(Path(folder).iterdir()):
            buttons = QMessageBox.StandardButton
            answer = QMessageBox.question(
                self, "ccdgui", f"{folder} is not empty.\nReplace the results saved there before? (Other "
                "files are left alone.)", buttons.Yes | buttons.Cancel, buttons.Cancel)
            if answer != buttons.Yes:
                return
            overwrite = True
        self.save_results(folder, overwrite)

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.statusBar().showMessage(message)

    def _on_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy or self.runner.cancelling)
        self.cancel_button.setVisible(busy or self.runner.cancelling)
        if busy:
            self.progress.setValue(0)

    def _on_finished(self, result) -> None:
        seconds = time.perf_counter() - self._job_started
        self.timings[self._job_kind] = seconds
        if self._job_kind == "simulate":
            self._set_session(result, [])
            self.statusBar().showMessage(f"Simulated {len(result)} frames in {seconds:.1f} s", 8000)
        elif self._job_kind == "load":
            frames, problems = result.frames, result.problems
            self.library.remember_medians(result.medians)
            self._set_session(frames, problems)
            note = f"; {len(problems)} file(s) quarantined" if problems else ""
            self.statusBar().showMessage(f"Read {len(frames)} frames in {seconds:.1f} s{note}", 8000)
        elif self._job_kind == "save":
            self.saved = True
            self.statusBar().showMessage(f"Saved {len(result)} files in {result[-1].parent} "
                                         f"({seconds:.1f} s)", 10000)
        elif self._job_kind == "calibrate":
            self._forget_runs_but(result.outdir)
            self.last_result, self.saved = result, False
            self.save_action.setEnabled(True)
            self._limits_cache.clear()
            self.masters, self.calibrated = result.masters, result.calibrated
            self.refresh_library()
            if self.calibrated:  # shown on the next turn of the event loop: no long stall in one go
                first = self.calibrated[0]
                QTimer.singleShot(0, lambda: first in self.calibrated and self.library.select_frame(first))
            problems = f"; {len(result.problems)} note(s), see the Status column" if result.problems else ""
            self.statusBar().showMessage(
                f"Made {len(self.masters)} masters and {len(self.calibrated)} calibrated frames in "
                f"{seconds:.1f} s{problems}", 10000)

    def _on_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"Failed: {message}", 10000)
        QMessageBox.warning(self, "ccdgui", f"The {self._job_kind} job failed:\n{message}")

    def _on_cancelled(self) -> None:
        """The job's result will be dropped; "Cancelling…" until its worker has stopped."""
        if self._job_kind == "save":
            self._cancelled_text = ("Save cancelled; the files already written are complete, none is "
                                    "half-written")
        else:
            self._cancelled_text = f"{self._job_kind.capitalize() or 'Job'} cancelled; nothing was changed"
        if self.runner.cancelling:
            self.statusBar().showMessage(f"Cancelling {self._job_kind or 'the job'}…")
        else:
            self.statusBar().showMessage(self._cancelled_text, 6000)

    def _on_cancelling(self, cancelling: bool) -> None:
        """While a cancelled worker winds down the Cancel button says so (a new job waits for it)."""
        self.cancel_button.setText("Cancelling…" if cancelling else "Cancel")
        self.cancel_button.setEnabled(not cancelling)
        self._on_busy(self.runner.busy)
        if not cancelling and not self.runner.busy:
            self.statusBar().showMessage(self._cancelled_text, 6000)

    # --- session --------------------------------------------------------------------------------------
    def _forget_runs_but(self, keep: Path | None) -> None:
        """Delete the session's run folders other than ``keep`` (their results were replaced)."""
        if self._session is None:
            return
        for folder in self._session.glob("run-*"):
            if keep is None or folder.resolve() != Path(keep).resolve():
                shutil.rmtree(folder, ignore_errors=True)

    def remove_session(self) -> None:
        """Delete this window's session folder (the window is closing)."""
        if self._session is not None:
            shutil.rmtree(self._session, ignore_errors=True)
            self._session = None

    def _set_session(self, frames: list[Frame], problems: list) -> None:
        self._limits_cache.clear()
        self.raw, self.quarantined = list(frames), list(problems)
        self.masters, self.calibrated, self.last_result = [], [], None
        self._forget_runs_but(None)
        self.save_action.setEnabled(False)
        self.recipe.kind_overrides = {}
        self.recipe.hdu_overrides = {}
        self.current = None
        self.refresh_library()
        first = next((f for f in self.raw if self.recipe.kind_of(f) is FrameKind.LIGHT),
                     self.raw[0] if self.raw else None)
        if first is not None:
            self.library.select_frame(first)
        self.calibrated_view.placeholder("Press Calibrate to see\nthe calibrated frame")

    def set_kind(self, frame: Frame, kind: FrameKind) -> None:
        """Re-classify a frame: recorded in the recipe (so a reduce replays it), shown in the library."""
        overrides = dict(self.recipe.kind_overrides)
        if kind is frame.kind:
            overrides.pop(frame.name, None)
        else:
            overrides[frame.name] = kind.value
        self.recipe.kind_overrides = overrides

    def set_hdu(self, frame: Frame, index: int) -> None:
        """Use another image of a multi-extension file: recorded in the recipe, the frame read again."""
        try:
            replacement = fitsio.read_header_frame(frame.path, hdu=index)
        except fitsio.FrameError as exc:
            self.statusBar().showMessage(f"{frame.name}: HDU {index} cannot be used: {exc}", 8000)
            return
        self.raw = [replacement if f is frame else f for f in self.raw]
        self.recipe.hdu_overrides = {**self.recipe.hdu_overrides, frame.name: index}  # refreshes the library
        self.library.select_frame(replacement)

    def refresh_library(self) -> None:
        kinds = {id(f): self.recipe.kind_of(f) for f in self.raw}
        statuses: dict[int, str] = {}
        if self.raw:
            self.plan = make_plan(self.raw, self.recipe)
            by_name = {f.name: f for f in self.raw}
            for steps in self.plan.lights:
                original = by_name.get(steps.frame.name)
                if original is not None:
                    statuses[id(original)] = "will be skipped" if steps.skip else f"→ {steps.describe()}"
            cost = estimate_run(self.plan, self.recipe, process=False)
            self.estimate_label.setText(f"Calibrate: {len(self.plan.masters)} masters, "
                                        f"~{cost.seconds:.1f} s, ~{cost.peak_bytes / 2**20:.0f} MB")
        else:
            self.estimate_label.setText("")
        self.library.show_session(self.raw, kinds, self.masters, self.calibrated, self.quarantined, statuses)

    # --- display --------------------------------------------------------------------------------------
    def counterpart(self, frame: Frame) -> Frame | None:
        """The calibrated version of a raw light, or the raw light of a calibrated frame."""
        pool = self.raw if frame.kind is FrameKind.CALIBRATED else self.calibrated
        return next((f for f in pool if f.name == frame.name and f is not frame), None)

    def show_frame(self, frame: Frame) -> None:
        self.current, self.blinked = frame, False
        if frame.kind is FrameKind.CALIBRATED:
            left, right = self.counterpart(frame), frame
        else:
            left = frame
            right = self.counterpart(frame) if self.recipe.kind_of(frame) is FrameKind.LIGHT else None
        lut = self._lut()
        if left is not None:
            title = f"{left.name} ({self.recipe.kind_of(left).value})"
            self.raw_view.show_frame(left.data, title, self._limits(left.data), lut, bayer=self._bayer(left))
        if right is not None:
            title = f"{right.name} (calibrated)"
            self.calibrated_view.show_frame(right.data, title, self._limits(right.data), lut,
                                            bayer=self._bayer(right))
        else:
            text = ("Press Calibrate to see\nthe calibrated frame" if not self.calibrated
                    else "No calibrated version\nof this frame")
            self.calibrated_view.placeholder(text)
        self.refresh_levels()

    def _bayer(self, frame: Frame) -> str | None:
        """The frame's Bayer pattern when colour display is on (the pixels stay a raw mosaic)."""
        return display.bayer_pattern(frame.header) if self.display.debayer else None

    def _lut(self) -> np.ndarray:
        return lookup_table(self.display.stretch, self.display.colour_map)

    def _limits(self, data: np.ndarray) -> tuple[float, float]:
        """Interval limits of a frame, remembered per frame and interval setting."""
        key = (id(data), self.display.interval, self.display.percentile_low, self.display.percentile_high)
        if key not in self._limits_cache:
            if len(self._limits_cache) > 256:
                self._limits_cache.clear()
            self._limits_cache[key] = display.interval_limits(data, self.display)
        return self._limits_cache[key]

    def _apply_lut(self) -> None:
        lut = self._lut()
        self.raw_view.set_lut(lut)
        self.calibrated_view.set_lut(lut)

    def refresh_levels(self) -> None:
        """Levels from the interval (each view its own, or the raw view's for both when linked) and the
        histogram of the pair."""
        raw, calibrated = self.raw_view.data, self.calibrated_view.data
        raw_levels = self._limits(raw) if raw is not None else None
        calibrated_levels = self._limits(calibrated) if calibrated is not None else None
        if self.display.link_levels and raw_levels and calibrated_levels:
            calibrated_levels = raw_levels if not self._calibrated_controls() else calibrated_levels
            raw_levels = calibrated_levels
        if raw_levels:
            self.raw_view.set_levels(raw_levels)
        if calibrated_levels:
            self.calibrated_view.set_levels(calibrated_levels)
        self._histogram_timer.start()  # the histograms follow on the next event-loop turn
        driving = calibrated_levels or raw_levels
        if driving:
            self.histogram.set_region(*driving)

    def _refresh_histogram(self) -> None:
        self.histogram.set_frames(self.raw_view.data, self.calibrated_view.data)

    def _calibrated_controls(self) -> bool:
        return self.calibrated_view.data is not None

    def _on_levels_dragged(self, lo: float, hi: float) -> None:
        """While the region moves: levels only (a LUT-sized job), never a pass over the data."""
        if self.display.link_levels or not self._calibrated_controls():
            self.raw_view.set_levels((lo, hi))
        if self._calibrated_controls():
            self.calibrated_view.set_levels((lo, hi))

    def blink(self) -> None:
        """Swap the left view between a light's raw and calibrated versions."""
        if self.current is None:
            return
        other = self.counterpart(self.current)
        if other is None:
            self.statusBar().showMessage("Nothing to blink with: calibrate first", 3000)
            return
        raw, calibrated = ((self.current, other) if self.current.kind is not FrameKind.CALIBRATED
                           else (other, self.current))
        self.blinked = not self.blinked
        shown = calibrated if self.blinked else raw
        self.raw_view.show_frame(shown.data, f"{shown.name} ({'calibrated' if self.blinked else 'raw'})",
                                 self._limits(shown.data), self._lut(), bayer=self._bayer(shown))

    def _zoom(self, factor: float) -> None:
        self.raw_view.zoom(factor)

    def _on_hover(self, x: int, y: int, value: float) -> None:
        parts = [f"x={x + 1} y={y + 1} (FITS)"]
        for label, view in (("raw", self.raw_view), ("calibrated", self.calibrated_view)):
            if view.data is not None and y < view.data.shape[0] and x < view.data.shape[1]:
                parts.append(f"{label} {view.data[y, x]:.1f}")
        self.pixel_label.setText("   ".join(parts))

    # --- files, settings, about -----------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of FITS frames", self._last_folder())
        if folder:
            self.open_paths([folder])

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open FITS frames", self._last_folder(),
                                                "FITS (*.fits *.fit *.fts *.fz *.gz);;All files (*)")
        if files:
            self.open_paths(files)

    def choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export view as PNG", str(Path(self._last_folder())
                                                                               / "ccdgui-view.png"),
                                              "PNG image (*.png)")
        if path:
            self.export_png(path)

    def export_png(self, path: str | Path) -> Path:
        """Save what the central area shows (both views and the histogram) as a PNG."""
        path = Path(path)
        if not self.centralWidget().grab().save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return path

    def _last_folder(self) -> str:
        return str(self.settings.value("last_folder", str(Path.home())))

    def _remember(self, folder: Path) -> None:
        self.settings.setValue("last_folder", str(folder))
        recent = [str(folder)] + [p for p in self._recent() if p != str(folder)]
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self._fill_recent()

    def _recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self._recent():
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda _=False, f=folder: self.open_paths([f]))
        self.recent_menu.setEnabled(bool(self._recent()))

    def _restore_layout(self) -> None:
        geometry = self.settings.value("geometry")
        state = self.settings.value("window_state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def about(self) -> None:
        import astropy
        import pyqtgraph
        from PyQt6.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

        QMessageBox.about(self, "About ccdgui", (
            f"<b>ccdgui {__version__}</b><br>Inspect and calibrate astronomical CCD frames.<br><br>"
            f"Python {platform.python_version()}<br>Qt {QT_VERSION_STR}, PyQt6 {PYQT_VERSION_STR}<br>"
            f"pyqtgraph {pyqtgraph.__version__}<br>numpy {np.__version__}<br>astropy {astropy.__version__}"))

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if not self.discard_ok("Close the window"):
            event.ignore()
            return
        self.runner.cancel()
        self.runner.wait(CLOSE_WAIT_MS)  # a cancelled job stops within ~0.5 s; never freeze for longer
        self.remove_session()
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        super().closeEvent(event)


def start_simulation_soon(window: MainWindow) -> None:
    """Begin simulating once the window has painted, so it appears at once."""
    QTimer.singleShot(0, window.simulate)
