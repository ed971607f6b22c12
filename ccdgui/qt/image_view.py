"""An image view: a pyqtgraph ImageItem in a PlotItem (axes in pixels, row 0 at the bottom, as DS9)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6 import sip
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QFont, QFontMetrics

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
    """Shows one frame. Emits ``hovered(x, y, value)`` as the cursor moves over the image.

    Only what the screen shows is drawn: the window of the frame in view, from the level of the frame's
    pyramid whose pixels are about a screen pixel, so a level change costs the same for a 1k or an 8k
    frame. Axes and the pixel readout stay in frame pixels."""

    hovered = pyqtSignal(int, int, float)
    _title = ""                      # the full title; what is shown is elided to the view's width
    _shown_title: str | None = None

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
        self._pyramid: display.Pyramid | None = None
        self._window: tuple[int, slice, slice] | None = None
        self._levels: tuple[float, float] = (0.0, 1.0)
        self._cell = 1
        self._lut: np.ndarray | None = None
        self.plot.getViewBox().sigRangeChanged.connect(lambda *_: self._update_window())
        self.plot.getViewBox().sigResized.connect(lambda *_: self._update_window())
        self._placeholder = pg.TextItem("", color="#9a9a9a", anchor=(0.5, 0.5))
        self.plot.addItem(self._placeholder)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def set_title(self, text: str) -> None:
        self._title = text
        self._show_title()

    def _show_title(self) -> None:
        """The title, elided in the middle to the view's width: pyqtgraph makes a title's width the
        plot's minimum, so a long file name would widen the plot past its view and cut it off."""
        font = QFont()
        font.setPointSize(10)
        width = max(40, self.width() - 60)
        shown = QFontMetrics(font).elidedText(self._title, Qt.TextElideMode.ElideMiddle, width)
        if shown != self._shown_title:
            self._shown_title = shown
            self.plot.setTitle(shown, color="#e0e0e0", size="10pt")

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._title and not sip.isdeleted(self.plot.titleLabel):  # (not while being torn down)
            self._show_title()
        super().resizeEvent(event)

    def show_frame(self, data: np.ndarray | None, name: str, levels: tuple[float, float],
                   lut: np.ndarray, keep_view: bool = True, bayer: str | None = None) -> None:
        """Display ``data`` (NaNs replaced for speed) with ``levels`` and ``lut``; a one-shot-colour
        mosaic with its ``bayer`` pattern is shown in colour (one RGB pixel per 2 × 2 cell)."""
        first = self.data is None or data is None or self.data.shape != data.shape
        self.data = data
        self.frame_name = name
        self._levels, self._lut = levels, lut
        self._window = None
        if data is None:
            self._pyramid = None
            self.image.clear()
            self._placeholder.setText(name)
            self._centre_placeholder()
            self.set_title("")
            return
        self._placeholder.setText("")
        shown = display.displayable(data)[0]
        self._cell = 2 if bayer else 1  # frame pixels per drawn pixel at the pyramid's base
        self._pyramid = display.Pyramid(display.balanced(display.debayer(shown, bayer)) if bayer else shown)
        self.set_title(name)
        if first or not keep_view:
            self.fit()
        self._update_window()

    def set_levels(self, levels: tuple[float, float]) -> None:
        self._levels = levels
        if self.data is not None:
            self.image.setLevels(levels)

    def set_lut(self, lut: np.ndarray) -> None:
        self._lut = lut
        if not self.in_colour:
            self.image.setLookupTable(lut)

    @property
    def in_colour(self) -> bool:
        return self._pyramid is not None and self._pyramid.levels[0].ndim == 3

    def drawn_shape(self) -> tuple[int, int]:
        """Shape of the array the image item draws (the visible window of a pyramid level)."""
        return (0, 0) if self.image.image is None else tuple(self.image.image.shape[:2])

    def _centre_placeholder(self) -> None:
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        self._placeholder.setPos((x0 + x1) / 2, (y0 + y1) / 2)

    def _update_window(self) -> None:
        """Draw the window of the right pyramid level when the view has moved out of the last one or
        the zoom calls for another level."""
        if self._pyramid is None:
            self._centre_placeholder()
            return
        box = self.plot.getViewBox()
        (x0, x1), (y0, y1) = box.viewRange()
        size = box.geometry()
        pixel = min((x1 - x0) / max(size.width(), 1.0), (y1 - y0) / max(size.height(), 1.0))
        k = self._pyramid.level_for(pixel / self._cell)
        factor = self._cell * 2 ** k
        if self._window is not None and self._window[0] == k and self._covers(self._window, x0, x1, y0, y1):
            return
        level = self._pyramid.level(k)
        rows, cols = display.visible_window(level.shape[:2], factor, x0, x1, y0, y1)
        self._window = (k, rows, cols)
        if rows.stop <= rows.start:
            self.image.clear()
            return
        lut = None if self.in_colour else self._lut
        self.image.setImage(level[rows, cols], autoLevels=False, levels=self._levels, lut=lut)
        self.image.setRect(QRectF(cols.start * factor, rows.start * factor,
                                  (cols.stop - cols.start) * factor, (rows.stop - rows.start) * factor))

    def _covers(self, window: tuple[int, slice, slice], x0: float, x1: float, y0: float, y1: float) -> bool:
        """Whether the drawn window holds all of the frame that the view rectangle shows."""
        k, rows, cols = window
        factor = self._cell * 2 ** k
        level_ny, level_nx = self._pyramid.level(k).shape[:2]
        x0, x1 = max(x0, 0.0), min(x1, level_nx * factor)
        y0, y1 = max(y0, 0.0), min(y1, level_ny * factor)
        if x0 >= x1 or y0 >= y1:
            return rows.stop <= rows.start
        return (cols.start * factor <= x0 and x1 <= cols.stop * factor
                and rows.start * factor <= y0 and y1 <= rows.stop * factor)

    def placeholder(self, text: str) -> None:
        self.show_frame(None, text, (0.0, 1.0), lookup_table("linear", "grey"))

    def zoom(self, factor: float) -> None:
        self.plot.getViewBox().scaleBy((1 / factor, 1 / factor))

    def fit(self) -> None:
        """Show the whole frame."""
        if self.data is not None:
            ny, nx = self.data.shape
            self.plot.getViewBox().setRange(QRectF(0, 0, nx, ny), padding=0.0)

    def _on_mouse_moved(self, position: QPointF) -> None:
        if self.data is None or not self.plot.sceneBoundingRect().contains(position):
            return
        point = self.plot.getViewBox().mapSceneToView(position)
        x, y = int(np.floor(point.x())), int(np.floor(point.y()))
        if 0 <= y < self.data.shape[0] and 0 <= x < self.data.shape[1]:
            self.hovered.emit(x, y, float(self.data[y, x]))
