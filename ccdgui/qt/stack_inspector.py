"""The stack behind one pixel of a master: every input's value as combined, the centre, the clip bounds,
the rejected values marked by why, and the combined value. Hovering a point names its frame; clicking it
asks for that frame (``frame_requested(path)``). Fed with :class:`ccdgui.model.inspect.PixelStack`."""

from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..model.inspect import PixelStack

BACKGROUND = "#1e1f22"
KEPT = ("#6fa8dc", "o")
MARKS = {  # reason -> (colour, symbol, legend)
    "kept": (*KEPT, "kept"),
    "sigma high": ("#e06666", "t1", "rejected: σ high"),
    "sigma low": ("#e06666", "t", "rejected: σ low"),
    "min/max high": ("#c27ba0", "t1", "rejected: highest"),
    "min/max low": ("#c27ba0", "t", "rejected: lowest"),
    "above clip_max": ("#f6b26b", "s", "rejected: above clip_max"),
    "below clip_min": ("#f6b26b", "s", "rejected: below clip_min"),
    "missing (NaN)": ("#999999", "x", "missing (NaN)"),
}
CENTRE_PEN = pg.mkPen("#c8c8c8", width=1, style=pg.QtCore.Qt.PenStyle.DashLine)
BOUND_PEN = pg.mkPen("#e06666", width=1, style=pg.QtCore.Qt.PenStyle.DotLine)
RESULT_PEN = pg.mkPen("#93c47d", width=2)


class StackInspector(QWidget):
    """``set_stacks([PixelStack, …])`` (one for a master, three for a light's masters: a selector picks
    which is plotted); ``clear()``. Emits ``frame_requested(path)`` when a point is clicked."""

    frame_requested = pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._stacks: list[PixelStack] = []
        self._stack: PixelStack | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        top = QHBoxLayout()
        top.setContentsMargins(4, 2, 4, 2)
        self.title = QLabel("Click a pixel of a master (or a light) to see its stack")
        self.title.setStyleSheet("color: #c8c8c8;")
        self.selector = QComboBox()
        self.selector.setToolTip("The master whose stack is shown (a light used several)")
        self.selector.currentIndexChanged.connect(self._show_selected)
        self.selector.hide()
        top.addWidget(self.title, 1)
        top.addWidget(self.selector)
        layout.addLayout(top)
        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setBackground(BACKGROUND)
        self.plot_widget.setMenuEnabled(False)
        self.plot_widget.hideButtons()
        self.plot_widget.showGrid(x=False, y=True, alpha=0.2)
        self.plot_widget.getAxis("bottom").setLabel("input frame")
        self.plot_widget.getAxis("left").enableAutoSIPrefix(False)
        layout.addWidget(self.plot_widget, 1)
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet(f"background: {BACKGROUND}; color: #c8c8c8; padding: 1px 6px;")
        layout.addWidget(self.legend)
        self.hover = QLabel(" ")
        self.hover.setStyleSheet(f"background: {BACKGROUND}; color: #ffd966; padding: 1px 6px;")
        layout.addWidget(self.hover)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet(f"background: {BACKGROUND}; color: #c8c8c8; padding: 2px 6px;")
        layout.addWidget(self.summary)
        self.scatter = pg.ScatterPlotItem(size=11, hoverable=True, hoverSize=15, hoverPen=pg.mkPen("w"))
        self.scatter.sigHovered.connect(self._on_hovered)
        self.scatter.sigClicked.connect(self._on_clicked)

    # --- data ----------------------------------------------------------------------------------------
    def set_stacks(self, stacks: list[PixelStack]) -> None:
        self._stacks = list(stacks)
        self.selector.blockSignals(True)
        self.selector.clear()
        self.selector.addItems([s.master for s in self._stacks])
        self.selector.blockSignals(False)
        self.selector.setVisible(len(self._stacks) > 1)
        self._show(self._stacks[0] if self._stacks else None)

    def set_stack(self, stack: PixelStack | None) -> None:
        self.set_stacks([] if stack is None else [stack])

    def clear(self) -> None:
        self.set_stacks([])

    def _show_selected(self, index: int) -> None:
        if 0 <= index < len(self._stacks):
            self._show(self._stacks[index])

    def _show(self, stack: PixelStack | None) -> None:
        self._stack = stack
        plot = self.plot_widget.getPlotItem()
        plot.clear()
        self.hover.setText(" ")
        if stack is None:
            self.title.setText("Click a pixel of a master (or a light) to see its stack")
            self.legend.setText("")
            self.summary.setText("")
            return
        n = len(stack.frames)
        x = np.arange(1, n + 1, dtype=float)
        values = np.asarray(stack.values, dtype=float)
        shown = np.where(np.isfinite(values), values, np.nan)
        self.title.setText(f"<b>{html.escape(stack.master)}</b> at x = {stack.x}, y = {stack.y} "
                           f"(FITS, 1-based) — {html.escape(stack.method)}")
        self.title.setToolTip(stack.method)
        if math.isfinite(stack.low) and math.isfinite(stack.high):
            band = pg.LinearRegionItem((stack.low, stack.high), orientation="horizontal", movable=False,
                                       brush=pg.mkBrush(224, 102, 102, 28), pen=BOUND_PEN)
            band.setToolTip(f"kept between {stack.low:.6g} and {stack.high:.6g}")
            plot.addItem(band)
        if math.isfinite(stack.centre):
            plot.addItem(pg.InfiniteLine(stack.centre, angle=0, pen=CENTRE_PEN))
        if math.isfinite(stack.result):
            plot.addItem(pg.InfiniteLine(stack.result, angle=0, pen=RESULT_PEN))
        spots = []
        for index in range(n):
            reason = stack.reasons[index]
            colour, symbol, _ = MARKS.get(reason, MARKS["kept"])
            y = shown[index] if math.isfinite(shown[index]) else self._placeholder_y(stack)
            spots.append({"pos": (x[index], y), "symbol": symbol, "brush": pg.mkBrush(colour),
                          "pen": pg.mkPen(colour), "data": index})
        self.scatter.setData(spots)
        plot.addItem(self.scatter)
        plot.getAxis("bottom").setTicks([[(i + 1, str(i + 1)) for i in range(n)]] if n <= 30 else None)
        unit = "scaled value" if stack.scales else "value (ADU)"
        plot.getAxis("left").setLabel(unit)
        plot.setXRange(0.5, n + 0.5, padding=0)
        self._fit_y(plot, shown, stack)
        self.legend.setText(self._legend_html(stack))
        self.summary.setText(self._summary_html(stack))

    @staticmethod
    def _placeholder_y(stack: PixelStack) -> float:
        """Where a non-finite value is drawn: at the centre, else the result, else zero."""
        for value in (stack.centre, stack.result):
            if math.isfinite(value):
                return value
        return 0.0

    @staticmethod
    def _fit_y(plot, shown: np.ndarray, stack: PixelStack) -> None:
        """Show every value, the bounds and the result, with a margin."""
        candidates = [v for v in list(shown) + [stack.low, stack.high, stack.result, stack.centre]
                      if v is not None and math.isfinite(v)]
        if not candidates:
            return
        low, high = min(candidates), max(candidates)
        pad = (high - low) * 0.08 or abs(high) * 0.01 or 1.0
        plot.setYRange(low - pad, high + pad, padding=0)

    @staticmethod
    def _legend_html(stack: PixelStack) -> str:
        used = dict.fromkeys(stack.reasons)
        parts = []
        for reason in used:
            colour, symbol, text = MARKS.get(reason, MARKS["kept"])
            mark = {"o": "●", "t": "▼", "t1": "▲", "s": "■", "x": "✕"}.get(symbol, "●")
            parts.append(f"<span style='color:{colour}'>{mark}</span> {html.escape(text)}")
        parts.append("<span style='color:#93c47d'>━</span> result")
        if math.isfinite(stack.centre):
            parts.append("<span style='color:#c8c8c8'>┅</span> centre")
            parts.append("<span style='color:#e06666'>┈</span> clip bounds")
        # an entry never breaks; a narrow dock wraps the legend between entries instead of cutting it
        return "&nbsp;&nbsp; ".join(f"<span style='white-space:nowrap'>{part}</span>" for part in parts)

    @staticmethod
    def _summary_html(stack: PixelStack) -> str:
        rejected = len(stack.frames) - stack.count
        verdict = "equals the master's pixel" if stack.matches else (
            f"<b style='color:#e06666'>differs from the master's pixel {stack.master_value:.7g}</b>")
        text = (f"result <b>{stack.result:.7g}</b> from {stack.count} of {len(stack.frames)} values "
                f"({rejected} rejected); {verdict}")
        if math.isfinite(stack.centre):
            text += f"; centre {stack.centre:.6g}, kept between {stack.low:.6g} and {stack.high:.6g}"
        return text

    # --- interaction ------------------------------------------------------------------------------------
    def describe(self, index: int) -> str:
        """What hovering point ``index`` says."""
        stack = self._stack
        if stack is None or not 0 <= index < len(stack.frames):
            return " "
        scale = "" if stack.scales is None else \
            f" (prepared {stack.prepared[index]:.6g} × {stack.scales[index]:.4g})"
        return (f"#{index + 1} {stack.frames[index]}: {stack.values[index]:.6g}{scale} — "
                f"{stack.reasons[index]}  (click to open)")

    def _on_hovered(self, _item, points, _event) -> None:
        if len(points):
            self.hover.setText(html.escape(self.describe(int(points[0].data()))))
        else:
            self.hover.setText(" ")

    def _on_clicked(self, _item, points, _event=None) -> None:
        if len(points):
            self.request_frame(int(points[0].data()))

    def request_frame(self, index: int) -> None:
        """Ask for input frame ``index`` (its file) to be opened."""
        if self._stack is not None and 0 <= index < len(self._stack.paths) and self._stack.paths[index]:
            self.frame_requested.emit(self._stack.paths[index])
