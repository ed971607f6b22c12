"""The frame library: every frame of the session in a tree, grouped by type, then exposure / filter,
temperature and binning (what decides which masters match), with those values as columns too."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QAction, QIcon
from PyQt6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTreeWidget, QTreeWidgetItem

from ..model import display, fitsio, library
from ..model.frame import Frame, FrameKind
from ..resources_path import resource_path

COLUMNS = ("name", "type", "exposure", "filter", "temp", "binning", "gain", "offset", "size", "median",
           "status")
HEADERS = {"temp": "Temp", "binning": "Bin"}
NAME_WIDTH = 230  # the name column's widest start (drag to widen; the full path is in its tooltip)


def column(name: str) -> int:
    """The index of a library column by name."""
    return COLUMNS.index(name)


def temperature_text(frame: Frame) -> str:
    value = frame.temperature
    return "" if value is None else f"{value:.0f} °C".replace("-", "−")


def binning_text(frame: Frame) -> str:
    bx, by = frame.binning
    return f"{bx}×{by}"


def header_number(frame: Frame, *keys: str) -> str:
    """The first of ``keys`` in the header as short text ('' when none)."""
    for key in keys:
        value = frame.header.get(key)
        if value is not None and str(value).strip():
            return f"{value:g}" if isinstance(value, float) else str(value).strip()
    return ""


def subgroup_label(frame: Frame, kind: FrameKind) -> tuple[str, str]:
    """The model's (type group, subgroup) with the temperature and binning added to the subgroup, so
    darks at −5 °C and −10 °C (or binned 1×1 and 2×2) are listed apart."""
    top, sub = library.group_label(frame, kind)
    extra = [x for x in (temperature_text(frame),
                         binning_text(frame) if frame.binning != (1, 1) else "") if x]
    return top, ", ".join([sub, *extra])
_ICON_OF_GROUP = {"Light": "light", "Flat": "flat", "Dark": "dark", "Bias": "bias", "Unknown": "unknown",
                  "Masters": "master", "Calibrated": "calibrated", "Quarantined": "quarantine"}
REASSIGNABLE = (FrameKind.BIAS, FrameKind.DARK, FrameKind.FLAT, FrameKind.LIGHT, FrameKind.UNKNOWN)


def icon(name: str) -> QIcon:
    path = resource_path(f"icons/{name}.svg")
    return QIcon(str(path)) if path is not None else QIcon()


class LibraryPanel(QTreeWidget):
    """Emits ``frame_selected(frame)`` on selection and ``kind_requested(frame, kind)`` from the context
    menu; shows what it is given, holds no state of its own beyond the items."""

    frame_selected = pyqtSignal(object)
    kind_requested = pyqtSignal(object, object)
    hdu_requested = pyqtSignal(object, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels([HEADERS.get(c, c.capitalize()) for c in COLUMNS])
        self.headerItem().setToolTip(column("temp"), "Sensor temperature (SET-TEMP, else CCD-TEMP)")
        self.headerItem().setToolTip(column("binning"), "XBINNING × YBINNING")
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)  # long names: capped
        self.header().setStretchLastSection(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.itemSelectionChanged.connect(self._on_selection)
        self._frames: dict[int, Frame] = {}
        self._medians: dict[int, float] = {}

    # --- filling ------------------------------------------------------------------------------------
    def remember_medians(self, medians: dict[int, float]) -> None:
        """Medians measured off the GUI thread (by id of frame), shown instead of measuring again."""
        self._medians.update(medians)

    def show_session(self, raw: list[Frame], kinds: dict[int, FrameKind], masters: list[Frame],
                     calibrated: list[Frame], quarantined: list, statuses: dict[int, str],
                     details: dict[int, str] | None = None) -> None:
        """Rebuild the tree. ``kinds`` maps id(frame) to its effective kind; ``statuses`` id → text;
        ``details`` id → the tooltip saying which masters a frame gets and why."""
        details = details or {}
        selected = self.current_frame()
        expanded = {self.topLevelItem(i).text(0) for i in range(self.topLevelItemCount())
                    if self.topLevelItem(i).isExpanded()} or {"Light", "Calibrated", "Masters"}
        self.blockSignals(True)
        self.clear()
        self._frames.clear()
        groups: dict[str, dict[str, list[tuple[Frame, FrameKind]]]] = {}
        for frame in [*raw, *masters, *calibrated]:
            kind = kinds.get(id(frame), frame.kind)
            top, sub = subgroup_label(frame, kind)
            groups.setdefault(top, {}).setdefault(sub, []).append((frame, kind))
        for top in library.GROUP_ORDER:
            if top not in groups:
                continue
            count = sum(len(v) for v in groups[top].values())
            top_item = QTreeWidgetItem(self, [f"{top} ({count})"])
            top_item.setData(0, Qt.ItemDataRole.UserRole + 1, top)
            top_item.setIcon(0, icon(_ICON_OF_GROUP[top]))
            for sub, members in groups[top].items():
                sub_item = QTreeWidgetItem(top_item, [f"{sub} ({len(members)})"])
                for frame, kind in members:
                    self._add_frame(sub_item, frame, kind, statuses.get(id(frame), ""),
                                    details.get(id(frame), ""))
                sub_item.setExpanded(True)
            top_item.setExpanded(top in {t.split(" (")[0] for t in expanded})
        if quarantined:
            top_item = QTreeWidgetItem(self, [f"Quarantined ({len(quarantined)})"])
            top_item.setIcon(0, icon("quarantine"))
            for problem in quarantined:
                columns = [""] * len(COLUMNS)
                columns[0], columns[1] = problem.path.name, "unusable"
                columns[column("status")] = problem.reason
                item = QTreeWidgetItem(top_item, columns)
                item.setToolTip(column("status"), f"{problem.path}\n{problem.reason}")
                item.setToolTip(0, f"{problem.path}\n{problem.reason}")
            top_item.setExpanded(True)
        frames = [*raw, *masters, *calibrated]
        for name, keys in (("gain", ("GAIN", "EGAIN")), ("offset", ("OFFSET",))):
            self.setColumnHidden(column(name), not any(header_number(f, *keys) for f in frames))
        self.setColumnWidth(0, min(max(self.sizeHintForColumn(0), 120), NAME_WIDTH))
        if selected is not None:
            self.select_frame(selected)  # signals still blocked: the selection did not change
        self.blockSignals(False)

    def _add_frame(self, parent: QTreeWidgetItem, frame: Frame, kind: FrameKind, status: str,
                   detail: str = "") -> None:
        key = id(frame)
        if key not in self._medians:
            self._medians[key] = display.quick_median(frame.data)
        exposure = "" if frame.exptime is None else f"{frame.exptime:g} s"
        notes = list(frame.notes)
        if kind is not frame.kind and frame.kind not in (FrameKind.CALIBRATED,):
            notes.insert(0, f"type set to {kind.value} by you (header: {frame.kind.value})")
        text = "; ".join(x for x in (status, *notes) if x)
        values = {"name": frame.name, "type": kind.value + ("?" if frame.guessed else ""),
                  "exposure": exposure, "filter": frame.filter or "", "temp": temperature_text(frame),
                  "binning": binning_text(frame), "gain": header_number(frame, "GAIN", "EGAIN"),
                  "offset": header_number(frame, "OFFSET"), "size": f"{frame.shape[1]}×{frame.shape[0]}",
                  "median": f"{self._medians[key]:.1f}", "status": text}
        item = QTreeWidgetItem(parent, [values[c] for c in COLUMNS])
        item.setData(0, Qt.ItemDataRole.UserRole, key)
        where = str(frame.path) if frame.path else frame.name
        item.setToolTip(0, f"{where}\n{detail}" if detail else where)
        item.setToolTip(column("status"), "\n".join(x for x in (detail or status, *notes) if x) or "ok")
        if frame.guessed:
            item.setToolTip(1, "type guessed from the file name or exposure; right-click to change it")
        self._frames[key] = frame

    # --- selection --------------------------------------------------------------------------------------
    def frame_items(self) -> list[QTreeWidgetItem]:
        items = []

        def walk(item: QTreeWidgetItem) -> None:
            for i in range(item.childCount()):
                child = item.child(i)
                if child.data(0, Qt.ItemDataRole.UserRole) is not None:
                    items.append(child)
                walk(child)

        walk(self.invisibleRootItem())
        return items

    def current_frame(self) -> Frame | None:
        item = self.currentItem()
        key = None if item is None else item.data(0, Qt.ItemDataRole.UserRole)
        return self._frames.get(key) if key is not None else None

    def select_frame(self, frame: Frame) -> None:
        for item in self.frame_items():
            if item.data(0, Qt.ItemDataRole.UserRole) == id(frame):
                item.parent().parent().setExpanded(True)
                self.setCurrentItem(item)
                return

    def step(self, offset: int) -> None:
        """Select the next (offset 1) or previous (-1) frame in the tree."""
        items = self.frame_items()
        if not items:
            return
        current = self.currentItem()
        index = items.index(current) if current in items else -1
        target = items[(index + offset) % len(items)]
        target.parent().parent().setExpanded(True)
        self.setCurrentItem(target)

    def _on_selection(self) -> None:
        frame = self.current_frame()
        if frame is not None:
            self.frame_selected.emit(frame)

    def _context_menu(self, position) -> None:
        item = self.itemAt(position)
        key = None if item is None else item.data(0, Qt.ItemDataRole.UserRole)
        frame = self._frames.get(key) if key is not None else None
        if frame is None or frame.kind not in REASSIGNABLE:
            return
        menu = QMenu(self)
        sub = menu.addMenu("Set frame type")
        for kind in REASSIGNABLE:
            action = QAction(kind.value, sub)
            action.triggered.connect(lambda _=False, k=kind: self.kind_requested.emit(frame, k))
            sub.addAction(action)
        images = fitsio.image_hdus(frame.path) if frame.path is not None and frame.path.exists() else []
        if len(images) > 1:  # a multi-extension file: which of its images this frame is
            chosen = frame.hdu
            hdus = menu.addMenu("Image HDU")
            for index, text in images:
                action = QAction(text, hdus)
                action.setCheckable(True)
                action.setChecked(index == chosen)
                action.triggered.connect(lambda _=False, i=index: self.hdu_requested.emit(frame, i))
                hdus.addAction(action)
        menu.exec(self.viewport().mapToGlobal(position))
