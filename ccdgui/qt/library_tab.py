"""The window's master library: a *Masters* tab (the library's table, its path, and the selected light's
ranked candidate masters), planning with the library's masters, and "Add this run's masters to the
library".

:class:`LibraryController` wires itself into a :class:`~ccdgui.qt.main_window.MainWindow` through its
hooks: ``add_dock_tab``, the frame library's ``frame_selected`` signal, the recipe's events, the job
runner's ``finished`` signal and ``window.library_entries`` (the entries every ``make_plan`` of the
window is given). The library's path is a preference (QSettings key ``master_library``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from PyQt6.QtCore import QObject, Qt
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..model import masterlib
from ..model.frame import FrameKind
from ..model.masterlib import Library, LibraryError
from ..model.progress import Progress
from .masters_view import COLUMNS, MasterChoice, MastersView, record_choice

SETTINGS_KEY = "master_library"
ADD_RUN_JOB = "add to library"
FIRST_COLUMNS = ("Kind", "Name", "Exposure", "Filter", "Set T", "Night", "Frames", "Status")
TAB_WIDTH = 440          # pixels the Parameters dock gets while the Masters tab is shown
LIST_HEIGHT = 150        # a candidate list's highest: about three two-line candidates


def add_run_job(path: Path, plan, outdir: Path):
    """A worker job: copy a run's masters into the library at ``path`` (its own connection: SQLite
    connections stay in the thread that opened them)."""

    def work(token):
        yield Progress(0.0, f"Adding the run's masters to {path}…")
        with Library(path) as lib:
            return lib.add_run(plan, outdir)

    return work


def database_path(path: str | Path) -> Path:
    """The library's database file for a path the user gave (a folder means its library.sqlite)."""
    target = Path(path).expanduser()
    return target / masterlib.DB_NAME if target.is_dir() else target


class LibraryController(QObject):
    """The master library inside the main window (see the module's docstring)."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.library: Library | None = None
        self.problem = ""                   # one line when the library cannot be opened
        self.path = database_path(str(window.settings.value(SETTINGS_KEY, "") or masterlib.default_path()))
        self.view = MastersView(None)
        self.choice = MasterChoice()
        self.path_label = QLabel()
        self.path_label.setWordWrap(True)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.change_button = QPushButton("Change…")
        self.change_button.setToolTip("Use another master library (a library.sqlite file, or a folder "
                                      "for a new one); remembered for next time")
        self.add_run_button = QPushButton("Add this run")
        self.add_run_button.setToolTip("Copy the masters the last Calibrate built into the library "
                                       "(with the night of their frames)")
        self.add_run_action = QAction("Add this run's masters to the library", window)
        self.add_run_action.setToolTip(self.add_run_button.toolTip())
        self.add_run_action.triggered.connect(self.add_run)
        self.add_run_button.clicked.connect(self.add_run)
        self.widget = self._build_tab()
        window.params.tabs.currentChanged.connect(lambda _index: self._on_tab_shown())
        window.add_dock_tab("Masters", self.widget, "The master library: masters of other nights, and "
                            "which master each light gets (choose another here)")
        self._add_to_run_menu()
        self.view.add_button.clicked.disconnect()
        self.view.add_button.clicked.connect(self.add_files_asked)
        self.view.changed.connect(self.reload)
        self.change_button.clicked.connect(self.ask_path)
        self.choice.chosen.connect(self.choose)
        window.library.frame_selected.connect(self.show_light)
        window.recipe.events.connect(lambda *_: self.show_light(window.current))
        window.runner.finished.connect(self._on_finished)
        window.runner.busy_changed.connect(lambda _busy: self._enable_add_run())
        self.open(self.path, create=False)

    # --- construction ---------------------------------------------------------------------------------
    def _build_tab(self) -> QWidget:
        top = QWidget()
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_label, 1)
        path_row.addWidget(self.change_button)
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(path_row)
        top_layout.addWidget(self.view, 1)
        self.view.button_row.insertWidget(3, self.add_run_button)
        self.view.table.verticalHeader().setDefaultSectionSize(self.view.fontMetrics().height() + 6)
        self.view.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # bias, dark, flat
        first_columns(self.view, FIRST_COLUMNS)
        self.choice.layout().addStretch(1)  # the candidate lists keep their height, the rest is blank
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        scroller = QScrollArea()  # a light with many candidates scrolls, never cut off
        scroller.setWidgetResizable(True)
        scroller.setFrameShape(QFrame.Shape.NoFrame)
        scroller.setWidget(self.choice)
        splitter.addWidget(scroller)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([300, 400])
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        return splitter

    def _on_tab_shown(self) -> None:
        if self.window.params.tabs.currentWidget() is self.widget:
            self._widen_dock()
            self.reload_if_changed()

    def reload_if_changed(self) -> None:
        """Re-read the library when another program (``ccdgui library add``) changed it meanwhile."""
        if self.library is None:
            if self.path.exists() and not self.problem:
                self.open(self.path)
            return
        try:
            now = [e.sha256 for e in self.library.entries()]
        except Exception:  # noqa: BLE001 (said by reload)
            now = None
        if now != [e.sha256 for e in self.window.library_entries]:
            self.view.refresh()
            self.reload()

    def _widen_dock(self) -> None:
        """The Masters tab needs more room than the recipe's: widen the dock to :data:`TAB_WIDTH` while
        it is shown (never past a third of the window)."""
        window = self.window
        if window.params.tabs.currentWidget() is not self.widget:
            return
        width = min(TAB_WIDTH, window.width() // 3)
        if window.params_dock.width() < width:
            window.resizeDocks([window.params_dock], [width], Qt.Orientation.Horizontal)

    def _add_to_run_menu(self) -> None:
        for action in self.window.menuBar().actions():
            if action.text().replace("&", "") == "Run" and action.menu() is not None:
                action.menu().addSeparator()
                action.menu().addAction(self.add_run_action)
                return

    # --- the library ----------------------------------------------------------------------------------
    def open(self, path: str | Path, create: bool = False) -> bool:
        """Use the library at ``path`` (a missing one is only created when ``create``); a library that
        cannot be opened is said in one line on the tab and in the status bar. True when it is open."""
        self.close()
        self.path = database_path(path)
        self.problem = ""
        if self.path.exists() or create:
            try:
                self.library = Library(self.path)
                self.library.entries()  # a file that is not a library fails here, not later
            except (LibraryError, Exception) as exc:  # noqa: BLE001 (sqlite's errors vary): one line
                self.close()
                self.problem = one_line(exc, self.path)
        self.view.set_library(self.library)
        self.reload()
        if self.problem:
            self.window.statusBar().showMessage(self.problem, 10000)
        return self.library is not None

    def close(self) -> None:
        if self.library is not None:
            with contextlib.suppress(Exception):  # closing a broken connection must not crash the window
                self.library.close()
        self.library = None

    def set_path(self, path: str | Path) -> bool:
        """Use another library and remember it as the preference."""
        opened = self.open(path, create=False)
        self.window.settings.setValue(SETTINGS_KEY, str(self.path))
        return opened

    def ask_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.widget, "Master library (an existing library.sqlite, or a new file name)",
            str(self.path), "Master library (*.sqlite);;All (*)",
            options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.set_path(path)

    def entries(self) -> list[masterlib.LibraryMaster]:
        return list(self.window.library_entries)

    def reload(self) -> None:
        """Re-read the library's entries (one SELECT) and re-plan the session with them."""
        try:
            entries = self.library.entries() if self.library is not None else []
        except Exception as exc:  # noqa: BLE001 (a library damaged while open): said, not raised
            entries, self.problem = [], one_line(exc, self.path)
        self.window.library_entries = entries
        self._show_path()
        self.window.refresh_library()
        self.show_light(self.window.current)
        self._enable_add_run()

    def _show_path(self) -> None:
        if self.problem:
            text = f"<span style='color:#c62828'>{self.problem}</span>"
        elif self.library is None:
            text = f"No library yet at {self.path} — it is created on the first Add"
        else:
            text = f"Library {self.path}"
        self.path_label.setText(text.replace(str(self.path), short_path(self.path)))
        self.path_label.setToolTip(str(self.path))

    def ensure_open(self) -> bool:
        """Open the library, creating it when missing (the first Add)."""
        return self.library is not None or self.open(self.path, create=True)

    def add_files_asked(self) -> None:
        if self.ensure_open():
            self.view._ask_files()

    def add_files(self, paths, kind: str | None = None) -> masterlib.AddResult:
        """Add master files (no dialog), creating the library when missing."""
        if not self.ensure_open():
            return masterlib.AddResult(skipped=[self.problem])
        return self.view.add_files(paths, kind)  # emits changed -> reload

    # --- adding a run's masters -------------------------------------------------------------------------
    def _run(self):
        """The last Calibrate's result while it is the window's (None after a new session)."""
        result = self.window.last_result
        return None if result is None or result.outdir is None or result.plan is None else result

    def _enable_add_run(self) -> None:
        ready = self._run() is not None and not self.window.runner.busy and not self.problem
        self.add_run_action.setEnabled(ready)
        self.add_run_button.setEnabled(ready)

    def add_run(self) -> None:
        """Copy the last run's masters into the library, in a worker (status bar: progress, then what
        was added or skipped)."""
        run = self._run()
        if run is None:
            self.window.statusBar().showMessage("Nothing to add yet: press Calibrate first", 5000)
            return
        if not self.ensure_open():
            return
        self.window.statusBar().showMessage(f"Adding the run's masters to {self.path}…")
        self.window._start(ADD_RUN_JOB, add_run_job(self.path, run.plan, Path(run.outdir)))

    def _on_finished(self, result) -> None:
        kind = self.window._job_kind
        self._enable_add_run()
        if kind != ADD_RUN_JOB:
            return
        added, skipped = result.added, result.skipped
        self.view.refresh()
        self.reload()
        text = f"Added {len(added)} master(s) to the library"
        if skipped:
            text += f"; {len(skipped)} not added ({skipped[0]}{'…' if len(skipped) > 1 else ''})"
        self.window.statusBar().showMessage(text, 12000)

    # --- a light's choice -----------------------------------------------------------------------------
    def steps_of(self, frame):
        """The plan's steps for a light (raw or calibrated, by name), or None."""
        plan = self.window.plan
        if frame is None or plan is None:
            return None
        steps = [*plan.lights, *(i for m in plan.masters for i in m.inputs)]
        raw = self.window.counterpart(frame) if frame.kind is FrameKind.CALIBRATED else frame
        return next((s for s in steps if s.frame is raw), None) or next(  # two nights may share names
            (s for s in steps if s.frame.name == frame.name), None)

    def show_light(self, frame) -> None:
        steps = self.steps_of(frame)
        if steps is not None and self.window.plan is not None:
            self.choice.show_frame(self.window.plan, steps)
            for widget in self.choice.lists.values():
                compact_candidates(widget)
        else:
            self.choice.heading.setText("Choose a light in the frame library to see its candidate masters")
            for widget in self.choice.lists.values():
                widget.tree.clear()

    def choose(self, frame_name: str, kind: str, reference: str) -> None:
        """Record the user's master for a light in the recipe (the window re-plans)."""
        record_choice(self.window.recipe, frame_name, kind, reference or None)
        steps = next((s for s in (self.window.plan.lights if self.window.plan else [])
                      if s.frame.name == frame_name), None)
        choice = None if steps is None else steps.choices.get(kind)
        said = choice.describe() if choice is not None else f"{kind}: none"
        self.window.statusBar().showMessage(f"{frame_name}: {said}", 10000)


def one_line(exc: BaseException, path: Path) -> str:
    """A library error as one line for the user."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if str(path) in text else f"cannot open the master library {path}: {text}"


def short_path(path: Path, limit: int = 44) -> str:
    """A path for a narrow label: ~ for the home folder, the middle elided past ``limit`` characters
    (the label's tooltip has it whole)."""
    text = str(path)
    home = str(Path.home())
    if text.startswith(home + os.sep):
        text = "~" + text[len(home):]
    return text if len(text) <= limit else f"{text[: limit // 3]}…{text[-(2 * limit // 3):]}"


def compact_candidates(widget) -> None:
    """Fit a candidate list into a narrow dock: the verdict before the master, the reason under the
    master's name (instead of a column far to the right), about three candidates high."""
    tree = widget.tree
    header = tree.header()
    if header.visualIndex(2) != 1:
        header.moveSection(header.visualIndex(2), 1)
    for index in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(index)
        why = item.text(3)
        if why and "\n" not in item.text(1):
            item.setText(1, f"{item.text(1)}\n{why}")
            item.setToolTip(1, f"{item.toolTip(1)}\n{item.toolTip(3)}")
    tree.setColumnHidden(3, True)
    spacing = tree.fontMetrics().lineSpacing()
    lines = [tree.topLevelItem(i).text(1).count("\n") + 1 for i in range(tree.topLevelItemCount())]
    height = tree.header().sizeHint().height() + sum(n * spacing + 6 for n in lines or [1]) \
        + 2 * tree.frameWidth() + tree.horizontalScrollBar().sizeHint().height()
    tree.setFixedHeight(min(height, LIST_HEIGHT))
    widget.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)


def first_columns(view: MastersView, names) -> None:
    """Show these columns of the library's table first (what tells masters apart in a narrow dock;
    camera, size, binning and sensor settings follow)."""
    header = view.table.horizontalHeader()
    for position, name in enumerate(names):
        header.moveSection(header.visualIndex(COLUMNS.index(name)), position)
