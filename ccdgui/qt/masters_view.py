"""The *Masters* view: the master library as a sortable table (filter by camera and kind, QA figures),
with Add…/Remove/Check; and a light's short ranked list of candidate masters, to choose one.

Thin widgets over :mod:`ccdgui.model.masterlib` (the library) and :func:`ccdgui.model.plan.candidates`
(the ranking). A choice is recorded in the recipe's ``master_overrides`` (``"LIGHT:KIND" -> reference``,
see :func:`record_choice`), which ``make_plan`` honours and recipe.json keeps.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..model import masterlib
from ..model.library import celsius
from ..model.masterlib import Library, LibraryMaster

COLUMNS = ("Kind", "Name", "Camera", "Size", "Bin", "Gain", "Offset", "Readout", "Set T", "CCD T", "Exposure",
           "Filter", "Night", "Frames", "Status")
_TIPS = {"Gain": "GAIN (or a synonym): the sensor's gain setting; must match the light's",
         "Offset": "OFFSET (or a synonym): the sensor's offset; must match the light's",
         "Readout": "READOUTM (or a synonym): readout mode; must match the light's",
         "Set T": "Set-point temperature (SET-TEMP)", "CCD T": "Measured sensor temperature (CCD-TEMP)",
         "Night": "The evening the master's frames were taken", "Frames": "Frames combined (NCOMBINE)",
         "Status": "ok, missing, or changed on disk since it was added (press Check)"}
_VERDICT_COLOURS = {"exact": "#2e7d32", "nearby": "#b26a00", "refused": "#9e9e9e"}
ALL = "All"


class _Item(QTableWidgetItem):
    """A cell that sorts by a number when it has one (exposures, temperatures, counts)."""

    def __init__(self, text: str, number: float | None = None) -> None:
        super().__init__(text)
        self.number = number
        self.setFlags(self.flags() & ~Qt.ItemFlag.ItemIsEditable)

    def __lt__(self, other) -> bool:
        if isinstance(other, _Item) and self.number is not None and other.number is not None:
            return self.number < other.number
        if isinstance(other, _Item) and (self.number is None) != (other.number is None):
            return self.number is not None  # numbers before blanks
        return self.text() < other.text()


def _number_text(value: float | None, unit: str = "") -> str:
    return "" if value is None else f"{value:g}{unit}"


def entry_cells(entry: LibraryMaster, qa_keys: list[str], status: str = "") -> list[_Item]:
    """The table's cells for one library master."""
    ny, nx = entry.shape
    cells = [_Item(entry.kind), _Item(entry.name), _Item(entry.camera), _Item(f"{nx}×{ny}", nx * ny),
             _Item(f"{entry.binning[0]}×{entry.binning[1]}", entry.binning[0]), _Item(entry.gain or ""),
             _Item(entry.offset or ""), _Item(entry.readout or ""),
             _Item("" if entry.set_temp is None else celsius(entry.set_temp), entry.set_temp),
             _Item("" if entry.ccd_temp is None else celsius(entry.ccd_temp), entry.ccd_temp),
             _Item(_number_text(entry.exptime, " s"), entry.exptime), _Item(entry.filter or ""),
             _Item(entry.night or "undated"), _Item(str(entry.ncombine), entry.ncombine), _Item(status)]
    for key in qa_keys:
        value = entry.qa.get(key)
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        cells.append(_Item("" if value is None else (f"{value:.4g}" if number is not None else str(value)),
                           number))
    tip = f"{entry.path}\nfrom {entry.origin or '?'}\nsha256 {entry.sha256}\nadded {entry.added}"
    for cell in cells:
        cell.setToolTip(tip)
        cell.setData(Qt.ItemDataRole.UserRole, entry.id)
    return cells


class MastersView(QWidget):
    """The master library as a table: filter by kind and camera, sort by any column (QA figures too),
    Add… (files, with their kind from the header or asked), Remove (with confirmation), Check."""

    changed = pyqtSignal()  # the library's content changed (masters added or removed)

    def __init__(self, library: Library | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.statuses: dict[int, str] = {}
        self.kind_box = QComboBox()
        self.kind_box.addItems([ALL, *masterlib.KINDS])
        self.kind_box.setToolTip("Show one kind of master")
        self.camera_box = QComboBox()
        self.camera_box.setToolTip("Show the masters of one camera (INSTRUME)")
        self.add_button = QPushButton("Add…")
        self.add_button.setToolTip("Copy master files into the library (their headers say what they are)")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected masters from the library (and their copies)")
        self.check_button = QPushButton("Check")
        self.check_button.setToolTip("Compare every master's file with its recorded sha256")
        self.summary = QLabel()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        bar = QHBoxLayout()
        for label, widget in (("Kind", self.kind_box), ("Camera", self.camera_box)):
            bar.addWidget(QLabel(label))
            bar.addWidget(widget)
        bar.addStretch(1)
        buttons = QHBoxLayout()  # a second row: the bar fits a narrow dock
        for button in (self.add_button, self.remove_button, self.check_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.button_row = buttons  # a host window may add its own buttons here
        self.summary.setMinimumWidth(1)  # a long library path must not widen a narrow dock
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        self.kind_box.currentTextChanged.connect(self.refresh)
        self.camera_box.currentTextChanged.connect(self.refresh)
        self.add_button.clicked.connect(self._ask_files)
        self.remove_button.clicked.connect(lambda: self.remove_selected(confirm=True))
        self.check_button.clicked.connect(self.check)
        self.refresh()

    def set_library(self, library: Library | None) -> None:
        self.library = library
        self.statuses = {}
        self.refresh()

    def entries(self) -> list[LibraryMaster]:
        """The masters shown (the filters applied)."""
        if self.library is None:
            return []
        kind = self.kind_box.currentText()
        camera = self.camera_box.currentText()
        return self.library.entries(None if kind == ALL else kind, None if camera in (ALL, "") else camera)

    def refresh(self) -> None:
        """Re-read the library into the table (keeps the sort column)."""
        self._fill_cameras()
        shown = self.entries()
        qa_keys = sorted({key for entry in shown for key in entry.qa})
        self.table.setSortingEnabled(False)
        self.table.clearContents()
        self.table.setColumnCount(len(COLUMNS) + len(qa_keys))
        self.table.setHorizontalHeaderLabels([*COLUMNS, *qa_keys])
        for index, name in enumerate(COLUMNS):
            if name in _TIPS:
                self.table.horizontalHeaderItem(index).setToolTip(_TIPS[name])
        self.table.setRowCount(len(shown))
        for row, entry in enumerate(shown):
            status = self.statuses.get(entry.id, "" if Path(entry.path).is_file() else "missing")
            for col, cell in enumerate(entry_cells(entry, qa_keys, status)):
                if status not in ("", "ok"):
                    cell.setForeground(QBrush(QColor("#c62828")))
                self.table.setItem(row, col, cell)
        self.table.setSortingEnabled(True)
        where = "no library" if self.library is None else str(self.library.path)
        total = 0 if self.library is None else len(self.library.entries())
        self.summary.setText(f"{len(shown)} of {total} master(s) — {where}")
        self.remove_button.setEnabled(bool(shown))

    def _fill_cameras(self) -> None:
        cameras = sorted({e.camera for e in self.library.entries()}) if self.library is not None else []
        current = self.camera_box.currentText()
        self.camera_box.blockSignals(True)
        self.camera_box.clear()
        self.camera_box.addItems([ALL, *cameras])
        self.camera_box.setCurrentText(current if current in cameras else ALL)
        self.camera_box.blockSignals(False)

    # actions -----------------------------------------------------------------------------------------
    def _ask_files(self) -> None:
        files = "FITS files (*.fits *.fit *.fts *.fits.gz *.fits.fz);;All (*)"
        paths, _ = QFileDialog.getOpenFileNames(self, "Add masters to the library", "", files)
        if paths:
            result = self.add_files(paths)
            if result.skipped:
                QMessageBox.information(self, "Some files were not added", "\n".join(result.skipped[:20]))

    def add_files(self, paths, kind: str | None = None) -> masterlib.AddResult:
        """Add files to the library (no dialog); the result says what was skipped and why."""
        if self.library is None:
            return masterlib.AddResult(skipped=["no library is open"])
        result = self.library.add(paths, kind)
        self.refresh()
        if result.added:
            self.changed.emit()
        return result

    def selected_ids(self) -> list[int]:
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        return [self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) for row in sorted(rows)]

    def remove_selected(self, confirm: bool = True) -> list[LibraryMaster]:
        """Remove the selected masters (asking first when ``confirm``)."""
        ids = self.selected_ids()
        if not ids or self.library is None:
            return []
        if confirm and QMessageBox.question(
                self, "Remove masters", f"Remove {len(ids)} master(s) from the library and delete their "
                "copies in the library folder? (The files they were copied from are kept.)") \
                != QMessageBox.StandardButton.Yes:
            return []
        removed, _ = self.library.remove([str(i) for i in ids])
        self.refresh()
        self.changed.emit()
        return removed

    def check(self) -> list[str]:
        """Hash every master's file; the Status column says ok, missing or changed."""
        if self.library is None:
            return []
        problems = []
        for entry in self.library.entries():
            problem = masterlib.entry_problem(entry)
            self.statuses[entry.id] = "ok" if problem is None else \
                ("missing" if ": missing" in problem else "changed")
            problems += [problem] if problem else []
        self.refresh()
        return problems


# --- a light's ranked choice ---------------------------------------------------------------------------
def record_choice(recipe, frame_name: str, kind: str, reference: str | None) -> None:
    """Record the user's master for a frame and kind in ``recipe.master_overrides`` (None or '' goes
    back to the automatic choice). The dict is replaced, so the recipe's change signal fires."""
    overrides = dict(recipe.master_overrides)
    key = f"{frame_name}:{kind}"
    if reference:
        overrides[key] = reference
    else:
        overrides.pop(key, None)
    recipe.master_overrides = overrides


class CandidateList(QWidget):
    """One frame's ranked candidates for one kind of master: the plan's choice first, then exact,
    nearby and refused ones with their reasons. *Use selected* emits ``chosen(frame, kind, reference)``;
    *Automatic* emits it with an empty reference."""

    chosen = pyqtSignal(str, str, str)
    LIMIT = 6

    def __init__(self, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.frame_name = ""
        self.title = QLabel(kind.capitalize())
        self.title.setStyleSheet("font-weight: bold")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["", "Master", "Verdict", "Why"])
        self.tree.setRootIsDecorated(False)
        self.tree.setWordWrap(True)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.use_button = QPushButton("Use selected")
        self.use_button.setToolTip("Use this master for this frame (recorded in the recipe)")
        self.auto_button = QPushButton("Automatic")
        self.auto_button.setToolTip("Let the planner choose (tonight's frames first, then the library)")
        buttons = QHBoxLayout()
        buttons.addWidget(self.title)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.auto_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.tree)
        self.use_button.clicked.connect(self._use_selected)
        self.auto_button.clicked.connect(lambda: self.chosen.emit(self.frame_name, self.kind, ""))

    def set_candidates(self, frame_name: str, candidates) -> None:
        """Show ``plan.candidates(...)`` for one frame (at most :attr:`LIMIT`, refused ones last)."""
        self.frame_name = frame_name
        self.tree.clear()
        shown = [c for c in candidates if c.verdict != "refused"][: self.LIMIT]
        shown += [c for c in candidates if c.verdict == "refused"][: max(0, self.LIMIT - len(shown))]
        for candidate in shown:
            mark = ("✔ yours" if candidate.by_user else "✔") if candidate.chosen else ""
            item = QTreeWidgetItem([mark, candidate.master.label,
                                    candidate.verdict, candidate.reason.rsplit(":", 1)[0]])
            item.setData(0, Qt.ItemDataRole.UserRole, candidate.reference)
            item.setForeground(2, QBrush(QColor(_VERDICT_COLOURS[candidate.verdict])))
            item.setToolTip(1, candidate.reference)
            item.setToolTip(3, candidate.reason)
            if candidate.verdict == "refused":
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
                for col in (1, 3):
                    item.setForeground(col, QBrush(QColor(_VERDICT_COLOURS["refused"])))
            self.tree.addTopLevelItem(item)
        hidden = len(candidates) - len(shown)
        self.title.setText(f"{self.kind.capitalize()}" + (f" ({hidden} more not shown)" if hidden else ""))
        if not candidates:
            self.tree.addTopLevelItem(QTreeWidgetItem(["", f"no master {self.kind} tonight or in the library",
                                                       "", ""]))

    def references(self) -> list[str]:
        return [self.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
                for i in range(self.tree.topLevelItemCount())]

    def select(self, reference: str) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == reference:
                self.tree.setCurrentItem(item)

    def _use_selected(self) -> None:
        item = self.tree.currentItem()
        reference = None if item is None else item.data(0, Qt.ItemDataRole.UserRole)
        if reference:
            self.chosen.emit(self.frame_name, self.kind, reference)


class MasterChoice(QWidget):
    """A light's ranked candidates for bias, dark and flat (one :class:`CandidateList` each); choosing
    one emits ``chosen(frame, kind, reference)`` — pass it to :func:`record_choice` and re-plan."""

    chosen = pyqtSignal(str, str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.heading = QLabel("Choose a light to see its candidate masters")
        self.heading.setWordWrap(True)
        self.lists = {kind: CandidateList(kind) for kind in masterlib.KINDS}
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        for widget in self.lists.values():
            layout.addWidget(widget, 1)
            widget.chosen.connect(self.chosen)

    def show_frame(self, plan, steps) -> None:
        """Show the candidates of one frame (``steps``: one of ``plan.lights``)."""
        from ..model.plan import candidates

        status = "not calibrated" if steps.skip else steps.describe()
        self.heading.setText(f"<b>{steps.frame.name}</b>: {status}")
        for kind, widget in self.lists.items():
            widget.set_candidates(steps.frame.name, candidates(plan, steps, kind))
