"""The look-closer tools wired into the main window: the pixel-stack inspector (a click on a master or a
light), the QA tab of the last run, the comparison views (raw, master, calibrated, difference, residual
against a simulated night's truth with its noise budget), blinking any two of them on locked levels,
RA/Dec in the readout and a compass overlay.

Everything that reads files or passes over pixels runs in this controller's own worker thread; results
come back to the GUI thread through a queued signal, and a result for a superseded request is dropped.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, Qt, pyqtSignal
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..model import display, fitsio, provenance
from ..model.frame import Frame, FrameKind
from ..model.inspect import InspectError, Inspector
from ..model.simulate import SimParams, make_camera
from ..model.views import ResidualReport, budget_inputs, difference, residual, residual_report
from ..model.wcsinfo import FrameWCS
from .qa_panel import QAPanel
from .stack_inspector import BACKGROUND as STACK_BACKGROUND
from .stack_inspector import StackInspector

#: What a view can show for the light in view.
MODES = ("raw", "calibrated", "master bias", "master dark", "master flat", "difference", "residual")
MODE_TIPS = {
    "raw": "The raw light as read",
    "calibrated": "The calibrated light",
    "master bias": "The master bias this light used",
    "master dark": "The master dark this light used (before scaling to its exposure)",
    "master flat": "The master flat this light used (normalised)",
    "difference": "Calibrated − the frame chosen below (default: the raw light)",
    "residual": "Calibrated − the simulation's truth (simulated nights only), with its noise budget",
}
SAME_LIGHT_RAW = "raw of this light"
INSPECT_RECORD = ".inspect-recipe.json"   # a run's record pointing at the simulated inputs written out
MAX_WCS_CACHE = 64
COMPASS_PEN = {"N": pg.mkPen("#ffd966", width=2), "E": pg.mkPen("#6fa8dc", width=2)}


class _Relay(QObject):
    """Carries a worker's result to the GUI thread (queued)."""

    done = pyqtSignal(int, str, object)


@dataclasses.dataclass
class Shown:
    """An image ready for a view: pixels, title, readout label, the frame behind it, levels."""

    data: np.ndarray
    title: str
    label: str
    frame: Frame | None
    levels: tuple[float, float]
    report: ResidualReport | None = None


class ComparePanel(QWidget):
    """The Compare tab: what each view shows, the difference's subtrahend, blink, compass, and the
    residual's noise budget table."""

    changed = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.left = self._mode_combo("raw", "What the left view shows for the light in view")
        self.right = self._mode_combo("calibrated", "What the right view shows for the light in view")
        self.minus = QComboBox()
        self.minus.setToolTip("The difference view shows calibrated − this frame")
        self.minus.addItem(SAME_LIGHT_RAW)
        self.minus.currentIndexChanged.connect(lambda *_: self.changed.emit())
        form.addRow("Left view", self.left)
        form.addRow("Right view", self.right)
        form.addRow("Difference −", self.minus)
        layout.addLayout(form)
        self.blink_button = QPushButton("Blink left ↔ right (Shift+B)")
        self.blink_button.setCheckable(True)
        self.blink_button.setToolTip("Show the right view's image in the left view and back, on the left "
                                     "view's levels (locked while blinking)")
        layout.addWidget(self.blink_button)
        self.compass_check = QCheckBox("Compass (N/E arrows)")
        self.compass_check.setToolTip("North and east arrows from the frame's WCS")
        layout.addWidget(self.compass_check)
        self.budget_title = QLabel("Residual against the truth: simulate a night, calibrate, and show "
                                   "'residual'")
        self.budget_title.setWordWrap(True)
        layout.addWidget(self.budget_title)
        self.budget = QTableWidget(0, 3)
        self.budget.setHorizontalHeaderLabels(["Noise term", "σ (ADU)", "share"])
        self.budget.verticalHeader().setVisible(False)
        header = self.budget.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.budget.setWordWrap(False)
        self.budget.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.budget.setToolTip("Expected σ of a calibrated sky pixel, term by term (the guide's √N and "
                               "√(π/2) laws for the masters), against the σ measured in the residual")
        layout.addWidget(self.budget, 1)

    def _mode_combo(self, default: str, tip: str) -> QComboBox:
        combo = QComboBox()
        for index, mode in enumerate(MODES):
            combo.addItem(mode)
            combo.setItemData(index, MODE_TIPS[mode], Qt.ItemDataRole.ToolTipRole)
        combo.setCurrentText(default)
        combo.setToolTip(tip)
        combo.currentIndexChanged.connect(lambda *_: self.changed.emit())
        return combo

    def set_report(self, report: ResidualReport | None, name: str = "") -> None:
        """Fill the budget table from a residual report (None: empty)."""
        self.budget.setRowCount(0)
        if report is None:
            return
        rows = [(term, math.sqrt(max(v, 0.0)), v / (report.budget.variance or 1.0))
                for term, v in report.budget.terms.items()]
        rows.append(("expected σ (budget)", report.predicted_sigma, None))
        rows.append(("measured σ (robust)", report.measured_sigma, None))
        rows.append(("measured / expected", report.ratio, None))
        rows.append(("median residual", report.median, None))
        self.budget.setRowCount(len(rows))
        for row, (term, sigma, share) in enumerate(rows):
            cells = [term, f"{sigma:.4g}", "" if share is None else f"{share:.1%}"]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(term)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if term.startswith(("expected", "measured")):
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.budget.setItem(row, column, item)
        verdict = "as theory says" if abs(report.ratio - 1) < 0.05 else "NOT as theory says"
        self.budget_title.setText(f"<b>{name}</b> − truth: measured σ {report.measured_sigma:.4g} ADU, "
                                  f"expected {report.predicted_sigma:.4g} ADU (ratio {report.ratio:.3f}, "
                                  f"{verdict}) over {report.pixels:,} pixels")

    def budget_rows(self) -> dict[str, str]:
        """The table as {term: σ text} (for tests and copy)."""
        return {self.budget.item(r, 0).text(): self.budget.item(r, 1).text()
                for r in range(self.budget.rowCount())}


class InspectionController(QObject):
    """Wires the inspection tools into ``window`` (a MainWindow) through its hooks."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.stack_view = StackInspector()
        self.stack_view.title.setWordWrap(True)
        self.stack_view.title.setStyleSheet(f"background: {STACK_BACKGROUND}; color: #e0e0e0; padding: 2px;")
        self.qa_panel = QAPanel()
        self.compare = ComparePanel()
        self.stack_tab = window.add_dock_tab("Stack", self.stack_view, "The stack behind a pixel of a "
                                             "master: click a pixel of a master or a light")
        self.qa_tab = window.add_dock_tab("QA", self.qa_panel, "Quality figures of the last run's masters")
        self.compare_tab = window.add_dock_tab("Compare", self.compare, "What the views show: raw, master, "
                                               "calibrated, difference, residual; blink; compass")
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                               thread_name_prefix="ccdgui-inspect")
        self._relay = _Relay()
        self._relay.done.connect(self._on_done)
        self._tokens = itertools.count(1)
        self._latest: dict[str, int] = {}
        self._inspectors: dict[str, Inspector] = {}      # per run (touched in the worker only)
        self._wcs: dict[int, tuple[Frame, FrameWCS | None]] = {}
        self.sim_params: SimParams | None = None         # the simulated night's parameters (its truth)
        self._truth: tuple[SimParams, np.ndarray, np.ndarray] | None = None  # worker-side cache
        self._night = 0
        self.shown: dict[str, Shown] = {}                # side -> what my views show now
        self.report: ResidualReport | None = None
        self.last_stacks: list = []
        self.blinking = False
        self._custom = False          # the views show something other than the window's raw | calibrated
        self.compass_items: dict[object, list] = {}
        self.compass_action = QAction("Compass (N/E arrows)", window)
        self.compass_action.setCheckable(True)
        self.compass_action.setToolTip("North and east arrows from the frame's WCS")
        self.compass_action.toggled.connect(self.set_compass)
        self.compass.toggled.connect(self.compass_action.setChecked)
        self.blink_action = QAction("Blink left ↔ right views", window)
        self.blink_action.setShortcut("Shift+B")
        self.blink_action.triggered.connect(self.compare.blink_button.click)
        window.addAction(self.blink_action)
        self._add_to_view_menu()
        self.stack_view.frame_requested.connect(lambda path: window.select_frame_named(Path(path).name))
        self.qa_panel.master_selected.connect(self._show_master)
        self.qa_panel.frame_requested.connect(window.select_frame_named)
        self.compare.changed.connect(self.refresh_views)
        self.compare.blink_button.toggled.connect(self.set_blink)
        window.pixel_clicked.connect(self.inspect_pixel)
        window.runner.finished.connect(self._on_job_finished)
        window.library.frame_selected.connect(lambda *_: (self._unmark(), self.refresh_views()))
        window.add_readout_provider(self.sky_text)
        for view in (window.raw_view, window.calibrated_view):
            view.ready.connect(lambda v=view: self.compass_action.isChecked() and self._draw_compass(v))

    @property
    def compass(self) -> QCheckBox:
        return self.compare.compass_check

    def _add_to_view_menu(self) -> None:
        for action in self.window.menuBar().actions():
            if action.menu() is not None and action.text().replace("&", "") == "View":
                action.menu().addSeparator()
                action.menu().addAction(self.compass_action)
                action.menu().addAction(self.blink_action)
                return

    def _status(self, text: str, ms: int = 8000) -> None:
        self.window.statusBar().showMessage(text, ms)

    def _show_tab(self, widget: QWidget) -> None:
        self.window.params.tabs.setCurrentWidget(widget)
        self.window.params_dock.show()
        self.window.params_dock.raise_()

    # --- the worker ------------------------------------------------------------------------------------
    def _submit(self, kind: str, work, *args) -> int:
        """Run ``work(*args)`` in the worker; its result reaches ``_on_done`` unless superseded."""
        token = next(self._tokens)
        self._latest[kind] = token
        relay = self._relay

        def run():
            try:
                result = work(*args)
            except Exception as exc:  # noqa: BLE001 - reported to the user in one line
                result = exc
            relay.done.emit(token, kind, result)

        self._executor.submit(run)
        return token

    def _on_done(self, token: int, kind: str, result) -> None:
        if self._latest.get(kind) != token:
            return
        if isinstance(result, Exception):
            text = str(result) if isinstance(result, InspectError | ValueError) else \
                f"{type(result).__name__}: {result}"
            self._status(f"{kind.capitalize()}: {text}", 10000)
            if kind == "stack":
                self.stack_view.clear()
                self.stack_view.title.setText(text)
            return
        getattr(self, f"_show_{kind}")(result)

    def wait(self, timeout: float = 30.0) -> None:
        """Wait for the worker's queued work (tests)."""
        self._executor.submit(lambda: None).result(timeout)

    # --- sessions and runs -------------------------------------------------------------------------------
    def _on_job_finished(self, _result) -> None:
        kind = self.window._job_kind
        if kind == "simulate":
            self.sim_params = getattr(self.window, "simulated_params", None)
            self._night += 1  # a new night: its inputs are written afresh when first inspected
        elif kind == "load":
            self.sim_params = None
        if kind in ("simulate", "load"):
            self.report = None
            self.compare.set_report(None)
            self.stack_view.clear()
            self.qa_panel.set_reports([])
        if kind == "calibrate" and self.window.last_result is not None:
            self.qa_panel.load_record(Path(self.window.last_result.outdir) / provenance.RECORD_NAME)
            self._fit_qa_columns()
        self._fill_minus()

    def _fit_qa_columns(self) -> None:
        """Keep the figures' values in sight in a narrow dock: long warnings are elided (their
        tooltips carry the whole text)."""
        tree = self.qa_panel.tree
        tree.resizeColumnToContents(0)
        tree.setColumnWidth(0, min(tree.columnWidth(0), 165))
        tree.setColumnWidth(1, 112)
        tree.setColumnWidth(2, 90)

    def _fill_minus(self) -> None:
        combo = self.compare.minus
        current = combo.currentText()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(SAME_LIGHT_RAW)
        for frame in [*self.window.raw, *self.window.masters]:
            combo.addItem(frame.name)
        combo.setCurrentText(current if combo.findText(current) >= 0 else SAME_LIGHT_RAW)
        combo.blockSignals(False)

    def _show_master(self, name: str) -> None:
        self.window.select_frame_named(name)

    # --- the pixel-stack inspector -----------------------------------------------------------------------
    def inspect_pixel(self, x: int, y: int, frame) -> None:
        """A click on frame pixel (x, y) (0-based): the stack(s) behind it, computed in the worker."""
        result = self.window.last_result
        if frame is None:
            return
        raw = any(f is frame for f in self.window.raw)
        kind = self.window.recipe.kind_of(frame) if raw else frame.kind
        if not (kind.value.startswith("master") or kind in (FrameKind.LIGHT, FrameKind.CALIBRATED)):
            return
        if result is None or result.outdir is None:
            self._status("Calibrate first: a pixel's stack comes from the run's masters", 5000)
            return
        record = self._record_path(Path(result.outdir))
        self._mark(frame, x, y)
        self.stack_view.title.setText(f"Reading the stack of {frame.name} at x = {x + 1}, y = {y + 1}…")
        self._show_tab(self.stack_view)
        self._submit("stack", self._stacks_at, record, frame.name, kind.value.startswith("master"),
                     x + 1, y + 1, frame.path)

    def _mark(self, frame: Frame, x: int, y: int) -> None:
        """A cross on the inspected pixel of the view showing ``frame`` (removed by the next frame)."""
        self._unmark()
        for view in (self.window.raw_view, self.window.calibrated_view):
            if view.frame is frame:
                marker = pg.ScatterPlotItem([x + 0.5], [y + 0.5], symbol="+", size=16,
                                            pen=pg.mkPen("#ff4040", width=2), brush=None)
                marker.setZValue(30)
                view.plot.addItem(marker)
                self._marker = (view, marker)
                return

    def _unmark(self) -> None:
        if getattr(self, "_marker", None) is not None:
            view, marker = self._marker
            view.plot.removeItem(marker)
            self._marker = None

    def _record_path(self, outdir: Path) -> Path:
        """The run's record; for a simulated session (frames in memory) a copy pointing at the inputs
        written once to the session folder (done in the worker)."""
        if not self.window.simulated:
            return outdir / provenance.RECORD_NAME
        return outdir / INSPECT_RECORD

    def _stacks_at(self, record: Path, name: str, is_master: bool, x: int, y: int,
                   path: Path | None = None) -> list:
        """(worker) The stacks at 1-based (x, y) of a master, or of the masters a light used."""
        if record.name == INSPECT_RECORD and not record.is_file():
            self._write_simulated_inputs(record)
        key = str(record)
        if key not in self._inspectors:
            self._inspectors = {key: Inspector(record)}  # one run at a time: the window keeps one
        inspector = self._inspectors[key]
        if is_master:
            return StackList(inspector.stack(name, x, y) for name in [name])
        light = light_key(inspector, name, path)
        names = inspector.light_masters(light)
        if not names:
            raise InspectError(f"{name} used no master")
        stacks = StackList(inspector.stack(master, x, y) for master in names)
        stacks.library = inspector.library_masters_of(light)
        return stacks

    def _write_simulated_inputs(self, record: Path) -> None:
        """(worker) Write the simulated night's frames as FITS in the session folder and a copy of the
        run's record whose input root is that folder (the Inspector re-reads inputs from files)."""
        import json
        import shutil

        folder = record.parent.parent / f"simulated-inputs-{self._night}"
        for old in record.parent.parent.glob("simulated-inputs-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
        folder.mkdir(exist_ok=True)
        for frame in list(self.window.raw):
            target = folder / frame.name
            if not target.exists():
                fitsio.write_frame(frame, target)
        data = provenance.load_record(record.parent / provenance.RECORD_NAME)
        data["input_root"] = str(folder)
        record.write_text(json.dumps(data, indent=1))

    def _show_stack(self, stacks: list) -> None:
        self.last_stacks = stacks
        self.stack_view.set_stacks(stacks)
        self._show_tab(self.stack_view)
        library = getattr(stacks, "library", [])
        also = f"; from the master library (stacks in the runs that built them): {', '.join(library)}" \
            if library else ""
        if stacks:
            self._status(f"Stack of {stacks[0].master} at x={stacks[0].x} y={stacks[0].y}: "
                         f"{stacks[0].count} of {len(stacks[0].frames)} values kept{also}", 12000)

    # --- views -------------------------------------------------------------------------------------------
    def _light_pair(self) -> tuple[Frame | None, Frame | None]:
        """(raw, calibrated) of the light in view (either may be None)."""
        current = self.window.current
        if current is None:
            return None, None
        if current.kind is FrameKind.CALIBRATED:
            return self.window.counterpart(current), current
        if self.window.recipe.kind_of(current) is FrameKind.LIGHT:
            return current, self.window.counterpart(current)
        return current, None

    def _steps_of(self, light: Frame | None):
        """The plan's steps for this raw light: the very frame first (two nights' lights may share a
        name), else the first of its name."""
        lights = self.window.plan.lights if self.window.plan is not None and light is not None else []
        return next((s for s in lights if s.frame is light), None) or next(
            (s for s in lights if s.frame.name == light.name), None)

    def _master_used(self, light: Frame | None, kind: str) -> Frame | None:
        steps = self._steps_of(light)
        if steps is None:
            return None
        role = {"master bias": steps.bias, "master dark": steps.dark or steps.raw_dark,
                "master flat": steps.flat}[kind]
        if role is None:
            return None
        return next((m for m in self.window.masters if m.name == Path(role.output).name
                     or m.name == role.name), None)

    def refresh_views(self) -> None:
        """Show in each view what the Compare tab asks for (the default raw | calibrated is the
        window's own)."""
        if self.blinking:
            self.compare.blink_button.setChecked(False)
        left, right = self.compare.left.currentText(), self.compare.right.currentText()
        self.shown = {}
        if self.window.current is None:
            return
        if (left, right) == ("raw", "calibrated"):
            if self._custom:
                self._custom = False
                self.window.show_frame(self.window.current)
            return
        self._custom = True
        request = self._request(left, right)
        if request is not None:
            self._submit("views", self._compute_views, request)

    def _request(self, left: str, right: str) -> dict | None:
        raw, calibrated = self._light_pair()
        minus_name = self.compare.minus.currentText()
        minus = raw if minus_name == SAME_LIGHT_RAW else next(
            (f for f in [*self.window.raw, *self.window.masters] if f.name == minus_name), None)
        sources = {"raw": raw, "calibrated": calibrated, "minus": minus}
        for kind in ("master bias", "master dark", "master flat"):
            sources[kind] = self._master_used(raw, kind)
        light = self._steps_of(raw) if raw is not None and calibrated is not None else None
        return {"modes": {"left": left, "right": right}, "sources": sources, "steps": light,
                "sim": self.sim_params if self.window.simulated else None,
                "display": dataclasses.replace(self.window.display),
                "combine": self._run_combine()}

    def _run_combine(self) -> str:
        result = self.window.last_result
        recipe = (result.record or {}).get("recipe", {}) if result is not None else {}
        return str(recipe.get("combine", self.window.recipe.combine))

    def _compute_views(self, request: dict) -> dict:
        """(worker) The images of both sides, and the residual's report when one is shown."""
        out: dict = {}
        for side, mode in request["modes"].items():
            out[side] = self._image(mode, request)
        return out

    def _image(self, mode: str, request: dict) -> Shown | str:
        sources = request["sources"]
        state = request["display"]
        if mode in ("raw", "calibrated") or mode.startswith("master"):
            frame = sources.get(mode)
            if frame is None:
                return f"No {mode} for this frame"
            data = np.asarray(frame.data)
            label = mode if mode != "raw" else "raw light"
            return Shown(data, f"{frame.name} ({label})", label, frame,
                         display.interval_limits(data, state))
        calibrated = sources["calibrated"]
        if calibrated is None:
            return "Calibrate first"
        if mode == "difference":
            minus = sources["minus"]
            if minus is None:
                return "Nothing to subtract"
            data = difference(calibrated.data, minus.data)
            return Shown(data, f"{calibrated.name} calibrated − {minus.name}", "difference", calibrated,
                         display.symmetric_limits(data, state))
        params, steps = request["sim"], request["steps"]
        if params is None:
            return "Residual: only for a simulated night"
        if steps is None:
            return "Residual: no plan step for this light"
        truth_sky, true_flat = self._truth_of(params)
        report = self._residual_report(calibrated.data, truth_sky, true_flat, params, steps,
                                       request["combine"])
        data = residual(calibrated.data, truth_sky, true_flat)
        shown = Shown(data, f"{calibrated.name} calibrated − truth", "residual", calibrated,
                      display.symmetric_limits(data, state))
        shown.report = report
        return shown

    def _truth_of(self, params: SimParams) -> tuple[np.ndarray, np.ndarray]:
        """(worker) The simulated night's noiseless sky + stars and true flat, made once per night."""
        if self._truth is None or self._truth[0] is not params:
            camera = make_camera(params)
            self._truth = (params, camera.sky_stars, camera.flat)
        return self._truth[1], self._truth[2]

    @staticmethod
    def _residual_report(calibrated: np.ndarray, truth_sky, true_flat, params: SimParams, steps,
                         combine: str) -> ResidualReport:
        return residual_report(calibrated, truth_sky, true_flat, **budget_inputs(params, steps, combine))

    def _show_views(self, out: dict) -> None:
        window = self.window
        for side, view in (("left", window.raw_view), ("right", window.calibrated_view)):
            shown = out[side]
            if isinstance(shown, str):
                view.show_frame(None, shown, (0.0, 1.0), window._lut())
                continue
            self.shown[side] = shown
            view.show_frame(shown.data, shown.title, shown.levels, window._lut(), frame=shown.frame,
                            label=shown.label)
            view.set_levels(shown.levels)
            report = shown.report
            if report is not None:
                self.report = report
                self.compare.set_report(report, shown.frame.name if shown.frame else "")
        window._histogram_timer.start()

    # --- blink --------------------------------------------------------------------------------------------
    def set_blink(self, on: bool) -> None:
        """Show the right view's image in the left view (on) or the left's again (off), the left view's
        levels locked."""
        window = self.window
        left, right = window.raw_view, window.calibrated_view
        if on and right.data is None:
            self.compare.blink_button.setChecked(False)
            self._status("Nothing to blink with: the right view is empty", 4000)
            return
        if on:
            self._blink_back = (left.data, left._title, left.frame, getattr(left, "label", None))
            self._blink_frame = window.current
            self._locked = left.levels
            shown = (right.data, right._title, right.frame, window.view_label(right))
        elif getattr(self, "_blink_back", None) is not None and self._blink_frame is window.current:
            shown = self._blink_back
        else:  # another frame was chosen meanwhile: the views show it already, never the old one
            self.blinking, self._blink_back = False, None
            return
        self.blinking = on
        data, title, frame, label = shown
        left.show_frame(data, title, self._locked, window._lut(), frame=frame, label=label)
        left.set_levels(self._locked)
        window._histogram_timer.start()

    # --- WCS ----------------------------------------------------------------------------------------------
    def frame_wcs(self, frame: Frame | None) -> FrameWCS | None:
        """The frame's celestial WCS (None without one), made once per frame."""
        if frame is None:
            return None
        cached = self._wcs.get(id(frame))
        if cached is None or cached[0] is not frame:
            if len(self._wcs) > MAX_WCS_CACHE:
                self._wcs.clear()
            cached = (frame, FrameWCS.from_header(getattr(frame, "header", None)))
            self._wcs[id(frame)] = cached
        return cached[1]

    def sky_text(self, frame: Frame, x: int, y: int) -> str | None:
        """Readout provider: RA/Dec at 0-based pixel (x, y), or None without a WCS."""
        wcs = self.frame_wcs(frame)
        if wcs is None:
            return None
        position = wcs.sky(x + 1, y + 1)
        return None if position is None else position.text()

    def set_compass(self, on: bool) -> None:
        """Show or hide north/east arrows on both views."""
        for toggle in (self.compass, self.compass_action):  # both say it, so a new frame redraws it
            toggle.blockSignals(True)
            toggle.setChecked(on)
            toggle.blockSignals(False)
        for view in (self.window.raw_view, self.window.calibrated_view):
            self._remove_compass(view)
            if on:
                self._draw_compass(view)
        if on and not any(self.compass_items.values()):
            self._status("No compass: the frame has no usable WCS", 5000)

    def _remove_compass(self, view) -> None:
        for item in self.compass_items.pop(view, []):
            view.plot.removeItem(item)

    def _draw_compass(self, view) -> None:
        self._remove_compass(view)
        wcs = self.frame_wcs(view.frame)
        if wcs is None or view.data is None:
            return
        ny, nx = view.data.shape[:2]
        length = 0.12 * min(nx, ny)
        x0, y0 = 0.12 * nx + length, 0.12 * ny + length  # 0-based display coordinates
        arrows = wcs.compass(x0 + 1, y0 + 1)
        if arrows is None:
            return
        items = []
        for letter, (dx, dy) in (("N", arrows.north), ("E", arrows.east)):
            tip = (x0 + dx * length, y0 + dy * length)
            line = pg.PlotDataItem([x0, tip[0]], [y0, tip[1]], pen=COMPASS_PEN[letter])
            head = pg.ArrowItem(pos=tip, angle=math.degrees(math.atan2(dy, -dx)),
                                headLen=10, brush=COMPASS_PEN[letter].color(), pen=COMPASS_PEN[letter])
            label = pg.TextItem(letter, color=COMPASS_PEN[letter].color(), anchor=(0.5, 0.5))
            label.setPos(x0 + dx * length * 1.25, y0 + dy * length * 1.25)
            for item in (line, head, label):
                item.setZValue(20)
                view.plot.addItem(item)
                items.append(item)
        self.compass_items[view] = items

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class StackList(list):
    """A light's stacks, with ``library``: the masters it used from the master library (no stack here)."""

    library: list[str] = []


def light_key(inspector: Inspector, name: str, path: Path | None) -> str:
    """How the run's record names a light: its path under the run's folder (a calibrated output) or
    under the input root (a raw light), so two nights' lights of one name are told apart; else its
    name."""
    if path is None:
        return name
    for root in (inspector.outdir, inspector.record.get("input_root")):
        if root:
            with contextlib.suppress(ValueError, OSError):
                return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    return name


