"""An image view as DS9 shows one: the frame fills the view (aspect kept, row 0 at the bottom), no axes
unless the coordinate ruler is asked for, keys and a context menu of our own."""

from __future__ import annotations

import concurrent.futures
import itertools

import numpy as np
import pyqtgraph as pg
from PyQt6 import sip
from PyQt6.QtCore import QObject, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QAction, QFont, QFontMetrics, QGuiApplication
from PyQt6.QtWidgets import QMenu

from ..model import display

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

_COLOUR_TABLES: dict[str, np.ndarray] = {}

#: Frames with more pixels than this are first shown from a decimated copy (a few ms); the binned
#: pyramid that replaces it is built in a background thread after the first paint.
PREVIEW_MIN_PIXELS = 2048 * 2048
#: Fraction of the view's width or height an arrow key pans by.
PAN_STEP = 0.1
#: Side of the box, in frame pixels, that "Set levels from the box around here" measures.
LEVEL_BOX = 100

_BUILDER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ccdgui-pyramid")
_TOKENS = itertools.count(1)


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


class _Relay(QObject):
    """Carries a pyramid built in the background thread back to the GUI thread (a queued signal)."""

    built = pyqtSignal(int, object)


def _build_pyramid(data: np.ndarray, level: int, token: int, current) -> display.Pyramid | None:
    """The frame's display copy and its binned levels down to the smallest (run in the builder thread);
    None when the view has moved on to another frame meanwhile."""
    if token != current():
        return None
    pyramid = display.Pyramid(display.displayable(data)[0])
    for k in range(level + 1):
        if token != current():
            return None
        pyramid.level(k)
    pyramid.level(64)  # the coarsest level too: the panner's thumbnail
    return pyramid


class ImageView(pg.GraphicsLayoutWidget):
    """Shows one frame. Emits ``hovered(x, y, value)`` as the cursor moves over the image,
    ``clicked(x, y)`` on a left click on a frame pixel (0-based), ``levels_from_box(x0, x1, y0, y1)``
    and ``export_requested`` from its context menu, ``view_changed`` when pan or zoom moved and
    ``ready`` when the full-resolution display copy is in place.

    Only what the screen shows is drawn: the window of the frame in view, from the level of the frame's
    pyramid whose pixels are about a screen pixel, so a level change costs the same for a 1k or an 8k
    frame. The readout stays in frame pixels."""

    hovered = pyqtSignal(int, int, float)
    clicked = pyqtSignal(int, int)
    levels_from_box = pyqtSignal(int, int, int, int)
    export_requested = pyqtSignal()
    view_changed = pyqtSignal()
    ready = pyqtSignal()
    _title = ""                      # the full title; what is shown is elided to the view's width
    _shown_title: str | None = None

    def __init__(self, title: str = "", parent=None) -> None:
        super().__init__(parent=parent)
        self.setBackground("#1e1f22")
        self.ci.layout.setContentsMargins(0, 0, 0, 0)
        self.ci.layout.setSpacing(0)
        self.plot: pg.PlotItem = self.addPlot(title=title)
        self.plot.setAspectLocked(True)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setContentsMargins(2, 0, 2, 2)
        self.plot.getViewBox().setDefaultPadding(0.0)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTextPen("#c8c8c8")
        self.set_ruler(False)
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.data: np.ndarray | None = None      # the frame's pixels (not the display copy)
        self.frame_name = ""
        self.frame = None                        # the Frame shown, when the caller says (readout labels)
        self.label: str | None = None            # a derived image's readout label ('difference')
        self._pyramid: display.Pyramid | None = None
        self._preview: tuple[np.ndarray, int] | None = None  # (decimated copy, stride) until the pyramid
        self._token = 0
        self._relay = _Relay()
        self._relay.built.connect(self._on_built)
        self._window: tuple[int, slice, slice] | None = None
        self._levels: tuple[float, float] = (0.0, 1.0)
        self._cell = 1
        self._lut: np.ndarray | None = None
        self.fitted = True                       # refit on resize until the user pans or zooms
        self._fitting = False
        box = self.plot.getViewBox()
        box.sigRangeChanged.connect(lambda *_: self._on_range_changed())
        box.sigRangeChangedManually.connect(lambda *_: self._user_moved())
        box.sigResized.connect(lambda *_: self._on_resized())
        self._placeholder = pg.TextItem("", color="#9a9a9a", anchor=(0.5, 0.5))
        self.plot.addItem(self._placeholder)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("")

    # --- title, ruler -------------------------------------------------------------------------------
    def set_title(self, text: str) -> None:
        self._title = text
        self._show_title()

    def _show_title(self) -> None:
        """The title, elided in the middle to the view's width: pyqtgraph makes a title's width the
        plot's minimum, so a long file name would widen the plot past its view and cut it off."""
        font = QFont()
        font.setPointSize(9)
        width = max(40, self.width() - 30)
        shown = QFontMetrics(font).elidedText(self._title, Qt.TextElideMode.ElideMiddle, width)
        if shown != self._shown_title:
            self._shown_title = shown
            self.plot.setTitle(shown, color="#e0e0e0", size="9pt")

    def set_ruler(self, on: bool) -> None:
        """Show or hide the coordinate ruler (axes in frame pixels); hidden, the frame fills the view."""
        for axis in ("left", "bottom"):
            self.plot.showAxis(axis, on)
        self.ruler = on

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._title and not sip.isdeleted(self.plot.titleLabel):  # (not while being torn down)
            self._show_title()
        super().resizeEvent(event)

    # --- showing a frame ------------------------------------------------------------------------------
    def show_frame(self, data: np.ndarray | None, name: str, levels: tuple[float, float],
                   lut: np.ndarray, keep_view: bool = True, bayer: str | None = None, frame=None,
                   label: str | None = None) -> None:
        """Display ``data`` (NaNs replaced for speed) with ``levels`` and ``lut``; a one-shot-colour
        mosaic with its ``bayer`` pattern is shown in colour (one RGB pixel per 2 × 2 cell). A big frame
        is first drawn from a decimated copy; its binned pyramid follows from a background thread.
        ``label`` names a derived image in the readout ('difference', 'residual')."""
        first = self.data is None or data is None or self.data.shape != data.shape
        self.data = data
        self.frame = frame
        self.label = label
        self.frame_name = name
        self._levels, self._lut = levels, lut
        self._window = None
        self._preview = None
        self._pyramid = None
        self._token = next(_TOKENS)
        if data is None:
            self.image.clear()
            self._placeholder.setText(name)
            self._centre_placeholder()
            self.set_title("")
            return
        self._placeholder.setText("")
        self.set_title(name)
        if first or not keep_view or self.fitted:
            self.fit()
        self._cell = 2 if bayer else 1  # frame pixels per drawn pixel at the pyramid's base
        if bayer:
            shown = display.displayable(data)[0]
            self._pyramid = display.Pyramid(display.balanced(display.debayer(shown, bayer)))
        elif data.size < PREVIEW_MIN_PIXELS:
            self._pyramid = display.Pyramid(display.displayable(data)[0])
        else:
            self._show_preview(data)
            return
        self._update_window()
        self.ready.emit()

    @property
    def is_ready(self) -> bool:
        """Whether the full-resolution display copy is in place (always, once a small frame is shown)."""
        return self.data is None or self._pyramid is not None

    def _show_preview(self, data: np.ndarray) -> None:
        """Draw every ``stride``-th pixel (twice the stride the view's zoom needs: a quarter of the pixels
        to draw, slightly soft for the few tens of ms until the pyramid replaces it), then build the
        pyramid in the background."""
        stride = 2 ** (self._level_wanted(data.shape) + 1)
        offset = stride // 2
        preview = display.displayable(data[offset::stride, offset::stride])[0]
        self._preview = (preview, stride)
        self.image.setImage(preview, autoLevels=False, levels=self._levels, lut=self._lut)
        self.image.setRect(QRectF(0, 0, preview.shape[1] * stride, preview.shape[0] * stride))
        token, level = self._token, self._level_wanted(data.shape)
        future = _BUILDER.submit(_build_pyramid, data, level, token, lambda: self._token)
        relay = self._relay
        future.add_done_callback(lambda f: not f.cancelled() and f.exception() is None
                                 and f.result() is not None and relay.built.emit(token, f.result()))

    def _level_wanted(self, shape: tuple[int, int]) -> int:
        """log2 of the frame pixels per screen pixel at the current zoom (0 when magnified)."""
        box = self.plot.getViewBox()
        (x0, x1), (y0, y1) = box.viewRange()
        size = box.geometry()
        if size.width() < 8 or size.height() < 8:  # not laid out yet: aim at about 1000 pixels
            pixel = max(shape) / 1000
        else:
            pixel = min((x1 - x0) / size.width(), (y1 - y0) / size.height())
        return 0 if not np.isfinite(pixel) or pixel < 2 else int(np.floor(np.log2(pixel)))

    def _on_built(self, token: int, pyramid: display.Pyramid) -> None:
        if token != self._token or sip.isdeleted(self.image):
            return  # another frame is shown now
        self._pyramid, self._preview, self._window = pyramid, None, None
        self._update_window()
        self.view_changed.emit()
        self.ready.emit()

    def set_levels(self, levels: tuple[float, float]) -> None:
        self._levels = levels
        if self.data is not None:
            self.image.setLevels(levels)

    def set_lut(self, lut: np.ndarray) -> None:
        self._lut = lut
        if not self.in_colour:
            self.image.setLookupTable(lut)

    @property
    def levels(self) -> tuple[float, float]:
        return self._levels

    @property
    def in_colour(self) -> bool:
        return self._pyramid is not None and self._pyramid.levels[0].ndim == 3

    def drawn_shape(self) -> tuple[int, int]:
        """Shape of the array the image item draws (the visible window of a pyramid level)."""
        return (0, 0) if self.image.image is None else tuple(self.image.image.shape[:2])

    def thumbnail(self) -> tuple[np.ndarray, float] | None:
        """The smallest display copy there is and its frame pixels per pixel (for the panner)."""
        if self._pyramid is not None:
            coarsest = self._pyramid.levels[-1]
            return coarsest, self._cell * 2 ** (len(self._pyramid.levels) - 1)
        if self._preview is not None:
            return self._preview[0], float(self._preview[1])
        return None

    def _centre_placeholder(self) -> None:
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        self._placeholder.setPos((x0 + x1) / 2, (y0 + y1) / 2)

    def _on_range_changed(self) -> None:
        self._update_window()
        self.view_changed.emit()

    def _on_resized(self) -> None:
        if self.fitted and self.data is not None:
            self.fit()
        self._update_window()

    def _user_moved(self) -> None:
        if not self._fitting:
            self.fitted = False

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

    # --- zoom and pan ---------------------------------------------------------------------------------
    def zoom(self, factor: float) -> None:
        self.fitted = False
        self.plot.getViewBox().scaleBy((1 / factor, 1 / factor))

    def fit(self) -> None:
        """Show the whole frame, as large as the view allows; it stays fitted as the view is resized."""
        self.fitted = True
        if self.data is not None:
            ny, nx = self.data.shape
            self._fitting = True
            try:
                self.plot.getViewBox().setRange(QRectF(0, 0, nx, ny), padding=0.0)
            finally:
                self._fitting = False

    def one_to_one(self) -> None:
        """One frame pixel per screen pixel, about the view's centre (DS9's zoom 1)."""
        box = self.plot.getViewBox()
        (x0, x1), (y0, y1) = box.viewRange()
        size = box.geometry()
        ratio = self.devicePixelRatioF() or 1.0
        half_w, half_h = size.width() / ratio / 2, size.height() / ratio / 2
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        self.fitted = False
        box.setRange(QRectF(cx - half_w, cy - half_h, 2 * half_w, 2 * half_h), padding=0.0)

    def zoom_factor(self) -> float:
        """Screen pixels per frame pixel."""
        box = self.plot.getViewBox()
        (x0, x1), _ = box.viewRange()
        return box.geometry().width() / max(x1 - x0, 1e-9)

    def pan(self, dx: float, dy: float) -> None:
        """Move the view by (dx, dy) view widths/heights."""
        box = self.plot.getViewBox()
        (x0, x1), (y0, y1) = box.viewRange()
        self.fitted = False
        box.translateBy(x=dx * (x1 - x0), y=dy * (y1 - y0))

    def centre_on(self, x: float, y: float) -> None:
        """Put frame point (x, y) at the view's centre, zoom unchanged."""
        box = self.plot.getViewBox()
        (x0, x1), (y0, y1) = box.viewRange()
        self.fitted = False
        box.translateBy(x=x - (x0 + x1) / 2, y=y - (y0 + y1) / 2)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Arrows pan by a tenth of the view (DS9/Ginga); other keys go to the window's actions."""
        moves = {Qt.Key.Key_Left: (-PAN_STEP, 0), Qt.Key.Key_Right: (PAN_STEP, 0),
                 Qt.Key.Key_Up: (0, PAN_STEP), Qt.Key.Key_Down: (0, -PAN_STEP)}
        if event.key() in moves and self.data is not None:
            self.pan(*moves[event.key()])
            event.accept()
            return
        super().keyPressEvent(event)

    # --- mouse ----------------------------------------------------------------------------------------
    def pixel_at(self, scene_position: QPointF) -> tuple[int, int] | None:
        """The frame pixel (x, y, 0-based) under a scene position, or None off the frame."""
        if self.data is None or not self.plot.sceneBoundingRect().contains(scene_position):
            return None
        point = self.plot.getViewBox().mapSceneToView(scene_position)
        x, y = int(np.floor(point.x())), int(np.floor(point.y()))
        if 0 <= y < self.data.shape[0] and 0 <= x < self.data.shape[1]:
            return x, y
        return None

    def _on_mouse_moved(self, position: QPointF) -> None:
        pixel = self.pixel_at(position)
        if pixel is not None:
            x, y = pixel
            self.hovered.emit(x, y, float(self.data[y, x]))

    def _on_mouse_clicked(self, event) -> None:
        pixel = self.pixel_at(event.scenePos())
        if event.button() == Qt.MouseButton.RightButton:
            event.accept()
            self.context_menu(pixel).popup(event.screenPos().toPoint())
        elif event.button() == Qt.MouseButton.LeftButton and pixel is not None:
            self.clicked.emit(*pixel)

    def context_menu(self, pixel: tuple[int, int] | None) -> QMenu:
        """Our menu for a right click at ``pixel`` (None off the frame)."""
        menu = QMenu(self)
        if pixel is not None:
            x, y = pixel
            copy = QAction(f"Copy coordinates  x={x + 1} y={y + 1} (FITS)", menu)
            copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(f"{x + 1} {y + 1}"))
            menu.addAction(copy)
            half = LEVEL_BOX // 2
            box = QAction(f"Set levels from the {LEVEL_BOX} × {LEVEL_BOX} box around here", menu)
            box.triggered.connect(lambda: self.levels_from_box.emit(x - half, x + half, y - half, y + half))
            menu.addAction(box)
        if self.data is not None:
            shown = QAction("Set levels from what the view shows", menu)
            shown.triggered.connect(self._levels_from_view)
            menu.addAction(shown)
            menu.addSeparator()
            for text, slot in (("Fit frame (F)", self.fit), ("Zoom 1:1 (1)", self.one_to_one)):
                action = QAction(text, menu)
                action.triggered.connect(slot)
                menu.addAction(action)
        ruler = QAction("Coordinate ruler", menu)
        ruler.setCheckable(True)
        ruler.setChecked(self.ruler)
        ruler.toggled.connect(self.set_ruler)
        menu.addAction(ruler)
        menu.addSeparator()
        export = QAction("Export view as PNG…", menu)
        export.triggered.connect(self.export_requested)
        menu.addAction(export)
        return menu

    def _levels_from_view(self) -> None:
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        self.levels_from_box.emit(int(x0), int(np.ceil(x1)), int(y0), int(np.ceil(y1)))
