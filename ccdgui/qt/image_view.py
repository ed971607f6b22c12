"""An image view: a pyqtgraph ImageItem in a PlotItem (axes in pixels, row 0 at the bottom, as DS9)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, pyqtSignal

from ..model import display

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

_COLOUR_TABLES: dict[str, np.ndarray] = {}


def colour_table(name: str) -> np.ndarray:
    """A 256 × 3 uint8 table for a colour map name from the model's list."""
    if name not in _COLOUR_TABLES:
        if name == "grey":
            ramp = np.arange(256, dtype=np.uint8)
            table = np.stack([ramp, ramp, ramp], axis=1)
        else:
            table = pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=False)
        _COLOUR_TABLES[name] = np.ascontiguousarray(table, dtype=np.uint8)
    return _COLOUR_TABLES[name]


def lookup_table(stretch: str, colour_map: str) -> np.ndarray:
    """The 256-entry LUT realising a stretch on a colour map (pyqtgraph's fast path needs ≤ 256)."""
    return colour_table(colour_map)[display.lut_indices(stretch)]


class ImageView(pg.GraphicsLayoutWidget):
    """Shows one frame. Emits ``hovered(x, y, value)`` as the cursor moves over the image."""

    hovered = pyqtSignal(int, int, float)

    def __init__(self, title: str = "", parent=None) -> None:
        super().__init__(parent=parent)
        self.setBackground("#1e1f22")
        self.plot: pg.PlotItem = self.addPlot(title=title)
        self.plot.setAspectLocked(True)
        self.plot.showGrid(x=False, y=False)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen("#c8c8c8")
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.data: np.ndarray | None = None      # the frame's pixels (not the display copy)
        self.frame_name = ""
        self._placeholder = pg.TextItem("", color="#9a9a9a", anchor=(0.5, 0.5))
        self.plot.addItem(self._placeholder)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def set_title(self, text: str) -> None:
        self.plot.setTitle(text, color="#e0e0e0", size="10pt")

    def show_frame(self, data: np.ndarray | None, name: str, levels: tuple[float, float],
                   lut: np.ndarray, keep_view: bool = True) -> None:
        """Display ``data`` (NaNs replaced for speed) with ``levels`` and ``lut``."""
        first = self.data is None or data is None or self.data.shape != data.shape
        self.data = data
        self.frame_name = name
        if data is None:
            self.image.clear()
            self._placeholder.setText(name)
            self.set_title("")
            return
        self._placeholder.setText("")
        shown, _mask = display.displayable(data)
        self.image.setImage(shown, autoLevels=False, levels=levels, lut=lut)
        self.set_title(name)
        if first or not keep_view:
            self.plot.autoRange(padding=0.0)

    def set_levels(self, levels: tuple[float, float]) -> None:
        if self.data is not None:
            self.image.setLevels(levels)

    def set_lut(self, lut: np.ndarray) -> None:
        self.image.setLookupTable(lut)

    def placeholder(self, text: str) -> None:
        self.show_frame(None, text, (0.0, 1.0), lookup_table("linear", "grey"))

    def zoom(self, factor: float) -> None:
        self.plot.getViewBox().scaleBy((1 / factor, 1 / factor))

    def fit(self) -> None:
        self.plot.autoRange(padding=0.0)

    def _on_mouse_moved(self, position: QPointF) -> None:
        if self.data is None or not self.plot.sceneBoundingRect().contains(position):
            return
        point = self.plot.getViewBox().mapSceneToView(position)
        x, y = int(np.floor(point.x())), int(np.floor(point.y()))
        if 0 <= y < self.data.shape[0] and 0 <= x < self.data.shape[1]:
            self.hovered.emit(x, y, float(self.data[y, x]))
