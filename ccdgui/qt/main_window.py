"""The main window: library panel, notes, parameter dock (tabs by task), raw and calibrated views with
linked pan/zoom in a layout of one's choice, a panner, a histogram of both, and the jobs (simulate, open,
calibrate) that run off the GUI thread. Geometry, dock layout, display settings and the recipe are
remembered (QSettings) and restored onto a screen that exists."""

from __future__ import annotations

import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QRect, QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
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
from ..model import compressed, display, execute, fitsio, provenance
from ..model.display import DisplayState
from ..model.estimate import estimate_run
from ..model.frame import Frame, FrameKind
from ..model.intake import intake
from ..model.place import HERE, describe_place, parse_place, why_not_on_cluster
from ..model.plan import Plan, make_plan
from ..model.progress import Progress
from ..model.recipe import Recipe
from ..model.simulate import SimParams, iter_night
from . import bindings
from .histogram_view import HistogramView
from .image_view import ImageView, lookup_table
from .inspection import InspectionController
from .library_panel import LibraryPanel
from .library_tab import LibraryController
from .notes_panel import NotesPanel, collect_notes
from .panner import Panner
from .param_dock import ParamDock
from .run_place import SETTINGS_KEY, RunPlaceDialog, place_text
from .workers import JobRunner

MAX_RECENT = 8
#: View layouts: the left (raw) and right (calibrated) views side by side, one above the other, whichever
#: of the two shows the frame larger (automatic), or one large view (the right one hidden; B blinks).
LAYOUTS = {"auto": "Automatic", "side": "Side by side", "stacked": "Stacked", "single": "One large view"}
#: First start: this share of the screen's available area, no larger than DEFAULT_SIZE.
FIRST_SHARE = 0.9
DEFAULT_SIZE = (1600, 1000)
DISPLAY_SETTINGS = ("interval", "percentile_low", "percentile_high", "stretch", "colour_map", "link_levels",
                    "debayer")


def first_geometry(available: QRect) -> QRect:
    """Where the window opens the first time: a share of the screen's available area (never more than
    DEFAULT_SIZE), centred in it."""
    width = min(DEFAULT_SIZE[0], int(available.width() * FIRST_SHARE))
    height = min(DEFAULT_SIZE[1], int(available.height() * FIRST_SHARE))
    return QRect(available.x() + (available.width() - width) // 2,
                 available.y() + (available.height() - height) // 2, width, height)


def frame_label(frame: Frame, kind: FrameKind | None = None) -> str:
    """What a view shows, for the readout and histogram: 'raw light', 'calibrated', 'master flat'…"""
    kind = kind or frame.kind
    if kind is FrameKind.CALIBRATED or kind.value.startswith("master"):
        return kind.value
    return "raw frame" if kind is FrameKind.UNKNOWN else f"raw {kind.value}"  # never 'raw unknown'


def frame_unit(frame: Frame | None) -> str:
    """The unit of a frame's values: 'relative' for a normalised master flat, else the header's BUNIT or
    ADU."""
    if frame is None:
        return "ADU"
    if frame.kind is FrameKind.MASTER_FLAT and abs(display.quick_median(frame.data)) < 10:
        return "relative"
    unit = str(frame.header.get("BUNIT", "")).strip()
    return "ADU" if not unit or unit.lower() == "adu" else unit
CLOSE_WAIT_MS = 700  # the longest a closing window waits for its cancelled job's worker to stop


# --- jobs: model generators wrapped for the runner (no science here) -----------------------------------
def shared_tail(a: Path | None, b: Path | None) -> int:
    """How many trailing parts (file name, then folders) two paths share (0 when either is None)."""
    if a is None or b is None:
        return 0
    count = 0
    for x, y in zip(reversed(a.parts), reversed(b.parts), strict=False):
        if x != y:
            break
        count += 1
    return count


def simulation_too_big(params: SimParams, limit: int | None = None) -> str:
    """Why a simulated night would not fit in memory (it lives there whole: every frame, the truth), or
    "" when it fits in ``limit`` bytes (default half the physical memory)."""
    need = params.memory_bytes()
    limit = compressed.inflate_limit() if limit is None else limit
    if need <= limit:
        return ""
    return (f"Not simulated: {params.n_frames} frames of {params.nx} x {params.ny} need about "
            f"{need / 1e9:.1f} GB of memory, more than the {limit / 1e9:.1f} GB this computer can spare; "
            "make fewer or smaller frames in the Simulation tab")


def simulate_job(params: SimParams):
    def work(token):
        total = params.n_frames
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


def calibrate_job(plan: Plan, recipe: Recipe, outdir: Path, quarantined: list, place: str = HERE):
    """Execute the plan here, or on the Dask cluster at ``place`` (connected in the worker thread and
    closed after the run, whatever its end)."""
    def work(token):
        if place == HERE:
            return (yield from execute.execute(plan, recipe, outdir, token, quarantined=quarantined))
        from ..model.cluster import ClusterEngine

        yield Progress(0.0, f"Connecting to {describe_place(place)}…")
        engine = ClusterEngine(place)
        try:
            token.check()
            return (yield from execute.execute(plan, recipe, outdir, token, quarantined=quarantined,
                                               engine=engine))
        finally:
            engine.close()
    return work


def save_job(run_folder: Path, folder: Path, overwrite: bool):
    def work(token):
        return (yield from provenance.copy_results(run_folder, folder, overwrite, token))
    return work


def where_ran(result) -> str:
    """' on the Dask cluster at …' when the result's record says it ran on a cluster, else ''."""
    cluster = (result.record or {}).get("cluster") if isinstance(result.record, dict) else None
    if not cluster:
        return ""
    return f" on {describe_place(cluster.get('requested', ''))} ({cluster.get('workers', '?')} workers)"


SESSION_PREFIX = "ccdgui-session-"


def remove_abandoned_sessions() -> None:
    """Delete session folders left by windows whose process has ended (killed, crashed)."""
    import shutil
    import tempfile

    for folder in Path(tempfile.gettempdir()).glob(f"{SESSION_PREFIX}*"):
        if folder.is_dir() and execute._lock_holder(folder / execute.LOCK_NAME) is None:
            shutil.rmtree(folder, ignore_errors=True)


class MainWindow(QMainWindow):
    """Emits ``pixel_clicked(x, y, frame)`` (0-based frame pixel) on a left click on either view."""

    pixel_clicked = pyqtSignal(int, int, object)

    def __init__(self, sim: SimParams | None = None, recipe: Recipe | None = None,
                 display_state: DisplayState | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("ccdgui")
        self.sim = sim or SimParams()
        self.recipe = recipe or Recipe()
        self.settings = settings or QSettings("ccdgui", "ccdgui")
        self.display = display_state or self._stored_display()
        if recipe is None:
            self.recipe = self._stored_recipe()
        self.raw: list[Frame] = []
        self.quarantined: list = []
        self.masters: list[Frame] = []
        self.calibrated: list[Frame] = []
        self.plan: Plan | None = None
        self.library_entries: list = []     # the master library's entries, planned with (LibraryController)
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
        self.place = self._stored_place()   # where Calibrate runs: "" here, local:N or a scheduler

        self.simulated = False              # the session is a simulated night
        #: Extra readout text: each is called with (frame, x, y) for the frame under the cursor and
        #: returns a short text (or None); e.g. RA/Dec from the WCS. See add_readout_provider.
        self.readout_providers: list = []
        self.raw_view = ImageView("Raw")
        self.calibrated_view = ImageView("Calibrated")
        self.calibrated_view.plot.setXLink(self.raw_view.plot)
        self.calibrated_view.plot.setYLink(self.raw_view.plot)
        self.histogram = HistogramView()
        self.panner = Panner()
        self.panner.follow(self.raw_view)
        self.views = QSplitter(Qt.Orientation.Horizontal)
        self.views.setChildrenCollapsible(False)
        self.views.addWidget(self.raw_view)
        self.views.addWidget(self.calibrated_view)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.histogram)
        bottom.addWidget(self.panner)
        bottom.setStretchFactor(0, 5)
        bottom.setStretchFactor(1, 1)
        self.panner.setMaximumWidth(220)
        central = QSplitter(Qt.Orientation.Vertical)
        central.addWidget(self.views)
        central.addWidget(bottom)
        central.setStretchFactor(0, 4)
        central.setStretchFactor(1, 1)
        central.setChildrenCollapsible(False)
        self.histogram.setMinimumHeight(110)
        self.setCentralWidget(central)
        self.layout_name = "auto"

        self.library = LibraryPanel()
        self.params = ParamDock(self.sim, self.recipe)
        self.notes = NotesPanel()
        area = Qt.DockWidgetArea
        self.library_dock = self._dock("Frame library", "library", self.library, area.LeftDockWidgetArea)
        self.notes_dock = self._dock("Notes", "notes", self.notes, area.LeftDockWidgetArea)
        self.params_dock = self._dock("Parameters", "parameters", self.params, area.RightDockWidgetArea)
        self.tabifyDockWidget(self.library_dock, self.notes_dock)
        self.library_dock.raise_()
        self.library.setMinimumWidth(220)
        self.setAcceptDrops(True)

        self.runner = JobRunner(self)
        self._histogram_timer = QTimer(self)
        self._histogram_timer.setSingleShot(True)
        self._histogram_timer.setInterval(0)
        self._histogram_timer.timeout.connect(self._refresh_histogram)
        self._layout_timer = QTimer(self)  # the automatic layout follows the window's size
        self._layout_timer.setSingleShot(True)
        self._layout_timer.setInterval(0)
        self._layout_timer.timeout.connect(lambda: self.layout_name == "auto"
                                           and self.set_view_layout("auto"))
        self._build_status_bar()
        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._connect()
        self.inspection = InspectionController(self)  # stack inspector, QA, compare views, WCS readout
        self.raw_view.placeholder("No frame yet")
        self.calibrated_view.placeholder("Press Calibrate to see\nthe calibrated frame")
        self._restore_layout()
        self.master_library = LibraryController(self)  # the Masters tab; sets library_entries

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
        self.estimate_label.setContentsMargins(16, 0, 0, 0)  # apart from the message before it
        bar.addPermanentWidget(self.estimate_label)
        self.notes_button = QPushButton("")
        self.notes_button.setFlat(True)
        self.notes_button.setToolTip("Show the Notes panel: every plan note and quarantine reason")
        self.notes_button.setVisible(False)
        self.notes_button.clicked.connect(self.show_notes)
        bar.addPermanentWidget(self.notes_button)
        self.place_label = QLabel(place_text(self.place))
        self.place_label.setToolTip("Where Calibrate runs (Run ▸ Where to run…)")
        bar.addPermanentWidget(self.place_label)
        self.pixel_label = QLabel("")
        self.pixel_label.setMinimumWidth(240)
        self.pixel_label.setToolTip("The pixel under the cursor, in each view, labelled by what it shows")
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
        self.fit_action = self._action("Fit", self.fit_views, "F", "Fit the frame in the view")
        self.one_to_one_action = self._action("Zoom 1:1", self.raw_view.one_to_one, "1",
                                              "One frame pixel per screen pixel")
        self.ruler_action = self._action("Coordinate ruler", self.set_ruler, tip="Axes in frame pixels "
                                         "around the views")
        self.ruler_action.setCheckable(True)
        self.guide_action = self._action("User guide", self.show_guide, QKeySequence("F1"),
                                         "The workflow, the recipe options and the keys (offline)")
        self.layout_actions = QActionGroup(self)
        for name, text in LAYOUTS.items():
            action = self._action(text, lambda _=False, n=name: self.set_view_layout(n),
                                  tip=f"Views: {text.lower()}")
            action.setCheckable(True)
            action.setData(name)
            self.layout_actions.addAction(action)
        self.next_action = self._action("Next frame", lambda: self.library.step(1),
                                        [QKeySequence("N"), QKeySequence("PgDown")])
        self.previous_action = self._action("Previous frame", lambda: self.library.step(-1),
                                            [QKeySequence("P"), QKeySequence("PgUp")])
        self.blink_action = self._action("Blink raw/calibrated", self.blink, "B",
                                         "Swap the left view between the raw and the calibrated frame")
        self.cancel_action = self._action("Cancel job", self.runner.cancel, "Esc")
        self.place_action = self._action("Where to run…", self.choose_place, tip=(
            "Run Calibrate on this computer or on a Dask cluster (a local one or a scheduler's address)"))
        self.about_action = self._action("About ccdgui", self.about)

    def _build_toolbar(self) -> None:
        bar = self.addToolBar("Main")
        bar.setObjectName("main-toolbar")
        for action in (self.open_folder_action, self.simulate_action, self.calibrate_action,
                       self.save_action):
            bar.addAction(action)
        bar.addSeparator()
        self.interval_combo = self._combo(bar, "Interval", display.INTERVALS, "interval",
                                          "How display levels are chosen: percentiles (set beside), "
                                          "z-scale (IRAF) or the full range")
        self.percentile_spins = [self._percentile(bar, field, tip) for field, tip in (
            ("percentile_low", "Lower percentile of the interval (%)"),
            ("percentile_high", "Upper percentile of the interval (%)"))]
        self.stretch_combo = self._combo(bar, "Stretch", display.STRETCHES, "stretch", "Display stretch")
        self.cmap_combo = self._combo(bar, "Colour map", display.COLOUR_MAPS, "colour_map", "Colour map")
        self.link_check = self._check(bar, "Link levels", "link_levels",
                                      "Both views use the same levels (compare frames on one scale); "
                                      "unlinked, each view has its own and the histogram region drives "
                                      "the calibrated one")
        self.colour_check = self._check(bar, "Debayer", "debayer",
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

    def _percentile(self, bar, field: str, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(0.0, 100.0)
        spin.setDecimals(2)
        spin.setSingleStep(0.1)
        spin.setSuffix(" %")
        spin.setKeyboardTracking(False)
        spin.setToolTip(tip)
        bindings.bind_spin(self.display, field, spin)
        spin.valueChanged.connect(lambda *_: self._check_percentiles(spin, field))
        bar.addWidget(spin)
        return spin

    def _check_percentiles(self, spin: QDoubleSpinBox, field: str) -> None:
        """Keep low below high: an entry that would cross the other end is undone."""
        if self.display.percentile_low >= self.display.percentile_high:
            other = "percentile_high" if field == "percentile_low" else "percentile_low"
            fallback = getattr(DisplayState(), field)
            if (field == "percentile_low") == (fallback >= getattr(self.display, other)):
                fallback = getattr(self.display, other) + (-0.1 if field == "percentile_low" else 0.1)
            setattr(self.display, field, float(min(max(fallback, 0.0), 100.0)))
            self.statusBar().showMessage("The lower percentile must be below the upper one", 4000)

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
        run_menu.addSeparator()
        run_menu.addAction(self.place_action)
        view_menu = menu.addMenu("&View")
        view_menu.addAction(self.library_dock.toggleViewAction())
        view_menu.addAction(self.notes_dock.toggleViewAction())
        view_menu.addAction(self.params_dock.toggleViewAction())
        view_menu.addSeparator()
        layout_menu = view_menu.addMenu("Layout")
        for action in self.layout_actions.actions():
            layout_menu.addAction(action)
        view_menu.addAction(self.ruler_action)
        view_menu.addSeparator()
        for action in (self.zoom_in_action, self.zoom_out_action, self.fit_action, self.one_to_one_action,
                       self.next_action, self.previous_action, self.blink_action):
            view_menu.addAction(action)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self.guide_action)
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
        self.notes.frame_requested.connect(self.select_frame_named)
        for view in (self.raw_view, self.calibrated_view):
            view.hovered.connect(self._on_hover)
            view.clicked.connect(lambda x, y, v=view: self.pixel_clicked.emit(x, y, v.frame))
            view.levels_from_box.connect(lambda x0, x1, y0, y1, v=view: self.levels_from_box(v, x0, x1,
                                                                                             y0, y1))
            view.export_requested.connect(self.choose_export)
        for name in DISPLAY_SETTINGS:
            getattr(self.display.events, name).connect(lambda *_: self._save_display_settings())
        self.recipe.events.connect(lambda *_: self.settings.setValue("recipe", self.recipe.to_json()))
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
        too_big = simulation_too_big(self.sim)  # said before asking to discard anything
        if too_big:
            self.statusBar().showMessage(too_big, 15000)
            QMessageBox.information(self, "ccdgui", too_big)
            return
        if not self.discard_ok("Simulate a new night"):
            return
        self.statusBar().showMessage("Simulating a night…")
        self.simulated_params = SimParams(**{f: getattr(self.sim, f) for f in self.sim.__dataclass_fields__})
        self._start("simulate", simulate_job(self.simulated_params))

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
        why_not = why_not_on_cluster(self.raw, self.place)
        if why_not is not None:
            self.statusBar().showMessage(f"Cannot calibrate on the cluster: {why_not}", 15000)
            QMessageBox.information(self, "ccdgui", f"Cannot calibrate on the cluster:\n{why_not}")
            return
        self.statusBar().showMessage(f"Calibrating on {describe_place(self.place)}…")
        self._runs += 1
        outdir = self.session_folder() / f"run-{self._runs}"
        plan = make_plan(self.raw, recipe, masters=self.library_entries)
        self._start("calibrate", calibrate_job(plan, recipe, outdir, list(self.quarantined), self.place))

    def _stored_place(self) -> str:
        try:
            return parse_place(str(self.settings.value(SETTINGS_KEY, HERE) or HERE))
        except ValueError:  # a hand-edited setting: run here
            return HERE

    def set_place(self, place: str) -> None:
        """Run later calibrations at ``place`` (remembered for the next start)."""
        self.place = parse_place(place)
        self.settings.setValue(SETTINGS_KEY, self.place)
        self.place_label.setText(place_text(self.place))

    def choose_place(self) -> None:
        dialog = RunPlaceDialog(self.place, self)
        if dialog.exec():
            self.set_place(dialog.place())

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

    def output_start_folder(self) -> str:
        """Where the Save dialog starts: the last output folder unless it lies inside the input folder,
        else beside the input folder (never in it: outputs do not belong among the raw frames)."""
        inputs = Path(self._last_folder()).resolve()
        last = self.settings.value("last_output")
        if last and Path(str(last)).is_dir():
            chosen = Path(str(last)).resolve()
            if chosen != inputs and inputs not in chosen.parents:
                return str(chosen)
        return str(inputs.parent if inputs.parent != inputs else Path.home())

    def choose_output(self) -> None:
        start = self.output_start_folder()
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
            self._set_session(result, [], simulated=True)
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
            problems = f"; {len(self.notes.notes)} note(s) in the Notes panel" if self.notes.notes else ""
            self.statusBar().showMessage(
                f"Made {len(self.masters)} masters and {len(self.calibrated)} calibrated frames in "
                f"{seconds:.1f} s{where_ran(result)}{problems}", 10000)

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

    def _set_session(self, frames: list[Frame], problems: list, simulated: bool = False) -> None:
        self._limits_cache.clear()
        if simulated != self.simulated or not self.raw:
            self.params.show_simulation_first(simulated)
        self.simulated = simulated
        self.raw, self.quarantined = list(frames), list(problems)
        self.masters, self.calibrated, self.last_result = [], [], None
        self._forget_runs_but(None)
        self.save_action.setEnabled(False)
        self.recipe.kind_overrides = {}
        self.recipe.hdu_overrides = {}
        self.recipe.master_overrides = {}  # a choice named a light of the previous session
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
        details: dict[int, str] = {}
        if self.raw:
            self.plan = make_plan(self.raw, self.recipe, masters=self.library_entries)
            by_name = {f.name: f for f in self.raw}
            for steps in self.plan.lights:
                original = by_name.get(steps.frame.name)
                if original is not None:
                    reason = f" ({steps.notes[-1]})" if steps.notes else ""
                    statuses[id(original)] = (f"will be skipped{reason}" if steps.skip
                                              else f"→ {steps.describe()}")
                    details[id(original)] = matched_masters_text(steps)
            for master in self.plan.masters:  # a flat's bias and flat-dark, a dark's bias
                for steps in master.inputs:
                    original = by_name.get(steps.frame.name)
                    if original is None or id(original) in statuses:
                        continue
                    used = steps.describe()
                    after = "" if used == "nothing" else f" after {used}"
                    statuses[id(original)] = f"→ {master.label}{after}"
                    details[id(original)] = f"combined into {master.label}" + (
                        "\n" + matched_masters_text(steps) if after else "")
            cost = estimate_run(self.plan, self.recipe, process=False)
            self.estimate_label.setText(f"Calibrate: {len(self.plan.masters)} masters, "
                                        f"~{cost.seconds:.1f} s, ~{cost.peak_bytes / 2**20:.0f} MB")
        else:
            self.plan = None
            self.estimate_label.setText("")
        self.library.show_session(self.raw, kinds, self.masters, self.calibrated, self.quarantined, statuses,
                                  details)
        self.refresh_notes()

    def refresh_notes(self) -> None:
        """Fill the Notes panel and the status bar's count of notes."""
        problems = self.last_result.problems if self.last_result is not None else []
        notes = collect_notes(self.plan, self.raw, self.quarantined, problems)
        self.notes.show_notes(notes)
        self.notes_button.setText(f"{len(notes)} note(s)")
        self.notes_button.setVisible(bool(notes))
        self.notes_dock.setWindowTitle(f"Notes ({len(notes)})" if notes else "Notes")

    def show_notes(self) -> None:
        """Bring the Notes panel into view."""
        self.notes_dock.show()
        self.notes_dock.raise_()

    def select_frame_named(self, name: str) -> None:
        """Select the session's frame called ``name`` in the library (and show it)."""
        frame = next((f for f in [*self.raw, *self.calibrated, *self.masters] if f.name == name), None)
        if frame is not None:
            self.library.select_frame(frame)

    # --- display --------------------------------------------------------------------------------------
    def counterpart(self, frame: Frame) -> Frame | None:
        """The calibrated version of a raw light, or the raw light of a calibrated frame (two nights'
        lights may share a name: the one in the same-named folders wins, as the run's outputs keep the
        inputs' subfolders)."""
        pool = self.raw if frame.kind is FrameKind.CALIBRATED else self.calibrated
        same = [f for f in pool if f.name == frame.name and f is not frame]
        return max(same, key=lambda f: shared_tail(f.path, frame.path), default=None)

    def show_frame(self, frame: Frame) -> None:
        self.current, self.blinked = frame, False
        if frame.kind is FrameKind.CALIBRATED:
            left, right = self.counterpart(frame), frame
        else:
            left = frame
            right = self.counterpart(frame) if self.recipe.kind_of(frame) is FrameKind.LIGHT else None
        lut = self._lut()
        if left is not None:
            title = f"{left.name} ({frame_label(left, self.recipe.kind_of(left))})"
            self.raw_view.show_frame(left.data, title, self._limits(left.data), lut, bayer=self._bayer(left),
                                     frame=left)
        if right is not None:
            title = f"{right.name} (calibrated)"
            self.calibrated_view.show_frame(right.data, title, self._limits(right.data), lut,
                                            bayer=self._bayer(right), frame=right)
        else:
            is_light = self.recipe.kind_of(frame) is FrameKind.LIGHT
            text = ("Press Calibrate to see\nthe calibrated frame" if is_light and not self.calibrated
                    else "No calibrated version\nof this frame" if is_light
                    else "Only lights have a\ncalibrated version")
            self.calibrated_view.placeholder(text)
        if self.layout_name == "auto":
            self.set_view_layout("auto")
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
        names = tuple(self.view_label(view) for view in (self.raw_view, self.calibrated_view))
        unit = frame_unit(self.calibrated_view.frame or self.raw_view.frame)
        self.histogram.set_frames(self.raw_view.data, self.calibrated_view.data, names, unit)

    def view_label(self, view: ImageView) -> str:
        """What a view shows now ('raw light', 'calibrated', 'master flat'), blinking included."""
        if getattr(view, "label", None):  # a derived image: 'difference', 'residual'
            return view.label
        if view.frame is None:
            return "raw" if view is self.raw_view else "calibrated"
        return frame_label(view.frame, self.recipe.kind_of(view.frame))

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
            why = ("only a light has a calibrated version to blink with"
                   if self.recipe.kind_of(self.current) is not FrameKind.LIGHT
                   else "this light was not calibrated (see Notes)" if self.calibrated else "calibrate first")
            self.statusBar().showMessage(f"Nothing to blink with: {why}", 3000)
            return
        raw, calibrated = ((self.current, other) if self.current.kind is not FrameKind.CALIBRATED
                           else (other, self.current))
        self.blinked = not self.blinked
        shown = calibrated if self.blinked else raw
        title = f"{shown.name} ({frame_label(shown, self.recipe.kind_of(shown))})"
        self.raw_view.show_frame(shown.data, title, self._limits(shown.data), self._lut(),
                                 bayer=self._bayer(shown), frame=shown)
        self._histogram_timer.start()

    def _zoom(self, factor: float) -> None:
        self.raw_view.zoom(factor)

    def fit_views(self) -> None:
        self.raw_view.fit()
        if not self.raw_view.isVisible():
            self.calibrated_view.fit()

    def set_ruler(self, on: bool) -> None:
        """Axes in frame pixels around both views (off: the frames fill their views)."""
        for view in (self.raw_view, self.calibrated_view):
            view.set_ruler(bool(on))
        self.ruler_action.setChecked(bool(on))

    def set_view_layout(self, name: str) -> None:
        """'auto' (whichever of the next two shows the frame larger), 'side' (side by side), 'stacked'
        (one above the other) or 'single' (the left view alone)."""
        if name not in LAYOUTS:
            name = "auto"
        self.layout_name = name
        stacked = name == "stacked" or (name == "auto" and self._stacked_is_larger())
        self.views.setOrientation(Qt.Orientation.Vertical if stacked else Qt.Orientation.Horizontal)
        self.calibrated_view.setVisible(name != "single")
        for action in self.layout_actions.actions():
            action.setChecked(action.data() == name)
        self.settings.setValue("view_layout", name)

    def _stacked_is_larger(self) -> bool:
        """Whether the shown frame appears larger with the two views one above the other."""
        data = self.raw_view.data if self.raw_view.data is not None else self.calibrated_view.data
        if data is None:
            return False
        ny, nx = data.shape[:2]
        width, height = max(self.views.width(), 1), max(self.views.height(), 1)
        side = min(width / 2 / nx, height / ny)
        stacked = min(width / nx, height / 2 / ny)
        return stacked > side * 1.05

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if self.layout_name == "auto" and hasattr(self, "_layout_timer"):
            self._layout_timer.start()

    def add_readout_provider(self, provider) -> None:
        """Add ``provider(frame, x, y) -> str | None`` (0-based pixel): its text joins the readout."""
        self.readout_providers.append(provider)

    def add_dock_tab(self, title: str, widget: QWidget, tooltip: str = "") -> int:
        """Add a task's tab (QA, masters…) to the Parameters dock; returns its index."""
        return self.params.add_tab(title, widget, tooltip)

    def readout_text(self, x: int, y: int) -> str:
        """The status bar's readout for frame pixel (x, y), 0-based: each view's value labelled by what
        it shows now, then the readout providers' texts."""
        parts = [f"x={x + 1} y={y + 1}"]
        for view in (self.raw_view, self.calibrated_view):
            inside = view.data is not None and y < view.data.shape[0] and x < view.data.shape[1]
            if inside and not view.isHidden():
                parts.append(f"{self.view_label(view)} {view.data[y, x]:.6g}")
        frame = self.raw_view.frame or self.calibrated_view.frame
        for provider in self.readout_providers:
            try:
                text = provider(frame, x, y) if frame is not None else None
            except Exception as exc:  # a broken provider must not break the readout
                text = f"({type(exc).__name__})"
            if text:
                parts.append(str(text))
        return "   ".join(parts)

    def _on_hover(self, x: int, y: int, value: float) -> None:
        self.pixel_label.setText(self.readout_text(x, y))

    def levels_from_box(self, view: ImageView, x0: int, x1: int, y0: int, y1: int) -> None:
        """Levels from the interval applied to a box of the view's frame (both views when linked)."""
        if view.data is None:
            return
        ny, nx = view.data.shape
        box = view.data[max(0, y0):min(ny, y1), max(0, x0):min(nx, x1)]
        if box.size == 0:
            return
        levels = display.interval_limits(box, self.display)
        targets = (self.raw_view, self.calibrated_view) if self.display.link_levels else (view,)
        for target in targets:
            target.set_levels(levels)
        self.histogram.set_region(*levels)
        self.statusBar().showMessage(f"Levels {levels[0]:.6g} … {levels[1]:.6g} from a {box.shape[1]} × "
                                     f"{box.shape[0]} box", 5000)

    # --- drag and drop ----------------------------------------------------------------------------------
    @staticmethod
    def dropped_paths(mime) -> list[Path]:
        """The local files and folders a drag carries (other URLs are ignored)."""
        if mime is None or not mime.hasUrls():
            return []
        return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if self.dropped_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        paths = [p for p in self.dropped_paths(event.mimeData()) if p.exists()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_paths(paths)

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
        """The remembered geometry and dock layout, kept on a screen that exists; on the first start a
        share of the screen. The view layout and ruler too."""
        geometry = self.settings.value("geometry")
        state = self.settings.value("window_state")
        if geometry is None or not self.restoreGeometry(geometry):
            self.setGeometry(first_geometry(self.available_geometry()))
            docks_width = max(240, min(400, self.width() // 4))
            # the parameters keep room for their labels, values and the tabs down the side
            self.resizeDocks([self.library_dock, self.params_dock], [docks_width - 20, max(310, docks_width)],
                             Qt.Orientation.Horizontal)
        if state is not None:
            self.restoreState(state)
        self.keep_on_screen()
        self.set_view_layout(str(self.settings.value("view_layout", "auto")))
        self.set_ruler(str(self.settings.value("ruler", "false")).lower() == "true")

    def available_geometry(self) -> QRect:
        """The available area of the screen the window is on (else the primary screen)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else QRect(0, 0, *DEFAULT_SIZE)

    def keep_on_screen(self) -> None:
        """Move and shrink the window so it lies inside an existing screen's available area (a remembered
        geometry may belong to a monitor that is gone, or a larger one)."""
        frame = self.frameGeometry()
        screens = QGuiApplication.screens()
        if any(s.availableGeometry().contains(frame) for s in screens):
            return
        centre = frame.center()
        screen = next((s for s in screens if s.availableGeometry().contains(centre)),
                      QGuiApplication.primaryScreen())
        if screen is None:
            return
        area = screen.availableGeometry()
        margin_w, margin_h = frame.width() - self.width(), frame.height() - self.height()
        width = min(self.width(), area.width() - margin_w)
        height = min(self.height(), area.height() - margin_h)
        self.resize(width, height)
        x = min(max(frame.x(), area.x()), area.right() - width - margin_w + 1)
        y = min(max(frame.y(), area.y()), area.bottom() - height - margin_h + 1)
        self.move(x, y)

    def _stored_display(self) -> DisplayState:
        """Display settings remembered from the last session (defaults for anything unreadable)."""
        state = DisplayState()
        for name in DISPLAY_SETTINGS:
            value = self.settings.value(f"display/{name}")
            if value is None:
                continue
            default = getattr(state, name)
            try:
                value = str(value).lower() == "true" if isinstance(default, bool) else type(default)(value)
            except (TypeError, ValueError):
                continue
            allowed = {"interval": display.INTERVALS, "stretch": display.STRETCHES,
                       "colour_map": display.COLOUR_MAPS}.get(name)
            if allowed is not None and value not in allowed:
                continue
            if name.startswith("percentile") and not 0.0 <= value <= 100.0:
                continue
            setattr(state, name, value)
        if state.percentile_low >= state.percentile_high:
            state.percentile_low, state.percentile_high = DisplayState().percentile_low, 99.9
        return state

    def _save_display_settings(self) -> None:
        for name in DISPLAY_SETTINGS:
            self.settings.setValue(f"display/{name}", getattr(self.display, name))

    def _stored_recipe(self) -> Recipe:
        """The recipe of the last session (per-session choices such as frame types left out), or the
        defaults when there is none or it no longer reads."""
        import json

        text = self.settings.value("recipe")
        if not text:
            return Recipe()
        try:
            data = json.loads(str(text))
            data = {k: v for k, v in data.items() if not k.endswith("_overrides")}
            return Recipe.from_dict(data)
        except (ValueError, TypeError, AttributeError):
            return Recipe()

    def show_guide(self) -> None:
        """Help ▸ User guide: the bundled guide, offline."""
        from .help import GuideDialog

        if getattr(self, "_guide", None) is None:
            self._guide = GuideDialog(self)
        self._guide.show()
        self._guide.raise_()

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
        self.settings.setValue("ruler", self.ruler_action.isChecked())
        self._save_display_settings()
        super().closeEvent(event)


def matched_masters_text(steps) -> str:
    """A light's tooltip: the masters it gets and why each was chosen, then its notes."""
    lines = []
    for role, master in (("bias", steps.bias), ("dark", steps.dark or steps.raw_dark), ("flat", steps.flat)):
        if master is None:
            continue
        why = [f"{master.ncombine} frame(s)"]
        if master.exptime is not None:
            why.append(f"{master.exptime:g} s")
        if master.filter:
            why.append(f"filter {master.filter}")
        factor = steps.dark_factor() if role == "dark" else 1.0
        scaled = f", scaled ×{factor:.4g} to the light's exposure" if factor != 1.0 else ""
        choice = steps.choices.get(role)
        if choice is not None and choice.master is master:  # the planner's reason (library masters too)
            lines.append(f"{choice.describe()}; {', '.join(why)}{scaled}")
            continue
        lines.append(f"{role}: {master.name} ({', '.join(why)}; same camera, size, binning and temperature"
                     f"{scaled})")
    lines.extend(steps.notes)
    return "\n".join(lines) or "no master matches it"


def start_simulation_soon(window: MainWindow) -> None:
    """Begin simulating once the window has painted, so it appears at once."""
    QTimer.singleShot(0, window.simulate)
