"""Raw and calibrated pixel distributions on one log-count plot, with a draggable level region."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import pyqtSignal

from ..model import display

RAW_PEN = pg.mkPen("#6fa8dc", width=1.5)
CALIBRATED_PEN = pg.mkPen("#f6b26b", width=1.5)


class HistogramView(pg.PlotWidget):
    """Emits ``levels_dragging(lo, hi)`` while the region moves and ``levels_changed(lo, hi)`` when
    released (react cheaply to the first, do expensive work on the second)."""

    levels_dragging = pyqtSignal(float, float)
    levels_changed = pyqtSignal(float, float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent)
        self.setBackground("#1e1f22")
        self.setLogMode(x=False, y=True)
        self.setLabel("bottom", "pixel value (ADU)")
        self.getAxis("bottom").enableAutoSIPrefix(False)
        self.setLabel("left", "pixels")
        # top right (raw frames sit above calibrated ones, so peaks are on the left), curves show through
        self.legend = self.addLegend(offset=(-10, 5), brush=pg.mkBrush(30, 31, 34, 150))
        self.legend.setZValue(20)
        self.raw_curve = self.plot([0, 1], [0], stepMode="center", pen=RAW_PEN, name="raw")
        self.calibrated_curve = self.plot([0, 1], [0], stepMode="center", pen=CALIBRATED_PEN,
                                          name="calibrated")
        self.region = pg.LinearRegionItem(values=(0, 1), brush=pg.mkBrush(120, 120, 160, 40))
        self.region.setZValue(10)
        self.addItem(self.region)
        self.region.sigRegionChanged.connect(self._on_drag)
        self.region.sigRegionChangeFinished.connect(self._on_release)
        self._quiet = False

    def set_frames(self, raw: np.ndarray | None, calibrated: np.ndarray | None) -> None:
        """Histogram both frames over a common range (the raw frame's robust range plus the
        calibrated one's), so the pair is comparable: the seed's raw-versus-calibrated plot."""
        frames = [f for f in (raw, calibrated) if f is not None]
        if not frames:
            return
        lo, hi = display.common_range(frames)
        for curve, data, name in ((self.raw_curve, raw, "raw"), (self.calibrated_curve, calibrated,
                                                                   "calibrated")):
            self.legend.removeItem(curve)  # the legend lists only the curves shown
            if data is None:
                curve.setData([0, 1], [0])
                curve.setVisible(False)
                continue
            hist = display.histogram(data, lo, hi)
            curve.setData(hist.edges, np.maximum(hist.counts, 0.5))
            curve.setVisible(True)
            self.legend.addItem(curve, name)

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
