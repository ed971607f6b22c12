"""The pixel distributions of the two views on one log-count plot, with a draggable level region; the
legend sits above the plot, never over the curves, and names each curve by what its view shows."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..model import display

RAW_COLOUR, CALIBRATED_COLOUR = "#6fa8dc", "#f6b26b"
RAW_PEN = pg.mkPen(RAW_COLOUR, width=1.5)
CALIBRATED_PEN = pg.mkPen(CALIBRATED_COLOUR, width=1.5)


class HistogramView(QWidget):
    """Emits ``levels_dragging(lo, hi)`` while the region moves and ``levels_changed(lo, hi)`` when
    released (react cheaply to the first, do expensive work on the second)."""

    levels_dragging = pyqtSignal(float, float)
    levels_changed = pyqtSignal(float, float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.legend_label = QLabel("")
        self.legend_label.setStyleSheet("background: #1e1f22; color: #c8c8c8; padding: 1px 6px;")
        layout.addWidget(self.legend_label)
        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setBackground("#1e1f22")
        self.plot_widget.setMenuEnabled(False)
        self.plot_widget.hideButtons()
        self.plot_widget.setLogMode(x=False, y=True)
        self.plot_widget.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot_widget.setLabel("left", "pixels")
        layout.addWidget(self.plot_widget, 1)
        self.raw_curve = self.plot_widget.plot([0, 1], [0], stepMode="center", pen=RAW_PEN)
        self.calibrated_curve = self.plot_widget.plot([0, 1], [0], stepMode="center", pen=CALIBRATED_PEN)
        self.region = pg.LinearRegionItem(values=(0, 1), brush=pg.mkBrush(120, 120, 160, 40))
        self.region.setZValue(10)
        self.plot_widget.addItem(self.region)
        self.region.sigRegionChanged.connect(self._on_drag)
        self.region.sigRegionChangeFinished.connect(self._on_release)
        self._quiet = False
        self.names = ("raw", "calibrated")
        self.set_unit("ADU")
        self.setToolTip("Pixel values of the left (blue) and right (orange) views; drag the shaded region "
                        "or its edges to set the display levels.")

    def set_unit(self, unit: str) -> None:
        self.plot_widget.setLabel("bottom", f"pixel value ({unit})" if unit else "pixel value")

    def set_frames(self, raw: np.ndarray | None, calibrated: np.ndarray | None,
                   names: tuple[str, str] = ("raw", "calibrated"), unit: str = "ADU") -> None:
        """Histogram both frames over a common range (the left frame's robust range plus the right
        one's), so the pair is comparable; ``names`` label the curves, ``unit`` the value axis."""
        frames = [f for f in (raw, calibrated) if f is not None]
        self.names = names
        self.set_unit(unit)
        if not frames:
            self.legend_label.setText("")
            return
        lo, hi = display.common_range(frames)
        legend = []
        for curve, data, name, colour in ((self.raw_curve, raw, names[0], RAW_COLOUR),
                                          (self.calibrated_curve, calibrated, names[1], CALIBRATED_COLOUR)):
            if data is None:
                curve.setData([0, 1], [0])
                curve.setVisible(False)
                continue
            hist = display.histogram(data, lo, hi)
            curve.setData(hist.edges, np.maximum(hist.counts, 0.5))
            curve.setVisible(True)
            legend.append(f"<span style='color:{colour}'>━━ {html.escape(name)}</span>")
        self.legend_label.setText("&nbsp;&nbsp;&nbsp;".join(legend))

    def set_region(self, lo: float, hi: float) -> None:
        self._quiet = True
        try:
            self.region.setRegion((lo, hi))
        finally:
            self._quiet = False

    def _on_drag(self) -> None:
        if not self._quiet:
            lo, hi = self.region.getRegion()
            self.levels_dragging.emit(float(lo), float(hi))

    def _on_release(self) -> None:
        if not self._quiet:
            lo, hi = self.region.getRegion()
            self.levels_changed.emit(float(lo), float(hi))
