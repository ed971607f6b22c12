"""Quality figures of masters as a tree: one branch per master with its figures, the input frames with
the fraction of their values rejected, frames that stand out and warnings highlighted. Fed with
:class:`ccdgui.model.qa.MasterQA` (from a run's recipe.json or the masters' headers)."""

from __future__ import annotations

import math
import os
from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont
from PyQt6.QtWidgets import QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from ..model import fitsio, provenance, qa

WARNING_BRUSH = QBrush(QColor("#7f6000"))
OUTLIER_BRUSH = QBrush(QColor("#8b1a1a"))
LIGHT_TEXT = QBrush(QColor("#ffffff"))
KIND_ORDER = {"master bias": 0, "master dark": 1, "master flat": 2}
HEADER_TIPS = {"QAREJECT": "Mean fraction of the inputs' values the combine rejected (sampled rows)",
               "QASAMPLE": "Input figures are measured on these rows of every input, kept while combining"}


class QAPanel(QWidget):
    """``set_reports([MasterQA, …])``, ``load_record(recipe.json)``, ``load_masters(paths)``. Emits
    ``master_selected(name)`` when a master's branch is chosen and ``frame_requested(name)`` when a
    frame's line is double-clicked."""

    master_selected = pyqtSignal(str)
    frame_requested = pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.status = QLabel("No masters yet: press Calibrate")
        self.status.setStyleSheet("padding: 2px 6px;")
        layout.addWidget(self.status)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Figure", "Value", "Keyword"])
        self.tree.setAlternatingRowColors(True)
        self.tree.setRootIsDecorated(True)
        self.tree.currentItemChanged.connect(self._on_current)
        self.tree.itemDoubleClicked.connect(self._on_double_click)
        layout.addWidget(self.tree, 1)
        self.reports: list[qa.MasterQA] = []

    # --- data ----------------------------------------------------------------------------------------
    def load_record(self, path: str | os.PathLike) -> None:
        """The QA of every master of a run, from its recipe.json (values → qa)."""
        try:
            record = provenance.load_record(path)
        except provenance.RecordError as exc:
            self.set_reports([])
            self.status.setText(str(exc))
            return
        reports = [qa.MasterQA.from_dict(v["qa"]) for v in record.get("values", {}).values()
                   if isinstance(v, dict) and isinstance(v.get("qa"), dict)]
        self.set_reports(reports)

    def load_masters(self, paths) -> None:
        """The QA in masters' headers (files without it are skipped, and said so)."""
        reports, skipped = [], []
        for path in paths:
            try:
                frame = fitsio.read_header_frame(path)
            except (fitsio.FrameError, OSError):
                skipped.append(Path(path).name)
                continue
            report = qa.from_header(frame.header, Path(path).name)
            (reports if report.figures else skipped).append(report if report.figures else Path(path).name)
        self.set_reports(reports)
        if skipped:
            self.status.setText(self.status.text() + f"; no QA in {', '.join(skipped)}")

    def set_reports(self, reports) -> None:
        self.reports = sorted(reports, key=lambda r: (KIND_ORDER.get(r.kind, 3), r.master))
        self.tree.clear()
        warnings = sum(len(r.warnings) for r in self.reports)
        for report in self.reports:
            self.tree.addTopLevelItem(self._master_item(report))
        self.tree.expandAll()
        for index in range(self.tree.topLevelItemCount()):
            frames = self._child(self.tree.topLevelItem(index), "frames")
            if frames is not None and not any(f.flagged for f in self.reports[index].frames):
                frames.setExpanded(False)
        for column in range(3):
            self.tree.resizeColumnToContents(column)
        if not self.reports:
            self.status.setText("No masters with quality figures")
        else:
            self.status.setText(f"{len(self.reports)} master(s); "
                                + (f"<b style='color:#e69138'>{warnings} warning(s)</b>" if warnings
                                   else "no warnings"))

    @staticmethod
    def _child(item: QTreeWidgetItem, key: str) -> QTreeWidgetItem | None:
        for index in range(item.childCount()):
            if item.child(index).data(0, Qt.ItemDataRole.UserRole) == key:
                return item.child(index)
        return None

    def _master_item(self, report: qa.MasterQA) -> QTreeWidgetItem:
        item = QTreeWidgetItem([report.master, report.kind, ""])
        font = QFont()
        font.setBold(True)
        item.setFont(0, font)
        item.setData(0, Qt.ItemDataRole.UserRole, "master")
        if report.warnings:
            item.setText(2, f"⚠ {len(report.warnings)} warning(s)")
            item.setForeground(2, QBrush(QColor("#e69138")))
        for figure in report.figures:
            child = QTreeWidgetItem([figure.label, figure.text(), figure.keyword])
            child.setToolTip(0, HEADER_TIPS.get(figure.keyword, figure.comment or figure.label))
            child.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.addChild(child)
        for warning in report.warnings:
            if warning.startswith("outlier frame "):
                continue  # shown on the frame's own line
            child = QTreeWidgetItem(["⚠ warning", warning, ""])
            child.setToolTip(1, warning)
            for column in range(3):
                child.setBackground(column, WARNING_BRUSH)
                child.setForeground(column, LIGHT_TEXT)
            item.addChild(child)
        if report.frames:
            flagged = len(report.flagged())
            frames = QTreeWidgetItem([f"input frames ({len(report.frames)})",
                                      f"{flagged} flagged" if flagged else "none stands out", ""])
            frames.setData(0, Qt.ItemDataRole.UserRole, "frames")
            for frame in report.frames:
                rejected = "—" if math.isnan(frame.rejected) else f"{frame.rejected:.3%} rejected"
                child = QTreeWidgetItem([frame.name, rejected, "outlier" if frame.flagged else ""])
                child.setData(0, Qt.ItemDataRole.UserRole, "frame")
                tip = f"level {frame.level:.6g} as combined" + (f"\n{frame.flagged}" if frame.flagged else "")
                child.setToolTip(0, tip)
                child.setToolTip(1, tip)
                if frame.flagged:
                    child.setText(1, frame.flagged)
                    for column in range(3):
                        child.setBackground(column, OUTLIER_BRUSH)
                        child.setForeground(column, LIGHT_TEXT)
                frames.addChild(child)
            item.addChild(frames)
        return item

    # --- interaction ------------------------------------------------------------------------------------
    def _on_current(self, current: QTreeWidgetItem | None, _previous=None) -> None:
        while current is not None and current.parent() is not None:
            current = current.parent()
        if current is not None:
            self.master_selected.emit(current.text(0))

    def _on_double_click(self, item: QTreeWidgetItem, _column: int) -> None:
        if item.data(0, Qt.ItemDataRole.UserRole) == "frame":
            self.frame_requested.emit(item.text(0))
