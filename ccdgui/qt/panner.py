"""The panner (DS9's): the whole frame small, a box showing what the image view shows; click or drag
to move the view there."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QPen
from PyQt6.QtWidgets import QApplication, QGraphicsRectItem

from .image_view import ImageView


class Panner(pg.GraphicsLayoutWidget):
    """Follows one :class:`ImageView` (``follow(view)``); shows its frame's coarsest display copy."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent=parent)
        self.setBackground("#16171a")
        self.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.box = self.addViewBox(lockAspect=True, enableMouse=False, enableMenu=False)
        self.box.setDefaultPadding(0.0)
        self.image = pg.ImageItem()
        self.box.addItem(self.image)
        self.frame_rect = QGraphicsRectItem()
        pen = QPen(Qt.GlobalColor.green)
        pen.setCosmetic(True)
        pen.setWidth(2)
        self.frame_rect.setPen(pen)
        self.frame_rect.setZValue(10)
        self.box.addItem(self.frame_rect)
        self.view: ImageView | None = None
        self._shown: int | None = None
        self.scene().sigMouseClicked.connect(self._on_click)
        self.scene().sigMouseMoved.connect(self._on_move)
        self.setToolTip("Panner: the whole frame; the green box is what the view shows. Click or drag to "
                        "move the view.")
        self.setMinimumSize(120, 100)

    def follow(self, view: ImageView) -> None:
        if self.view is not None:
            for signal in (self.view.view_changed, self.view.ready):
                signal.disconnect(self.refresh)
        self.view = view
        view.view_changed.connect(self.refresh)
        view.ready.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Redraw the thumbnail (when the frame changed) and the view's box."""
        view = self.view
        thumb = None if view is None or view.data is None else view.thumbnail()
        if thumb is None:
            self.image.clear()
            self.frame_rect.setVisible(False)
            self._shown = None
            return
        array, scale = thumb
        if self._shown != id(array):
            self._shown = id(array)
            lut = None if array.ndim == 3 else view._lut
            self.image.setImage(array, autoLevels=False, levels=view.levels, lut=lut)
            ny, nx = view.data.shape
            self.image.setRect(QRectF(0, 0, array.shape[1] * scale, array.shape[0] * scale))
            self.box.setRange(QRectF(0, 0, nx, ny), padding=0.02)
        else:
            self.image.setLevels(view.levels)
        (x0, x1), (y0, y1) = view.plot.getViewBox().viewRange()
        self.frame_rect.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.frame_rect.setVisible(True)

    def _move_view(self, scene_position) -> None:
        if self.view is None or self.view.data is None:
            return
        point = self.box.mapSceneToView(scene_position)
        ny, nx = self.view.data.shape
        self.view.centre_on(float(np.clip(point.x(), 0, nx)), float(np.clip(point.y(), 0, ny)))

    def _on_click(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._move_view(event.scenePos())

    def _on_move(self, position) -> None:
        if QApplication.mouseButtons() & Qt.MouseButton.LeftButton:
            self._move_view(position)
